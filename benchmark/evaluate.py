"""The one evaluator: every score in the benchmark is computed here.

Spans are matched strictly on ``(sentence_id, start, end)``, and under ``ner`` also by the
partial-match schemes of SemEval-2013 as nervaluate counts them (``semeval/*``: `semeval_counts`).
Each gold/predicted pair becomes a
row of per-sentence counts (`CountTable`); every scalar metric is a function of the column sums,
so a sentence-level bootstrap is a reweighting of rows (one matrix product per chunk).

Formulas (per type t, from true positives, false positives, false negatives):
``P_t = tp/(tp+fp)``, ``R_t = tp/(tp+fn)``, ``F1_t = 2tp/(2tp+fp+fn)`` (0 when undefined).
``micro`` sums tp/fp/fn over types; ``macro`` averages over the types present in gold or
predictions (scikit-learn's ``labels=None``); ``weighted`` averages with weights
``support_t = tp+fn``. ``accuracy`` (typing) is correct spans / gold spans, which equals micro F1
because every given span gets exactly one label. ``coarse/*`` maps fine labels to their coarse
type first. ``detection/*`` ignores the type.

Errors. ``fewnerd/*`` are Few-NERD's error analysis (``error_analysis`` in ``util/framework.py``
of the official code): ``fp_rate`` = tokens inside a predicted span but outside every gold span,
÷ all tokens; ``fn_rate`` = tokens inside a gold span but outside every predicted span, ÷ all
tokens; ``within_rate`` / ``outer_rate`` = correctly-bounded spans (a predicted span with a gold
span's exact boundaries, whatever the types) whose fine type is wrong but coarse type right /
whose coarse type is wrong, ÷ correctly-bounded spans. (Few-NERD reads spans off IO tags of
query sets concatenated; here spans are the predicted ones, per sentence.) ``errors/*`` are plain
counts: ``span_fp`` (predicted span with no gold span at its boundaries), ``span_fn`` (gold span
with no predicted span at its boundaries), ``within``, ``outer`` and ``bounded`` (the numerators
and denominator of the two rates above). ``p_at_K`` is the precision of the K predictions with
the highest scores (ties: sentence order). ``clusters/nmi`` and ``clusters/ari`` (only when a
method puts its predictions in clusters) compare the clusters of the predictions that match a
gold span with those spans' fine types: scikit-learn's normalised mutual information and
adjusted Rand index.
"""

from __future__ import annotations

import functools
import itertools
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from benchmark.core.data.fewnerd import Sentence
from benchmark.core.labels import LabelHierarchy, coarse_of
from benchmark.core.spans import OUTSIDE, Span

#: 2.0: Few-NERD's token-level FP/FN rates and within/outer ÷ bounded spans; 2.1: SemEval-2013 partial matches
EVALUATOR_VERSION = "2.1"
P_AT_K = (10, 50, 100, 200, 300)
LONGEST_LENGTH_BUCKET = 5  # entities of 5 or more tokens share one bucket
ERROR_KINDS = ("span_fp", "span_fn", "within", "outer", "bounded")
TOKEN_KINDS = ("tokens", "token_fp", "token_fn")
Scoring = Literal["typing", "spans"]


@dataclass(frozen=True)
class CountTable:
    """Per-sentence counts: ``fine`` (n, types, [tp, fp, fn]), ``coarse`` likewise,
    ``detection`` (n, [tp, fp, fn]), ``errors`` (n, `ERROR_KINDS`), ``tokens`` (n,
    `TOKEN_KINDS`) and, for free span prediction, ``semeval`` (`semeval_counts`)."""

    fine: np.ndarray
    coarse: np.ndarray
    detection: np.ndarray
    errors: np.ndarray
    tokens: np.ndarray
    semeval: np.ndarray | None = None
    semeval_types: tuple[str, ...] = ()  # the coarse types of ``semeval``'s per-type rows

    @property
    def n_sentences(self) -> int:
        return self.fine.shape[0]

    @property
    def parts(self) -> tuple[np.ndarray, ...]:
        """The count arrays in the table's layout (``semeval`` only where there is one)."""
        parts = (self.fine, self.coarse, self.detection, self.errors, self.tokens)
        return parts if self.semeval is None else (*parts, self.semeval)

    def flat(self) -> np.ndarray:
        """All counts of a sentence in one row: shape (n_sentences, columns)."""
        return np.concatenate([p.reshape(self.n_sentences, -1) for p in self.parts], axis=1)

    def shaped(self, totals: np.ndarray) -> CountTable:
        """Column sums (any leading shape, last axis = columns) back in this table's layout."""
        lead, parts = totals.shape[:-1], self.parts
        split = np.split(totals, np.cumsum([p[0].size for p in parts[:-1]]), axis=-1)
        blocks = (block.reshape(*lead, *p.shape[1:]) for block, p in zip(split, parts, strict=True))
        return CountTable(*blocks, semeval_types=self.semeval_types)

    def totals(self) -> CountTable:
        """The counts summed over sentences."""
        return CountTable(*(p.sum(axis=0) for p in self.parts), semeval_types=self.semeval_types)


@dataclass(frozen=True)
class Scores:
    """Everything the evaluator reports for one set of predictions."""

    scoring: Scoring
    metrics: dict[str, float]
    per_type: pd.DataFrame
    confusion: dict[str, pd.DataFrame]
    table: CountTable
    evaluator_version: str = EVALUATOR_VERSION


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    den = np.asarray(den, dtype=float)
    return np.divide(num, den, out=np.zeros_like(den), where=den > 0)


