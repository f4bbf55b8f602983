"""The weak-typing chance floor."""

from __future__ import annotations

from collections import Counter

from benchmark.core.labels import coarse_of
from benchmark.core.method import Context
from benchmark.core.registry import PROTOCOLS
from methods.random_within_coarse.method import RandomWithinCoarse


def test_uniform_within_the_gold_coarse_type(corpus, tmp_path):
    protocol = PROTOCOLS["weak-typing"]
    train = protocol.train_view(corpus.splits["train"][:10], "train", corpus.hierarchy)
    test = protocol.test_view(corpus.splits["test"], corpus.hierarchy)
    predicted = RandomWithinCoarse().fit(train, train, Context(7, tmp_path, tmp_path, None)).predict(test)
    given = [s for e in test.examples for s in e.spans]
    assert all(coarse_of(p.label) == g.label for p, g in zip(predicted, given, strict=True))
    person = Counter(p.label for p, g in zip(predicted, given, strict=True) if g.label == "person")
    assert len(person) == 8
    assert max(person.values()) / min(person.values()) < 1.5  # ~276 draws each
    other_seed = RandomWithinCoarse().fit(train, train, Context(8, tmp_path, tmp_path, None)).predict(test)
    assert other_seed != predicted
