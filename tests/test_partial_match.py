"""The SemEval-2013 partial-match schemes of the evaluator against nervaluate, their reference,
on real predictions and on random perturbations of real gold spans."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from nervaluate import Evaluator

from benchmark.core.labels import coarse_of
from benchmark.core.spans import Span
from benchmark.evaluate import SEMEVAL_SCHEMES, SeedBootstrap, evaluate_split, semeval_counts, semeval_metrics
from benchmark.report import ReportRequest, write_reports
from benchmark.run.published import read_record

RECORD = Path(__file__).parents[1] / "reports" / "runs" / "embedded" / "ner"


def _documents(spans, n, relabel=lambda label: label):
    out = [[] for _ in range(n)]
    for s in sorted(spans):
        out[s.sentence_id].append({"label": relabel(s.label), "start": s.start, "end": s.end - 1})  # inclusive end
    return out


def _reference(gold, predicted, n, hierarchy) -> dict[str, float]:
    """nervaluate's figures, named as the evaluator names them: every span with its fine type,
    and per coarse type after mapping labels to coarse types (only the types it reports)."""
    out = {}
    overall = Evaluator(_documents(gold, n), _documents(predicted, n), tags=list(hierarchy.fine_types),
                        loader="dict").evaluate()["overall"]  # fmt: skip
    coarse = Evaluator(_documents(gold, n, coarse_of), _documents(predicted, n, coarse_of),
                       tags=list(hierarchy.coarse_types), loader="dict").evaluate()["entities"]  # fmt: skip
    for scheme in SEMEVAL_SCHEMES:
        for metric in ("precision", "recall", "f1"):
            out[f"semeval/{scheme}/{metric}"] = getattr(overall[scheme], metric)
            for tag, results in coarse.items():
                out[f"semeval/{scheme}/{tag}/{metric}"] = getattr(results[scheme], metric)
    return out


def _ours(gold, predicted, n, hierarchy) -> dict[str, float]:
    totals = semeval_counts(gold, predicted, n, hierarchy).sum(axis=0)
    return {k: float(v) for k, v in semeval_metrics(totals, hierarchy.coarse_types).items()}


def _agree(gold, predicted, n, hierarchy) -> None:
    reference, ours = _reference(gold, predicted, n, hierarchy), _ours(gold, predicted, n, hierarchy)
    assert len(reference) >= 12
    assert {k: ours[k] for k in reference} == pytest.approx(reference, abs=1e-12)


def _perturbed(sentences, hierarchy, seed: int) -> list[Span]:
    """Gold spans with boundary shifts, type swaps (within and across coarse types), splits,
    merges of neighbours, drops and spurious spans; overlapping results dropped in start order
    (`ner` predictions never overlap)."""
    rng = np.random.default_rng(seed)
    fine = list(hierarchy.fine_types)
    out = []
    for sentence in sentences:
        n = len(sentence.tokens)
        spans = list(sentence.spans)
        i = 0
        while i < len(spans):
            s = spans[i]
            roll = rng.random()
            if roll < 0.1:  # shift a boundary
                start = int(np.clip(s.start + rng.integers(-2, 3), 0, n - 1))
                end = int(np.clip(s.end + rng.integers(-2, 3), start + 1, n))
                out.append(s._replace(start=start, end=end))
            elif roll < 0.2:  # another type
                out.append(s._replace(label=fine[rng.integers(len(fine))]))
            elif roll < 0.3 and s.end - s.start > 1:  # split
                cut = int(rng.integers(s.start + 1, s.end))
                out += [s._replace(end=cut), s._replace(start=cut, label=fine[rng.integers(len(fine))])]
            elif roll < 0.4 and i + 1 < len(spans):  # merge with the next
                out.append(
                    s._replace(end=spans[i + 1].end, label=spans[i + 1].label if rng.random() < 0.5 else s.label)
                )
                i += 1
            elif roll < 0.5:  # drop
                pass
            else:
                out.append(s)
            i += 1
        for _ in range(int(rng.poisson(0.3))):  # spurious
            start = int(rng.integers(0, n))
            out.append(Span(sentence.id, start, int(min(n, start + rng.integers(1, 4))), fine[rng.integers(len(fine))]))
    kept, end = [], {}
    for s in sorted(out):
        if s.start >= end.get(s.sentence_id, 0):
            kept.append(s)
            end[s.sentence_id] = s.end
    return kept


@pytest.mark.parametrize("seed", range(6))
def test_every_partial_match_figure_equals_nervaluates_on_perturbed_real_gold(corpus, seed):
    test = corpus.split("test")[:600]
    gold = [s for sentence in test for s in sentence.spans]
    _agree(gold, _perturbed(test, corpus.hierarchy, seed), len(test), corpus.hierarchy)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["tagger", "gazetteer", "span-bilstm-attn"])
def test_every_partial_match_figure_equals_nervaluates_on_published_predictions(corpus, method):
    (run,) = [r for r in read_record(RECORD / method / "default") if r.tags["seed"] == "1"]
    test = corpus.split("test")
    gold = [s for sentence in test for s in sentence.spans]
    _agree(gold, run.predictions, len(test), corpus.hierarchy)


def test_the_schemes_on_hand_made_cases(corpus):
    h = corpus.hierarchy
    gold = [Span(0, 0, 2, "person-actor"), Span(0, 5, 6, "location-GPE")]
    predicted = [Span(0, 0, 1, "person-actor"), Span(0, 1, 2, "person-actor"), Span(0, 5, 6, "location-island")]
    ours = _ours(gold, predicted, 1, h)
    # strict: nothing right; exact: GPE's boundaries; partial: GPE exact (1) + the actor half (0.5) of 3 predicted
    assert ours["semeval/strict/f1"] == 0.0
    assert ours["semeval/exact/precision"] == pytest.approx(1 / 3)
    assert ours["semeval/partial/precision"] == pytest.approx(1.5 / 3)
    assert ours["semeval/partial/recall"] == pytest.approx(1.5 / 2)
    # ent_type: the first actor piece takes the actor, the second is spurious, the island is wrong
    assert ours["semeval/ent_type/precision"] == pytest.approx(1 / 3)
    _agree(gold, predicted, 1, h)
    # ent_type takes the gold span of its type with the closest boundaries, not the first one
    gold = [Span(0, 0, 3, "person-actor"), Span(0, 3, 5, "person-actor")]
    predicted = [Span(0, 2, 4, "person-actor"), Span(0, 4, 5, "person-actor")]
    assert _ours(gold, predicted, 1, h)["semeval/ent_type/precision"] == pytest.approx(1 / 2)
    _agree(gold, predicted, 1, h)


def test_partial_match_scores_get_sentence_bootstrap_intervals_under_ner_only(corpus):
    test = corpus.split("test")[:300]
    gold = [s for sentence in test for s in sentence.spans]
    predicted = _perturbed(test, corpus.hierarchy, 1)
    metrics = evaluate_split(test, predicted, corpus.hierarchy, "spans", resamples=200).metrics
    low, high = metrics["semeval/partial/f1_ci_low"], metrics["semeval/partial/f1_ci_high"]
    assert low < metrics["semeval/partial/f1"] < high
    assert metrics["semeval/strict/f1"] == pytest.approx(metrics["fine/micro_f1"])
    assert metrics["semeval/exact/f1"] == pytest.approx(metrics["detection/f1"])
    typing = evaluate_split(test, gold, corpus.hierarchy, "typing", resamples=0).metrics
    assert not any(k.startswith("semeval/") for k in typing)


@pytest.mark.parametrize(
    "metric", ["semeval/partial/f1", "semeval/ent_type/precision", "semeval/exact/location/recall"]
)
def test_the_seed_bootstrap_scores_a_partial_match_metric_as_the_evaluator_does(corpus, metric):
    test = corpus.split("test")[:300]
    tables = [
        evaluate_split(test, _perturbed(test, corpus.hierarchy, seed), corpus.hierarchy, "spans", resamples=0)
        for seed in (1, 2)
    ]
    boot = SeedBootstrap({"row": [t.table for t in tables]}, "spans", metric, resamples=50)
    assert boot.seed_scores["row"] == pytest.approx([t.metrics[metric] for t in tables], abs=1e-12)
    assert np.all((boot.draws("row") >= 0) & (boot.draws("row") <= 1))


@pytest.mark.slow
def test_the_ner_report_shows_every_rows_partial_matches_and_its_prediction_throughput(corpus, tmp_path):
    record = tmp_path / "runs" / "embedded" / "ner"
    for row in ("gazetteer/half", "tagger/default"):
        shutil.copytree(RECORD / row, record / row)
    out = tmp_path / "out"
    write_reports(ReportRequest(out=out, readme=None, runs=tmp_path / "runs", protocol="ner"), lambda _: None)
    partial = pd.read_csv(out / "embedded" / "ner_partial.csv")
    test = corpus.split("test")
    for row, label in (("gazetteer/half", "gazetteer:half"), ("tagger/default", "tagger")):
        runs = read_record(record / row)
        scored = [evaluate_split(test, run.predictions, corpus.hierarchy, "spans", resamples=0).metrics for run in runs]
        lines = partial[partial["method"] == label].set_index(["scheme", "type"])
        assert len(lines) == len(SEMEVAL_SCHEMES) * (1 + len(corpus.hierarchy.coarse_types))
        for scheme in SEMEVAL_SCHEMES:
            expected = np.mean([m[f"semeval/{scheme}/person/recall"] for m in scored])
            assert lines.loc[(scheme, "person"), "recall_mean"] == pytest.approx(expected, abs=1e-9)
            overall = lines.loc[(scheme, "all")]
            assert overall["f1_mean"] == pytest.approx(np.mean([m[f"semeval/{scheme}/f1"] for m in scored]), abs=1e-9)
            assert overall["f1_ci_low"] < overall["f1_mean"] < overall["f1_ci_high"]
        seeds = pd.read_csv(out / "embedded" / "ner_seeds.csv")
        mine = seeds[seeds["method"] == label]
        expected = [len(test) / run.metrics["time/predict_seconds"] for run in runs]
        assert sorted(mine["sentences_per_second"]) == pytest.approx(sorted(expected))
        assert set(mine["device"]) == {"cpu"}  # a CPU build of torch, before the device tag
    markdown = (out / "embedded" / "ner.md").read_text()
    assert "## Partial matches (SemEval-2013 schemes)" in markdown
    assert "partial matches (SemEval-2013 schemes)" in (out / "index.html").read_text()


def test_overlapping_predictions_are_refused_not_miscounted(corpus):
    gold = [Span(0, 0, 2, "person-actor")]
    with pytest.raises(ValueError, match="predicted spans of sentence 0"):
        semeval_counts(gold, [Span(0, 0, 2, "person-actor"), Span(0, 1, 3, "person-actor")], 1, corpus.hierarchy)
