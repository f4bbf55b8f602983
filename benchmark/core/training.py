"""Shared helpers for methods that train networks: word vectors, batching, decoding, dev scoring,
early stopping."""

from __future__ import annotations

import contextlib
import copy
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from benchmark.core.protocols import View
from benchmark.core.spans import OUTSIDE, Span, spans_from_bio, spans_from_labels
from benchmark.ui.progress import Curve

if TYPE_CHECKING:
    from benchmark.core.encoders import TransformerEncoder


def decode_io(sentence_id: int, probabilities: np.ndarray, labels: Sequence[str]) -> list[Span]:
    """IO spans from per-word label probabilities; a span's score is its mean top probability."""
    best = probabilities.argmax(axis=1)
    spans = spans_from_labels(sentence_id, [labels[i] for i in best])
    top = probabilities.max(axis=1)
    return [s._replace(score=float(top[s.start : s.end].mean())) for s in spans]


def decode_bio(probabilities: np.ndarray) -> list[tuple[int, int, int, float]]:
    """Argmax BIO decoding of one sentence's tag probabilities (columns as `bio_tags`):
    ``(start, end, type, score)`` with the span's mean top probability as its score."""
    best = probabilities.argmax(axis=1)
    top = probabilities.max(axis=1)
    return [(a, b, kind, float(top[a:b].mean())) for a, b, kind in spans_from_bio(best.tolist())]


def vote_in_span(probabilities: np.ndarray, labels: Sequence[str]) -> tuple[str, float]:
    """Typing a given span: majority of the words' best non-O labels (ties: summed probability)."""
    allowed = [i for i, label in enumerate(labels) if label != OUTSIDE]
    sub = probabilities[:, allowed]
    votes = np.bincount(sub.argmax(axis=1), minlength=len(allowed)).astype(float)
    votes += sub.sum(axis=0) / (len(sub) + 1)  # a fraction below one vote: breaks ties only
    choice = int(votes.argmax())
    return labels[allowed[choice]], float(sub[:, choice].mean())


def dev_f1(predicted: Sequence[Span], view: View) -> float:
    """Strict span micro F1 (the evaluator's ``micro_f1``) on a training-level view, fine or
    coarse labels: 2·tp / (predicted + gold). Kept apart from `benchmark.evaluate` so that a
    change to the reported metrics never changes what a method trains (nor its fingerprint)."""
    gold = Counter((s.sentence_id, s.start, s.end, s.label) for e in view.examples for s in e.spans)
    guessed = Counter((s.sentence_id, s.start, s.end, s.label) for s in predicted)
    total = sum(gold.values()) + sum(guessed.values())
    return 2 * sum((gold & guessed).values()) / total if total else 0.0


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


def word_rows(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Rows of a flat word matrix holding sentences that start at ``starts`` with ``lengths``
    words, one sentence after another (gathering a batch of sentences from cached features)."""
    ends = np.cumsum(lengths)
    return np.arange(ends[-1] if len(ends) else 0) - np.repeat(ends - lengths, lengths) + np.repeat(starts, lengths)


class WordSource:
    """Word vectors of a list of sentences, a batch of sentences at a time: rows of the shared
    feature cache (frozen encoder) or a live pass of a trainable encoder (fine-tuning)."""

    def __init__(
        self,
        sentences: Sequence[Sequence[str]],
        cached: np.ndarray | None = None,
        offsets: np.ndarray | None = None,
        encoder: TransformerEncoder | None = None,
        model: nn.Module | None = None,
    ) -> None:
        self.counts = np.array([len(s) for s in sentences])
        self.offsets = np.cumsum([0, *self.counts]) if offsets is None else offsets
        self.cached = None if cached is None else torch.from_numpy(np.asarray(cached, dtype=np.float32))
        self.encoder, self.model = encoder, model
        self.units = encoder.units(sentences) if encoder is not None else None

    def __len__(self) -> int:
        return len(self.counts)

    def rows(self, sentences: Sequence[int]) -> np.ndarray:
        """The flat word rows of ``sentences`` (in order) in the view's word numbering."""
        return word_rows(self.offsets[sentences], self.counts[sentences])

    def __call__(self, sentences: Sequence[int]) -> tuple[torch.Tensor, list[int]]:
        counts = self.counts[sentences].tolist()
        if self.cached is not None:
            return self.cached[torch.from_numpy(self.rows(sentences))], counts
        assert self.encoder is not None
        assert self.units is not None
        batch = self.encoder.batch([self.units[i] for i in sentences], counts)
        return self.encoder.forward(self.model, batch), counts


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
