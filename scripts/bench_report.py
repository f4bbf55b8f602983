"""How long `python -m benchmark report` takes on a store with 100 finished runs (target < 30 s).

Builds a throw-away store: 34 variants (12 ner, 11 typing, 11 weak-typing) × 3 seeds, less two
runs, each with real-sized predictions made from the embedded test gold (a share of labels
changed, for ner also spans dropped), then times the report command in a fresh process.

    python scripts/bench_report.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmark.core.data.fewnerd import load_embedded
from benchmark.core.registry import PROTOCOLS
from benchmark.evaluate import EVALUATOR_VERSION, evaluate_split
from benchmark.run.tracking import Tracker

VARIANTS = {"ner": 12, "typing": 11, "weak-typing": 11}
SEEDS = (1, 2, 3)
RUNS = 100


def perturbed(gold, fine_types, error_rate, drop_rate, rng):
    out = []
    for span in gold:
        if rng.random() < drop_rate:
            continue
        if rng.random() < error_rate:
            span = span._replace(label=rng.choice(fine_types))
        out.append(span._replace(score=rng.random()))
    return out


def build_store(folder: Path) -> int:
    corpus = load_embedded()
    test = corpus.split("test")
    gold = [s for sentence in test for s in sentence.spans]
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    made = 0
    for protocol, count in VARIANTS.items():
        tracker = Tracker(f"embedded/{protocol}", uri)
        for v in range(count):
            for seed in SEEDS:
                if made == RUNS:
                    return made
                rng = random.Random(v * 100 + seed)
                drop = 0.2 + 0.02 * v if protocol == "ner" else 0.0
                predictions = perturbed(gold, corpus.hierarchy.fine_types, 0.3 + 0.03 * v, drop, rng)
                scores = evaluate_split(test, predictions, corpus.hierarchy, PROTOCOLS[protocol].scoring, resamples=0)
                label = f"method-{v}"
                tags = {
                    "role": "seed", "method": label, "label": label, "variant": "default", "protocol": protocol,
                    "dataset": "embedded", "dataset_sha256": corpus.sha256, "evaluator_version": EVALUATOR_VERSION,
                    "code_version": "benchmark", "code_sha256": "benchmark", "encoder": "none", "seed": str(seed),
                    "command": f"python -m benchmark run --method {label} --protocol {protocol}",
                }  # fmt: skip
                with tracker.run(f"{label}:{seed}", tags, {"variant": str(v)}) as run_id:
                    tracker.log(run_id, metrics=scores.metrics)
                    lines = "".join(json.dumps(p._asdict()) + "\n" for p in predictions)
                    tracker.client.log_text(run_id, lines, "predictions.jsonl")
                made += 1
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="build the store in DIR and keep it")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-report-"))
    folder.mkdir(parents=True, exist_ok=True)
    os.chdir(folder)  # MLflow puts artifacts in ./mlruns
    started = time.perf_counter()
    runs = build_store(folder)
    print(f"store: {runs} finished runs in {folder} (built in {time.perf_counter() - started:.0f} s)")
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}"}
    command = [sys.executable, "-m", "benchmark", "report", "--out", str(folder / "reports"), "--readme", "none"]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=folder)
    seconds = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"report failed:\n{done.stderr}")
    print(done.stderr.strip())
    print(done.stdout.strip())
    pairs = sum(n * (n - 1) // 2 for n in VARIANTS.values())
    print(f"report on {runs} runs ({sum(VARIANTS.values())} variants, {pairs} pairs tested): "
          f"{seconds:.1f} s wall, target < 30 s")  # fmt: skip


if __name__ == "__main__":
    main()
