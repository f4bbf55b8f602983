"""Sizing of the comparison on a cluster, from measured task times.

    MLFLOW_TRACKING_URI=sqlite:///mlflow.db python scripts/cluster_sizing.py [--dataset embedded] [--seeds 1 2 3]

Lists the tasks of `run --method all --seeds ...` (one per row, protocol and seed) and takes
each task's time from the store as `report` reads it (FINISHED seed runs of the newest code):
fit + predict seconds, per row its fastest seed, since anything else running on the machine
only slowed a seed down. It prints the tasks per protocol and regime with their CPU time, then
the expected wall time of the grid on N workers, each running one task at a time as this
machine did (2 cores: `--cpus-per-task 2` on 2-core nodes): once in the order `--executor ray`
submits the tasks (fine-tuned first, each to the first free worker), and once longest task
first (within 4/3 of the best possible schedule). Rows without a finished run are named and
left out.
"""

from __future__ import annotations

import argparse
import heapq

import pandas as pd
from tabulate import tabulate

from benchmark.report import group_runs, load_runs
from benchmark.run.executors import submission_order
from benchmark.run.plan import DataSource, RunRequest, comparison_requests, plan_run

WORKERS = (1, 2, 4, 8, 16, 32)


def makespan(seconds: list[float], workers: int) -> float:
    """Wall time of ``seconds`` on ``workers`` slots, each task in turn to the first free slot."""
    slots = [0.0] * workers
    for task in seconds:
        heapq.heappush(slots, heapq.heappop(slots) + task)
    return max(slots)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="embedded")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    sections, _ = group_runs(load_runs(None, args.dataset))
    measured = {}
    for section in sections:
        for variant in section.variants:
            runs = variant.runs
            seconds = runs["metrics.time/fit_seconds"].fillna(0) + runs["metrics.time/predict_seconds"].fillna(0)
            measured[section.protocol.name, variant.label] = float(seconds.min())
    template = RunRequest(method="all", source=DataSource(args.dataset), seeds=tuple(args.seeds))
    plans = [plan_run(request) for request in comparison_requests(["all"], None, template)]
    tasks = [(p.protocol.name, p.method_cls.regime(p.config), p.label) for p in plans for _ in args.seeds]
    tasks = [tasks[k] for k in submission_order([regime for _, regime, _ in tasks])]
    missing = sorted({f"{label} ({protocol})" for protocol, _, label in tasks if (protocol, label) not in measured})
    frame = pd.DataFrame(
        [(protocol, regime, label, measured[protocol, label]) for protocol, regime, label in tasks
         if (protocol, label) in measured], columns=["protocol", "regime", "label", "seconds"],
    )  # fmt: skip
    rows = []
    for (protocol, regime), group in [*frame.groupby(["protocol", "regime"], sort=False), (("all", ""), frame)]:
        hours, minutes = group.seconds.sum() / 3600, group.seconds / 60
        rows.append([protocol, regime, len(group.groupby(["protocol", "label"])), len(group), f"{hours:.2f}",
                     f"{minutes.median():.1f}", f"{minutes.max():.1f}"])  # fmt: skip
    print(tabulate(rows, ["protocol", "regime", "rows", "tasks", "CPU hours", "median task (min)",
                          "longest task (min)"], tablefmt="github", disable_numparse=True))  # fmt: skip
    if missing:
        print(f"\nnot measured (no finished run in the store), left out: {', '.join(missing)}")
    submitted, longest_first = list(frame.seconds), sorted(frame.seconds, reverse=True)
    walls = [[n, f"{makespan(submitted, n) / 3600:.2f}", f"{makespan(longest_first, n) / 3600:.2f}"] for n in WORKERS]
    print()
    print(tabulate(walls, ["workers", "wall hours, as submitted", "wall hours, longest first"], tablefmt="github",
                   disable_numparse=True))  # fmt: skip


if __name__ == "__main__":
    main()
