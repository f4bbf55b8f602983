"""Fine-tuning speed and memory: the harness's loop against a bare loop, an epoch, and sizing.

    python scripts/bench_finetune.py                 # throughput ratio, one epoch, peak memory
    python scripts/bench_finetune.py --steps 60 --no-epoch --encoders minilm mpnet   # quick / sizing

1. Throughput: ``tagger:finetune`` (the harness: bucketed batches, windowing, word pooling, the
   head, the recipe's AdamW, clipping and schedule, loss bookkeeping) trains for ``--steps``
   steps on the embedded training split; in the same process a bare loop —
   ``model(**batch); loss.backward(); opt.step()`` with a linear layer over the sub-word states —
   runs the very same batches, pre-tokenized. A 5-step harness fit runs first (CUDA start-up,
   allocator, kernels), and the bare loop's first step is not timed; the timed harness fit still
   includes its own first step (a fresh model, the optimizer's state). Prints sentences/s of
   both and their ratio (target >= 0.8).
2. One ``tagger:finetune`` epoch (``passes=1``, dev checked once on 200 sentences) with its
   seconds (target <= 8 minutes on 2 cores) and the process's peak resident memory (< 6 GiB).
3. Sizing: forward + backward sentences/s of a bare loop for each of ``--encoders`` and, from
   them, the hours one seed of ``tagger:finetune`` (2.43 passes) and of ``hier-soft:finetune``
   (up to 10 fine epochs) would take on the full Few-NERD supervised training set (131,767
   sentences).

Prints the device (CPU threads, or the GPU). Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import math
import resource
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from benchmark.core.cache import FeatureCache
from benchmark.core.config import resolve_config
from benchmark.core.data.fewnerd import load_embedded
from benchmark.core.encoders import unit_size
from benchmark.core.method import Context
from benchmark.core.registry import PROTOCOLS
from benchmark.core.seeding import seed_everything
from benchmark.core.training import autocast, bucketed_batches, device
from methods.tagger.method import Tagger

FULL_TRAIN = 131_767


def finetune_config(**overrides):
    chosen = Tagger.variants["finetune"].overrides
    config = resolve_config(Tagger.Config, preset=("finetune", chosen))
    return replace(config, **overrides)


def views(n_dev: int = 200):
    corpus = load_embedded()
    protocol = PROTOCOLS["ner"]
    train = protocol.train_view(corpus.splits["train"], "train", corpus.hierarchy)
    dev = protocol.train_view(corpus.splits["dev"][:n_dev], "dev", corpus.hierarchy)
    return train, dev


def harness(train, dev, steps: int, tmp: Path) -> tuple[float, int, float]:
    """Train ``tagger:finetune`` for ``steps`` steps; (seconds of the fit, steps, training
    sentences/s)."""
    config = finetune_config(passes=steps / math.ceil(len(train.examples) / 16), evaluations=1)
    (tmp / "work").mkdir(exist_ok=True)
    (tmp / "artifacts").mkdir(exist_ok=True)
    seed_everything(1)
    ctx = Context(1, tmp / "work", tmp / "artifacts", FeatureCache(tmp / "cache"))
    started = time.perf_counter()
    Tagger(config).fit(train, dev, ctx)
    seconds = time.perf_counter() - started
    sentences = ctx.metrics["train_sentences_per_second"]
    return seconds, int(ctx.metrics["steps"]), sentences


def bare(train, steps: int, encoder_name: str, tmp: Path) -> float:
    """Sentences/s of ``model(**batch); loss.backward(); opt.step()`` on the harness's batches."""
    from transformers import AutoModel

    config = finetune_config()
    encoder = FeatureCache(tmp / "cache").encoder(replace(config.encoder, name=encoder_name))
    tokens = [e.tokens for e in train.examples]
    units = encoder.units(tokens)
    groups = bucketed_batches(np.array([unit_size(u) for u in units]), 16, np.random.default_rng(1))[:steps]
    batches = [encoder.batch([units[i] for i in g], [len(tokens[i]) for i in g]).inputs for g in groups]
    model = AutoModel.from_pretrained(encoder.path).to(device()).train()
    head = torch.nn.Linear(encoder.dim, 67).to(device())
    optimizer = torch.optim.AdamW([*model.parameters(), *head.parameters()], lr=5e-5)
    torch.manual_seed(1)
    sentences, started = 0, 0.0
    for k, inputs in enumerate(batches):
        if k == 1:  # the first step (allocations, lazy init) is not timed
            started, sentences = time.perf_counter(), 0
        inputs = {key: value.to(device()) for key, value in inputs.items()}
        labels = torch.randint(0, 67, inputs["input_ids"].shape, device=device())
        with autocast():
            logits = head(model(**inputs).last_hidden_state).float()
        loss = torch.nn.functional.cross_entropy(logits.view(-1, 67), labels.view(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        sentences += inputs["input_ids"].shape[0]
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return sentences / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150, help="training steps of 16 sentences to time (150)")
    parser.add_argument("--no-epoch", action="store_true", help="skip the full epoch")
    parser.add_argument("--encoders", nargs="+", default=["minilm"], help="encoders to size (minilm, mpnet)")
    args = parser.parse_args()
    where = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {where}")
    train, dev = views()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        harness(train, dev, 5, tmp)  # warm-up, as the bare loop's untimed first step: lazy CUDA init, allocator
        seconds, steps, ours = harness(train, dev, args.steps, tmp)
        theirs = bare(train, args.steps, "minilm", tmp)
        print(f"throughput over {steps} steps of 16 sentences (minilm, max length 128):")
        print(f"  bare model(**batch); loss.backward(); opt.step(): {theirs:6.1f} sentences/s")
        print(f"  harness tagger:finetune loop:                    {ours:6.1f} sentences/s ({seconds:.1f} s fit)")
        print(f"  ratio harness / bare: {ours / theirs:.2f}")
        if not args.no_epoch:
            per_epoch = math.ceil(len(train.examples) / 16)
            seconds, steps, rate = harness(train, dev, per_epoch, tmp)
            print(f"one tagger:finetune epoch ({len(train.examples):,} sentences, {steps} steps): {seconds:.0f} s")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"peak resident memory of this process: {peak:.2f} GiB")
        print(f"sizing on the full supervised training set ({FULL_TRAIN:,} sentences), one seed:")
        for name in args.encoders:
            rate = theirs if name == "minilm" else bare(train, min(args.steps, 60), name, tmp)
            epoch_hours = FULL_TRAIN / rate / 3600
            print(
                f"  {name}: {rate:.1f} sentences/s forward+backward; one epoch {epoch_hours:.1f} h; "
                f"tagger:finetune (2.43 passes) {2.43 * epoch_hours:.1f} h; "
                f"hier-soft:finetune (up to 10 fine epochs) {10 * epoch_hours:.1f} h"
            )


if __name__ == "__main__":
    main()