def _prf(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall, F1 from counts whose last axis is [tp, fp, fn]."""
    return _score(counts, "precision"), _score(counts, "recall"), _score(counts, "f1")


def _score(counts: np.ndarray, score: str) -> np.ndarray:
    """One of `_prf`."""
    tp, fp, fn = counts[..., 0], counts[..., 1], counts[..., 2]
    if score == "precision":
        return _ratio(tp, tp + fp)
    return _ratio(tp, tp + fn) if score == "recall" else _ratio(2 * tp, 2 * tp + fp + fn)


def _level_metrics(counts: np.ndarray, prefix: str, scoring: Scoring) -> dict[str, np.ndarray]:
    """Micro, macro and weighted P/R/F1 of per-type counts (..., types, 3), and accuracy for typing."""
    return {f"{prefix}/{name}": _level_metric(counts, name, scoring) for name in _level_names(scoring)}


def _level_names(scoring: Scoring) -> list[str]:
    scores = ("precision", "recall", "f1")
    names = [f"micro_{s}" for s in scores] + [f"{average}_{s}" for s in scores for average in ("macro", "weighted")]
    return names + ["accuracy"] * (scoring == "typing")


def _level_metric(counts: np.ndarray, name: str, scoring: Scoring) -> np.ndarray:
    """One of `_level_metrics` (``name`` without its level), computing only what it needs."""
    if name not in _level_names(scoring):
        raise KeyError(name)
    support = counts[..., 0] + counts[..., 2]
    if name == "accuracy":
        return _ratio(counts[..., 0].sum(-1), support.sum(-1))
    average, _, score = name.partition("_")
    if average == "micro":
        return _score(counts.sum(axis=-2), score)
    values = _score(counts, score)
    weights = (counts.sum(axis=-1) > 0).astype(float) if average == "macro" else support
    return _ratio((values * weights).sum(-1), weights.sum(-1))


def metrics_from_totals(totals: CountTable, scoring: Scoring) -> dict[str, np.ndarray]:
    """Every scalar metric from summed counts; vectorised over any leading axes."""
    out = _level_metrics(totals.fine, "fine", scoring)
    out.update(_level_metrics(totals.coarse, "coarse", scoring))
    if scoring == "spans":
        out.update(
            zip(("detection/precision", "detection/recall", "detection/f1"), _prf(totals.detection), strict=True)
        )
    errors, tokens = totals.errors, totals.tokens
    for i, kind in enumerate(ERROR_KINDS):
        if scoring == "spans" or kind not in ("span_fp", "span_fn"):
            out[f"errors/{kind}"] = errors[..., i]
    out["fewnerd/fp_rate"] = _ratio(tokens[..., 1], tokens[..., 0])
    out["fewnerd/fn_rate"] = _ratio(tokens[..., 2], tokens[..., 0])
    out["fewnerd/within_rate"] = _ratio(errors[..., 2], errors[..., 4])
    out["fewnerd/outer_rate"] = _ratio(errors[..., 3], errors[..., 4])
    if totals.semeval is not None:
        out.update(semeval_metrics(totals.semeval, totals.semeval_types))
    return out


def metric_from_totals(totals: CountTable, scoring: Scoring, metric: str) -> np.ndarray:
    """One metric of `metrics_from_totals`, computing only its level (for resampling loops)."""
    level = metric.split("/")[0]
    if level in ("fine", "coarse") and "/p_at_" not in metric:
        return _level_metric(getattr(totals, level), metric.partition("/")[2], scoring)
    if level == "semeval":
        return semeval_metrics(totals.semeval, totals.semeval_types)[metric]
    return metrics_from_totals(totals, scoring)[metric]


def match(gold: Sequence[Span], predictions: Sequence[Span], hierarchy: LabelHierarchy) -> np.ndarray:
    """Strict matching: rows (sentence, gold type, predicted type) as fine-type indices, with -1
    where a side has no span (a missed gold span or a spurious prediction)."""
    fine_index = {t: i for i, t in enumerate(hierarchy.fine_types)}
    gold_type = {(g.sentence_id, g.start, g.end): fine_index[g.label] for g in gold}
    rows = []
    for p in predictions:
        key = (p.sentence_id, p.start, p.end)
        rows.append((p.sentence_id, gold_type.pop(key, -1), fine_index[p.label]))
    rows.extend((key[0], label, -1) for key, label in gold_type.items())
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


def token_counts(gold: Sequence[Span], predictions: Sequence[Span], lengths: Sequence[int]) -> np.ndarray:
    """(n_sentences, `TOKEN_KINDS`): each sentence's tokens, tokens inside a predicted span but
    no gold span (Few-NERD's token false positives) and inside a gold span but no predicted
    span (false negatives). ``lengths`` are the sentences' token counts."""
    lengths = np.asarray(lengths, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)])

    def covered(spans: Sequence[Span]) -> np.ndarray:
        marks = np.zeros(starts[-1] + 1, dtype=np.int64)
        sentence, start, end = span_positions(spans)
        np.add.at(marks, starts[sentence] + start, 1)
        np.add.at(marks, starts[sentence] + end, -1)
        return np.cumsum(marks)[:-1] > 0

    inside_gold, inside_predicted = covered(gold), covered(predictions)
    sentence = np.repeat(np.arange(len(lengths)), lengths)
    n = len(lengths)
    fp = np.bincount(sentence[inside_predicted & ~inside_gold], minlength=n)
    fn = np.bincount(sentence[inside_gold & ~inside_predicted], minlength=n)
    return np.stack([lengths, fp, fn], axis=1)


def count_table(
    pairs: np.ndarray, tokens: np.ndarray, hierarchy: LabelHierarchy, semeval: np.ndarray | None = None
) -> CountTable:
    """Per-sentence counts from `match` rows and `token_counts` (which fixes the sentences), and
    for free span prediction the `semeval_counts`."""
    n_sentences = len(tokens)
    to_coarse = _coarse_indices(hierarchy)
    sentence, g, p = pairs.T
    cg, cp = to_coarse[g], to_coarse[p]  # index -1 maps to the trailing -1

    def per_type(n_types: int, gold_t: np.ndarray, pred_t: np.ndarray) -> np.ndarray:
        both = (gold_t >= 0) & (pred_t >= 0) & (gold_t == pred_t)
        cells = [
            (both, gold_t, 0),
            ((pred_t >= 0) & ~both, pred_t, 1),
            ((gold_t >= 0) & ~both, gold_t, 2),
        ]
        flat = np.zeros(n_sentences * n_types * 3, dtype=np.int64)
        for mask, types, column in cells:
            index = (sentence[mask] * n_types + types[mask]) * 3 + column
            flat += np.bincount(index, minlength=flat.size)
        return flat.reshape(n_sentences, n_types, 3)

    def per_sentence(*masks: np.ndarray) -> np.ndarray:
        return np.stack([np.bincount(sentence[m], minlength=n_sentences) for m in masks], axis=1)

    matched = (g >= 0) & (p >= 0)
    return CountTable(
        fine=per_type(len(hierarchy.fine_types), g, p),
        coarse=per_type(len(hierarchy.coarse_types), cg, cp),
        detection=per_sentence(matched, (p >= 0) & (g < 0), (g >= 0) & (p < 0)),
        errors=per_sentence(
            (p >= 0) & (g < 0),
            (g >= 0) & (p < 0),
            matched & (g != p) & (cg == cp),
            matched & (cg != cp),
            matched,
        ),
        tokens=np.asarray(tokens, dtype=np.int64).reshape(n_sentences, len(TOKEN_KINDS)),
        semeval=semeval,
        semeval_types=tuple(hierarchy.coarse_types) if semeval is not None else (),
    )


