"""Sizing of the comparison on a cluster, from measured task times.

    python scripts/cluster_sizing.py [--runs reports/runs] [--dataset embedded] [--seeds 1 2 3]

Lists the tasks of `run --method all` (one per row, protocol and seed; by default each row's
`COMPARISON_SEEDS`, else ``--seeds``) and takes each task's time from the published record as
`report --runs` reads it (the newest code's runs): fit + predict seconds, per row its fastest
seed, since anything else running on the machine only slowed a seed down. It prints the tasks per
protocol and regime with their CPU time, then the expected wall time of the grid on N workers,
each running one task at a time as this machine did (2 cores: `--cpus-per-task 2` on 2-core
nodes): once in the order `--executor ray` submits the tasks (fine-tuned first, each to the first
free worker), and once longest task first (within 4/3 of the best possible schedule). Rows without
a run in the record are named and left out.
"""

from __future__ import annotations

import argparse
import heapq
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from benchmark.report.collect import group_runs, load_published
from benchmark.run.executors import submission_order
from benchmark.run.plan import DataSource, RunRequest, plan_comparison
from benchmark.run.published import read_record

WORKERS = (1, 2, 4, 8, 16, 32)
START, END = "<!-- cluster-sizing:start -->", "<!-- cluster-sizing:end -->"


def makespan(seconds: list[float], workers: int) -> float:
    """Wall time of ``seconds`` on ``workers`` slots, each task in turn to the first free slot."""
    slots = [0.0] * workers
    for task in seconds:
        heapq.heappush(slots, heapq.heappop(slots) + task)
    return max(slots)


def sizing(record: Path, dataset: str, seeds: list[int] | None) -> str:
    """The sizing tables (markdown) of the comparison's tasks, timed from the record."""
    runs, _ = load_published(read_record(record), str(record))  # every dataset: episode rows read inter
    sections, _ = group_runs(runs)
    measured = {}
    for section in sections:
        for variant in section.variants:
            runs = variant.runs
            seconds = runs["metrics.time/fit_seconds"].fillna(0) + runs["metrics.time/predict_seconds"].fillna(0)
            measured[section.slug, variant.label] = float(seconds.min())
    template = RunRequest(method="all", source=DataSource(dataset))
    plans = plan_comparison(["all"], None, template, seeds)
    tasks = [(f"{p.source.dataset}/{p.protocol.name}", p.regime, p.label) for p in plans for _ in p.seeds]
    tasks = [tasks[k] for k in submission_order([regime for _, regime, _ in tasks])]
    missing = sorted({f"`{label}` ({where})" for where, _, label in tasks if (where, label) not in measured})
    frame = pd.DataFrame(
        [(where, regime, label, measured[where, label]) for where, regime, label in tasks
         if (where, label) in measured], columns=["protocol", "regime", "label", "seconds"],
    )  # fmt: skip
    rows = []
    for (protocol, regime), group in [*frame.groupby(["protocol", "regime"], sort=False), (("all", ""), frame)]:
        hours, minutes = group.seconds.sum() / 3600, group.seconds / 60
        rows.append([protocol, regime, len(group.groupby(["protocol", "label"])), len(group), f"{hours:.2f}",
                     f"{minutes.median():.1f}", f"{minutes.max():.1f}"])  # fmt: skip
    lines = [tabulate(rows, ["dataset/protocol", "regime", "rows", "tasks", "CPU hours", "median task (min)",
                             "longest task (min)"], tablefmt="github", disable_numparse=True)]  # fmt: skip
    if missing:
        lines += ["", f"Not measured (no run in the record), left out: {', '.join(missing)}."]
    submitted, longest_first = list(frame.seconds), sorted(frame.seconds, reverse=True)
    walls = [[n, f"{makespan(submitted, n) / 3600:.2f}", f"{makespan(longest_first, n) / 3600:.2f}"] for n in WORKERS]
    lines += ["", tabulate(walls, ["workers (2 cores each)", "wall hours, as submitted", "wall hours, longest first"],
                           tablefmt="github", disable_numparse=True)]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="embedded")
    parser.add_argument("--runs", type=Path, default=Path("reports", "runs"))
    parser.add_argument("--seeds", type=int, nargs="+", help="default: each row's COMPARISON_SEEDS")
    parser.add_argument("--write", type=Path, metavar="GUIDE", help=f"rewrite the block between {START} and {END}")
    args = parser.parse_args()
    block = sizing(args.runs, args.dataset, args.seeds)
    if args.write is None:
        print(block)
        return
    text = args.write.read_text()
    head, rest = text.split(START, 1)
    args.write.write_text(f"{head}{START}\n{block}\n{END}{rest.split(END, 1)[1]}")
    print(f"{args.write}: cluster sizing block rewritten")


if __name__ == "__main__":
    main()
