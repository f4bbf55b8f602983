"""The gazetteer (CoFEE's Matching baseline)."""

from __future__ import annotations

from benchmark.core.labels import FEWNERD
from benchmark.core.method import Context
from benchmark.core.protocols import Example, View
from benchmark.core.registry import PROTOCOLS
from benchmark.core.spans import Span, spans_from_labels
from methods.gazetteer.method import Gazetteer, GazetteerConfig


def _view(protocol, rows, split="train"):
    examples = []
    for i, (tokens, labels) in enumerate(rows):
        if split == "train":
            examples.append(Example(i, tuple(tokens), tuple(labels), spans_from_labels(i, labels)))
        else:
            given = tuple(Span(i, s.start, s.end, None) for s in spans_from_labels(i, labels))
            examples.append(Example(i, tuple(tokens), None, () if protocol == "ner" else given))
    return View(protocol, split, tuple(examples), FEWNERD)


TRAIN = [
    (["New", "York", "City", "is", "big"], ["location-GPE"] * 3 + ["O", "O"]),
    (["New", "York", "is", "big"], ["location-GPE"] * 2 + ["O", "O"]),
    (["New", "York", "Times", "said"], ["organization-media/newspaper"] * 3 + ["O"]),
    (["May", "said", "no"], ["person-politician", "O", "O"]),
    (["In", "May", "it", "rained"], ["O"] * 4),
    (["In", "May", "it", "snowed"], ["O"] * 4),
]


def _fit(config=None, protocol="ner"):
    return Gazetteer(config or GazetteerConfig()).fit(
        _view(protocol, TRAIN), _view(protocol, TRAIN[:1]), Context(1, None, None, None)
    )


def test_longest_match_wins():
    test = _view("ner", [(["the", "New", "York", "Times", "and", "New", "York", "City"], ["O"] * 8)], split="test")
    predicted = _fit().predict(test)
    assert [(s.start, s.end, s.label) for s in predicted] == [
        (1, 4, "organization-media/newspaper"),
        (5, 8, "location-GPE"),
    ]


def test_entity_ratio_filters_ambiguous_words():
    test = _view("ner", [(["In", "May", "New", "York"], ["O"] * 4)], split="test")
    assert [s.label for s in _fit().predict(test)] == ["person-politician", "location-GPE"]
    strict = _fit(GazetteerConfig(min_entity_ratio=0.5)).predict(test)
    assert [s.label for s in strict] == ["location-GPE"]
    may = next(s for s in _fit().predict(test) if s.label == "person-politician")
    assert may.score == 1 / 3  # one mention in three occurrences


def test_typing_falls_back_to_head_word_then_prior():
    rows = [
        (["Old", "York", "Times"], ["organization-media/newspaper"] * 3),
        (["Zzz"], ["person-actor"]),
        (["New", "York"], ["location-GPE"] * 2),
    ]
    predicted = _fit(protocol="typing").predict(_view("typing", rows, split="test"))
    assert [s.label for s in predicted] == ["organization-media/newspaper", "location-GPE", "location-GPE"]
    assert predicted[2].score > predicted[0].score > predicted[1].score


def test_real_data_ner_beats_nothing(small, tmp_path):
    protocol = PROTOCOLS["ner"]
    train = protocol.train_view(small.splits["train"], "train", small.hierarchy)
    method = Gazetteer().fit(train, train, Context(1, tmp_path, tmp_path, None))
    test = protocol.test_view(small.splits["test"], small.hierarchy)
    predicted = protocol.validate(method.predict(test), test)
    gold = {tuple(s[:4]) for sentence in small.splits["test"] for s in sentence.spans}
    assert sum(tuple(p[:4]) in gold for p in predicted) > 10