# Partial-match schemes of SemEval-2013 task 9.1, as nervaluate (1.2) defines and counts them

#: the schemes, in nervaluate's names: ``strict`` (boundaries and type), ``exact`` (boundaries),
#: ``partial`` (overlap, half credit unless exact), ``ent_type`` (type, with overlap)
SEMEVAL_SCHEMES = ("strict", "exact", "partial", "ent_type")
#: what each scheme counts per prediction and gold span
SEMEVAL_COUNTS = ("correct", "incorrect", "partial", "missed", "spurious")
_CORRECT, _INCORRECT, _PARTIAL, _MISSED, _SPURIOUS = range(5)


def semeval_counts(
    gold: Sequence[Span], predictions: Sequence[Span], n_sentences: int, hierarchy: LabelHierarchy
) -> np.ndarray:
    """Per-sentence counts (n_sentences, 1 + coarse types, `SEMEVAL_SCHEMES`, `SEMEVAL_COUNTS`):
    index 0 scores every span with its fine type (nervaluate's ``overall``), index 1 + c only the
    spans of coarse type c with their coarse type (nervaluate's ``entities`` after mapping labels
    to coarse types). Spans of one side must not overlap (IO gold, `ner` predictions): overlapping
    ones raise ValueError."""
    fine_index = {t: i for i, t in enumerate(hierarchy.fine_types)}
    to_coarse = _coarse_indices(hierarchy)
    n_coarse = len(hierarchy.coarse_types)

    def rows(spans: Sequence[Span]) -> np.ndarray:
        found = np.array([(s.sentence_id, s.start, s.end, fine_index[s.label]) for s in spans], dtype=np.int64)
        return found.reshape(-1, 4)

    g, p = rows(gold), rows(predictions)
    for name, side in (("gold", g), ("predicted", p)):
        ordered = side[np.lexsort((side[:, 1], side[:, 0]))]
        clash = (ordered[1:, 0] == ordered[:-1, 0]) & (ordered[1:, 1] < ordered[:-1, 2])
        if clash.any():
            sentence = int(ordered[1:][clash][0, 0])
            raise ValueError(f"partial-match scoring needs spans that do not overlap: {name} spans of sentence "
                             f"{sentence} do")  # fmt: skip
    out = np.zeros((n_sentences, 1 + n_coarse, len(SEMEVAL_SCHEMES), len(SEMEVAL_COUNTS)), dtype=np.int64)
    # the whole sentence with fine types; then each coarse type alone, with coarse types
    out[:, 0] = _scheme_counts(g[:, 0], g, p[:, 0], p, n_sentences)
    gc, pc = to_coarse[g[:, 3]], to_coarse[p[:, 3]]
    g_coarse, p_coarse = np.column_stack([g[:, :3], gc]), np.column_stack([p[:, :3], pc])
    documents = _scheme_counts(
        g[:, 0] * n_coarse + gc, g_coarse, p[:, 0] * n_coarse + pc, p_coarse, n_sentences * n_coarse
    )
    out[:, 1:] = documents.reshape(n_sentences, n_coarse, *documents.shape[1:])
    return out


def _scheme_counts(g_doc: np.ndarray, g: np.ndarray, p_doc: np.ndarray, p: np.ndarray, n_docs: int) -> np.ndarray:
    """(n_docs, schemes, counts) for spans grouped in documents (rows: sentence, start, end, type).

    In a document every prediction overlaps a run of consecutive gold spans. Predictions that
    overlap one gold span of at most 100 tokens and nothing else, with no other prediction
    overlapping that span but such ones, are scored directly, vectorised: the first of them (in
    start order) takes the gold span, the others are spurious. The components of the overlap graph
    where a prediction overlaps several gold spans (or a longer one, where nervaluate's 1 % overlap
    test can fail) replay nervaluate's greedy matching (predictions and gold spans in start order)."""
    out = np.zeros((n_docs, len(SEMEVAL_SCHEMES), len(SEMEVAL_COUNTS)), dtype=np.int64)
    g_order, p_order = np.lexsort((g[:, 1], g_doc)), np.lexsort((p[:, 1], p_doc))
    g, g_doc, p, p_doc = g[g_order], g_doc[g_order], p[p_order], p_doc[p_order]
    width = int(max(g[:, 2].max(initial=0), p[:, 2].max(initial=0))) + 1
    # the gold spans a prediction overlaps: ends after its start, starts before its end
    lo = np.searchsorted(g_doc * width + g[:, 2], p_doc * width + p[:, 1], side="right")
    hi = np.searchsorted(g_doc * width + g[:, 1], p_doc * width + p[:, 2], side="left")
    lo = np.minimum(lo, hi)
    span = hi - lo
    marks = np.zeros(len(g) + 1, dtype=np.int64)
    np.add.at(marks, lo, 1)
    np.add.at(marks, hi, -1)
    covered = np.cumsum(marks)[: len(g)]  # how many predictions overlap each gold span
    wide = span > 1
    marks[:] = 0
    np.add.at(marks, lo[wide], 1)
    np.add.at(marks, hi[wide], -1)
    shared = np.cumsum(marks)[: len(g)] > 0  # a prediction overlapping several gold spans overlaps it
    first = np.minimum(lo, max(len(g) - 1, 0))
    # nervaluate needs an overlap of 1 % of the gold span: only a gold span over 100 tokens can miss it
    on_short = ~shared[first] & ((g[first, 2] - g[first, 1]) <= 100) if len(g) else span < 0
    simple = (span == 0) | ((span == 1) & on_short)

    def add(doc: np.ndarray, scheme: int, kind: int, mask: np.ndarray) -> None:
        np.add.at(out, (doc[mask], scheme, kind), 1)

    alone = np.flatnonzero(simple & (span == 1))
    leads = np.ones(len(alone), dtype=bool)  # the first prediction on its gold span takes it
    leads[1:] = first[alone[1:]] != first[alone[:-1]]
    for scheme in range(len(SEMEVAL_SCHEMES)):
        add(p_doc[alone], scheme, _SPURIOUS, ~leads)
    alone = alone[leads]
    other = first[alone]
    exact = (p[alone, 1] == g[other, 1]) & (p[alone, 2] == g[other, 2])
    same = p[alone, 3] == g[other, 3]
    doc = p_doc[alone]
    for scheme, correct, incorrect_or_partial, kind in (
        (0, exact & same, ~(exact & same), _INCORRECT),
        (1, exact, ~exact, _INCORRECT),
        (2, exact, ~exact, _PARTIAL),
        (3, same, ~same, _INCORRECT),
    ):
        add(doc, scheme, _CORRECT, correct)
        add(doc, scheme, kind, incorrect_or_partial)
    for scheme in range(len(SEMEVAL_SCHEMES)):
        add(p_doc, scheme, _SPURIOUS, simple & (span == 0))
        add(g_doc, scheme, _MISSED, covered == 0)
    hard = np.flatnonzero(~simple)
    if len(hard):
        # components: runs of hard predictions of one document whose gold ranges touch
        starts = np.ones(len(hard), dtype=bool)
        starts[1:] = (p_doc[hard[1:]] != p_doc[hard[:-1]]) | (lo[hard[1:]] >= hi[hard[:-1]])
        for chunk in np.split(hard, np.flatnonzero(starts)[1:]):
            golds = np.arange(lo[chunk].min(), hi[chunk].max())
            out[p_doc[chunk[0]]] += _greedy(g[golds], p[chunk])
    return out


