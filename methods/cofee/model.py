"""CoFEE-BERT on frozen word features, and the pieces of its three stages.

The network is a trainable ReLU layer over the encoder's word vectors (our stand-in for
fine-tuning BERT: the stages must share trainable weights for pre-training to carry over) with
one linear BIO tag head per stage and a linear cluster classifier ``W_c`` over entity vectors.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import softmax
from torch import nn

from benchmark.core.cache import word_rows
from benchmark.core.spans import Span, greedy_non_overlapping


class CofeeNet(nn.Module):
    """Word vectors → shared ReLU layer ``h`` → per-stage BIO logits; ``W_c`` over entities."""

    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.shared = nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.heads = nn.ModuleDict()
        self.hidden = hidden

    def add_head(self, name: str, size: int) -> None:
        """A fresh linear layer of ``size`` outputs over ``h`` (a stage's tags, or the clusters)."""
        self.heads[name] = nn.Linear(self.hidden, size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shared(x)


def pool_spans(h: torch.Tensor, starts: np.ndarray, ends: np.ndarray) -> torch.Tensor:
    """Sum-pooled rows ``h[start:end]`` of each span (the paper's entity vector ``e_i``)."""
    lengths = ends - starts
    owner = torch.from_numpy(np.repeat(np.arange(len(starts)), lengths))
    rows = torch.from_numpy(word_rows(starts, lengths))
    return h.new_zeros(len(starts), h.shape[1]).index_add_(0, owner, h[rows])


def pick_spans(probabilities: np.ndarray, delta: float) -> list[tuple[int, int, int]]:
    """Iterative self-picking on one sentence: a span of type ``t`` starts where P(B-t) > δ and
    runs while P(I-t) > δ, so its start and end are both above δ (the paper's rule on start and
    end indices, read on BIO tags). Overlaps go to the span whose weaker end is surer.

    ``probabilities``: (words, 1 + 2 · types) with columns O, B-0, I-0, B-1, …
    Returns ``(start, end, type)`` triples.
    """
    begins = probabilities[:, 1::2] > delta
    insides = probabilities[:, 2::2] > delta
    candidates = []
    for start, kind in zip(*np.nonzero(begins), strict=True):
        end = start + 1
        while end < len(probabilities) and insides[end, kind]:
            end += 1
        score = probabilities[start, 1 + 2 * kind]
        if end > start + 1:
            score = min(score, probabilities[end - 1, 2 + 2 * kind])
        candidates.append(Span(0, int(start), int(end), int(kind), float(score)))  # type: ignore[arg-type]
    return [(s.start, s.end, int(s.label)) for s in greedy_non_overlapping(candidates)]  # type: ignore[arg-type]


def cluster_variances(vectors: np.ndarray, assignment: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """``V_k``: the sum of squared distances of cluster ``k``'s members to its centre."""
    distances = ((vectors - centres[assignment]) ** 2).sum(axis=1)
    return np.bincount(assignment, weights=distances, minlength=len(centres))


def variance_weights(variances: np.ndarray) -> np.ndarray:
    """The paper's Eq. 10: ``α_k = softmax_k(1 / V_k)``. A cluster with ``V_k = 0`` (a single
    member, or identical ones) would take all the weight; it gets 0 and is left out of the
    softmax instead."""
    alpha = np.zeros(len(variances))
    spread = variances > 0
    if spread.any():
        alpha[spread] = softmax(1.0 / variances[spread])
    return alpha


def variance_weighted_loss(logits: torch.Tensor, pseudo: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """The paper's Eq. 9: ``-1/M Σ_i α_{y_i} log P_c(y_i | e_i)`` over M entities."""
    return (alpha[pseudo] * F.cross_entropy(logits, pseudo, reduction="none")).mean()


def split_rows(values: np.ndarray, counts: Sequence[int]) -> list[np.ndarray]:
    """A flat per-word array cut back into sentences."""
    return np.split(values, np.cumsum(counts)[:-1])
