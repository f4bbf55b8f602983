"""The chance floor of ``weak-typing``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import numpy as np

from benchmark.core.method import Context, Method, Settings, check_is_fitted
from benchmark.core.protocols import View
from benchmark.core.spans import Span


@dataclass(frozen=True)
class RandomWithinCoarseConfig:
    """No settings: the only knob is the run's seed."""


class RandomWithinCoarse(Method):
    """Uniform seeded choice among the fine types of each span's gold coarse type.

    Expected accuracy is the mean over test spans of 1 / (fine types under its coarse type);
    the score is a seeded uniform draw, so P@K is chance as well. Reads no training data.
    """

    protocols = frozenset({"weak-typing"})
    defaults = Settings("prior", "the chance floor: no settings")
    Config = RandomWithinCoarseConfig

    def fit(self, train: View, dev: View, ctx: Context) -> Self:
        self.seed_ = ctx.seed
        self.hierarchy_ = train.hierarchy
        return self

    def predict(self, view: View) -> list[Span]:
        check_is_fitted(self, "seed_")
        rng = np.random.default_rng(self.seed_)
        predictions = []
        for example in view.examples:
            for span in example.spans:
                options = self.hierarchy_.fines_of(span.label)  # all fine types if the coarse is withheld
                label = options[rng.integers(len(options))]
                predictions.append(Span(span.sentence_id, span.start, span.end, label, float(rng.random())))
        return predictions