def _greedy(g: np.ndarray, p: np.ndarray) -> np.ndarray:
    """nervaluate's four strategies on one small component (rows: sentence, start, end, type; in
    start order): each prediction in turn takes the first unmatched gold span it overlaps (by at
    least 1 % of the gold span), ``ent_type`` preferring one of its type with the closest
    boundaries; (schemes, counts)."""
    out = np.zeros((len(SEMEVAL_SCHEMES), len(SEMEVAL_COUNTS)), dtype=np.int64)

    def overlaps(pred: np.ndarray, true: np.ndarray) -> bool:
        shared = min(pred[2], true[2]) - max(pred[1], true[1])
        return shared > 0 and shared * 100 >= true[2] - true[1]

    for scheme in range(len(SEMEVAL_SCHEMES)):
        taken: set[int] = set()
        for pred in p:
            exact = same = first = None
            best = None
            for j, true in enumerate(g):
                if j in taken or not overlaps(pred, true):
                    continue
                if pred[1] == true[1] and pred[2] == true[2] and exact is None:
                    exact = j
                if pred[3] == true[3]:
                    distance = abs(pred[1] - true[1]) + abs(pred[2] - true[2])
                    if best is None or distance < best:
                        same, best = j, distance
                first = j if first is None else first
            if scheme == 3 and same is not None:
                taken.add(same)
                out[scheme, _CORRECT] += 1
            elif scheme < 3 and exact is not None and (scheme != 0 or pred[3] == g[exact][3]):
                taken.add(exact)
                out[scheme, _CORRECT] += 1
            elif first is not None:
                taken.add(first)
                out[scheme, _PARTIAL if scheme == 2 else _INCORRECT] += 1
            else:
                out[scheme, _SPURIOUS] += 1
        out[scheme, _MISSED] += len(g) - len(taken)
    return out


#: the credit of a partial match in each scheme: only ``partial`` gives one half
_HALVES = np.array([0.5 if scheme == "partial" else 0.0 for scheme in SEMEVAL_SCHEMES])


