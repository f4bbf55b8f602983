"""Sizing of the comparison on a cluster, from measured task times.

    MLFLOW_TRACKING_URI=sqlite:///mlflow.db python scripts/cluster_sizing.py [--dataset embedded]

Reads the store as `report` does (the rows it would show: FINISHED seed runs of the newest code)
and takes each task's measured time (fit + predict seconds of a seed run; per row, its fastest
seed, since anything else running on the machine only slowed a seed down). It prints the
tasks per protocol with their CPU time, then the expected wall time of the whole grid on N
workers, each running one task at a time as this machine did: the longest-task-first schedule
(within 4/3 of the best possible one), never below the longest single task.
"""

from __future__ import annotations

import argparse
import heapq

import pandas as pd
from tabulate import tabulate

from benchmark.report import group_runs, load_runs

WORKERS = (1, 2, 4, 8, 16, 32)


def makespan(seconds: list[float], workers: int) -> float:
    """Wall time of ``seconds`` on ``workers`` slots, longest task first to the first free slot."""
    slots = [0.0] * workers
    for task in sorted(seconds, reverse=True):
        heapq.heappush(slots, heapq.heappop(slots) + task)
    return max(slots)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="embedded")
    args = parser.parse_args()
    sections, _ = group_runs(load_runs(None, args.dataset))
    rows, tasks = [], []
    for section in sections:
        times = []
        for variant in section.variants:
            runs = variant.runs
            seconds = runs["metrics.time/fit_seconds"].fillna(0) + runs["metrics.time/predict_seconds"].fillna(0)
            times += [float(seconds.min())] * len(seconds)  # other jobs on the machine only ever slowed a seed
        tasks += times
        series = pd.Series(times)
        rows.append([section.protocol.name, len(section.variants), len(times), f"{series.sum() / 3600:.2f}",
                     f"{series.median() / 60:.1f}", f"{series.max() / 60:.1f}"])  # fmt: skip
    total = pd.Series(tasks)
    rows.append(["all", "", len(tasks), f"{total.sum() / 3600:.2f}", f"{total.median() / 60:.1f}",
                 f"{total.max() / 60:.1f}"])  # fmt: skip
    print(tabulate(rows, ["protocol", "rows", "tasks", "CPU hours", "median task (min)", "longest task (min)"],
                   tablefmt="github", disable_numparse=True))  # fmt: skip
    print()
    walls = [[n, f"{makespan(tasks, n) / 3600:.2f}", f"{total.sum() / makespan(tasks, n) / n:.0%}"] for n in WORKERS]
    print(tabulate(walls, ["workers", "wall hours", "busy"], tablefmt="github", disable_numparse=True))


if __name__ == "__main__":
    main()
