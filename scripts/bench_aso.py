"""ASO's cost by its settings: `deepsig.aso` and the report's `aso_eps_min` (the same ε_min, to the
last bit) on synthetic 3- and 5-seed score sets (gaps of 0 to 4 points, seed std 1 point), and how
far each setting moves ε_min from deepsig's defaults.

    python scripts/bench_aso.py    (deepsig comes with the dev extra: pip install -e '.[dev]')

Prints seconds per pair of both, the speed-up of `aso_eps_min` and the largest change of ε_min
against deepsig's defaults; the report's `ASO_ITERATIONS` and `ASO_DT` are in the table.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from deepsig import aso
from tabulate import tabulate

from benchmark.report.stats import ASO_DT, ASO_ITERATIONS, aso_eps_min

SETTINGS = ((1000, 0.005), (1000, 0.02), (1000, 0.05), (500, 0.02), (ASO_ITERATIONS, ASO_DT), (200, 0.05))
COMPARISONS = 28


def main() -> None:
    warnings.filterwarnings("ignore")  # deepsig warns on identical score sets
    rng = np.random.default_rng(1)
    cases = [(rng.normal(0.5 + gap, 0.01, k), rng.normal(0.5, 0.01, k)) for gap in (0, 0.005, 0.01, 0.02, 0.04)
             for k in (3, 5)]  # fmt: skip
    rows, reference = [], None
    for iterations, dt in dict.fromkeys(SETTINGS):
        started = time.perf_counter()
        eps = np.array([aso(a, b, num_comparisons=COMPARISONS, num_bootstrap_iterations=iterations, dt=dt, seed=0,
                            show_progress=False) for a, b in cases])  # fmt: skip
        library = (time.perf_counter() - started) / len(cases)
        started = time.perf_counter()
        ours = np.array([aso_eps_min(a, b, 0.95, COMPARISONS, iterations, dt, seed=0) for a, b in cases])
        vectorised = (time.perf_counter() - started) / len(cases)
        if not np.array_equal(eps, ours):
            raise SystemExit(f"aso_eps_min differs from deepsig.aso at {iterations} iterations, dt {dt}")
        reference = eps if reference is None else reference
        rows.append([iterations, dt, f"{library:.3f}", f"{vectorised:.4f}", f"{library / vectorised:.0f}",
                     f"{np.abs(eps - reference).max():.3f}"])  # fmt: skip
    headers = ["iterations", "dt", "deepsig s/pair", "aso_eps_min s/pair", "speed-up", "max |Δε_min| vs defaults"]
    print(tabulate(rows, headers=headers, tablefmt="github"))


if __name__ == "__main__":
    main()