def _semeval_scores(counts: np.ndarray, halves: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 from `SEMEVAL_COUNTS` (last axis), a partial match crediting ``halves``."""
    return _semeval_prf(*np.moveaxis(_semeval_sums(counts, halves), -1, 0))


def _semeval_sums(counts: np.ndarray, halves: np.ndarray | float) -> np.ndarray:
    """(…, 3): the credit, actual and possible of `SEMEVAL_COUNTS` (last axis), a partial match
    crediting ``halves``. Linear in the counts: the sums of resampled sentences' counts give the
    sums of theirs (exactly: whole and half numbers)."""
    correct, incorrect, partial, missed, spurious = (counts[..., k].astype(float) for k in range(len(SEMEVAL_COUNTS)))
    actual, possible = correct + incorrect + partial + spurious, correct + incorrect + partial + missed
    return np.stack([correct + halves * partial, actual, possible], axis=-1)


def _semeval_prf(credit: np.ndarray, actual: np.ndarray, possible: np.ndarray) -> tuple[np.ndarray, ...]:
    precision, recall = _ratio(credit, actual), _ratio(credit, possible)
    return precision, recall, _ratio(2 * precision * recall, precision + recall)


def semeval_metrics(counts: np.ndarray, coarse_types: Sequence[str]) -> dict[str, np.ndarray]:
    """P/R/F1 of each scheme from summed `semeval_counts` (any leading axes): ``semeval/<scheme>/…``
    over every span, ``semeval/<scheme>/<coarse>/…`` per coarse type. Precision = credit / actual,
    recall = credit / possible, where actual = correct + incorrect + partial + spurious, possible
    = correct + incorrect + partial + missed and credit = correct (+ partial / 2 for ``partial``)."""
    out = {}
    precision, recall, f1 = _semeval_scores(counts, _HALVES)
    names = ["", *(f"{c}/" for c in coarse_types)]
    for i, name in enumerate(names):
        for s, scheme in enumerate(SEMEVAL_SCHEMES):
            for metric, values in (("precision", precision), ("recall", recall), ("f1", f1)):
                out[f"semeval/{scheme}/{name}{metric}"] = values[..., i, s]
    return out


def bootstrap_ci(
    table: CountTable, scoring: Scoring, resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, tuple[float, float]]:
    """Percentile confidence intervals from resampling sentences with replacement."""
    draws = _metric_draws(table, scoring, _bootstrap_weights(table.n_sentences, resamples, seed))
    tail = (1 - level) / 2 * 100
    return {key: tuple(np.percentile(v, [tail, 100 - tail]).tolist()) for key, v in draws.items()}


def group_rows(table: CountTable, groups: np.ndarray, n_groups: int) -> CountTable:
    """The table's per-sentence counts summed within groups (``groups[i]``: sentence i's group):
    a table whose rows are the groups, so `bootstrap_ci` on it resamples whole groups (episodes)."""
    totals = np.zeros((n_groups, table.flat().shape[1]), dtype=np.int64)
    np.add.at(totals, np.asarray(groups, dtype=np.int64), table.flat())
    return table.shaped(totals)


@functools.lru_cache(maxsize=4)
def _bootstrap_weights(n: int, resamples: int, seed: int, chunk: int = 100) -> tuple[np.ndarray, ...]:
    """(chunk, n) matrices: how often each sentence is drawn in each resample (float32: counts
    and their sums stay exact). Cached: every run of a report is scored on the same resamples."""
    return tuple(_weight_chunks(n, resamples, seed, chunk))


def _weight_chunks(n: int, resamples: int, seed: int, chunk: int) -> Iterator[np.ndarray]:
    """`_bootstrap_weights` one chunk at a time (a two-level bootstrap needs too many resamples to
    hold them all)."""
    rng = np.random.default_rng(seed)
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        drawn = rng.integers(0, n, size=(rows, n)) + np.arange(rows)[:, None] * n
        yield np.bincount(drawn.ravel(), minlength=rows * n).reshape(rows, n).astype(np.float32)


def _metric_draws(table: CountTable, scoring: Scoring, weights, metric: str | None = None) -> dict[str, np.ndarray]:
    """Metrics (or only ``metric``) of each reweighted copy of the table (rows with no counts
    are skipped)."""
    flat = table.flat().astype(np.float32)
    used = flat.any(axis=1)
    flat = flat[used]
    draws: dict[str, list[np.ndarray]] = {}
    for w in weights:
        totals = table.shaped(w[:, used] @ flat)
        found = (
            {metric: metric_from_totals(totals, scoring, metric)} if metric else metrics_from_totals(totals, scoring)
        )
        for key, value in found.items():
            draws.setdefault(key, []).append(value)
    return {key: np.concatenate(values) for key, values in draws.items()}


def _projection(table: CountTable, scoring: Scoring, metric: str) -> tuple[np.ndarray, Callable]:
    """The per-sentence counts ``metric`` needs, flat (n, columns), and the function that computes
    it from their sums (vectorised over leading axes): one level's per-type counts, summed over
    types for a micro metric or accuracy; the partial-match counts' credit, actual and possible
    (`_semeval_sums`) for a ``semeval/`` metric; every count otherwise."""
    level, _, name = metric.partition("/")
    if level in ("fine", "coarse") and "p_at_" not in name:
        counts = getattr(table, level)
        if name.startswith("micro_") or name == "accuracy":
            counts = counts.sum(axis=1, keepdims=True)
        shape = counts.shape[1:]
        return counts.reshape(len(counts), -1), lambda totals: _level_metric(
            totals.reshape(*totals.shape[:-1], *shape), name, scoring
        )
    if level == "semeval" and table.semeval is not None:  # semeval/<scheme>/[<coarse type>/]<metric>
        scheme, *coarse, kind = name.split("/")
        where = 1 + table.semeval_types.index(coarse[0]) if coarse else 0
        s = SEMEVAL_SCHEMES.index(scheme)
        scores = dict(zip(("precision", "recall", "f1"), range(3), strict=True))
        sums = _semeval_sums(table.semeval[:, where, s], _HALVES[s])  # 3 columns instead of 5 to resample
        return sums, lambda totals: _semeval_prf(*np.moveaxis(totals, -1, 0))[scores[kind]]
    return table.flat(), lambda totals: metric_from_totals(table.shaped(totals), scoring, metric)


@dataclass(frozen=True)
class PairedResult:
    """The difference ``a - b`` of two rows' seed means of one metric, its 95 % two-level bootstrap
    CI and two-sided p-value; ``floor`` is the smallest p the resamples can give."""

    metric: str
    a: float
    b: float
    delta: float
    ci: tuple[float, float]
    p_value: float
    floor: float

    @property
    def at_floor(self) -> bool:
        """The p-value is the floor: the true p is at most that."""
        return self.p_value <= self.floor


def _seed_draws(
    rows: Mapping[str, Sequence[CountTable]],
    scoring: Scoring,
    metrics: Sequence[str],
    resamples: int,
    seed: int,
    chunk: int,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each metric's (runs, resamples) scores of every run (rows in order, their seeds in order)
    on each resample of the test sentences, and each run's score on the whole test set: the
    resamples drawn once for all metrics."""
    tables = [t for label in rows for t in rows[label]]
    if len({t.n_sentences for t in tables}) > 1:
        raise ValueError("a seed bootstrap needs count tables of the same test set")
    parts = []
    for metric in metrics:
        projected = [_projection(t, scoring, metric) for t in tables]
        width = projected[0][0].shape[1]
        by_sentence = np.concatenate([c.T for c, _ in projected]).astype(np.float32)  # (runs × columns, n)
        if np.count_nonzero(by_sentence) < DENSE_ABOVE * by_sentence.size:  # per-type counts: mostly zeros
            by_sentence = scipy.sparse.csr_matrix(by_sentence)
        value = projected[0][1]  # one layout for all: the same hierarchy
        whole = np.stack([c.sum(axis=0) for c, _ in projected]).astype(np.float32)  # (runs, columns)
        parts.append((by_sentence, width, value, np.empty((len(tables), resamples)), value(whole)))
    n, runs = tables[0].n_sentences, len(tables)
    done = 0
    for weights in _weight_chunks(n, resamples, seed, chunk):
        for by_sentence, width, value, per_run, _ in parts:
            totals = (by_sentence @ weights.T).T.reshape(len(weights), runs, width)
            per_run[:, done : done + len(weights)] = value(totals).T
        done += len(weights)
    return {metric: (per_run, full) for metric, (_, _, _, per_run, full) in zip(metrics, parts, strict=True)}


