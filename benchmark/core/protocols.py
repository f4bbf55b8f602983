"""Protocols: what a method may see in training, what it gets at test, what it must return.

| protocol      | training view             | test view                         | returns                 |
|---------------|---------------------------|-----------------------------------|-------------------------|
| ``weak-typing`` | tokens + coarse labels    | gold spans with gold coarse type  | fine type per span      |
| ``typing``      | tokens + fine labels      | gold spans, untyped               | fine type per span      |
| ``ner``         | tokens + fine labels      | tokens                            | typed spans             |

Views are built from scratch: a weak-typing view holds coarse labels only, so a method cannot
read fine labels through it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from benchmark.core.data.fewnerd import Sentence
from benchmark.core.errors import ProtocolViolation
from benchmark.core.labels import LabelHierarchy, coarse_of
from benchmark.core.spans import Span, spans_from_labels


@dataclass(frozen=True, slots=True)
class Example:
    """One sentence as a method sees it.

    In a training view ``labels`` are IO labels at the protocol's training level and ``spans``
    the entities they form; in a test view ``labels`` is ``None`` and ``spans`` are the spans
    the protocol hands out (typed coarse, untyped, or none).
    """

    id: int
    tokens: tuple[str, ...]
    labels: tuple[str, ...] | None = None
    spans: tuple[Span, ...] = ()


@dataclass(frozen=True)
class View:
    """A split as a protocol lets a method see it; ``hierarchy`` is the type inventory (names)."""

    protocol: str
    split: str
    examples: tuple[Example, ...]
    hierarchy: LabelHierarchy

    @property
    def is_training(self) -> bool:
        return self.split != "test"


@dataclass(frozen=True)
class Protocol:
    """One evaluation setting: the views it builds and the predictions it accepts."""

    name: str
    train_level: Literal["coarse", "fine"]
    test_spans: Literal["coarse", "untyped", "none"]
    headline: str
    summary: str
    main_metrics: tuple[str, ...]

    @property
    def scoring(self) -> Literal["typing", "spans"]:
        """How the evaluator scores it: one label per given span, or free span prediction."""
        return "spans" if self.test_spans == "none" else "typing"

    def train_view(self, sentences: Sequence[Sentence], split: str, hierarchy: LabelHierarchy) -> View:
        """Tokens with labels at this protocol's training level (used for train and dev)."""
        to_level = coarse_of if self.train_level == "coarse" else str
        examples = []
        for s in sentences:
            labels = tuple(to_level(label) for label in s.labels)
            examples.append(Example(s.id, s.tokens, labels, spans_from_labels(s.id, labels)))
        return View(self.name, split, tuple(examples), hierarchy)

    def test_view(self, sentences: Sequence[Sentence], hierarchy: LabelHierarchy, split: str = "test") -> View:
        """Tokens plus the spans this protocol gives at test time; never the fine gold labels.
        (``split`` names where the sentences come from: a sweep predicts dev this way.)"""
        examples = []
        for s in sentences:
            if self.test_spans == "none":
                spans: tuple[Span, ...] = ()
            elif self.test_spans == "coarse":
                spans = tuple(Span(x.sentence_id, x.start, x.end, coarse_of(x.label)) for x in s.spans)
            else:
                spans = tuple(Span(x.sentence_id, x.start, x.end, None) for x in s.spans)
            examples.append(Example(s.id, s.tokens, None, spans))
        return View(self.name, split, tuple(examples), hierarchy)

    def validate(self, predictions: Iterable[Span], view: View) -> list[Span]:
        """Check predictions against the protocol; return them with float scores."""
        fine = set(view.hierarchy.fine_types)
        lengths = {e.id: len(e.tokens) for e in view.examples}
        checked: dict[tuple[int, int, int], Span] = {}
        for p in predictions:
            key = (p.sentence_id, p.start, p.end)
            where = f"{self.name}: prediction {tuple(p)}"
            if p.sentence_id not in lengths or not 0 <= p.start < p.end <= lengths[p.sentence_id]:
                raise ProtocolViolation(f"{where} lies outside its sentence")
            if p.label not in fine:
                raise ProtocolViolation(f"{where} has a label that is not a fine type")
            if key in checked:
                raise ProtocolViolation(f"{where} repeats a span")
            score = float(p.score)
            if not math.isfinite(score):
                raise ProtocolViolation(f"{where} has a non-finite score")
            if p.cluster is not None and not (isinstance(p.cluster, int | np.integer) and p.cluster >= 0):
                raise ProtocolViolation(f"{where} has a cluster that is not a non-negative integer")
            checked[key] = Span(*key, p.label, score, None if p.cluster is None else int(p.cluster))
        if self.scoring == "typing":
            self._check_one_per_given_span(checked, view)
        else:
            self._check_no_overlap(checked.values())
        return sorted(checked.values())

    def _check_one_per_given_span(self, checked: dict, view: View) -> None:
        given = {(s.sentence_id, s.start, s.end): s.label for e in view.examples for s in e.spans}
        if set(checked) != set(given):
            missing, extra = len(set(given) - set(checked)), len(set(checked) - set(given))
            raise ProtocolViolation(
                f"{self.name}: predictions must type exactly the given spans ({missing} missing, {extra} not given)"
            )
        if self.test_spans == "coarse":
            for key, span in checked.items():
                if given[key] is not None and coarse_of(span.label) != given[key]:
                    raise ProtocolViolation(
                        f"{self.name}: {span.label!r} is not under the given coarse type {given[key]!r}"
                    )

    def _check_no_overlap(self, spans: Iterable[Span]) -> None:
        last: dict[int, int] = {}
        for span in sorted(spans):
            if span.start < last.get(span.sentence_id, 0):
                raise ProtocolViolation(f"{self.name}: predicted spans overlap at {tuple(span)}")
            last[span.sentence_id] = span.end


def withhold_coarse(view: View) -> View:
    """A weak-typing view whose spans carry no coarse type (``label=None``): the method must then
    choose among all fine types. A sweep scores such predictions at the coarse level, so it
    selects settings with coarse labels only."""
    examples = tuple(
        replace(e, labels=None, spans=tuple(s._replace(label=None) for s in e.spans)) for e in view.examples
    )
    return replace(view, examples=examples)


def coarse_view(view: View, boundaries: Literal["fine", "coarse"] = "fine") -> View:
    """``view`` with its spans' and labels' fine types replaced by their coarse types.

    ``boundaries="fine"`` keeps the spans as they are: two adjacent entities of one coarse type
    but different fine types stay two spans, a boundary only the fine labels draw.
    ``boundaries="coarse"`` re-derives the spans of labelled examples from the coarse labels
    alone (maximal runs of one coarse label, the rule the weak-typing training view uses), so
    no fine-label information is left in the view.
    """

    def coarse(e: Example) -> Example:
        labels = None if e.labels is None else tuple(coarse_of(x) for x in e.labels)
        if boundaries == "coarse" and labels is not None:
            return replace(e, labels=labels, spans=spans_from_labels(e.id, labels))
        spans = tuple(s._replace(label=None if s.label is None else coarse_of(s.label)) for s in e.spans)
        return replace(e, labels=labels, spans=spans)

    return replace(view, examples=tuple(coarse(e) for e in view.examples))
