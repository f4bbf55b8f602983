"""Span enumeration and the greedy non-overlapping decoder."""

from __future__ import annotations

import pytest

from benchmark.core.spans import Span, bio_tags, candidate_spans, greedy_non_overlapping, spans_from_bio


def test_candidate_spans_lists_every_span_up_to_the_maximum_once():
    rows = candidate_spans([3, 0, 1], max_length=2)
    assert [tuple(r) for r in rows] == [(0, 0, 1), (0, 1, 1), (0, 2, 1), (2, 0, 1), (0, 0, 2), (0, 1, 2)]


@pytest.mark.parametrize("max_length", [1, 4, 40])
def test_candidate_spans_count_and_bounds(max_length):
    lengths = [1, 5, 12, 30]
    rows = candidate_spans(lengths, max_length)
    expected = sum(max(0, n - k + 1) for n in lengths for k in range(1, max_length + 1))
    assert len(rows) == expected == len({tuple(r) for r in rows})
    assert (rows[:, 2] >= 1).all()
    assert (rows[:, 2] <= max_length).all()
    assert all(start + length <= lengths[s] for s, start, length in rows)


def test_candidate_spans_refuses_a_maximum_below_one():
    with pytest.raises(ValueError, match="at least 1"):
        candidate_spans([4], 0)


def test_greedy_decoding_keeps_the_most_confident_of_overlapping_spans():
    spans = [
        Span(0, 0, 3, "a", 0.6),  # overlaps the surer b and d → dropped
        Span(0, 2, 4, "b", 0.9),
        Span(0, 4, 5, "c", 0.5),  # touches b at a boundary only → kept
        Span(0, 1, 2, "d", 0.7),  # inside a but surer than a → kept
        Span(1, 0, 3, "e", 0.1),  # another sentence: never blocked by sentence 0
    ]
    assert greedy_non_overlapping(spans) == [spans[3], spans[1], spans[2], spans[4]]


def test_greedy_decoding_breaks_score_ties_by_position_then_length():
    spans = [Span(0, 1, 3, "long", 0.5), Span(0, 1, 2, "short", 0.5), Span(0, 0, 2, "first", 0.5)]
    assert greedy_non_overlapping(spans) == [Span(0, 0, 2, "first", 0.5)]
    assert greedy_non_overlapping(spans[:2]) == [Span(0, 1, 2, "short", 0.5)]


def test_typed_bio_tags_round_trip_and_a_type_change_opens_a_span():
    spans = [(0, 0, 2, 1), (0, 2, 3, 0), (1, 1, 4, 2)]
    tags = bio_tags([4, 5], spans)
    assert tags.tolist() == [3, 4, 1, 0, 0, 5, 6, 6, 0]
    assert spans_from_bio(tags[:4].tolist()) == [(0, 2, 1), (2, 3, 0)]
    assert spans_from_bio(tags[4:].tolist()) == [(1, 4, 2)]
    assert spans_from_bio([4, 2, 6, 0]) == [(0, 1, 1), (1, 2, 0), (2, 3, 2)]  # I of another type: a new span
