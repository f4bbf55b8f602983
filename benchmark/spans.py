"""Entity spans: the value type every part of the harness exchanges."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

OUTSIDE = "O"


class Span(NamedTuple):
    """An entity mention: tokens ``start`` (inclusive) to ``end`` (exclusive) of one sentence.

    ``label`` is ``None`` where a protocol hands out untyped spans; ``score`` is the method's
    confidence (higher is surer) and is used for P@K.
    """

    sentence_id: int
    start: int
    end: int
    label: str | None
    score: float = 1.0


def spans_from_labels(sentence_id: int, labels: Sequence[str]) -> tuple[Span, ...]:
    """Entities of an IO-labelled sentence: maximal runs of one non-O label (Few-NERD's rule)."""
    spans: list[Span] = []
    start = 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            if labels[start] != OUTSIDE:
                spans.append(Span(sentence_id, start, i, labels[start]))
            start = i
    return tuple(spans)


def labels_from_spans(length: int, spans: Sequence[Span]) -> list[str]:
    """The IO label sequence of a sentence of ``length`` tokens holding ``spans``."""
    labels = [OUTSIDE] * length
    for span in spans:
        labels[span.start : span.end] = [span.label or OUTSIDE] * (span.end - span.start)
    return labels


def candidate_spans(sentence_lengths: Sequence[int], max_length: int) -> np.ndarray:
    """Every span of 1 to ``max_length`` tokens in each sentence, as rows ``(sentence, start,
    length)`` ordered by length, then sentence, then start (span enumeration for ``ner``)."""
    if max_length < 1:
        raise ValueError(f"max_length must be at least 1, got {max_length}")
    n = np.asarray(sentence_lengths, dtype=np.int64)
    parts = []
    for length in range(1, max_length + 1):
        starts_per_sentence = np.maximum(n - length + 1, 0)
        sentence = np.repeat(np.arange(len(n)), starts_per_sentence)
        first = np.cumsum(starts_per_sentence) - starts_per_sentence
        start = np.arange(len(sentence)) - np.repeat(first, starts_per_sentence)
        parts.append(np.stack([sentence, start, np.full_like(sentence, length)], axis=1))
    return np.concatenate(parts)


def greedy_non_overlapping(spans: Iterable[Span]) -> list[Span]:
    """The most confident spans that do not overlap: take spans by descending score (ties: the
    earlier, then the shorter span) and keep each that overlaps none kept before it."""
    taken: dict[int, list[tuple[int, int]]] = {}
    kept = []
    for span in sorted(spans, key=lambda s: (-s.score, s.sentence_id, s.start, s.end)):
        occupied = taken.setdefault(span.sentence_id, [])
        if all(span.end <= start or end <= span.start for start, end in occupied):
            occupied.append((span.start, span.end))
            kept.append(span)
    return sorted(kept)


def spans_from_bio(tags: Sequence[int]) -> list[tuple[int, int]]:
    """Untyped ``(start, end)`` spans from tags 0 = O, 1 = B, 2 = I; an I after O opens a span
    (the lenient reading, as seqeval's default)."""
    spans: list[tuple[int, int]] = []
    start = None
    for i, tag in enumerate([*tags, 0]):
        if start is not None and tag != 2:
            spans.append((start, i))
            start = None
        if tag != 0 and start is None:
            start = i
    return spans
