"""A method's training time on the embedded default, per protocol, through the real CLI.

    python scripts/bench_training.py METHOD PROTOCOL=MINUTES [...] [-- extra run arguments]
    python scripts/bench_training.py span-bilstm-attn typing=5 ner=20
    python scripts/bench_training.py hier-soft ner=10 typing=10
    python scripts/bench_training.py hier-soft ner=10 -- --variant direct

Each protocol runs once (seed 1) in a fresh MLflow store (the feature cache is the user's);
the fit time is compared with the target and the method's own figures (epochs, throughput,
stage times) are printed from the run's ``method/*`` metrics.
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

from benchmark.core.registry import PROTOCOLS

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> None:
    ours, extra = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    method, targets = ours[0], dict(t.split("=") for t in ours[1:])
    print(f"{method}: torch threads {torch.get_num_threads()}, CPUs {os.cpu_count()}, extra arguments {extra}")
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PYTHONPATH": str(REPO)}
        for protocol, minutes in targets.items():
            command = [sys.executable, "-m", "benchmark", "run", "--method", method, "--protocol", protocol, *extra]
            started = time.perf_counter()
            subprocess.run(command, env=env, cwd=tmp, check=True, capture_output=True)
            wall = time.perf_counter() - started
            client = MlflowClient(uri)
            experiment = client.get_experiment_by_name(f"embedded/{protocol}")
            run = client.search_runs([experiment.experiment_id], "tags.role = 'seed'", order_by=["start_time DESC"])[0]
            m = run.data.metrics
            fit, target = m["time/fit_seconds"], 60 * float(minutes)
            headline = PROTOCOLS[protocol].headline
            print(
                f"{protocol}: fit {fit:.0f} s ({'meets' if fit < target else 'MISSES'} the {minutes}-minute target), "
                f"predict {m['time/predict_seconds']:.0f} s, {wall:.0f} s end to end; {headline} {m[headline]:.4f}"
            )
            own = {k.removeprefix("method/"): v for k, v in sorted(m.items()) if k.startswith("method/")}
            if own:
                print("  " + ", ".join(f"{k} {v:.4g}" for k, v in own.items()))


if __name__ == "__main__":
    main(sys.argv[1:])
