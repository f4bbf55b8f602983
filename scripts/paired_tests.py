"""Paired comparisons between chosen rows of a report on any metric (the report compares its headline).

    python scripts/paired_tests.py --runs reports/runs --protocol ner --metric coarse/micro_f1 \\
        --rows cofee cofee:fet-control cofee:no-fet cofee:no-fet-esi

Reads the published record (``--runs``) or the store, as `report` does (FINISHED seed runs,
re-scored from their stored predictions by the current evaluator), and prints, for every pair of
the given rows, what a report's pairs table holds (`benchmark.report.stats.compare_pairs`): the
difference of seed means, its two-level bootstrap CI and p, Holm's correction over these pairs
only (one family), ASO's ε_min and whether the better row beats the other.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tabulate import tabulate

from benchmark.core.data.fewnerd import load_corpus
from benchmark.evaluate import SeedBootstrap
from benchmark.report import attach_predictions, bootstrap_resamples, compare_pairs, group_runs, load_runs
from benchmark.report.collect import load_published, stored_predictions
from benchmark.report.render import p_text
from benchmark.run.published import read_record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, help="a published record (default: the MLflow store)")
    parser.add_argument("--dataset", default="embedded")
    parser.add_argument("--protocol", required=True)
    parser.add_argument("--metric", required=True, help="e.g. coarse/micro_f1")
    parser.add_argument("--rows", nargs="+", required=True, help="row labels as the report names them")
    parser.add_argument("--trials", type=int, default=1000, help="bootstrap resamples, at least")
    parser.add_argument("--alpha", type=float, default=0.05)
    args = parser.parse_args()
    corpus = load_corpus(args.dataset)
    if args.runs is None:
        runs, read = load_runs(None, args.dataset, args.protocol), stored_predictions
    else:
        runs, read = load_published(read_record(args.runs), str(args.runs), args.dataset, args.protocol)
    sections, _ = group_runs(runs, {args.dataset: corpus.sha256})
    section = sections[0]
    attach_predictions(section, list(corpus.split("test")), corpus.hierarchy, read)
    variants = {v.label: v for v in section.variants}
    missing = [r for r in args.rows if r not in variants or variants[r].tables is None]
    if missing:
        raise SystemExit(f"no re-scorable runs for: {', '.join(missing)}; rows: {', '.join(variants)}")
    pairs = [(a, b) for i, a in enumerate(args.rows) for b in args.rows[i + 1 :]]
    resamples = bootstrap_resamples(args.trials, len(pairs), args.alpha)
    boot = SeedBootstrap({r: variants[r].tables for r in args.rows}, section.protocol.scoring, args.metric, resamples)
    frame = compare_pairs(boot, pairs, ["chosen rows"] * len(pairs), args.alpha)
    print(f"{args.dataset}/{args.protocol}, {args.metric} ({resamples:,} resamples): "
          + ", ".join(f"{r} {boot.mean(r):.4f} ({len(variants[r].tables)} seeds)" for r in args.rows))  # fmt: skip
    rows = [
        [r["better"], r["worse"], f"{r['delta']:+.4f}", f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]",
         p_text(r["p"], r["p_bound"]), p_text(r["p_holm"], r["p_holm_bound"]), f"{r['eps_min']:.2f}", r["beats"]]
        for r in frame.to_dict("records")
    ]  # fmt: skip
    headers = ["better", "worse", "delta", "95% CI", "p", "p (Holm)", "eps_min", "beats"]
    print(tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True))


if __name__ == "__main__":
    main()
