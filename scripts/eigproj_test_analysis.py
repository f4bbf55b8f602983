"""eigproj's single-factor analysis on the **test** split (seed 1). It selects nothing.

    python scripts/eigproj_test_analysis.py [--store sqlite:///eigproj-analysis.db]

Each row changes one setting of a base (the paper's defaults, or ``--variant tuned``) and is run
through the harness into its own MLflow store (so these ad-hoc ``custom`` runs never reach the
comparison report); the script prints a markdown table of weighted F1 and P@K. Under
``weak-typing`` no fine label may choose a setting, so this table is analysis only, and a
setting first tried in it stays ``oracle`` (``eigproj:tuned``, ``eigproj:test-picked``) whatever a
later dev sweep says. Runs are resumable: a rerun of the script reuses every finished run.
"""

from __future__ import annotations

import argparse
import os

from benchmark.run.driver import run_plans
from benchmark.run.plan import RunRequest, plan_run

#: (label, variant, --set overrides): one factor at a time on top of each base
ROWS: tuple[tuple[str, str | None, tuple[str, ...]], ...] = (
    ("paper defaults", None, ()),
    ("`pca=separate`", None, ("pca='separate'",)),
    ("`explain=gold`", None, ("explain='gold'",)),
    ("`similarity=cosine`", None, ("similarity='cosine'",)),
    ("`label_names=described`", None, ("label_names='described'",)),
    ("`constraint=keywords`", None, ("constraint='keywords'",)),
    ("`constraint=classes`", None, ("constraint='classes'",)),
    ("`k=5`", None, ("k=5",)),
    ("`k=20` (whitening only)", None, ("k=20",)),
    ("`kernel=rbf`", None, ("kernel='rbf'",)),
    ("`kernel=rbf k=20`", None, ("kernel='rbf'", "k=20")),
    ("`rerank=false`", None, ("rerank=false",)),
    ("tuned", "tuned", ()),
    ("tuned + `k=20` (= test-picked; whitening only)", "tuned", ("k=20",)),
    ("tuned + `kernel=rbf`", "tuned", ("kernel='rbf'",)),
    ("tuned + `rerank=false`", "tuned", ("rerank=false",)),
    ("tuned + `constraint=classes`", "tuned", ("constraint='classes'",)),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="sqlite:///eigproj-analysis.db", help="MLflow store for these runs")
    args = parser.parse_args()
    os.environ["MLFLOW_TRACKING_URI"] = args.store
    lines = ["| variant (on top of the row's base) | weighted F1 | P@100 | P@300 |", "| --- | --- | --- | --- |"]
    for label, variant, settings in ROWS:
        request = RunRequest("eigproj", "weak-typing", variant, settings=settings, seeds=(1,), resamples=0)
        metrics = run_plans([plan_run(request)], echo=lambda _: None)[0].results[0].metrics
        p100, p300 = metrics.get("fine/p_at_100", float("nan")), metrics.get("fine/p_at_300", float("nan"))
        lines.append(f"| {label} | {metrics['fine/weighted_f1']:.3f} | {p100:.2f} | {p300:.2f} |")
        print(lines[-1], flush=True)
    print("\n".join(["", *lines]))


if __name__ == "__main__":
    main()
