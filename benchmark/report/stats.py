"""A section's statistics: each metric's seed summary, the headline's CI, every pair compared
by approximate randomization with Holm's correction, and the ranks."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from benchmark.core.method import RANKED, REGIMES
from benchmark.evaluate import P_AT_K, RandomizationTest, holm_adjust, mean_table, seed_mean_draws
from benchmark.report.claims import CLAIMS
from benchmark.report.collect import Section, Variant
from benchmark.run.cpu import SHARED_ABOVE
from benchmark.seeds import summarise_seeds

#: Few-NERD's error analysis (`benchmark.evaluate`), tabulated for the protocols that find or type
#: spans without a given coarse type (under weak-typing no span can be outer, nor a token wrong)
FEWNERD_ERRORS = ("fewnerd/fp_rate", "fewnerd/fn_rate", "fewnerd/within_rate", "fewnerd/outer_rate")
ERROR_ANALYSIS_PROTOCOLS = ("ner", "typing")


def randomization_trials(trials: int, n_pairs: int, alpha: float) -> int:
    """Enough randomization trials that Holm's correction over ``n_pairs`` can reach ``alpha``:
    the smallest p-value is 1 / (trials + 1), and Holm multiplies it by the number of pairs, so
    with 1,000 trials more than 50 pairs could never be significant at 0.05."""
    return max(trials, math.ceil(2 * n_pairs / alpha))


def summarise(section: Section, alpha: float = 0.05, trials: int = 1000) -> None:
    """The section's table (one row per variant) and pairs (one row per pair of variants)."""
    protocol = section.protocol
    headline = protocol.headline
    # besides the main metrics: P@K, what claims.md quotes and cluster quality (in the CSV only)
    extra = [f"fine/p_at_{k}" for k in P_AT_K] + [c.metric for c in CLAIMS if c.protocol == protocol.name]
    extra += ["clusters/nmi", "clusters/ari"]  # methods that cluster their predictions (cofee)
    extra += list(FEWNERD_ERRORS) if protocol.name in ERROR_ANALYSIS_PROTOCOLS else []
    metrics = list(dict.fromkeys([*protocol.main_metrics, *extra]))
    rows, draws = [], {}
    for v in section.variants:
        row = {
            "method": v.label,
            "variant": v.declared[0] if v.declared else v.tag("variant") if "tags.variant" in v.runs else "default",
            "provenance": v.provenance,
            "regime": v.regime,
            "scored_by": v.scored_by,
            "settings": v.settings,
        }
        per_seed = [
            {m: float(run[f"metrics.{m}"]) for m in metrics if pd.notna(run.get(f"metrics.{m}"))}
            for run in v.runs.to_dict("records")
        ]
        summaries = summarise_seeds(per_seed)
        for metric in metrics:
            found = summaries.get(metric)
            row[f"{metric}_mean"] = found.mean if found else np.nan
            row[f"{metric}_std"] = found.std if found else np.nan
        if v.tables is not None:
            draws[v.label] = seed_mean_draws(v.tables, protocol.scoring, headline, trials)
            row["ci_low"], row["ci_high"] = np.percentile(draws[v.label], [2.5, 97.5])
        else:  # the runs' own sentence-bootstrap CIs, averaged over seeds
            row["ci_low"] = v.runs.get(f"metrics.{headline}_ci_low", pd.Series([np.nan])).astype(float).mean()
            row["ci_high"] = v.runs.get(f"metrics.{headline}_ci_high", pd.Series([np.nan])).astype(float).mean()
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
        rows.append(row)
    table = pd.DataFrame(rows)
    tested = [v for v in section.variants if v.tables is not None]
    means = dict(zip(table["method"], table[f"{headline}_mean"], strict=True))
    pairs_frame = compare_pairs(tested, protocol.scoring, headline, means, draws, alpha, trials)
    tested_labels = {v.label for v in tested}
    section.table = rank_rows(table, pairs_frame, headline, tested_labels)
    section.pairs = pairs_frame.sort_values(["better", "worse"]).reset_index(drop=True)


