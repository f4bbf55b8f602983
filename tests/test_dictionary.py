"""Incomplete dictionaries: the seeded share of entity strings gazetteer and cofee draw."""

from __future__ import annotations

import pytest

from benchmark.core.dictionary import check_fraction, sample_keys
from benchmark.core.errors import ConfigError


def test_an_incomplete_dictionary_keeps_the_same_strings_for_a_seed():
    keys = [(f"w{i}",) for i in range(40)] + [("w0",)]  # 40 distinct strings
    half = sample_keys(keys, 0.5, seed=3)
    assert len(half) == 20
    assert half <= set(keys)
    assert half == sample_keys(reversed(keys), 0.5, seed=3)  # order of appearance does not matter
    assert half != sample_keys(keys, 0.5, seed=4)
    assert sample_keys(keys, 1.0, seed=3) == set(keys)
    assert len(sample_keys(keys, 0.001, seed=3)) == 1
    # a key's draw does not depend on the other keys: a nearly equal set gives nearly the same sample
    fewer = keys[:-3]
    assert len(half - sample_keys(fewer, 0.5, seed=3)) <= 4


@pytest.mark.parametrize(("fraction", "message"), [(0.0, "keeps no dictionary strings"), (1.5, r"in \(0, 1\]")])
def test_a_share_must_keep_some_strings(fraction, message):
    with pytest.raises(ConfigError, match=message):
        check_fraction("fraction", fraction)
    check_fraction("fraction", 1.0)
