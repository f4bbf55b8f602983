"""StructShot's pieces against Few-NERD's definitions: the abstract transitions, their projection
onto an episode's labels, and Viterbi against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from methods.structshot.method import FLOOR, abstract_transitions, episode_transitions, viterbi


def test_the_seven_abstract_transitions_are_counted_as_few_nerd_counts_them():
    a, b = "person-actor", "location-GPE"
    found = abstract_transitions([["O", a, a, "O"], [a, b, "O"], ["O", "O"]])
    # starts: O, entity, O; O→O 1, O→entity 1; entity→O 2, →same 1, →another 1
    assert found == pytest.approx([2 / 3, 1 / 3, 1 / 2, 1 / 2, 2 / 4, 1 / 4, 1 / 4])


def test_the_projection_spreads_raises_to_tau_and_renormalises():
    abstract = np.array([0.8, 0.2, 0.9, 0.1, 0.5, 0.4, 0.1])
    start, transitions = episode_transitions(abstract, n_types=2, tau=1.0)
    assert np.exp(start) == pytest.approx([0.8, 0.1, 0.1])
    assert np.exp(transitions[0]) == pytest.approx([0.9, 0.05, 0.05])
    assert np.exp(transitions[1]) == pytest.approx([0.5, 0.4, 0.1])  # a type: O, itself, the other
    flat_start, _ = episode_transitions(abstract, n_types=2, tau=0.5)
    expected = np.sqrt([0.8, 0.1, 0.1])
    assert np.exp(flat_start) == pytest.approx(expected / expected.sum())  # tau < 1 flattens
    _, one_type = episode_transitions(abstract, n_types=1, tau=1.0)
    assert np.exp(one_type[1, 1]) == pytest.approx(0.4 / 0.9)  # no other type to move to
    _, never = episode_transitions(np.array([1, 0, 1, 0, 1, 0, 0.0]), n_types=2, tau=1.0)
    assert np.exp(never[0, 1]) == pytest.approx(FLOOR)


def _path_score(path, emissions, start, transitions) -> float:
    steps = enumerate(itertools.pairwise(path))
    return start[path[0]] + emissions[0, path[0]] + sum(transitions[p, q] + emissions[t + 1, q] for t, (p, q) in steps)


def test_viterbi_finds_the_best_path():
    rng = np.random.default_rng(0)
    for _ in range(20):
        emissions, start, transitions = rng.normal(size=(5, 3)), rng.normal(size=3), rng.normal(size=(3, 3))
        paths = itertools.product(range(3), repeat=5)
        best = max(paths, key=lambda path: _path_score(path, emissions, start, transitions))
        assert viterbi(emissions, start, transitions) == list(best)
