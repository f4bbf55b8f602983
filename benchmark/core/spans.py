"""Entity spans: the value type every part of the harness exchanges."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

OUTSIDE = "O"


class Span(NamedTuple):
    """An entity mention: tokens ``start`` (inclusive) to ``end`` (exclusive) of one sentence.

    ``label`` is ``None`` where a protocol hands out untyped spans; ``score`` is the method's
    confidence (higher is surer) and is used for P@K; ``cluster`` is the cluster a clustering
    method put the entity in (the evaluator scores it against the hidden fine labels).
    """

    sentence_id: int
    start: int
    end: int
    label: str | None
    score: float = 1.0
    cluster: int | None = None


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


def bio_tags(lengths: Sequence[int], spans: Iterable[Sequence[int]]) -> np.ndarray:
    """Flat BIO tags of sentences of ``lengths`` words holding ``(sentence, start, end)`` spans
    or ``(sentence, start, end, type)`` ones: 0 = O, ``1 + 2 * type`` = B, ``2 + 2 * type`` = I
    (untyped spans are type 0: tags O, B, I = 0, 1, 2)."""
    offsets = np.cumsum([0, *lengths])
    tags = np.zeros(offsets[-1], dtype=np.int64)
    for sentence, start, end, *kind in spans:
        begin = 1 + 2 * (kind[0] if kind else 0)
        tags[offsets[sentence] + start] = begin
        tags[offsets[sentence] + start + 1 : offsets[sentence] + end] = begin + 1
    return tags


def spans_from_bio(tags: Sequence[int]) -> list[tuple[int, int, int]]:
    """``(start, end, type)`` spans from the tags of `bio_tags`; an I after O or after another
    type's tag opens a span (the lenient reading, as seqeval's default)."""
    spans: list[tuple[int, int, int]] = []
    start, kind = None, -1
    for i, tag in enumerate([*tags, 0]):
        if start is not None and not (tag > 0 and tag % 2 == 0 and (tag - 2) // 2 == kind):
            spans.append((start, i, kind))
            start = None
        if tag != 0 and start is None:
            start, kind = i, (tag - 1) // 2
    return spans
