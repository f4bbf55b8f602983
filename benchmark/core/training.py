"""Helpers for methods that train networks: early stopping, the loss meter, batching,
optimisers, the device, autocast and accelerator settings."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from benchmark.ui.progress import Curve


class EarlyStopping:
    """Keeps the best state by dev score; ``step`` says whether to stop. With a ``curve``, every
    step is a point of the stage's learning curve and `restore` closes it with the kept epoch."""

    def __init__(self, patience: int, curve: Curve | None = None) -> None:
        self.patience = patience
        self.curve = curve
        self.best_score = -np.inf
        self.best_state: dict | None = None
        self.best_epoch = -1
        self.history: list[float] = []

    def step(self, epoch: int, score: float, module, loss: float | None = None) -> bool:
        self.history.append(score)
        if self.curve is not None:
            self.curve.point(loss, score)
        if score > self.best_score:
            self.best_score, self.best_epoch = score, epoch
            self.best_state = copy.deepcopy(module.state_dict())
        return epoch - self.best_epoch >= self.patience

    def restore(self, module) -> None:
        if self.best_state is not None:
            module.load_state_dict(self.best_state)
        if self.curve is not None:
            self.curve.close(self.best_epoch + 1)


class LossMeter:
    """Mean training loss of an epoch, weighted by batch size; summed where the loss lives (in
    float64), without a round trip to the host at every step."""

    def __init__(self) -> None:
        self.total: torch.Tensor | float = 0.0
        self.count = 0

    def add(self, loss: torch.Tensor, size: int) -> None:
        self.total = self.total + loss.detach().double() * size
        self.count += size

    @property
    def mean(self) -> float:
        return float(self.total) / max(self.count, 1)


def length_batches(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None = None
) -> Iterator[np.ndarray]:
    """Indices of items (spans, sentences) in batches of equal length, so a recurrent network
    needs no padding or packing; shuffled within and across lengths when ``rng`` is given,
    else in order of length (for prediction)."""
    batches = []
    for length in np.unique(lengths):
        members = np.flatnonzero(lengths == length)
        if rng is not None:
            members = rng.permutation(members)
        batches += np.array_split(members, -(-len(members) // batch_size))
    order = rng.permutation(len(batches)) if rng is not None else range(len(batches))
    for i in order:
        yield batches[i]


def bucketed_batches(sizes: np.ndarray, batch_size: int, rng: np.random.Generator, pool: int = 50) -> list[np.ndarray]:
    """Indices of items (sentences) in batches of similar size for dynamic padding: a random
    permutation is cut into pools of ``pool`` batches, each pool sorted by size and cut into
    batches, and the batches shuffled — random order, little padding."""
    order = rng.permutation(len(sizes))
    batches = []
    for start in range(0, len(order), pool * batch_size):
        chunk = order[start : start + pool * batch_size]
        chunk = chunk[np.argsort(sizes[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def grouped_adamw(modules: Sequence[nn.Module], lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW as BERT recipes set it up: no weight decay on biases and LayerNorm weights, ε = 1e-8,
    only parameters that require gradients."""
    decay, rest = [], []
    for module in modules:
        for name, parameter in module.named_parameters():
            if parameter.requires_grad:  # the recipe's rule: no decay for names with bias or LayerNorm.weight
                (rest if "bias" in name or "LayerNorm.weight" in name else decay).append(parameter)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, eps=1e-8)


def device() -> str:
    """``cuda`` when a GPU is visible, else ``cpu``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def autocast() -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (where it is safe for BERT-size encoders), nothing on CPU."""
    if torch.cuda.is_available():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def accelerator_settings(tf32: bool) -> dict[str, float]:
    """Set TF32 matmuls on CUDA as asked (an explicit setting, never a library default), and
    return what a run should record: device, TF32, bf16 autocast, deterministic algorithms."""
    cuda = torch.cuda.is_available()
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
    return {
        "cuda": float(cuda),
        "tf32": float(cuda and tf32),
        "bf16_autocast": float(cuda),
        "deterministic_algorithms": float(torch.are_deterministic_algorithms_enabled()),
    }
