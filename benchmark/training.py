"""Shared helpers for methods that train networks: batching, decoding, dev scoring, early stopping."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence

import numpy as np

from benchmark.evaluate import evaluate
from benchmark.labels import LabelHierarchy
from benchmark.protocols import View
from benchmark.spans import OUTSIDE, Span, spans_from_bio, spans_from_labels


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
    """Strict span micro F1 on a training-level view (fine or coarse labels), via the evaluator."""
    gold = [s for e in view.examples for s in e.spans]
    hierarchy = LabelHierarchy.from_labels({s.label for s in gold} | {p.label for p in predicted})
    scores = evaluate(gold, predicted, len(view.examples), hierarchy, "spans", resamples=0)
    return scores.metrics["fine/micro_f1"]


class EarlyStopping:
    """Keeps the best state by dev score; ``step`` says whether to stop."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best_score = -np.inf
        self.best_state: dict | None = None
        self.best_epoch = -1
        self.history: list[float] = []

    def step(self, epoch: int, score: float, module) -> bool:
        self.history.append(score)
        if score > self.best_score:
            self.best_score, self.best_epoch = score, epoch
            self.best_state = copy.deepcopy(module.state_dict())
        return epoch - self.best_epoch >= self.patience

    def restore(self, module) -> None:
        if self.best_state is not None:
            module.load_state_dict(self.best_state)


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
