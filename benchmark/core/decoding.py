"""Decoding a network's word probabilities into spans, and the dev score methods select by."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from benchmark.core.protocols import View
from benchmark.core.spans import OUTSIDE, Span, spans_from_bio, spans_from_labels


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
