"""Incomplete dictionaries: a seeded share of the distinct entity strings, drawn so that methods
building a dictionary from slightly different spans (fine or coarse labels) share it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from benchmark.core.errors import ConfigError

Key = tuple[str, ...]  # an entity string, as its tokens


def check_fraction(name: str, fraction: float) -> None:
    """A dictionary share must keep some strings: 0 would leave no distant labels at all."""
    if fraction == 0:
        raise ConfigError(f"{name}=0 keeps no dictionary strings, so there would be no distant labels; use (0, 1]")
    if not 0 < fraction <= 1:
        raise ConfigError(f"{name} must lie in (0, 1], got {fraction}")


def sample_keys(keys: Iterable[Key], fraction: float, seed: int) -> set[Key]:
    """``fraction`` of the distinct ``keys`` (at least one), drawn with ``seed``; all for 1.

    A key's draw depends on the key and the seed only (the keys with the smallest seeded
    sha256), so two nearly equal key sets give nearly the same sample: `cofee`, whose strings
    come from coarse-label spans, and `gazetteer:half`, from fine-label spans, share their
    dictionary but for the few strings only one of them has."""
    distinct = set(keys)
    if fraction >= 1:
        return distinct
    size = max(1, round(fraction * len(distinct)))
    drawn = sorted(distinct, key=lambda key: hashlib.sha256(f"{seed}\x1f{chr(31).join(key)}".encode()).digest())
    return set(drawn[:size])
