"""Protocol views: what a method may see, and what it may return."""

from __future__ import annotations

import gc
import types

import pytest

from benchmark.core.data.fewnerd import Sentence
from benchmark.core.errors import BenchmarkError, ProtocolViolation
from benchmark.core.labels import FEWNERD, coarse_of
from benchmark.core.protocols import coarse_view
from benchmark.core.registry import PROTOCOLS, get_protocol
from benchmark.core.spans import Span


def reachable(root, skip):
    """Every data object reachable from ``root`` (not entering ``skip``, classes or modules)."""
    seen, stack, out = {id(skip)}, [root], []
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type | types.ModuleType):
            continue
        seen.add(id(obj))
        out.append(obj)
        stack.extend(gc.get_referents(obj))
    return out


def test_weak_typing_training_view_holds_no_fine_label(small):
    view = PROTOCOLS["weak-typing"].train_view(small.splits["train"], "train", small.hierarchy)
    objects = reachable(view, skip=view.hierarchy)  # the hierarchy lists type names, not labels
    fine = set(FEWNERD.fine_types)
    assert not [o for o in objects if isinstance(o, str) and o in fine]
    assert not [o for o in objects if isinstance(o, Sentence)]
    labels = {label for e in view.examples for label in e.labels}
    assert labels == {"O", *FEWNERD.coarse_types}
    assert sum(len(e.spans) for e in view.examples) == sum(len(s.spans) for s in small.splits["train"])


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_test_views_hold_no_gold_fine_label(small, protocol):
    view = PROTOCOLS[protocol].test_view(small.splits["test"], small.hierarchy)
    objects = reachable(view, skip=view.hierarchy)
    assert not [o for o in objects if isinstance(o, str) and o in set(FEWNERD.fine_types)]
    assert all(e.labels is None for e in view.examples)
    given = [s for e in view.examples for s in e.spans]
    if PROTOCOLS[protocol].test_spans == "none":  # ner, and the query sentences of episodes
        assert given == []
    else:
        assert len(given) == sum(len(s.spans) for s in small.splits["test"])


def test_fine_protocols_train_on_fine_labels(small):
    view = PROTOCOLS["typing"].train_view(small.splits["train"], "train", small.hierarchy)
    assert [e.labels for e in view.examples] == [s.labels for s in small.splits["train"]]


@pytest.fixture
def typing_view(small):
    return PROTOCOLS["weak-typing"].test_view(small.splits["test"][:5], small.hierarchy)


def _answer(view):
    return [s._replace(label=FEWNERD.fines_of(s.label)[0]) for e in view.examples for s in e.spans]


def test_validate_accepts_a_complete_answer(typing_view):
    answer = _answer(typing_view)
    assert PROTOCOLS["weak-typing"].validate(answer, typing_view) == sorted(answer)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a[1:], "1 missing"),
        (lambda a: [a[0]._replace(label="person-actor" if "person" not in a[0].label else "art-film"), *a[1:]],
         "not under the given coarse type"),
        (lambda a: [a[0]._replace(label="person"), *a[1:]], "not a fine type"),
        (lambda a: [*a, a[0]], "repeats a span"),
        (lambda a: [a[0]._replace(score=float("nan")), *a[1:]], "non-finite score"),
        (lambda a: [a[0]._replace(end=999), *a[1:]], "outside its sentence"),
        (lambda a: [a[0]._replace(cluster=-1), *a[1:]], "cluster that is not a non-negative integer"),
        (lambda a: [a[0]._replace(cluster=1.5), *a[1:]], "cluster that is not a non-negative integer"),
    ],
)  # fmt: skip
def test_validate_rejects_what_weak_typing_forbids(typing_view, change, message):
    with pytest.raises(ProtocolViolation, match=message):
        PROTOCOLS["weak-typing"].validate(change(_answer(typing_view)), typing_view)


def test_validate_keeps_clusters(typing_view):
    answer = [s._replace(cluster=i % 3) for i, s in enumerate(_answer(typing_view))]
    assert PROTOCOLS["weak-typing"].validate(answer, typing_view) == sorted(answer)


def test_coarse_view_maps_labels_and_spans_to_coarse_types(small):
    view = PROTOCOLS["ner"].train_view(small.splits["train"][:20], "train", small.hierarchy)
    coarse = coarse_view(view)
    for fine, mapped in zip(view.examples, coarse.examples, strict=True):
        assert mapped.labels == tuple(coarse_of(x) for x in fine.labels)
        assert mapped.spans == tuple(s._replace(label=coarse_of(s.label)) for s in fine.spans)


def test_coarse_boundaries_merge_neighbours_that_only_fine_labels_split(corpus):
    """Two adjacent entities of one coarse type but different fine types are one coarse span
    once the boundaries come from coarse labels, as the weak-typing training view draws them."""
    train = corpus.splits["train"]
    view = PROTOCOLS["ner"].train_view(train, "train", corpus.hierarchy)
    kept, redrawn = coarse_view(view), coarse_view(view, boundaries="coarse")
    weak = PROTOCOLS["weak-typing"].train_view(train, "train", corpus.hierarchy)
    assert [e.spans for e in redrawn.examples] == [e.spans for e in weak.examples]
    assert [e.labels for e in redrawn.examples] == [e.labels for e in kept.examples]
    merged = [(a, b) for a, b in zip(kept.examples, redrawn.examples, strict=True) if a.spans != b.spans]
    assert merged  # the embedded training split has such neighbours
    a, b = merged[0]
    assert len(b.spans) < len(a.spans)
    assert {(s.start, s.end) for s in b.spans} - {(s.start, s.end) for s in a.spans}


def test_ner_rejects_overlapping_predictions(small):
    view = PROTOCOLS["ner"].test_view(small.splits["test"][:1], small.hierarchy)
    overlapping = [Span(0, 0, 2, "art-film"), Span(0, 1, 3, "art-film")]
    with pytest.raises(ProtocolViolation, match="overlap"):
        PROTOCOLS["ner"].validate(overlapping, view)


def test_unknown_protocol_lists_valid_ones():
    with pytest.raises(BenchmarkError, match="unknown protocol 'nerr'; choose one of: weak-typing, typing, ner"):
        get_protocol("nerr")