#: the share of non-zero per-sentence counts above which `SeedBootstrap` sums resamples with a
#: dense product (BLAS) rather than a sparse one; both are exact (whole and half numbers in
#: float32, sums below 2**23), so the choice changes the speed only
DENSE_ABOVE = 0.25


class SeedBootstrap:
    """Two-level bootstrap of rows' seed means of one metric on one test set: trained models are a
    sample (seeds) and so are the test sentences.

    Sentences: resample ``b`` draws the test sentences with replacement, the same draw for every
    row (rows are paired through their sentences); each seed of a row is scored on it, and the
    row's seeds-fixed draw is their mean. Seeds: a draw adds ``s / sqrt(k) * T`` with ``s`` the
    sample standard deviation of the row's ``k`` seed scores and ``T`` a Student-t variate of
    ``k - 1`` degrees of freedom, independently per row: the sampling distribution of a mean of
    ``k`` normal scores, whose tails a resample of 3 or 5 seeds cannot give (3 seeds have 10
    distinct resampled means, all inside their range). A row of one seed has no seed variance
    to draw: its draws hold the seeds fixed.

    `single_run_scores` gives one score per seed that carries both the seed's and the
    sentences' variance (seed ``i`` on resample ``i``): what `deepsig.aso` compares.
    """

    def __init__(
        self,
        rows: Mapping[str, Sequence[CountTable]],
        scoring: Scoring,
        metric: str,
        resamples: int = 1000,
        seed: int = 0,
        chunk: int = 200,
    ) -> None:
        per_run, full = _seed_draws(rows, scoring, [metric], resamples, seed, chunk)[metric]
        self._assign(rows, metric, per_run, full, resamples, seed)

    @classmethod
    def several(
        cls,
        rows: Mapping[str, Sequence[CountTable]],
        scoring: Scoring,
        metrics: Sequence[str],
        resamples: int = 1000,
        seed: int = 0,
        chunk: int = 200,
    ) -> dict[str, SeedBootstrap]:
        """One bootstrap per metric, on the same resamples drawn once: each is the one
        ``SeedBootstrap(rows, scoring, metric, resamples, seed)`` gives."""
        found = {}
        for metric, (per_run, full) in _seed_draws(rows, scoring, metrics, resamples, seed, chunk).items():
            found[metric] = boot = cls.__new__(cls)
            boot._assign(rows, metric, per_run, full, resamples, seed)
        return found

    def _assign(
        self,
        rows: Mapping[str, Sequence[CountTable]],
        metric: str,
        per_run: np.ndarray,
        full: np.ndarray,
        resamples: int,
        seed: int,
    ) -> None:
        self.metric, self.resamples, self.seed = metric, resamples, seed
        self.per_seed: dict[str, np.ndarray] = {}
        self.seed_scores: dict[str, np.ndarray] = {}
        start = 0
        for label in rows:
            k = len(rows[label])
            self.per_seed[label], self.seed_scores[label] = per_run[start : start + k], full[start : start + k]
            start += k
        self._draws: dict[str, np.ndarray] = {}

    @property
    def floor(self) -> float:
        """The smallest two-sided p-value ``resamples`` can give: 2 / (resamples + 1)."""
        return 2 / (self.resamples + 1)

    def mean(self, label: str) -> float:
        """The row's seed mean on the whole test set: the number a table prints."""
        return float(self.seed_scores[label].mean())

    def draws(self, label: str) -> np.ndarray:
        """The row's two-level draws of its seed mean (seeds and sentences)."""
        if label not in self._draws:
            k = len(self.per_seed[label])
            draws = self.sentence_draws(label)
            if k > 1:
                spread = float(np.std(self.seed_scores[label], ddof=1)) / np.sqrt(k)
                rng = np.random.default_rng([self.seed, zlib.crc32(label.encode())])  # a row's own stream
                draws = draws + spread * rng.standard_t(k - 1, size=self.resamples)
            self._draws[label] = draws
        return self._draws[label]

    def sentence_draws(self, label: str) -> np.ndarray:
        """Draws of the row's seed mean with its seeds held fixed (sentences resampled only)."""
        return self.per_seed[label].mean(axis=0)

    def interval(self, label: str, sentences_only: bool = False, level: float = 0.95) -> tuple[float, float]:
        """Percentile interval of the row's seed mean (two-level, or ``sentences_only``)."""
        draws = self.sentence_draws(label) if sentences_only else self.draws(label)
        tail = (1 - level) / 2 * 100
        low, high = np.percentile(draws, [tail, 100 - tail])
        return float(low), float(high)

    def single_run_scores(self, label: str) -> np.ndarray:
        """Seed ``i`` of the row scored on resample ``i``: one score per seed, each with the seed's
        and the sentences' variance in it."""
        per_seed = self.per_seed[label]
        return per_seed[np.arange(len(per_seed)), np.arange(len(per_seed))]

    def compare(self, a: str, b: str) -> PairedResult:
        """``a - b``: the difference of seed means a table prints, its percentile CI from the
        paired two-level draws, and the two-sided p of the same draws (twice the share on the far
        side of 0, counting the observed difference once: (1 + count) / (resamples + 1))."""
        differences = self.draws(a) - self.draws(b)
        low, high = np.percentile(differences, [2.5, 97.5])
        beyond = min(int((differences <= 0).sum()), int((differences >= 0).sum()))
        p = min(1.0, 2 * (1 + beyond) / (self.resamples + 1))
        mean_a, mean_b = self.mean(a), self.mean(b)
        return PairedResult(self.metric, mean_a, mean_b, mean_a - mean_b, (float(low), float(high)), p, self.floor)


