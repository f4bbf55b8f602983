"""A sweep reuses the caches like `run`: a 6-point `tagger` grid on frozen features, cold feature cache.

    python scripts/bench_sweep.py

Runs ``python -m benchmark sweep --method tagger --protocol ner --grid hidden=0,512
--grid lr=0.0003,0.001,0.003`` through the real CLI in a fresh MLflow store and a fresh feature
cache, then prints per point the seconds and the sentences the encoder had to encode: the first
point encodes train and dev, no later point encodes anything.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from mlflow.tracking import MlflowClient

REPO = Path(__file__).resolve().parents[1]
GRID = ["--grid", "hidden=0,512", "--grid", "lr=0.0003,0.001,0.003"]


def main() -> None:
    print(f"torch threads {torch.get_num_threads()}, CPUs {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PYTHONPATH": str(REPO)}
        command = [sys.executable, "-m", "benchmark", "sweep", "--method", "tagger", "--protocol", "ner", *GRID]
        command += ["--cache-dir", str(Path(tmp) / "cache")]
        started = time.perf_counter()
        subprocess.run(command, env=env, cwd=tmp, check=True, capture_output=True)
        wall = time.perf_counter() - started
        client = MlflowClient(uri)
        experiment = client.get_experiment_by_name("embedded/ner/sweeps")
        points = client.search_runs(
            [experiment.experiment_id], "tags.role = 'sweep-point'", order_by=["start_time ASC"]
        )
        print(f"{len(points)} points, {wall:.0f} s end to end (fresh feature cache)")
        for i, run in enumerate(points, 1):
            m = run.data.metrics
            print(
                f"point {i} {run.data.tags['point']}: fit {m['time/fit_seconds']:.0f} s, "
                f"dev predict {m['time/predict_seconds']:.1f} s, sentences encoded "
                f"{m['features/encoded_sentences']:.0f}, feature-cache hits {m['features/cache_hits']:.0f}, "
                f"dev fine/micro_f1 {m['dev/fine/micro_f1']:.4f}"
            )
        later = sum(r.data.metrics["features/encoded_sentences"] for r in points[1:])
        print(f"sentences encoded after the first point: {later:.0f}")


if __name__ == "__main__":
    main()
