"""One summary of a metric over a row's seeds, used by the command line, sweeps and reports.

Its spread is the sample standard deviation (``ddof=1``). One seed shows no spread: its ``std``
is NaN (never 0.0), it is printed as the mean alone, and a parent run logs no ``_std`` for it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class SeedSummary:
    """Mean, sample standard deviation (NaN for one seed) and number of seeds of one metric."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> SeedSummary:
        values = [float(v) for v in values]
        if not values:
            raise ValueError("a seed summary needs at least one value")
        return cls(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else math.nan, len(values))

    def format(self, digits: int = 4, seeds: bool = False) -> str:
        """``0.5200 ± 0.0045`` (one seed: ``0.5215``); with ``seeds``, the count after it
        (``0.5200 ± 0.0045 (3 seeds)``, ``0.5215 (1 seed)``)."""
        if math.isnan(self.mean):
            return "–"
        text = f"{self.mean:.{digits}f}" + ("" if math.isnan(self.std) else f" ± {self.std:.{digits}f}")
        return text + (f" ({self.n} seed{'s' if self.n != 1 else ''})" if seeds else "")

    def metrics(self, key: str) -> dict[str, float]:
        """``<key>_mean`` and, from two seeds on, ``<key>_std``: what a parent run logs."""
        return {f"{key}_mean": self.mean, **({} if math.isnan(self.std) else {f"{key}_std": self.std})}


def summarise_seeds(per_seed: Sequence[Mapping[str, float]]) -> dict[str, SeedSummary]:
    """Every metric of a row's seed runs (a metric some seeds lack is summarised over the others)."""
    keys = dict.fromkeys(key for metrics in per_seed for key in metrics)
    return {key: SeedSummary.of(m[key] for m in per_seed if key in m) for key in keys}