class SettingsBootstrap(SeedBootstrap):
    """Two-level bootstrap of a row's seed mean of the mean over episode settings (the "Avg."
    column of few-shot NER tables): one `SeedBootstrap` per setting, on count tables whose rows
    are episodes (`episode_table`: whole episodes resampled, seeds drawn as there), each setting
    with its own resamples (their episodes are independent); a row's draw is the mean of its
    settings' draws, and a pair is paired within each setting. ``settings``: setting → row →
    per-seed tables."""

    def __init__(
        self,
        settings: Mapping[str, Mapping[str, Sequence[CountTable]]],
        scoring: Scoring,
        metric: str,
        name: str,
        resamples: int = 1000,
        seed: int = 0,
    ) -> None:
        self.metric, self.resamples, self.seed = name, resamples, seed
        self.parts = [
            SeedBootstrap(rows, scoring, metric, resamples, seed + i) for i, rows in enumerate(settings.values())
        ]

    def _average(self, values: Callable[[SeedBootstrap], np.ndarray | float]) -> np.ndarray:
        return np.mean([values(part) for part in self.parts], axis=0)

    def mean(self, label: str) -> float:
        return float(self._average(lambda part: part.mean(label)))

    def draws(self, label: str) -> np.ndarray:
        return self._average(lambda part: part.draws(label))

    def sentence_draws(self, label: str) -> np.ndarray:
        """Draws with the seeds held fixed (episodes resampled only)."""
        return self._average(lambda part: part.sentence_draws(label))

    def single_run_scores(self, label: str) -> np.ndarray:
        return self._average(lambda part: part.single_run_scores(label))


def holm_adjust(p_values: Sequence[float]) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (family-wise error control over several pairs)."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p)
    scaled = np.minimum(1.0, np.maximum.accumulate(p[order] * (len(p) - np.arange(len(p)))))
    adjusted = np.empty_like(p)
    adjusted[order] = scaled
    return adjusted


def precision_curve(gold: Sequence[Span], predictions: Sequence[Span]) -> np.ndarray:
    """Precision of the K most confident predictions for K = 1 … len(predictions) (strict span
    and fine type; ties by sentence, start, end)."""
    labels: dict[str | None, int] = {}
    gold_keys, keys = _span_keys(gold, labels), _span_keys(predictions, labels)
    scores = np.array([p.score for p in predictions], dtype=float)
    order = np.lexsort((keys >> 8, -scores))  # by score descending, then sentence, start, end
    correct = np.isin(keys[order], gold_keys).astype(float)
    return np.cumsum(correct) / np.arange(1, len(correct) + 1)


def precision_at_k(curve: np.ndarray, ks: Sequence[int] = P_AT_K) -> dict[int, float]:
    """Precision of the K most confident predictions (strict span and fine type), read off their
    `precision_curve`."""
    return {k: float(curve[k - 1]) for k in ks if k <= len(curve)}


