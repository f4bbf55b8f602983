"""ASO's cost and accuracy by its settings: `deepsig.aso` on synthetic 3- and 5-seed score sets
(gaps of 0 to 4 points, seed std 1 point), each setting against deepsig's defaults.

    python scripts/bench_aso.py

Prints seconds per pair, the speed-up over the defaults and the largest change of ε_min; the
report's `ASO_ITERATIONS` and `ASO_DT` come from this table.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from deepsig import aso
from tabulate import tabulate

from benchmark.report.stats import ASO_DT, ASO_ITERATIONS

SETTINGS = ((1000, 0.005), (1000, 0.02), (1000, 0.05), (500, 0.02), (ASO_ITERATIONS, ASO_DT), (200, 0.05))


def main() -> None:
    warnings.filterwarnings("ignore")  # deepsig warns on identical score sets
    rng = np.random.default_rng(1)
    cases = [(rng.normal(0.5 + gap, 0.01, k), rng.normal(0.5, 0.01, k)) for gap in (0, 0.005, 0.01, 0.02, 0.04)
             for k in (3, 5)]  # fmt: skip
    rows, reference, first = [], None, None
    for iterations, dt in dict.fromkeys(SETTINGS):
        started = time.perf_counter()
        eps = np.array([aso(a, b, num_comparisons=28, num_bootstrap_iterations=iterations, dt=dt, seed=0,
                            show_progress=False) for a, b in cases])  # fmt: skip
        seconds = (time.perf_counter() - started) / len(cases)
        reference = eps if reference is None else reference
        first = seconds if first is None else first
        rows.append(
            [iterations, dt, f"{seconds:.3f}", f"{first / seconds:.1f}", f"{np.abs(eps - reference).max():.3f}"]
        )
    print(tabulate(rows, headers=["iterations", "dt", "s/pair", "speed-up", "max |Δε_min|"], tablefmt="github"))


if __name__ == "__main__":
    main()
