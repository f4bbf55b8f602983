"""The label-name zero-shot baseline."""

from __future__ import annotations

from benchmark.core.labels import FEWNERD, FINE_NAME_GLOSSES, coarse_of, label_text
from benchmark.core.registry import PROTOCOLS
from methods.label_name.method import LabelName, LabelNameConfig


def test_label_texts():
    assert label_text("person-politician") == "politician person"
    assert label_text("organization-government/governmentagency") == "government/governmentagency organization"
    assert label_text("organization-government/governmentagency", "readable") == "government agency organization"
    assert all(label_text(f, "readable") for f in FEWNERD.fine_types)
    # readable spells compounds out and adds no word; described may gloss (every gloss is in
    # FINE_NAME_GLOSSES)
    assert label_text("location-GPE", "readable") == "GPE location"
    assert label_text("location-GPE", "described") == "country city state location"
    assert label_text("organization-sportsteam", "described") == label_text("organization-sportsteam", "readable")
    for fine in FEWNERD.fine_types:  # every word of a readable text is spelled in the raw one
        assert all(word in label_text(fine) for word in label_text(fine, "readable").split())
    changed = {f for f in FEWNERD.fine_types if label_text(f, "described") != label_text(f, "readable")}
    assert changed == {f for f in FEWNERD.fine_types if f.split("-", 1)[1] in FINE_NAME_GLOSSES} == {"location-GPE"}


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