def per_type_table(table: CountTable, hierarchy: LabelHierarchy) -> pd.DataFrame:
    """P/R/F1 and counts for every fine and coarse type."""
    totals = table.totals()
    frames = []
    for level, types, counts in (
        ("fine", hierarchy.fine_types, totals.fine),
        ("coarse", hierarchy.coarse_types, totals.coarse),
    ):
        p, r, f = _prf(counts)
        frames.append(
            pd.DataFrame(
                {
                    "level": level,
                    "type": types,
                    "support": counts[:, 0] + counts[:, 2],
                    "tp": counts[:, 0],
                    "fp": counts[:, 1],
                    "fn": counts[:, 2],
                    "precision": p,
                    "recall": r,
                    "f1": f,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def span_positions(spans: Sequence[Span]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The spans' sentence ids, starts and ends, each as an int64 array."""
    if not spans:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64)
    columns = itertools.islice(zip(*spans, strict=True), 3)
    sentence, start, end = (np.fromiter(column, dtype=np.int64, count=len(spans)) for column in columns)
    return sentence, start, end


def _span_keys(spans: Sequence[Span], labels: dict[str | None, int]) -> np.ndarray:
    """One int64 per span: (sentence, start, end, label) packed, for vectorised set logic."""
    label = [s.label for s in spans]
    for name in dict.fromkeys(label):  # new labels numbered in order of first appearance
        labels.setdefault(name, len(labels))
    sentence, start, end = span_positions(spans)
    codes = np.fromiter(map(labels.__getitem__, label), dtype=np.int64, count=len(label))
    return (sentence << 40) | (start << 24) | (end << 8) | codes


def _lengths(keys: np.ndarray) -> np.ndarray:
    return ((keys >> 8) & 0xFFFF) - ((keys >> 24) & 0xFFFF)


def by_length_table(
    gold: Sequence[Span], predictions: Sequence[Span], longest: int = LONGEST_LENGTH_BUCKET
) -> pd.DataFrame:
    """Strict fine P/R/F1 by entity length in tokens (the last bucket is ``longest`` and up).

    A predicted span counts in the bucket of its own length, a gold span in its own; under the
    typing protocols both are the gold spans, so each bucket's F1 is its accuracy.
    """
    labels: dict[str | None, int] = {}
    gold_keys, predicted_keys = _span_keys(gold, labels), _span_keys(predictions, labels)
    hit = np.isin(predicted_keys, gold_keys)
    found = np.isin(gold_keys, predicted_keys)
    counts = np.zeros((longest, 3), dtype=np.int64)  # [tp, fp, fn] per bucket
    for column, keys in ((0, predicted_keys[hit]), (1, predicted_keys[~hit]), (2, gold_keys[~found])):
        counts[:, column] = np.bincount(np.minimum(_lengths(keys), longest) - 1, minlength=longest)
    p, r, f = _prf(counts)
    labels_text = [str(n) if n < longest else f"{n}+" for n in range(1, longest + 1)]
    frame = pd.DataFrame({"length": labels_text, "support": counts[:, 0] + counts[:, 2], "tp": counts[:, 0]})
    return frame.assign(fp=counts[:, 1], fn=counts[:, 2], precision=p, recall=r, f1=f)


def _coarse_indices(hierarchy: LabelHierarchy) -> np.ndarray:
    """Coarse index of each fine index, with a trailing -1 so that index -1 stays -1."""
    coarse_index = {t: i for i, t in enumerate(hierarchy.coarse_types)}
    return np.array([coarse_index[coarse_of(t)] for t in hierarchy.fine_types] + [-1])


def confusion_matrices(pairs: np.ndarray, hierarchy: LabelHierarchy) -> dict[str, pd.DataFrame]:
    """Gold (rows) × predicted (columns) counts at fine and coarse level.

    Unmatched spans count against ``O``: a missed gold span is (gold type, O), a spurious
    prediction is (O, predicted type).
    """
    out = {}
    to_coarse = _coarse_indices(hierarchy)
    for level, types, g, p in (
        ("fine", hierarchy.fine_types, pairs[:, 1], pairs[:, 2]),
        ("coarse", hierarchy.coarse_types, to_coarse[pairs[:, 1]], to_coarse[pairs[:, 2]]),
    ):
        n = len(types) + 1  # the last row/column is O
        cells = np.bincount(np.where(g < 0, n - 1, g) * n + np.where(p < 0, n - 1, p), minlength=n * n)
        labels = [*types, OUTSIDE]
        out[level] = pd.DataFrame(cells.reshape(n, n), index=labels, columns=labels)
    return out


def cluster_quality(gold: Sequence[Span], predictions: Sequence[Span]) -> dict[str, float]:
    """NMI and ARI of the predicted clusters against the gold fine types, over the predictions
    that match a gold span and carry a cluster; empty if no prediction carries one."""
    if all(p.cluster is None for p in predictions):
        return {}
    truth = {(g.sentence_id, g.start, g.end): g.label for g in gold}
    clustered = [p for p in predictions if p.cluster is not None and (p.sentence_id, p.start, p.end) in truth]
    labels = [truth[p.sentence_id, p.start, p.end] for p in clustered]
    clusters = [p.cluster for p in clustered]
    return {
        "clusters/nmi": float(normalized_mutual_info_score(labels, clusters)) if labels else 0.0,
        "clusters/ari": float(adjusted_rand_score(labels, clusters)) if labels else 0.0,
        "clusters/n_matched": float(len(labels)),
    }


def evaluate_split(
    sentences: Sequence[Sentence],
    predictions: Sequence[Span],
    hierarchy: LabelHierarchy,
    scoring: Scoring,
    resamples: int = 1000,
    seed: int = 0,
) -> Scores:
    """`evaluate` predictions on a split's sentences (their gold spans; sentence ids are their
    positions in ``sentences``)."""
    gold = [span for sentence in sentences for span in sentence.spans]
    return evaluate(gold, predictions, [len(s.tokens) for s in sentences], hierarchy, scoring, resamples, seed)


def scalar_metrics(
    table: CountTable, gold: Sequence[Span], predictions: Sequence[Span], scoring: Scoring, curve: np.ndarray
) -> dict[str, float]:
    """Every scalar metric of one run (no CIs) from its count table, spans and `precision_curve`."""
    metrics = {k: float(v) for k, v in metrics_from_totals(table.totals(), scoring).items()}
    for k, value in precision_at_k(curve).items():
        metrics[f"fine/p_at_{k}"] = value
    metrics["n_gold"] = float(len(gold))
    metrics["n_predicted"] = float(len(predictions))
    metrics.update(cluster_quality(gold, predictions))
    return metrics


#: metrics that get a bootstrap CI: F1s, accuracies and Few-NERD's error rates (sums of
#: per-sentence counts over sums, which a sentence bootstrap resamples as they are)
CI_METRICS = ("f1", "accuracy", "_rate")


def evaluate(
    gold: Sequence[Span],
    predictions: Sequence[Span],
    lengths: Sequence[int],
    hierarchy: LabelHierarchy,
    scoring: Scoring,
    resamples: int = 1000,
    seed: int = 0,
) -> Scores:
    """All metrics for one run; CIs (``…_ci_low``/``…_ci_high``) for every F1, accuracy and
    Few-NERD error rate. ``lengths``: the token count of each test sentence (ids index it)."""
    pairs = match(gold, predictions, hierarchy)
    semeval = semeval_counts(gold, predictions, len(lengths), hierarchy) if scoring == "spans" else None
    table = count_table(pairs, token_counts(gold, predictions, lengths), hierarchy, semeval)
    metrics = scalar_metrics(table, gold, predictions, scoring, precision_curve(gold, predictions))
    if resamples:
        for key, (low, high) in bootstrap_ci(table, scoring, resamples, seed).items():
            if key.endswith(CI_METRICS):
                metrics[f"{key}_ci_low"], metrics[f"{key}_ci_high"] = low, high
    return Scores(
        scoring=scoring,
        metrics=metrics,
        per_type=per_type_table(table, hierarchy),
        confusion=confusion_matrices(pairs, hierarchy),
        table=table,
    )


#: the figures an episode setting reports: Few-NERD's micro P/R/F1 and its error analysis
EPISODE_METRICS = (
    "fine/micro_precision", "fine/micro_recall", "fine/micro_f1",
    "fewnerd/fp_rate", "fewnerd/fn_rate", "fewnerd/within_rate", "fewnerd/outer_rate",
    "n_gold", "n_predicted",
)  # fmt: skip


def episode_table(
    gold: Sequence[Span],
    predictions: Sequence[Span],
    lengths: Sequence[int],
    episodes: Sequence[int],
    hierarchy: LabelHierarchy,
) -> CountTable:
    """The counts of a setting's query sentences summed per episode (``episodes[i]``: query
    sentence i's episode, numbered from 0): a table whose rows are episodes, the unit every
    interval over episodes resamples."""
    table = count_table(match(gold, predictions, hierarchy), token_counts(gold, predictions, lengths), hierarchy)
    return group_rows(table, np.asarray(episodes), int(max(episodes, default=-1)) + 1)


def episode_metrics(
    grouped: CountTable, n_gold: int, n_predicted: int, resamples: int = 1000, seed: int = 0
) -> dict[str, float]:
    """`EPISODE_METRICS` of a setting's query sets from its `episode_table` (``grouped``): their
    counts summed over every query sentence of every episode (as Few-NERD's framework sums them),
    and 95 % CIs of P, R, F1 and the error rates from ``resamples`` resamples of whole episodes."""
    scores = metrics_from_totals(grouped.totals(), "spans")
    metrics = {key: float(scores[key]) for key in EPISODE_METRICS if key in scores}
    metrics.update(n_gold=float(n_gold), n_predicted=float(n_predicted))
    if resamples:
        for key, (low, high) in bootstrap_ci(grouped, "spans", resamples, seed).items():
            if key in EPISODE_METRICS:
                metrics[f"{key}_ci_low"], metrics[f"{key}_ci_high"] = low, high
    return metrics
