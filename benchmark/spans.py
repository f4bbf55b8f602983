"""Entity spans: the value type every part of the harness exchanges."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

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
