"""StructShot, Few-NERD's strongest baseline (Ding et al., 2021, its util/framework.py and
util/viterbi.py, after Yang and Katiyar, 2020): NNShot's word scores decoded by Viterbi over
*abstract* transitions, training-free.

Seven abstract probabilities (a sentence starts with O or an entity; O → O, O → entity; entity
→ O, → the same type, → another type) are counted from IO tag sequences and spread over an
episode's labels: start → each type s_i/N, O → each type o_i/N, a type → another x_y/(N-1).
They are raised to the power ``tau`` (< 1 flattens them), renormalised per row, and the query
sentence is decoded by Viterbi on log transitions plus the log of NNShot's softmax.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np

from benchmark.core.episodic import EpisodeTask, EpisodeView
from benchmark.core.errors import ConfigError
from benchmark.core.method import Context, Settings
from benchmark.core.protocols import View
from benchmark.core.spans import OUTSIDE, Span, spans_from_labels
from methods.nnshot.method import NNShot
from methods.protobert.method import ProtoConfig

#: ``tau`` of Few-NERD's README for StructShot, by (N, K): 0.32 in the 1-shot settings, 0.318 for
#: 5-way 5~10-shot and 0.434 for 10-way 5~10-shot
README_TAU = {(5, 1): 0.32, (10, 1): 0.32, (5, 5): 0.318, (10, 5): 0.434}
#: what Few-NERD puts where a transition is impossible after renormalising
FLOOR = 1e-6


@dataclass(frozen=True)
class StructShotConfig(ProtoConfig):
    """``tau``: the power of the abstract transitions (None: Few-NERD's README value of each
    setting, `README_TAU`); ``encoder``, ``distance`` and ``meta`` as NNShot's."""

    tau: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tau is not None and not self.tau > 0:
            raise ConfigError(f"tau must be positive, got {self.tau}")


class StructShot(NNShot):
    """Few-NERD's StructShot, training-free: NNShot's scores decoded by Viterbi over abstract transitions."""

    Config = StructShotConfig
    defaults = Settings(
        "paper",
        "Few-NERD's util/viterbi.py: NNShot emissions, the 7 abstract transitions (counted on the meta-training "
        "sentences' tags) spread over the episode's labels, tau from its README per setting; training-free",
    )
    variants: ClassVar[dict[str, Settings]] = {}

    def fit(self, train: View, dev: View, ctx: Context) -> Self:
        self.trained_transitions_ = abstract_transitions(e.labels for e in train.examples) if train.examples else None
        self.transitions_ = self.trained_transitions_  # what the dev checks of meta-training decode with
        return super().fit(train, dev, ctx)

    def predict(self, view: View) -> list[Span]:
        if isinstance(view, EpisodeView) and getattr(self, "trained_transitions_", None) is None:
            supports = (e.labels for task in view.episodes for e in task.support)
            self.transitions_ = abstract_transitions(supports)  # the support sets: the tags it may see
        else:
            self.transitions_ = getattr(self, "trained_transitions_", None)
        return super().predict(view)

    def decode(
        self, sentence: int, probabilities: np.ndarray, labels: tuple[str, ...], task: EpisodeTask
    ) -> list[Span]:
        """Viterbi over the episode's labels: log transitions plus the log of the word probabilities."""
        tau = self.config.tau or README_TAU.get((task.setting.n, task.setting.k), 0.32)
        start, log_transitions = episode_transitions(self.transitions_, len(labels) - 1, tau)
        path = viterbi(np.log(np.maximum(probabilities, 1e-30)), start, log_transitions)
        spans = spans_from_labels(sentence, [labels[i] for i in path])
        chosen = probabilities[np.arange(len(path)), path]
        return [s._replace(score=float(chosen[s.start : s.end].mean())) for s in spans]


def abstract_transitions(sequences: Iterable[Sequence[str]]) -> np.ndarray:
    """Few-NERD's 7 abstract probabilities from IO tag sequences: (start O, start entity, O → O,
    O → entity, entity → O, entity → same type, entity → another type)."""
    counts = np.zeros(7)
    for tags in sequences:
        if not tags:
            continue
        counts[0 if tags[0] == OUTSIDE else 1] += 1
        for before, after in itertools.pairwise(tags):
            if before == OUTSIDE:
                counts[2 if after == OUTSIDE else 3] += 1
            else:
                counts[4 if after == OUTSIDE else 5 if after == before else 6] += 1
    totals = np.array([counts[:2].sum()] * 2 + [counts[2:4].sum()] * 2 + [counts[4:].sum()] * 3)
    return np.divide(counts, totals, out=np.zeros(7), where=totals > 0)


def episode_transitions(abstract: np.ndarray, n_types: int, tau: float) -> tuple[np.ndarray, np.ndarray]:
    """The log start and transition probabilities over ``O`` and ``n_types`` types (label 0 = O),
    as Few-NERD's ``project_target_transitions``: spread, raised to ``tau``, renormalised per row,
    impossible moves set to `FLOOR`."""
    s_o, s_i, o_o, o_i, i_o, i_i, x_y = abstract
    matrix = np.zeros((n_types + 2, n_types + 1))  # rows: start, O, types; columns: O, types
    matrix[0, 0], matrix[0, 1:] = s_o, s_i / n_types
    matrix[1, 0], matrix[1, 1:] = o_o, o_i / n_types
    matrix[2:, 0] = i_o
    matrix[2:, 1:] = x_y / max(n_types - 1, 1)
    np.fill_diagonal(matrix[2:, 1:], i_i)
    matrix = matrix**tau
    matrix /= np.maximum(matrix.sum(axis=1, keepdims=True), 1e-300)
    matrix[matrix == 0] = FLOOR
    logs = np.log(matrix)
    return logs[0], logs[1:]


def viterbi(emissions: np.ndarray, start: np.ndarray, transitions: np.ndarray) -> list[int]:
    """The best label path: ``emissions`` (words, labels) and ``start`` (labels) log scores,
    ``transitions`` (labels, labels) log probabilities from row to column."""
    score = start + emissions[0]
    back = np.zeros(emissions.shape, dtype=np.int64)
    for t in range(1, len(emissions)):
        candidates = score[:, None] + transitions
        back[t] = candidates.argmax(axis=0)
        score = candidates.max(axis=0) + emissions[t]
    path = [int(score.argmax())]
    for t in range(len(emissions) - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    return path[::-1]
