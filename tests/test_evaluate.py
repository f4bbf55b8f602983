"""The evaluator: exact hand counts, cross-checks against seqeval and scikit-learn, CIs, tests."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest
from seqeval.metrics import classification_report, f1_score
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from benchmark.core.decoding import dev_f1
from benchmark.core.labels import FEWNERD, coarse_of
from benchmark.core.protocols import Example, View
from benchmark.core.spans import Span, labels_from_spans, spans_from_labels
from benchmark.evaluate import (
    SeedBootstrap,
    bootstrap_ci,
    by_length_table,
    cluster_quality,
    count_table,
    evaluate,
    match,
    precision_at_k,
    precision_curve,
    token_counts,
)


def spans(*items):
    return [Span(*item) for item in items]


GOLD = spans(
    (0, 0, 2, "person-actor"),
    (0, 3, 4, "location-GPE"),
    (1, 1, 2, "art-film"),
    (2, 0, 1, "other-award"),
)
PRED = spans(
    (0, 0, 2, "person-actor", 0.9),  # exact
    (0, 3, 4, "location-other", 0.8),  # within error
    (1, 1, 2, "event-other", 0.7),  # outer error
    (1, 3, 5, "person-actor", 0.6),  # spurious span
)  # other-award in sentence 2 is missed
LENGTHS = [6, 5, 2]  # tokens per sentence


def test_f1_by_entity_length_hand_counted():
    table = by_length_table(GOLD, PRED, longest=2).set_index("length")
    # length 1: gold GPE, film, award; predicted GPE→other, film→event: 0 tp, 2 fp, 3 fn
    assert table.loc["1", ["tp", "fp", "fn"]].tolist() == [0, 2, 3]
    # length 2+: gold actor; predicted actor (right) and a spurious span: 1 tp, 1 fp
    assert table.loc["2+", ["tp", "fp", "fn", "support"]].tolist() == [1, 1, 0, 1]
    assert table.loc["2+", "f1"] == pytest.approx(2 / 3)


def test_seed_bootstrap_pairs_rows_through_the_same_resampled_sentences():
    a = count_table(match(GOLD, PRED, FEWNERD), token_counts(GOLD, PRED, LENGTHS), FEWNERD)
    b = count_table(match(GOLD, GOLD, FEWNERD), token_counts(GOLD, GOLD, LENGTHS), FEWNERD)
    boot = SeedBootstrap({"mixed": [a, b], "a": [a], "perfect": [b, b]}, "spans", "fine/micro_f1", resamples=200)
    assert boot.mean("mixed") == pytest.approx((0.25 + 1.0) / 2)  # the mean of the seeds' scores, as tables print
    # seeds held fixed, a row's draws are the mean of its runs' draws on the same resamples
    assert boot.sentence_draws("mixed") == pytest.approx((boot.sentence_draws("a") + 1.0) / 2)
    assert (boot.draws("perfect") == 1.0).all()  # identical seeds: nothing to resample
    assert boot.draws("a") == pytest.approx(boot.sentence_draws("a"))  # one seed: no seed variance
    # the two seeds differ by construction: resampling them widens the interval
    sentences, both = boot.interval("mixed", sentences_only=True), boot.interval("mixed")
    assert both[1] - both[0] > 2 * (sentences[1] - sentences[0])
    assert boot.single_run_scores("mixed").shape == (2,)
    with pytest.raises(ValueError, match="same test set"):
        SeedBootstrap({"x": [a], "y": [replace(b, fine=b.fine[:2])]}, "spans", "fine/micro_f1", resamples=10)


def test_span_scores_hand_counted():
    scores = evaluate(GOLD, PRED, LENGTHS, FEWNERD, "spans", resamples=0)
    m = scores.metrics
    assert m["fine/micro_precision"] == pytest.approx(1 / 4)
    assert m["fine/micro_recall"] == pytest.approx(1 / 4)
    assert m["coarse/micro_f1"] == pytest.approx(2 / 4)  # actor + GPE/other share coarse
    assert m["detection/precision"] == pytest.approx(3 / 4)
    assert m["detection/recall"] == pytest.approx(3 / 4)
    assert (m["errors/span_fp"], m["errors/span_fn"], m["errors/within"], m["errors/outer"]) == (1, 1, 1, 1)
    assert "fine/p_at_10" not in m  # only 4 predictions
    actor = scores.per_type.query("level == 'fine' and type == 'person-actor'").iloc[0]
    assert (actor.tp, actor.fp, actor.fn) == (1, 1, 0)
    assert scores.confusion["fine"].loc["location-GPE", "location-other"] == 1
    assert scores.confusion["fine"].loc["other-award", "O"] == 1
    assert scores.confusion["coarse"].loc["O", "person"] == 1


def test_fewnerd_error_rates_hand_computed():
    """Few-NERD's error analysis (util/framework.py: error_analysis) by hand on GOLD / PRED.

    Tokens: 6 + 5 + 2 = 13. Gold covers 0-1, 3 | 1 | 0; predictions cover 0-1, 3 | 1, 3-4.
    Token FP (predicted entity, gold O): sentence 1 tokens 3, 4 -> 2. Token FN (gold entity,
    predicted O): sentence 2 token 0 -> 1. Correctly-bounded spans (boundaries match, any type):
    (0,0,2), (0,3,4), (1,1,2) -> 3; within (coarse right, fine wrong): GPE -> other, 1; outer
    (coarse wrong): film -> event-other, 1.
    """
    m = evaluate(GOLD, PRED, LENGTHS, FEWNERD, "spans", resamples=200).metrics
    assert m["fewnerd/fp_rate"] == pytest.approx(2 / 13)
    assert m["fewnerd/fn_rate"] == pytest.approx(1 / 13)
    assert m["fewnerd/within_rate"] == pytest.approx(1 / 3)
    assert m["fewnerd/outer_rate"] == pytest.approx(1 / 3)
    assert m["errors/bounded"] == 3
    assert m["fewnerd/fp_rate_ci_low"] <= m["fewnerd/fp_rate"] <= m["fewnerd/fp_rate_ci_high"]
    # a longer predicted span over a gold one: its extra tokens are FP, the span is not bounded
    gold = spans((0, 1, 3, "person-actor"), (0, 5, 6, "location-GPE"))
    pred = spans((0, 0, 3, "person-actor"), (0, 5, 6, "location-other"), (0, 7, 8, "art-film"))
    m = evaluate(gold, pred, [10], FEWNERD, "spans", resamples=0).metrics
    assert (m["fewnerd/fp_rate"], m["fewnerd/fn_rate"]) == (pytest.approx(2 / 10), 0.0)
    assert (m["fewnerd/within_rate"], m["fewnerd/outer_rate"]) == (1.0, 0.0)  # 1 bounded span, within
    assert (m["errors/span_fp"], m["errors/span_fn"]) == (2, 1)  # the plain span counts stay
    # nothing predicted: every gold token is a false negative, no span is bounded (rates 0, not NaN)
    m = evaluate(gold, [], [10], FEWNERD, "spans", resamples=0).metrics
    assert m["fewnerd/fn_rate"] == pytest.approx(3 / 10)
    assert m["fewnerd/within_rate"] == m["fewnerd/outer_rate"] == 0.0


def test_macro_averages_types_present_in_gold_or_predictions():
    m = evaluate(GOLD, PRED, LENGTHS, FEWNERD, "spans", resamples=0).metrics
    # present: actor (F1 2/3), GPE (0), award (0), art-film (0), location-other (0), event-other (0)
    assert m["fine/macro_f1"] == pytest.approx((2 / 3) / 6)


def _bio(sentence_spans, length):
    """Labels with I- prefixes only, as the tests feed seqeval (IO scheme, one chunk per run)."""
    return [label if label == "O" else f"I-{label}" for label in labels_from_spans(length, sentence_spans)]


def perturb(gold_spans, lengths, rng: random.Random):
    """Predictions from gold: drop, retype (within or across coarse), shift a boundary, or add."""
    out = []
    for s in gold_spans:
        roll = rng.random()
        if roll < 0.15:
            continue
        if roll < 0.35:
            s = s._replace(label=rng.choice(FEWNERD.fine_types))
        elif roll < 0.5 and s.end < lengths[s.sentence_id]:
            s = s._replace(end=s.end + 1)
        out.append(s)
    for sid, length in enumerate(lengths):
        if rng.random() < 0.2 and length > 0:
            start = rng.randrange(length)
            out.append(Span(sid, start, start + 1, rng.choice(FEWNERD.fine_types)))
    # keep predictions non-overlapping (as the ner protocol requires) and IO-canonical (what a
    # tagger emits: adjacent spans of one type merge), so that seqeval sees the same spans
    kept, last = [[] for _ in lengths], {}
    for s in sorted(out):
        if s.start >= last.get(s.sentence_id, 0):
            kept[s.sentence_id].append(s)
            last[s.sentence_id] = s.end
    return [x for sid, n in enumerate(lengths) for x in spans_from_labels(sid, labels_from_spans(n, kept[sid]))]


def _seqeval_view(spans_, lengths):
    by_sentence = [[] for _ in lengths]
    for s in spans_:
        by_sentence[s.sentence_id].append(s)
    return [_bio(by_sentence[i], n) for i, n in enumerate(lengths)]


def _bio_coarse(spans_, lengths):
    tags = [["O"] * n for n in lengths]
    for s in spans_:
        coarse = coarse_of(s.label)
        tags[s.sentence_id][s.start : s.end] = [f"B-{coarse}"] + [f"I-{coarse}"] * (s.end - s.start - 1)
    return tags


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_span_f1_matches_seqeval_on_real_data(corpus, seed):
    sentences = corpus.splits["test"][seed * 400 : seed * 400 + 400]
    offset = sentences[0].id
    lengths = [len(s.tokens) for s in sentences]
    gold = [span._replace(sentence_id=span.sentence_id - offset) for s in sentences for span in s.spans]
    pred = perturb(gold, lengths, random.Random(seed))
    ours = evaluate(gold, pred, lengths, FEWNERD, "spans", resamples=0).metrics
    y_true, y_pred = _seqeval_view(gold, lengths), _seqeval_view(pred, lengths)
    assert ours["fine/micro_f1"] == pytest.approx(f1_score(y_true, y_pred))
    assert ours["fine/macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert ours["fine/weighted_f1"] == pytest.approx(f1_score(y_true, y_pred, average="weighted"))
    # at coarse level two adjacent fine entities may share a coarse type: B- keeps them apart
    coarse_true, coarse_pred = _bio_coarse(gold, lengths), _bio_coarse(pred, lengths)
    assert ours["coarse/micro_f1"] == pytest.approx(f1_score(coarse_true, coarse_pred))
    # the training loops' own dev score (kept apart from the evaluator) is the same number
    examples = tuple(Example(i, s.tokens, None, ()) for i, s in enumerate(sentences))
    examples = tuple(replace(e, spans=tuple(g for g in gold if g.sentence_id == e.id)) for e in examples)
    assert dev_f1(pred, View("ner", "dev", examples, FEWNERD)) == pytest.approx(ours["fine/micro_f1"])


def test_art_other_and_location_other_stay_apart():
    """Raw Few-NERD labels fed to seqeval merge these into one 'other' entity; we do not."""
    gold = spans((0, 0, 1, "art-other"), (0, 1, 2, "location-other"))
    pred = spans((0, 0, 1, "art-other"), (0, 1, 2, "location-other"))
    m = evaluate(gold, pred, [2], FEWNERD, "spans", resamples=0).metrics
    assert m["fine/micro_f1"] == 1.0
    assert m["n_gold"] == 2
    raw = [["art-other", "location-other"]]
    with pytest.warns(UserWarning, match="seems not to be NE tag"):
        naive = classification_report(raw, raw, output_dict=True)
    assert set(naive) >= {"other"}  # seqeval sees one "other" type where there are two entities
    assert naive["other"]["support"] == 1


def test_typing_scores_match_scikit_learn(corpus):
    sentences = corpus.splits["test"][:500]
    gold = [span for s in sentences for span in s.spans]
    rng = random.Random(3)
    pred = [g._replace(label=g.label if rng.random() < 0.6 else rng.choice(FEWNERD.fine_types)) for g in gold]
    m = evaluate(gold, pred, [len(s.tokens) for s in sentences], FEWNERD, "typing", resamples=0).metrics
    y_true, y_pred = [g.label for g in gold], [p.label for p in pred]
    assert m["fine/accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    for average in ("micro", "macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average=average, zero_division=0)
        assert (m[f"fine/{average}_precision"], m[f"fine/{average}_recall"], m[f"fine/{average}_f1"]) == (
            pytest.approx(p),
            pytest.approx(r),
            pytest.approx(f),
        )
    coarse_true, coarse_pred = [coarse_of(y) for y in y_true], [coarse_of(y) for y in y_pred]
    assert m["coarse/accuracy"] == pytest.approx(accuracy_score(coarse_true, coarse_pred))
    wrong = [(t, p) for t, p in zip(y_true, y_pred, strict=True) if t != p]
    assert m["errors/within"] == sum(coarse_of(t) == coarse_of(p) for t, p in wrong)
    # typing: every gold span is correctly bounded, no token is a false positive or negative
    assert m["errors/bounded"] == len(gold)
    assert m["fewnerd/within_rate"] + m["fewnerd/outer_rate"] == pytest.approx(1 - m["fine/accuracy"])
    assert m["fewnerd/fp_rate"] == m["fewnerd/fn_rate"] == 0


def test_precision_at_k_ranks_by_score():
    gold = spans((0, 0, 1, "art-film"), (0, 2, 3, "art-film"), (1, 0, 1, "person-actor"))
    pred = spans((0, 0, 1, "art-film", 0.9), (0, 2, 3, "art-music", 0.95), (1, 0, 1, "person-actor", 0.1))
    assert precision_at_k(precision_curve(gold, pred), ks=(1, 2, 3, 4)) == {1: 0.0, 2: 0.5, 3: pytest.approx(2 / 3)}


def test_bootstrap_ci_is_seeded_and_brackets_the_estimate(corpus):
    sentences = corpus.splits["test"][:1000]
    gold = [span for s in sentences for span in s.spans]
    pred = perturb(gold, [len(s.tokens) for s in sentences], random.Random(5))
    lengths = [len(s.tokens) for s in sentences]
    table = count_table(match(gold, pred, FEWNERD), token_counts(gold, pred, lengths), FEWNERD)
    first = bootstrap_ci(table, "spans", resamples=300, seed=1)
    assert first == bootstrap_ci(table, "spans", resamples=300, seed=1)
    low, high = first["fine/micro_f1"]
    point = evaluate(gold, pred, lengths, FEWNERD, "spans", resamples=0).metrics["fine/micro_f1"]
    assert low < point < high
    assert 0.005 < high - low < 0.1


def test_seed_bootstrap_separates_a_better_row_and_tests_the_printed_difference(corpus):
    sentences = corpus.splits["test"][:800]
    lengths = [len(s.tokens) for s in sentences]
    gold = [span for s in sentences for span in s.spans]

    def table(predicted):
        return count_table(match(gold, predicted, FEWNERD), token_counts(gold, predicted, lengths), FEWNERD)

    good = [table(gold[: int(len(gold) * share)]) for share in (0.9, 0.88, 0.92)]
    bad = [table(perturb(gold, lengths, random.Random(seed))) for seed in (1, 2, 3)]
    boot = SeedBootstrap({"good": good, "bad": bad, "good-copy": good}, "spans", "fine/micro_f1", resamples=999)
    result = boot.compare("good", "bad")
    scores = [float(_micro_f1(t)) for t in good]
    assert result.a == pytest.approx(np.mean(scores))  # the number a table prints, not a pooled-count score
    assert result.delta == pytest.approx(result.a - result.b)
    assert result.delta > 0.1
    assert result.ci[0] > 0
    assert result.p_value == result.floor == pytest.approx(2 / 1000)
    assert result.at_floor
    same = boot.compare("good", "good-copy")
    assert same.delta == 0
    assert not same.at_floor
    assert same.p_value > 0.05
    assert boot.compare("bad", "good").ci[1] < 0  # the order only flips the sign


def _micro_f1(table) -> float:
    tp, fp, fn = table.fine.sum(axis=(0, 1))
    return 2 * tp / (2 * tp + fp + fn)


def test_empty_predictions_score_zero_without_warnings():
    m = evaluate(GOLD, [], LENGTHS, FEWNERD, "spans").metrics
    assert m["fine/micro_f1"] == 0.0
    assert m["fine/micro_f1_ci_high"] == 0.0
    assert np.isfinite(list(m.values())).all()


def test_cluster_quality_scores_matched_predictions_against_gold_fine_types():
    gold = [
        Span(0, 0, 1, "art-film"),
        Span(0, 2, 3, "art-film"),
        Span(1, 0, 2, "person-actor"),
        Span(1, 3, 4, "person-actor"),
    ]
    perfect = [g._replace(cluster=7 if g.label == "art-film" else 2) for g in gold]  # cluster ids are arbitrary
    assert cluster_quality(gold, perfect) == {"clusters/nmi": 1.0, "clusters/ari": 1.0, "clusters/n_matched": 4.0}
    unmatched = Span(0, 5, 6, "art-film", cluster=7)  # a false positive has no gold type: left out
    mixed = [g._replace(cluster=i % 2) for i, g in enumerate(gold)] + [unmatched]
    scores = cluster_quality(gold, mixed)
    assert scores["clusters/n_matched"] == 4.0
    assert scores["clusters/nmi"] == pytest.approx(0.0, abs=1e-12)
    assert scores["clusters/ari"] < 0
    assert cluster_quality(gold, gold) == {}  # no clusters: no cluster metrics
    metrics = evaluate(gold, perfect, [6, 4], FEWNERD, "spans", resamples=0).metrics
    assert metrics["clusters/nmi"] == 1.0


@pytest.mark.slow
def test_seed_bootstrap_is_calibrated_when_whole_rows_shift_from_seed_to_seed(corpus):
    """Two rows drawn alike (each seed keeps a random share of the gold spans: a whole-row shift
    of several points from seed to seed) are declared different at most about α of the time
    (resampling the 3 seeds instead declared 11 % of 200 such pairs); the interval's seed part has
    the t-interval's width (3 seeds: 4.3 standard errors, not 2)."""
    from scipy import stats

    sentences = corpus.splits["test"][:1500]
    lengths = [len(s.tokens) for s in sentences]
    gold = [span for s in sentences for span in s.spans]
    rng = np.random.default_rng(0)

    def row(k):
        shares = np.clip(rng.normal(0.8, 0.08, k), 0, 1)
        kept = [gold[: int(len(gold) * share)] for share in shares]
        return [count_table(match(gold, p, FEWNERD), token_counts(gold, p, lengths), FEWNERD) for p in kept]

    trials, declared = 200, 0
    for trial in range(trials):
        boot = SeedBootstrap({"a": row(3), "b": row(3)}, "spans", "fine/micro_f1", resamples=400, seed=trial)
        declared += boot.compare("a", "b").p_value < 0.05
        if trial == 0:
            low, high = boot.interval("a")
            sentence_low, sentence_high = boot.interval("a", sentences_only=True)
            seed_part = 2 * stats.t.ppf(0.975, 2) * np.std(boot.seed_scores["a"], ddof=1) / np.sqrt(3)
            expected = np.hypot(sentence_high - sentence_low, seed_part)
            assert 0.75 * expected < high - low < 1.3 * expected
    assert declared / trials <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / trials)  # α plus 2 Monte Carlo errors: 0.081
