"""A section's statistics: each metric's seed summary, the headline's two-level bootstrap CI,
every pair compared (the difference of seed means, its two-level bootstrap CI and p, Holm's
correction within its family, ASO's ε_min as `deepsig` computes it), and the ranks by `RANKING_RULE`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.stats

from benchmark.core.episodic import EpisodeProtocol
from benchmark.core.method import RANKED, REGIMES
from benchmark.evaluate import P_AT_K, SEMEVAL_SCHEMES, SeedBootstrap, SettingsBootstrap, holm_adjust
from benchmark.report.claims import ABLATIONS, CLAIMS
from benchmark.report.collect import Section, Variant
from benchmark.run.cpu import SHARED_ABOVE
from benchmark.seeds import summarise_seeds

#: Few-NERD's error analysis (`benchmark.evaluate`), tabulated for the protocols that find or type
#: spans without a given coarse type (under weak-typing no span can be outer, nor a token wrong)
FEWNERD_ERRORS = ("fewnerd/fp_rate", "fewnerd/fn_rate", "fewnerd/within_rate", "fewnerd/outer_rate")
ERROR_ANALYSIS_PROTOCOLS = ("ner", "typing")


#: ASO's ε_min below which a row almost stochastically dominates another (deepsig's advice:
#: "check eps_min < 0.2"; Dror et al. 2019 use 0.5 for "better at all")
ASO_THRESHOLD = 0.2
#: ASO's bootstrap iterations and quantile grid: deepsig's defaults are 1,000 and 0.005 (4.4 s a
#: pair in `deepsig.aso` here); 500 and 0.05 were 14 times faster there and moved ε_min by at most
#: 0.02 on 3- and 5-seed pairs. `aso_eps_min` computes the defaults in 16 ms a pair, these in 5 ms;
#: the published ε_min were computed with these (`python scripts/bench_aso.py`; docs/guide.md)
ASO_ITERATIONS, ASO_DT = 500, 0.05
#: the scores ASO gets of a row whose seed changes nothing (one seed): its first bootstrap draws,
#: its only variance (one score per seed would give ASO a single number)
SEED_FREE_SCORES = 100
#: how many resamples per family member and α: 20 × |family| / α puts the Holm-adjusted floor of
#: the smallest p (2 / resamples × |family|) at or below α / 10
FLOOR_FACTOR = 20
#: the fewest seeds a ranked row has
MIN_RANKED_SEEDS = 2
RANKING_RULE = (
    f"a row's rank is 1 + the number of ranked rows (provenance paper, prior or dev; {MIN_RANKED_SEEDS} seeds or "
    "more, or one where the method's seed changes nothing) of its regime that beat it, where A beats B when A's "
    "seed mean is higher, the two-level bootstrap p of the difference is below α after Holm's correction over "
    f"that regime's ranked pairs, and ASO's ε_min (deepsig) is below {ASO_THRESHOLD}"
)


def bootstrap_resamples(trials: int, family: int, alpha: float) -> int:
    """Enough resamples that the largest family's Holm correction can reach far below ``alpha``:
    at least ``FLOOR_FACTOR`` × family / α (and never fewer than ``trials``)."""
    return max(trials, math.ceil(FLOOR_FACTOR * family / alpha))


def rankable(table: pd.DataFrame) -> pd.Series:
    """The rows a table may rank: honestly chosen settings (provenance paper, prior or dev) and at
    least `MIN_RANKED_SEEDS` seeds (one seed has no seed variance to test), or one seed of a row
    whose seed changes nothing (``seed_free``: a training-free episodes row, whose seed variance is 0)."""
    seeds = table["seeds"] if "seeds" in table else pd.Series(MIN_RANKED_SEEDS, index=table.index)
    free = table["seed_free"].astype(bool) if "seed_free" in table else pd.Series(False, index=table.index)
    return table["provenance"].isin(RANKED) & ((seeds.astype(int) >= MIN_RANKED_SEEDS) | free)


def families_of(pairs: Sequence[tuple[str, str]], table: pd.DataFrame) -> list[str]:
    """Each pair's multiple-comparison family: ``ranked <regime>`` for two rankable rows of one
    regime (the pairs that decide ranks), else ``apart`` (an unranked row, or two regimes)."""
    regime = dict(zip(table["method"], table["regime"], strict=True))
    ranked = set(table.loc[rankable(table), "method"])
    return [f"ranked {regime[a]}" if {a, b} <= ranked and regime[a] == regime[b] else "apart" for a, b in pairs]


@dataclass(frozen=True)
class AsoCall:
    """One ASO comparison (`aso_eps_min`, deepsig's `aso`): the better row's scores, the worse
    row's, and the pair's family size (deepsig's Bonferroni count)."""

    better: np.ndarray
    worse: np.ndarray
    comparisons: int
    alpha: float

    @property
    def disjoint(self) -> bool:
        """Every score of the better row lies above every score of the worse: no quantile of the
        better row is below the worse row's, in the scores or in any bootstrap resample of them
        (deepsig resamples each row from its own scores), so deepsig's violation ratio and its
        spread are 0, and so is its ε_min."""
        return bool(self.better.min() > self.worse.max())

    def __call__(self) -> float:
        """ε_min of better over worse: `aso_eps_min` (deepsig's `aso`, to the last bit), whose
        violation ratio of two identical score sets is 0.5 as deepsig's; 0 without a call for
        `disjoint` sets, which is what deepsig returns for them."""
        if self.disjoint:
            return 0.0
        return aso_eps_min(self.better, self.worse, 1 - self.alpha, self.comparisons, ASO_ITERATIONS, ASO_DT, seed=0)


def aso_eps_min(
    a: np.ndarray, b: np.ndarray, confidence: float, comparisons: int, iterations: int, dt: float, seed: int
) -> float:
    """ε_min of ``a`` over ``b``: what ``deepsig.aso(a, b, confidence_level=confidence,
    num_comparisons=comparisons, num_bootstrap_iterations=iterations, dt=dt, seed=seed)`` (deepsig
    1.2.8) returns, to the last bit (tested): the same uniform draws, the same empirical quantiles
    and the same sums, each on whole arrays, where deepsig computes a quantile per number in
    Python (at the report's settings about 5 ms a pair here, 0.3 s in deepsig)."""
    if comparisons > 1:  # deepsig's Bonferroni correction
        confidence += (1 - confidence) / comparisons
    ratio = _violation_ratios(a[None], b[None], dt)[0]
    draws, state = np.empty((iterations, len(a) + len(b))), np.random.RandomState()
    for i, s in enumerate(range(seed + 1, seed + iterations + 1)):  # deepsig's seeds, one per iteration
        state.seed(s)
        draws[i, : len(a)], draws[i, len(a) :] = state.uniform(0, 1, len(a)), state.uniform(0, 1, len(b))
    resampled_a = _quantiles(np.sort(a)[None], draws[:, : len(a)])
    resampled_b = _quantiles(np.sort(b)[None], draws[:, len(a) :])
    samples = _violation_ratios(resampled_a, resampled_b, dt)
    const = np.sqrt(len(a) * len(b) / (len(a) + len(b)))
    sigma_hat = np.std(const * (samples - ratio))
    return float(np.clip(ratio - (1 / const) * sigma_hat * scipy.stats.norm.ppf(1 - confidence), 0, 1))


def _quantiles(ordered: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Each row's empirical quantiles (deepsig's quantile function) at ``p``: ``ordered`` holds
    each row's scores sorted (one row: shared by all rows of ``p``)."""
    n = ordered.shape[1]
    index = np.clip(np.ceil(n * p).astype(np.int64) - 1, 0, n - 1)
    return np.take_along_axis(np.broadcast_to(ordered, (p.shape[0], n)), index, axis=1)


def _violation_ratios(a: np.ndarray, b: np.ndarray, dt: float) -> np.ndarray:
    """deepsig's violation ratio of each row of ``a`` over the same row of ``b``: the share of
    their squared Wasserstein distance where a's quantile is below b's (0.5 where the distance
    is 0, as deepsig, which warns)."""
    t = np.arange(dt, 1, dt)[None]
    f = _quantiles(np.sort(a, axis=1), np.broadcast_to(t, (len(a), t.shape[1])))
    g = _quantiles(np.sort(b, axis=1), np.broadcast_to(t, (len(b), t.shape[1])))
    diff = g - f
    distance = np.sum(diff**2 * dt, axis=1)
    diff[f >= g] = 0
    violation = np.sum(diff[:, 1:] ** 2 * dt, axis=1)
    safe = np.where(distance == 0, 1, distance)
    return np.where(distance == 0, 0.5, violation / safe)


def eps_min(calls: Sequence[AsoCall]) -> list[float]:
    """Each call's ε_min."""
    return [call() for call in calls]


def summarise(section: Section, alpha: float = 0.05, trials: int = 1000) -> None:
    """The section's table (one row per variant, ranked), its seeds, partial matches, pairs (one
    row per pair of variants, sorted by family) and ablation pairs."""
    protocol = section.protocol
    headline = protocol.headline
    # besides the main metrics: P@K, what claims.md quotes and cluster quality (in the CSV only)
    extra = [f"fine/p_at_{k}" for k in P_AT_K] + [c.metric for c in CLAIMS if c.protocol == protocol.name]
    extra += ["clusters/nmi", "clusters/ari"]  # methods that cluster their predictions (cofee)
    extra += list(FEWNERD_ERRORS) if protocol.name in ERROR_ANALYSIS_PROTOCOLS else []
    metrics = list(dict.fromkeys([*protocol.main_metrics, *extra]))
    table = pd.DataFrame([_row(v, metrics, headline) for v in section.variants])
    tested = [v for v in section.variants if v.scored]
    pairs = [(a.label, b.label) for i, a in enumerate(tested) for b in tested[i + 1 :]]
    families = pd.Series(families_of(pairs, table), dtype=str)
    largest = int(families.value_counts().max()) if len(families) else 0
    section.resamples = bootstrap_resamples(trials, largest, alpha)
    boot = _bootstrap(section, tested) if tested else None
    for v in tested:
        at = table.index[table["method"] == v.label][0]
        table.loc[at, ["ci_low", "ci_high"]] = boot.interval(v.label)
        table.loc[at, ["sentence_ci_low", "sentence_ci_high"]] = boot.interval(v.label, sentences_only=True)
    free = set(table.loc[table["seed_free"], "method"])
    section.pairs, calls = paired_tests(boot, pairs, list(families), alpha, free)
    section.table = order_rows(table, headline)
    section.seeds = seed_table(section.variants, section.table["method"])
    if protocol.scoring == "spans" and tested and not isinstance(protocol, EpisodeProtocol):
        order = {label: i for i, label in enumerate(section.table["method"])}
        section.partial_resamples = trials  # intervals only: no family to correct for
        section.partial = partial_table(sorted(tested, key=lambda v: order[v.label]), trials)
    section.ablations, ablation_calls = ablation_pairs(section, trials, alpha)
    if section.ablations is not None:
        section.ablations = settle(section.ablations, eps_min(ablation_calls), alpha)
    settled = settle(section.pairs, eps_min(calls), alpha)
    section.table = rank_rows(section.table, settled, headline, {v.label for v in tested})
    section.pairs = settled.sort_values(["family", "better", "worse"]).reset_index(drop=True)


def _row(v: Variant, metrics: Sequence[str], headline: str) -> dict[str, object]:
    """A variant's line of the table: its settings, each metric's seed mean and std, its timings
    (its CIs come from the section's bootstrap)."""
    row = {
        "method": v.label,
        "variant": v.declared[0] if v.declared else v.tag("variant") if "tags.variant" in v.runs else "default",
        "provenance": v.provenance,
        "regime": v.regime,
        "scored_by": v.scored_by,
        "settings": v.settings,
        "seed_free": seed_free(v),
    }
    logged = [m for m in metrics if f"metrics.{m}" in v.runs]
    values = v.runs[[f"metrics.{m}" for m in logged]].itertuples(index=False)  # not every column: runs are wide
    per_seed = [{m: float(x) for m, x in zip(logged, run, strict=True) if pd.notna(x)} for run in values]
    summaries = summarise_seeds(per_seed)
    for metric in metrics:
        found = summaries.get(metric)
        row[f"{metric}_mean"] = found.mean if found else np.nan
        row[f"{metric}_std"] = found.std if found else np.nan
    for side in ("low", "high"):  # set from the bootstrap for rows with predictions; else the runs' own CIs, averaged
        logged = v.runs.get(f"metrics.{headline}_ci_{side}", pd.Series([np.nan])).astype(float).mean()
        row[f"ci_{side}"], row[f"sentence_ci_{side}"] = np.nan, logged
    seconds, timed = unshared_seconds(v.runs)
    # the epoch each seed kept, from its learning curve (NaN: no curve — no training, or an older run)
    row["best_epoch"] = v.runs.get("metrics.best_epoch", pd.Series([np.nan])).astype(float).mean()
    row.update(
        seeds=len(v.runs),
        seed_list=" ".join(v.runs["tags.seed"].astype(str)),
        encoder=v.tag("encoder"),
        seconds=seconds,
        timed_seeds=timed,
        code_version=", ".join(sorted(set(v.runs["tags.code_version"].astype(str)))),
        command=v.command,
    )
    return row


def ablation_pairs(
    section: Section, trials: int = 1000, alpha: float = 0.05
) -> tuple[pd.DataFrame | None, list[AsoCall]]:
    """Each of `ABLATIONS` of the section's protocol whose rows all have re-scorable runs: every
    pair of its rows on its metric, as `paired_tests` (the ablation is the family), with the
    ablation's ``source`` and ``metric`` and the rows' seed means (None: no ablation to test),
    and the ASO calls of its pairs."""
    scored = {v.label: v for v in section.variants if v.tables is not None}
    frames, calls = [], []
    for ablation in ABLATIONS:
        if ablation.protocol != section.protocol.name or not set(ablation.rows) <= set(scored):
            continue
        pairs = [(a, b) for i, a in enumerate(ablation.rows) for b in ablation.rows[i + 1 :]]
        resamples = bootstrap_resamples(trials, len(pairs), alpha)
        boot = SeedBootstrap(
            {r: scored[r].tables for r in ablation.rows}, section.protocol.scoring, ablation.metric, resamples
        )
        frame, found = paired_tests(boot, pairs, [ablation.source] * len(pairs), alpha)
        frame.insert(1, "metric", ablation.metric)
        frame.insert(4, "better_mean", [boot.mean(r) for r in frame["better"]])
        frame.insert(5, "worse_mean", [boot.mean(r) for r in frame["worse"]])
        frames.append(frame.rename(columns={"family": "source"}))
        calls += found
    return (pd.concat(frames, ignore_index=True) if frames else None), calls


def seed_free(variant: Variant) -> bool:
    """Whether the row's method says its seed changes none of its predictions (``seeded``, read
    on the declared settings the runs have: a training-free episodes row)."""
    from benchmark.core.registry import METHODS
    from benchmark.run.plan import resolve_settings

    method = variant.tag("method")
    seeded = getattr(METHODS.get(method), "seeded", None) if method in METHODS else None
    if seeded is None or variant.declared is None:
        return False
    config, _, _ = resolve_settings(method, None if variant.declared[0] == "default" else variant.declared[0])
    return not seeded(config)


def _bootstrap(section: Section, tested: Sequence[Variant]) -> SeedBootstrap:
    """The two-level bootstrap of the section's headline: over seeds and test sentences, or for
    episodes the mean of the settings' bootstraps over seeds and episodes (`SettingsBootstrap`)."""
    protocol = section.protocol
    if not isinstance(protocol, EpisodeProtocol):
        return SeedBootstrap(
            {v.label: v.tables for v in tested}, protocol.scoring, protocol.headline, section.resamples
        )
    settings = {name: {v.label: v.episode_tables[name] for v in tested} for name in tested[0].episode_tables}
    metric = protocol.headline.partition("/")[2]  # avg/fine/micro_f1: each setting's fine/micro_f1
    return SettingsBootstrap(settings, protocol.scoring, metric, protocol.headline, section.resamples)


#: the partial-match table's types: ``all`` (every span with its fine type), then each coarse type
ALL_TYPES = "all"
#: the partial-match F1 of every span in each scheme: the metrics of the partial-match table's CIs
PARTIAL_F1 = tuple(f"semeval/{scheme}/f1" for scheme in SEMEVAL_SCHEMES)


def partial_table(variants: Sequence[Variant], resamples: int = 1000) -> pd.DataFrame:
    """The SemEval-2013 partial-match scores of rows scored from their predictions (free span
    prediction): a line per row, scheme and type — ``all``, or a coarse type (its spans scored
    with coarse types) — with the seed mean and std of precision, recall and F1, and for ``all``
    the two-level bootstrap CI of the F1 seed mean (``resamples`` of the test sentences)."""
    types = [ALL_TYPES, *variants[0].tables[0].semeval_types]
    boots = SeedBootstrap.several({v.label: v.tables for v in variants}, "spans", PARTIAL_F1, resamples)
    lines = []
    for v in variants:
        runs = v.runs.loc[:, v.runs.columns.str.startswith("metrics.semeval/")].to_dict("records")
        for scheme in SEMEVAL_SCHEMES:
            for kind in types:
                prefix = f"semeval/{scheme}/" + ("" if kind == ALL_TYPES else f"{kind}/")
                names = {m: f"{prefix}{m}" for m in ("precision", "recall", "f1")}
                per_seed = [{m: float(run[f"metrics.{name}"]) for m, name in names.items()} for run in runs]
                summaries = summarise_seeds(per_seed)
                line = {"method": v.label, "scheme": scheme, "type": kind}
                for m in names:
                    line[f"{m}_mean"], line[f"{m}_std"] = summaries[m].mean, summaries[m].std
                low, high = boots[f"semeval/{scheme}/f1"].interval(v.label) if kind == ALL_TYPES else (np.nan, np.nan)
                line.update(f1_ci_low=low, f1_ci_high=high, seeds=len(v.runs))
                lines.append(line)
    return pd.DataFrame(lines)


def seed_table(variants: Sequence[Variant], order: Sequence[str]) -> pd.DataFrame:
    """One line per seed run, rows in the table's ``order``: its headline-free facts (seconds to
    fit and predict, test sentences predicted per second and on what device, the cores other
    processes kept busy meanwhile, the epoch it kept)."""
    by_label = {v.label: v for v in variants}
    parts = []
    for label in order:
        variant = by_label[label]
        runs = variant.runs
        missing = pd.Series(np.nan, index=runs.index)
        predict = runs.get("metrics.time/predict_seconds", missing)
        logged = runs.get("metrics.time/predict_sentences_per_second", missing)
        sentences = variant.tables[0].n_sentences if variant.tables else np.nan  # scored on the whole test split
        parts.append(pd.DataFrame({
            "method": label,
            "seed": runs["tags.seed"].astype(int),
            "fit_seconds": runs.get("metrics.time/fit_seconds", missing),
            "predict_seconds": predict,
            "sentences_per_second": (sentences / predict).fillna(logged),
            "device": device_of(runs),
            "other_cores": other_cores(runs),
            "best_epoch": runs.get("metrics.best_epoch", missing),
        }))  # fmt: skip
    columns = ["method", "seed", "fit_seconds", "predict_seconds", "sentences_per_second", "device", "other_cores"]
    columns.append("best_epoch")
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def device_of(runs: pd.DataFrame) -> pd.Series:
    """Each run's `device` tag; a run the harness predicted (it timed its prediction) from before
    the tag ran on the CPU where its torch was a CPU build (``+cpu``); else the device is unknown
    (NaN: a scored system's predictions were made elsewhere)."""
    cpu_build = runs.get("tags.version.torch", pd.Series("", index=runs.index)).astype(str).str.endswith("+cpu")
    predicted = runs.get("metrics.time/predict_seconds", pd.Series(np.nan, index=runs.index)).notna()
    inferred = pd.Series(np.where(cpu_build & predicted, "cpu", None), index=runs.index)
    return runs.get("tags.device", pd.Series(None, index=runs.index, dtype=object)).fillna(inferred)


def other_cores(runs: pd.DataFrame) -> pd.Series:
    """The cores other processes kept busy while each run fitted and predicted (NaN: its run
    predates the measurement)."""
    missing = pd.Series(np.nan, index=runs.index)
    return runs.get("metrics.time/other_cpu_share", missing) * runs.get("metrics.time/cpu_count", missing)


def unshared_seconds(runs: pd.DataFrame) -> tuple[float, int]:
    """The mean fit + predict seconds over the seeds that had the machine to themselves (other
    processes kept at most `SHARED_ABOVE` cores busy meanwhile), and how many did; NaN if none
    did, or their runs predate the measurement."""
    missing = pd.Series(np.nan, index=runs.index)
    seconds = runs.get("metrics.time/fit_seconds", missing) + runs.get("metrics.time/predict_seconds", missing)
    alone = other_cores(runs) <= SHARED_ABOVE
    return (float(seconds[alone].mean()) if alone.any() else math.nan), int(alone.sum())


def compare_pairs(
    boot: SeedBootstrap | None,
    pairs: Sequence[tuple[str, str]],
    families: Sequence[str],
    alpha: float = 0.05,
    seed_free: frozenset[str] | set[str] = frozenset(),
) -> pd.DataFrame:
    """Every pair on ``boot``'s metric, tested (`paired_tests`) and settled (`settle`)."""
    frame, calls = paired_tests(boot, pairs, families, alpha, seed_free)
    return settle(frame, eps_min(calls), alpha)


def paired_tests(
    boot: SeedBootstrap | None,
    pairs: Sequence[tuple[str, str]],
    families: Sequence[str],
    alpha: float = 0.05,
    seed_free: frozenset[str] | set[str] = frozenset(),
) -> tuple[pd.DataFrame, list[AsoCall]]:
    """Every pair on ``boot``'s metric, better seed mean first: the difference of seed means, its
    two-level bootstrap CI and p (``p_bound``: the p is the floor, so at most that), Holm's
    correction within the pair's family (``p_holm_bound``: it rests on a floor) and
    ``significant`` (p_holm < α); and each pair's ASO call (`aso_eps_min` on the rows'
    `single_run_scores`, or for a ``seed_free`` row its first `SEED_FREE_SCORES` bootstrap
    draws; Bonferroni over the family, as deepsig does), in the frame's order."""
    columns = ["family", "better", "worse", "delta", "ci_low", "ci_high", "p", "p_bound", "p_holm", "p_holm_bound",
               "significant"]  # fmt: skip
    rows = []
    for (first, second), family in zip(pairs, families, strict=True):
        a, b = sorted((first, second), key=lambda label: -boot.mean(label))  # a: the better seed mean
        result = boot.compare(a, b)
        rows.append({"family": family, "better": a, "worse": b, "delta": result.delta, "ci_low": result.ci[0],
                     "ci_high": result.ci[1], "p": result.p_value, "p_bound": result.at_floor})  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns[:8])
    size = frame.groupby("family")["p"].transform("size") if len(frame) else pd.Series(dtype=int)
    frame["p_holm"], frame["p_holm_bound"] = np.nan, False
    for _, members in frame.groupby("family").groups.items():
        p = frame.loc[members, "p"].to_numpy()
        adjusted = holm_adjust(p)
        frame.loc[members, "p_holm"] = adjusted
        # a Holm value rests on a floor when it would be lower with the floors at 0
        floors = frame.loc[members, "p_bound"].to_numpy(dtype=bool)
        frame.loc[members, "p_holm_bound"] = holm_adjust(np.where(floors, 0.0, p)) < adjusted
    frame["significant"] = frame["p_holm"] < alpha

    def scores(label: str) -> np.ndarray:
        return boot.sentence_draws(label)[:SEED_FREE_SCORES] if label in seed_free else boot.single_run_scores(label)

    calls = [
        AsoCall(scores(better), scores(worse), int(n), alpha)
        for better, worse, n in zip(frame["better"], frame["worse"], size, strict=True)
    ]
    return frame[columns], calls


def settle(frame: pd.DataFrame, eps: Sequence[float], alpha: float = 0.05) -> pd.DataFrame:
    """`paired_tests`' frame with each pair's ASO ε_min (``eps``, in its order) and ``beats``
    (significant and ε_min < `ASO_THRESHOLD`) after ``significant``."""
    frame = frame.copy()
    at = frame.columns.get_loc("significant")
    frame.insert(at, "eps_min", pd.Series(list(eps), index=frame.index, dtype=float))
    frame["beats"] = frame["significant"] & (frame["eps_min"] < ASO_THRESHOLD)
    return frame


def order_rows(table: pd.DataFrame, headline: str) -> pd.DataFrame:
    """``table`` in report order: by encoder regime (frozen first, then fine-tuned), `rankable`
    rows before the others, each by the headline's mean."""
    if "regime" not in table:  # a table written before regimes: every row was frozen
        table = table.assign(regime="frozen")
    order = table.assign(
        _regime=table["regime"].map({r: i for i, r in enumerate(REGIMES)}).fillna(len(REGIMES)),
        _unranked=~rankable(table),
    )
    order = order.sort_values(
        ["_regime", "_unranked", f"{headline}_mean"], ascending=[True, True, False], kind="stable"
    )
    return order.drop(columns=["_regime", "_unranked"]).reset_index(drop=True)


def rank_rows(table: pd.DataFrame, pairs: pd.DataFrame, headline: str, tested: set[str]) -> pd.DataFrame:
    """``table`` ordered (`order_rows`) and ranked within each encoder regime: `rankable` rows by
    `RANKING_RULE` (the ``beats`` of ``pairs`` between two of them of one regime); the unranked
    ones (oracle, custom, one seed, or no predictions) get no rank. Rows of different regimes are
    compared, never ranked against each other."""
    table = order_rows(table, headline)
    ranked = set(table.loc[rankable(table), "method"]) & tested
    beats = pairs["beats"].astype(str) == "True"  # a bool, or its text in a CSV
    deciding = pd.Series(families_of(list(zip(pairs["better"], pairs["worse"], strict=True)), table), index=pairs.index)
    beaten = pairs[beats & (deciding != "apart")].groupby("worse").size()
    table["rank"] = [1 + int(beaten.get(label, 0)) if label in ranked else pd.NA for label in table["method"]]
    return table
