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
import itertools

import numpy as np
from tabulate import tabulate

from benchmark.data.fewnerd import load_corpus
from benchmark.evaluate import RandomizationTest, holm_adjust, mean_table, seed_mean_draws
from benchmark.report import attach_predictions, group_runs, load_runs, randomization_trials


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
    pairs = list(itertools.combinations(args.rows, 2))
    trials = randomization_trials(args.trials, len(pairs), 0.05)
    test = RandomizationTest(variants[args.rows[0]].tables[0].n_sentences, scoring, args.metric, trials)
    draws = {r: seed_mean_draws(variants[r].tables, scoring, args.metric, args.trials) for r in args.rows}
    means = {r: float(np.mean(variants[r].runs[f"metrics.{args.metric}"].astype(float))) for r in args.rows}
    rows = []
    for a, b in pairs:
        a, b = sorted((a, b), key=lambda r: -means[r])
        low, high = np.percentile(draws[a] - draws[b], [2.5, 97.5])
        p = test.p_value(mean_table(variants[a].tables), mean_table(variants[b].tables))
        rows.append([a, b, means[a] - means[b], low, high, p])
    for row, holm in zip(rows, holm_adjust([r[-1] for r in rows]), strict=True):
        row.append(holm)
    print(f"{args.dataset}/{args.protocol}, {args.metric}: " + ", ".join(f"{r} {means[r]:.4f}" for r in args.rows))
    headers = ["better", "worse", "Δ", "CI low", "CI high", "p", "p (Holm)"]
    print(tabulate(rows, headers=headers, floatfmt=("", "", "+.4f", "+.4f", "+.4f", ".4f", ".4f"), tablefmt="github"))


if __name__ == "__main__":
    main()
