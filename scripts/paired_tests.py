"""Paired tests between chosen rows of a report on any metric (the report tests its headline).

    python scripts/paired_tests.py --protocol ner --metric coarse/micro_f1 \\
        --rows cofee cofee:fet-control cofee:no-fet cofee:no-fet-esi

Reads the store as `report` does (FINISHED seed runs, re-scored from their stored predictions
by the current evaluator) and prints, for every pair of the given rows, the difference of seed
means, its paired bootstrap 95 % CI, the approximate-randomization p-value on per-sentence
counts averaged over seeds, and Holm's correction over these pairs only.
"""

from __future__ import annotations

import argparse

import numpy as np
from tabulate import tabulate

from benchmark.core.data.fewnerd import load_corpus
from benchmark.evaluate import seed_mean_draws
from benchmark.report import attach_predictions, compare_pairs, group_runs, load_runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="embedded")
    parser.add_argument("--protocol", required=True)
    parser.add_argument("--metric", required=True, help="e.g. coarse/micro_f1")
    parser.add_argument("--rows", nargs="+", required=True, help="row labels as the report names them")
    parser.add_argument("--trials", type=int, default=1000)
    args = parser.parse_args()
    corpus = load_corpus(args.dataset)
    sections, _ = group_runs(load_runs(None, args.dataset, args.protocol), {args.dataset: corpus.sha256})
    section = sections[0]
    attach_predictions(section, list(corpus.split("test")), corpus.hierarchy)
    variants = {v.label: v for v in section.variants}
    missing = [r for r in args.rows if r not in variants or variants[r].tables is None]
    if missing:
        raise SystemExit(f"no re-scorable runs for: {', '.join(missing)}; rows: {', '.join(variants)}")
    scoring = section.protocol.scoring
    tested = [variants[r] for r in args.rows]
    draws = {r: seed_mean_draws(variants[r].tables, scoring, args.metric, args.trials) for r in args.rows}
    means = {r: float(np.mean(variants[r].runs[f"metrics.{args.metric}"].astype(float))) for r in args.rows}
    pairs = compare_pairs(tested, scoring, args.metric, means, draws, trials=args.trials)
    print(f"{args.dataset}/{args.protocol}, {args.metric}: " + ", ".join(f"{r} {means[r]:.4f}" for r in args.rows))
    columns = ["better", "worse", "delta", "ci_low", "ci_high", "p", "p_holm"]
    floats = ("", "", "+.4f", "+.4f", "+.4f", ".4f", ".4f")
    print(tabulate(pairs[columns], headers=columns, floatfmt=floats, tablefmt="github", showindex=False))


if __name__ == "__main__":
    main()
