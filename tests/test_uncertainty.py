"""Uncertainty that counts the seeds: the ranking rule on real runs (the published record and
fresh seeds of a real method on the embedded test set)."""

from __future__ import annotations

from pathlib import Path

import deepsig
import numpy as np
import pytest

from benchmark.core.method import RANKED, Context
from benchmark.core.registry import METHODS, PROTOCOLS
from benchmark.evaluate import SeedBootstrap, count_table, match, token_counts
from benchmark.report.collect import attach_predictions, group_runs, load_published
from benchmark.report.stats import ASO_DT, ASO_ITERATIONS, ASO_THRESHOLD, aso_eps_min, compare_pairs, summarise
from benchmark.run.published import read_record

RECORD = Path(__file__).resolve().parents[1] / "reports" / "runs"


@pytest.fixture(scope="module")
def weak_typing(corpus):
    """Five rows of the published weak-typing section, summarised as `report --runs` does."""
    runs, read = load_published(read_record(RECORD / "embedded" / "weak-typing"), str(RECORD), "embedded")
    (section,), _ = group_runs(runs, {"embedded": corpus.sha256})
    kept = {"label-name", "random-within-coarse", "eigproj", "eigproj:gold-entities", "eigproj:test-picked"}
    section.variants = [v for v in section.variants if v.label in kept]  # ranked rows and an oracle one
    attach_predictions(section, list(corpus.split("test")), corpus.hierarchy, read)
    summarise(section, trials=1000)
    return section


def _random_within_coarse_tables(corpus, seeds, tmp_path):
    """Count tables of `random-within-coarse` (a real method whose runs differ only by their
    seed) on the embedded weak-typing test set, one per seed."""
    protocol = PROTOCOLS["weak-typing"]
    test = list(corpus.split("test"))
    train = protocol.train_view(corpus.split("train"), "train", corpus.hierarchy)
    view = protocol.test_view(test, corpus.hierarchy)
    gold = [span for sentence in test for span in sentence.spans]
    lengths = [len(sentence.tokens) for sentence in test]
    tables = []
    for seed in seeds:
        method = METHODS.get("random-within-coarse")().fit(train, train, Context(seed, tmp_path, tmp_path, None))
        predicted = method.predict(view)
        tables.append(count_table(match(gold, predicted, corpus.hierarchy), token_counts(gold, predicted, lengths),
                                  corpus.hierarchy))  # fmt: skip
    return tables


def test_two_copies_of_a_row_that_differ_only_in_seeds_are_never_declared_different(corpus, tmp_path):
    headline = PROTOCOLS["weak-typing"].headline
    tables = _random_within_coarse_tables(corpus, range(1, 37), tmp_path)
    scores = []
    for trial in range(6):  # seeds 1-3 vs 4-6, 7-9 vs 10-12, ...; each trial on its own resamples
        a, b = tables[6 * trial : 6 * trial + 3], tables[6 * trial + 3 : 6 * trial + 6]
        boot = SeedBootstrap({"copy-a": a, "copy-b": b}, "typing", headline, resamples=1000, seed=trial)
        pairs = compare_pairs(boot, [("copy-a", "copy-b")], ["ranked frozen"])
        assert not pairs["beats"].any(), pairs.to_dict("records")
        scores.append(boot.seed_scores["copy-a"])
    assert np.std(np.concatenate(scores)) > 0.001  # the seeds do differ: there is something to mistake


def test_a_real_difference_is_declared_and_the_family_is_the_ranked_rows_of_one_regime(weak_typing):
    table, pairs = weak_typing.table.set_index("method"), weak_typing.pairs
    real = pairs[(pairs["better"] == "label-name") & (pairs["worse"] == "random-within-coarse")]  # 17 points
    assert len(real) == 1
    assert bool(real["beats"].iloc[0])
    assert real["family"].iloc[0] == "ranked frozen"
    ranked = [label for label in table.index if table.loc[label, "provenance"] in RANKED]
    assert (pairs["family"] == "ranked frozen").sum() == len(ranked) * (len(ranked) - 1) // 2
    unranked = set(table.index) - set(ranked)
    assert unranked  # eigproj:test-picked is oracle: its pairs stand apart
    apart = pairs[pairs["family"] == "apart"]
    assert set(apart["better"]) | set(apart["worse"]) >= unranked
    assert all(b in unranked or w in unranked for b, w in zip(apart["better"], apart["worse"], strict=True))
    assert table.loc["random-within-coarse", "rank"] > 1
    assert (table.loc[ranked, "rank"] >= 1).all()
    assert table.loc[list(unranked), "rank"].isna().all()


