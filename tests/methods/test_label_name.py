"""The label-name zero-shot baseline."""

from __future__ import annotations

from benchmark.labels import FEWNERD, coarse_of, label_text
from benchmark.protocols import PROTOCOLS
from methods.label_name.method import LabelName, LabelNameConfig


def test_label_texts():
    assert label_text("person-politician") == "politician person"
    assert label_text("organization-government/governmentagency") == "government/governmentagency organization"
    assert label_text("organization-government/governmentagency", "readable") == "government agency organization"
    assert all(label_text(f, "readable") for f in FEWNERD.fine_types)


def test_picks_a_fine_type_under_the_gold_coarse_type(small, ctx):
    protocol = PROTOCOLS["weak-typing"]
    train = protocol.train_view(small.splits["train"][:5], "train", small.hierarchy)
    test = protocol.test_view(small.splits["test"], small.hierarchy)
    method = LabelName(LabelNameConfig(label_names="readable")).fit(train, train, ctx)
    predicted = protocol.validate(method.predict(test), test)
    given = {(s.sentence_id, s.start, s.end): s.label for e in test.examples for s in e.spans}
    assert all(coarse_of(p.label) == given[(p.sentence_id, p.start, p.end)] for p in predicted)
    assert all(p.score >= 0 for p in predicted)
    gold = {(s.sentence_id, s.start, s.end): s.label for x in small.splits["test"] for s in x.spans}
    accuracy = sum(gold[(p.sentence_id, p.start, p.end)] == p.label for p in predicted) / len(predicted)
    assert accuracy > 0.2  # well above the chance floor of ~0.12
