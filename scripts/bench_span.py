"""span-bilstm-attn training time on the embedded default, per protocol, through the real CLI.

    python scripts/bench_span.py [extra run arguments, e.g. --variant contextual]

Targets (issue 6), on 2 CPU cores: `typing` trains in under 5 minutes, `ner` in under 20.
Each protocol runs once (seed 1) in a fresh MLflow store; the feature cache is the user's.
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
TARGET_MINUTES = {"typing": 5, "ner": 20}


def main() -> None:
    print(f"torch threads: {torch.get_num_threads()}, CPUs: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PYTHONPATH": str(REPO)}
        for protocol, target in TARGET_MINUTES.items():
            command = [sys.executable, "-m", "benchmark", "run", "--method", "span-bilstm-attn", "--protocol", protocol]
            started = time.perf_counter()
            subprocess.run([*command, *sys.argv[1:]], env=env, cwd=tmp, check=True, capture_output=True)
            wall = time.perf_counter() - started
            client = MlflowClient(uri)
            experiment = client.get_experiment_by_name(f"embedded/{protocol}")
            run = client.search_runs([experiment.experiment_id], "tags.role = 'seed'", order_by=["start_time DESC"])[0]
            m = run.data.metrics
            fit = m["time/fit_seconds"]
            verdict = "meets" if fit < 60 * target else "MISSES"
            print(
                f"{protocol}: fit {fit:.0f} s ({verdict} the {target}-minute target), predict "
                f"{m['time/predict_seconds']:.0f} s, {wall:.0f} s end to end; {m['method/epochs']:.0f} epochs "
                f"(best {m['method/best_epoch']:.0f}), {m['method/train_spans_per_second']:.0f} training spans/s"
            )
            extra = ""
            if protocol == "ner":
                extra = (
                    f", max span length {m['method/max_span_length']:.0f}, {m['method/negatives_per_epoch']:.0f} "
                    f"negatives/epoch, O bias {m['method/none_bias']:.1f}"
                )
            headline = "fine/accuracy" if protocol == "typing" else "fine/micro_f1"
            print(f"  {headline} {m[headline]:.4f}{extra}")


if __name__ == "__main__":
    main()
