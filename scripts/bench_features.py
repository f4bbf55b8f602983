"""Feature extraction speed, warm vs cold tagger runs, and the tagger's peak memory.

    python scripts/bench_features.py

1. Encodes the embedded training split (13,111 sentences) with ``minilm`` through the harness
   (tokenization, windows, pooling, float16 cache writes and checksums) and, in the same process,
   with a bare ``model(**batch)`` loop over the same length-sorted, pre-tokenized batches; prints
   sentences/s of both and their ratio (target >= 0.8).
2. Runs ``python -m benchmark run --method tagger --protocol ner`` twice on a fresh cache and
   store: cold, then warm (target: no encoder pass, >= 5x faster); prints both times.
3. Prints the peak resident memory of those runs (target < 4 GiB).
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmark.core.cache import FeatureCache
from benchmark.core.data.fewnerd import load_embedded
from benchmark.core.encoders import EncoderSettings

REPO = Path(__file__).resolve().parents[1]


def extraction(tmp: Path) -> None:
    sentences = [s.tokens for s in load_embedded().splits["train"]]
    cache = FeatureCache(tmp / "extraction")
    encoder = cache.encoder(EncoderSettings())
    model = encoder.model
    batches = [b.inputs for b in encoder.batches(sentences)]  # same batches, tokenized beforehand
    with torch.inference_mode():
        model(**batches[0])  # warm-up, not timed
        started = time.perf_counter()
        for inputs in batches:
            model(**inputs)
        bare = time.perf_counter() - started
    started = time.perf_counter()
    cache.word_features(sentences, EncoderSettings())
    ours = time.perf_counter() - started
    n = len(sentences)
    print(f"feature extraction, {n:,} sentences, minilm, {torch.get_num_threads()} threads")
    print(f"  bare model(**batch) loop: {bare:7.1f} s  {n / bare:6.1f} sentences/s")
    print(f"  harness (tokenize, pool, cache write): {ours:7.1f} s  {n / ours:6.1f} sentences/s")
    print(f"  throughput ratio harness / bare: {bare / ours:.2f}")


def tagger_runs(tmp: Path) -> None:
    env = {
        **os.environ,
        "BENCHMARK_CACHE_DIR": str(tmp / "cache"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
        "PYTHONPATH": str(REPO),
    }
    command = [sys.executable, "-m", "benchmark", "run", "--method", "tagger", "--protocol", "ner"]
    times = {}
    for name in ("cold", "warm"):
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        started = time.perf_counter()
        done = subprocess.run(command, env=env, cwd=tmp, capture_output=True, text=True, check=True)
        times[name] = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        stats = re.search(r"word features: .*", done.stdout).group(0)
        f1 = re.search(r"^1\s+(\S+)", done.stdout, re.MULTILINE).group(1)
        print(f"  {name} tagger run: {times[name]:6.1f} s  fine/micro_f1 {f1}  ({stats})")
        if peak > before:
            print(f"    peak resident memory of the largest run so far: {peak / 2**20:.2f} GiB")
    print(f"  warm speed-up: {times['cold'] / times['warm']:.1f}x")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        extraction(Path(tmp))
        print("tagger --protocol ner on the embedded default, fresh cache and store")
        tagger_runs(Path(tmp))


if __name__ == "__main__":
    main()
