"""NNShot, Few-NERD's nearest-neighbour baseline (Ding et al., 2021, its model/nnshot.py; Yang and
Katiyar, 2020), on frozen features: each query word takes the label of its nearest support word (``O`` words
included; negative squared Euclidean distance), runs of one label are its entities. Training-free.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from benchmark.core.method import Settings
from methods.protobert.method import ProtoBERT, similarity


class NNShot(ProtoBERT):
    """Few-NERD's NNShot, training-free: each query word takes its nearest support word's label."""

    defaults = Settings(
        "paper",
        "Few-NERD's model/nnshot.py: the nearest support word's label, O included, negative squared Euclidean "
        "distance; training-free on frozen MiniLM (the paper meta-trains BERT: not done here)",
    )
    variants: ClassVar[dict[str, Settings]] = {}

    def scores(self, query: torch.Tensor, support: torch.Tensor, tags: torch.Tensor, n_labels: int) -> torch.Tensor:
        """(query words, labels): each label's best similarity over its support words (-inf for a
        label without support words)."""
        near = similarity(query, support, self.config.distance)
        columns = [
            near[:, tags == label].max(dim=1).values if (tags == label).any() else torch.full((len(query),), -torch.inf)
            for label in range(n_labels)
        ]
        return torch.stack(columns, dim=1)