def unshared_seconds(runs: pd.DataFrame) -> tuple[float, int]:
    """The mean fit + predict seconds over the seeds that had the machine to themselves (other
    processes kept at most `SHARED_ABOVE` cores busy meanwhile), and how many did; NaN if none
    did, or their runs predate the measurement."""
    missing = pd.Series(np.nan, index=runs.index)
    seconds = runs.get("metrics.time/fit_seconds", missing) + runs.get("metrics.time/predict_seconds", missing)
    other_cores = runs.get("metrics.time/other_cpu_share", missing) * runs.get("metrics.time/cpu_count", missing)
    alone = other_cores <= SHARED_ABOVE
    return (float(seconds[alone].mean()) if alone.any() else math.nan), int(alone.sum())


def compare_pairs(
    tested: Sequence[Variant],
    scoring: str,
    metric: str,
    means: dict[str, float],
    draws: dict[str, np.ndarray],
    alpha: float = 0.05,
    trials: int = 1000,
) -> pd.DataFrame:
    """Every pair of ``tested`` (variants with count tables) on ``metric``: the difference of
    seed ``means`` (better first), its paired bootstrap CI from the variants' seed-mean
    ``draws``, the approximate-randomization p on per-sentence counts averaged over seeds, and
    Holm's correction over these pairs."""
    pooled = {v.label: mean_table(v.tables) for v in tested}
    pairs = []
    if tested:
        n_pairs = len(tested) * (len(tested) - 1) // 2
        test = RandomizationTest(
            tested[0].tables[0].n_sentences, scoring, metric, randomization_trials(trials, n_pairs, alpha)
        )
    for i, first in enumerate(tested):
        for second in tested[i + 1 :]:
            a, b = sorted((first, second), key=lambda v: -means[v.label])  # a: the better mean
            p = test.p_value(pooled[a.label], pooled[b.label])
            low, high = np.percentile(draws[a.label] - draws[b.label], [2.5, 97.5])
            delta = means[a.label] - means[b.label]
            pairs.append({"better": a.label, "worse": b.label, "delta": delta, "ci_low": low, "ci_high": high, "p": p})
    frame = pd.DataFrame(pairs, columns=["better", "worse", "delta", "ci_low", "ci_high", "p"])
    frame["p_holm"] = holm_adjust(frame["p"]) if len(frame) else []
    frame["significant"] = frame["p_holm"] < alpha
    return frame


def rank_rows(table: pd.DataFrame, pairs: pd.DataFrame, headline: str, tested: set[str]) -> pd.DataFrame:
    """``table`` ordered and ranked within each encoder regime (frozen first, then fine-tuned):
    ranked rows (provenance paper, prior, dev) by the headline's mean, each at 1 + the number of
    ranked rows *of its regime* significantly better (``pairs``); then the unranked ones (oracle,
    custom, or untested), with no rank. Rows of different regimes are tested, never ranked
    against each other."""
    if "regime" not in table:  # a table written before regimes: every row was frozen
        table = table.assign(regime="frozen")
    order = table.assign(
        _regime=table["regime"].map({r: i for i, r in enumerate(REGIMES)}).fillna(len(REGIMES)),
        _unranked=~table["provenance"].isin(RANKED),
    )
    order = order.sort_values(
        ["_regime", "_unranked", f"{headline}_mean"], ascending=[True, True, False], kind="stable"
    )
    table = order.drop(columns=["_regime", "_unranked"]).reset_index(drop=True)
    ranked = set(table.loc[table["provenance"].isin(RANKED), "method"]) & tested
    regime = dict(zip(table["method"], table["regime"], strict=True))
    significant = pairs["significant"].astype(str) == "True"  # a bool, or its text in a CSV
    same = [regime.get(b) == regime.get(w) for b, w in zip(pairs["better"], pairs["worse"], strict=True)]
    beaten = pairs[significant & pairs["better"].isin(ranked) & pd.Series(same, index=pairs.index, dtype=bool)]
    beaten = beaten.groupby("worse").size()
    table["rank"] = [1 + int(beaten.get(label, 0)) if label in ranked else pd.NA for label in table["method"]]
    return table
