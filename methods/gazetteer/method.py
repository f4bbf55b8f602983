"""CoFEE's "Matching" baseline: a dictionary of training entity strings and their types."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar, Self

from benchmark.core.dictionary import Key, check_fraction, sample_keys
from benchmark.core.errors import ConfigError
from benchmark.core.method import Context, Method, Settings, check_is_fitted
from benchmark.core.protocols import View
from benchmark.core.spans import Span


@dataclass(frozen=True)
class GazetteerConfig:
    """``min_entity_ratio`` 0 is CoFEE's plain matching; a higher value drops strings that are
    mentions in fewer than that share of their training occurrences, counting occurrences that
    are a mention or lie wholly outside entities (e.g. "May", "The"). ``fraction`` keeps that
    share of the distinct entity strings, drawn by the run's seed (an incomplete dictionary, as
    in CoFEE §6.3; CoFEE's NEE stage draws the same strings for the same seed)."""

    min_entity_ratio: float = 0.0
    lowercase: bool = False
    fraction: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_entity_ratio <= 1.0:
            raise ConfigError(f"min_entity_ratio must lie in [0, 1], got {self.min_entity_ratio}")
        check_fraction("fraction", self.fraction)


class Gazetteer(Method):
    """Dictionary matching: each training entity string → its most frequent fine type.

    ``ner``: greedy longest match, left to right. ``typing``: exact lookup, falling back to the
    most frequent type of the span's last word among training entities, then to the most
    frequent type overall. Scores: the share of the chosen type among the string's training
    mentions, times the share of its occurrences that were mentions.
    """

    protocols = frozenset({"ner", "typing"})
    default_protocol = "ner"
    defaults = Settings("prior", "the complete training dictionary: every training entity string, longest match")
    variants: ClassVar[dict[str, Settings]] = {
        "half": Settings(
            "prior",
            "CoFEE's Matching with an incomplete dictionary: the half cofee's NEE stage draws (share fixed a priori)",
            {"fraction": 0.5},
        ),
    }
    Config = GazetteerConfig

    def fit(self, train: View, dev: View, ctx: Context) -> Self:
        types: dict[Key, Counter[str]] = defaultdict(Counter)
        heads: dict[str, Counter[str]] = defaultdict(Counter)
        overall: Counter[str] = Counter()
        strings = (self._normalise(e.tokens)[s.start : s.end] for e in train.examples for s in e.spans)
        kept = sample_keys(strings, self.config.fraction, ctx.seed)
        for example in train.examples:
            tokens = self._normalise(example.tokens)
            for span in example.spans:
                if tokens[span.start : span.end] not in kept:
                    continue
                types[tokens[span.start : span.end]][span.label] += 1
                heads[tokens[span.end - 1]][span.label] += 1
                overall[span.label] += 1
        self.prefixes_ = {key[:i] for key in types for i in range(1, len(key) + 1)}
        plain: Counter[Key] = Counter()  # occurrences outside any entity
        for example in train.examples:
            tokens = self._normalise(example.tokens)
            outside = [label == "O" for label in example.labels]
            for start in range(len(tokens)):
                plain.update(
                    key for key in self._matches(tokens, start, types) if all(outside[start : start + len(key)])
                )
        self.entries_: dict[Key, tuple[str, float]] = {}
        for key, counter in types.items():
            label, count = _most_common(counter)
            mentions = sum(counter.values())
            entity_ratio = mentions / (mentions + plain[key])
            if entity_ratio >= self.config.min_entity_ratio:
                self.entries_[key] = (label, count / mentions * entity_ratio)
        self.heads_ = {word: _share(counter) for word, counter in heads.items()}
        self.default_ = _share(overall)
        return self

    def predict(self, view: View) -> list[Span]:
        check_is_fitted(self, "entries_")
        if view.protocol == "ner":
            return [span for example in view.examples for span in self.tag(example.id, example.tokens)]
        return [self._type(example.tokens, span) for example in view.examples for span in example.spans]

    def _normalise(self, tokens: Sequence[str]) -> Key:
        return tuple(t.lower() for t in tokens) if self.config.lowercase else tuple(tokens)

    def _matches(self, tokens: Key, start: int, entries) -> Iterator[Key]:
        """Dictionary keys that start at ``start``, shortest first."""
        for end in range(start + 1, len(tokens) + 1):
            key = tokens[start:end]
            if key not in self.prefixes_:
                return
            if key in entries:
                yield key

    def tag(self, sentence_id: int, tokens: Sequence[str]) -> Iterator[Span]:
        """Dictionary matches in a sentence: greedy longest match, left to right."""
        normalised = self._normalise(tokens)
        start = 0
        while start < len(normalised):
            longest = max(self._matches(normalised, start, self.entries_), key=len, default=None)
            if longest is None:
                start += 1
                continue
            label, score = self.entries_[longest]
            yield Span(sentence_id, start, start + len(longest), label, score)
            start += len(longest)

    def _type(self, tokens: Sequence[str], span: Span) -> Span:
        normalised = self._normalise(tokens)
        key = normalised[span.start : span.end]
        if key in self.entries_:
            label, share = self.entries_[key]
            tier = 2
        elif key[-1] in self.heads_:
            (label, share), tier = self.heads_[key[-1]], 1
        else:
            (label, share), tier = self.default_, 0
        return Span(span.sentence_id, span.start, span.end, label, tier + share)


def _most_common(counter: Counter[str]) -> tuple[str, int]:
    """The most frequent label; ties go to the alphabetically first (deterministic)."""
    label = min(counter, key=lambda x: (-counter[x], x))
    return label, counter[label]


def _share(counter: Counter[str]) -> tuple[str, float]:
    """The most frequent label and its share of the counts."""
    label, count = _most_common(counter)
    return label, count / sum(counter.values())
