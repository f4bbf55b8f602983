"""eigproj end to end: cold (empty caches) and warm (all caches filled) runs, time per stage.

    python scripts/bench_eigproj.py [extra run arguments, e.g. --set lime_entities=500]

Targets (issue 4): cold under 10 minutes on 2 cores, warm under 1 minute.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlflow.tracking import MlflowClient

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        env = {**os.environ, "BENCHMARK_CACHE_DIR": str(Path(tmp) / "cache"), "MLFLOW_TRACKING_URI": uri,
               "PYTHONPATH": str(REPO)}  # fmt: skip
        command = [sys.executable, "-m", "benchmark", "run", "--method", "eigproj", *sys.argv[1:]]
        for name in ("cold", "warm"):
            started = time.perf_counter()
            subprocess.run(command, env=env, cwd=tmp, check=True, capture_output=True)
            seconds = time.perf_counter() - started
            client = MlflowClient(uri)
            experiment = client.get_experiment_by_name("embedded/weak-typing")
            run = client.search_runs([experiment.experiment_id], "tags.role = 'seed'", order_by=["start_time DESC"])[0]
            m = run.data.metrics
            stages = ", ".join(f"{k.removeprefix('method/seconds_')} {v:.1f} s" for k, v in sorted(m.items())
                               if k.startswith("method/seconds_"))  # fmt: skip
            print(f"{name}: {seconds:.1f} s end to end (fit {m['time/fit_seconds']:.1f} s; {stages})")
            print(f"  encoded sentences {m['features/encoded_sentences']:.0f}, "
                  f"feature cache hits {m['features/cache_hits']:.0f}, "
                  f"stage cache hits {m['features/stage_cache_hits']:.0f}, "
                  f"LIME explanations/s {m['method/lime_explanations_per_second']:.2f}, "
                  f"entities explained {m['method/entities_explained']:.0f}, with keyword "
                  f"{m['method/entities_with_keyword']:.0f}")  # fmt: skip
            print(
                f"  weighted F1 {m['fine/weighted_f1']:.4f}, P@10/50/100/200/300 "
                + "/".join(f"{m[f'fine/p_at_{k}']:.2f}" for k in (10, 50, 100, 200, 300))
            )


if __name__ == "__main__":
    main()