def test_eps_min_is_deepsigs_and_the_rows_interval_carries_the_seed_variance(weak_typing, corpus):
    pairs = weak_typing.pairs
    tables = {v.label: v.tables for v in weak_typing.variants}
    headline = PROTOCOLS["weak-typing"].headline
    boot = SeedBootstrap(tables, "typing", headline, resamples=weak_typing.resamples)
    scores = boot.single_run_scores
    better, worse = pairs["better"], pairs["worse"]
    disjoint = np.array([scores(b).min() > scores(w).max() for b, w in zip(better, worse, strict=True)])
    assert disjoint.any()  # pairs whose ε_min is 0 without a computation
    assert not disjoint.all()  # and pairs that need one
    for pair in (pairs[~disjoint].iloc[0], pairs[disjoint].iloc[0]):  # deepsig's ε_min, called or not
        family = int((pairs["family"] == pair["family"]).sum())
        expected = deepsig.aso(scores(pair["better"]), scores(pair["worse"]), confidence_level=0.95,
                               num_comparisons=family, num_bootstrap_iterations=ASO_ITERATIONS, dt=ASO_DT,
                               show_progress=False, seed=0)  # fmt: skip
        assert pair["eps_min"] == expected  # to the last bit
    assert (pairs.loc[disjoint, "eps_min"] == 0).all()
    assert ((pairs["eps_min"] < ASO_THRESHOLD) | ~pairs["beats"]).all()  # no row beats another without ASO
    table = weak_typing.table.set_index("method")
    width = table["ci_high"] - table["ci_low"]
    sentence_width = table["sentence_ci_high"] - table["sentence_ci_low"]
    assert (width >= sentence_width * 0.9).all()
    # the row whose seeds spread most gets an interval wider than its sentences alone give
    spread = table[f"{headline}_std"].idxmax()
    assert width[spread] > 1.5 * sentence_width[spread]


@pytest.mark.filterwarnings("ignore:Division by zero encountered in violation ratio")  # deepsig, on identical sets
def test_the_vectorised_aso_is_deepsigs_to_the_last_bit():
    rng = np.random.default_rng(7)
    cases = [  # (better, worse, family size, confidence, iterations, dt)
        (np.array([0.61, 0.598, 0.605]), np.array([0.60, 0.603, 0.595]), 1, 0.95, 500, 0.05),  # overlapping seeds
        (rng.normal(0.61, 0.01, 5), rng.normal(0.60, 0.02, 3), 6, 0.99, 1000, 0.005),  # unequal counts, clipped at 1
        (np.round(rng.normal(0.61, 0.01, 5), 2), np.round(rng.normal(0.6, 0.01, 5), 2), 28, 0.95, 500, ASO_DT),  # ties
        (np.array([3, 1, 2]), np.array([2, 1, 1]), 1, 0.95, ASO_ITERATIONS, ASO_DT),  # whole numbers
        (np.full(3, 0.5), np.full(3, 0.5), 3, 0.95, 500, 0.05),  # identical: violation ratio 0.5
        (rng.normal(0.605, 0.01, 100), rng.normal(0.6, 0.01, 3), 45, 0.99, 1000, 0.005),  # a seed-free row's draws
        (np.array([0.6, 0.62]), np.array([0.605]), 2, 0.95, ASO_ITERATIONS, ASO_DT),
    ]
    found = []
    for better, worse, comparisons, confidence, iterations, dt in cases:
        expected = deepsig.aso(better, worse, confidence_level=confidence, num_comparisons=comparisons,
                               num_bootstrap_iterations=iterations, dt=dt, show_progress=False, seed=3)  # fmt: skip
        found.append(aso_eps_min(better, worse, confidence, comparisons, iterations, dt, seed=3))
        assert found[-1] == expected
    assert 0 < found[0] < 1  # the tests reach deepsig's spread, unclipped, with and without Bonferroni
    assert sum(0 < e < 1 for e in found) >= 4


def test_holm_runs_within_each_family_and_a_p_at_the_floor_prints_as_a_bound(weak_typing):
    from benchmark.report.render import p_text

    pairs, floor = weak_typing.pairs, 2 / (weak_typing.resamples + 1)
    for _, family in pairs.groupby("family"):
        smallest = family["p"].idxmin()
        assert family.loc[smallest, "p_holm"] == pytest.approx(min(1.0, len(family) * family.loc[smallest, "p"]))
        assert (family["p_holm"] >= family["p"]).all()
    at_floor = pairs[pairs["p_bound"]]
    assert len(at_floor)  # 17-point gaps reach the floor
    assert np.allclose(at_floor["p"], floor)
    assert at_floor["p_holm_bound"].all()  # the smallest p of their families: Holm's value rests on the floor
    assert p_text(at_floor["p"].iloc[0], True).startswith("≤ ")
    assert weak_typing.resamples >= 20 * (pairs["family"] == "ranked frozen").sum() / 0.05


def test_dense_and_sparse_resample_sums_give_the_same_draws(weak_typing, monkeypatch):
    """`SeedBootstrap` sums resamples densely or sparsely by the counts' density: a speed choice
    only, so both give the very same draws."""
    import benchmark.evaluate

    tables = {v.label: v.tables for v in weak_typing.variants}
    draws = {}
    for name, threshold in (("dense", 0.0), ("sparse", 1.1)):
        monkeypatch.setattr(benchmark.evaluate, "DENSE_ABOVE", threshold)
        boot = SeedBootstrap(tables, "typing", "fine/macro_f1", resamples=300)
        draws[name] = {label: boot.per_seed[label] for label in tables}
    for label in tables:
        np.testing.assert_array_equal(draws["dense"][label], draws["sparse"][label])
