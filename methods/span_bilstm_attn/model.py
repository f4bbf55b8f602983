"""The span classifier of the span-level paper and the batching that makes it fast on CPU.

The network reads only the words of one span: a BiLSTM over their vectors, dot-product
attention of every output against the final hidden state (forward and backward halves
concatenated), the attention-weighted sum of the outputs, and a linear layer. Spans are
batched by length (`benchmark.core.training.length_batches`), so a batch has no padding and the
final states are exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


class SpanBiLSTMAttention(nn.Module):
    """BiLSTM over a span's word vectors → attention against the final state → linear."""

    def __init__(self, dim: int, hidden: int, n_classes: int, learned_unknown: bool, dropout: float) -> None:
        super().__init__()
        # one trainable vector for words the static vocabulary lacks (the original's <unk> row)
        self.unknown = nn.Parameter(torch.zeros(dim)) if learned_unknown else None
        self.lstm = nn.LSTM(dim, hidden, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(2 * hidden, n_classes)

    def forward(self, words: torch.Tensor, unknown: torch.Tensor | None = None) -> torch.Tensor:
        """Class logits for spans of one length: ``words`` is (spans, length, dim); ``unknown``
        marks words without a vector (spans, length)."""
        if self.unknown is not None and unknown is not None:
            words = torch.where(unknown[..., None], self.unknown, words)
        outputs, (final, _) = self.lstm(words)
        query = torch.cat([final[0], final[1]], dim=-1)  # forward and backward final states
        weights = torch.softmax(torch.einsum("bld,bd->bl", outputs, query), dim=1)
        context = torch.einsum("bl,bld->bd", weights, outputs)
        return self.out(self.dropout(context))


@dataclass(frozen=True)
class WordMatrix:
    """Word vectors of a view's sentences stacked in one matrix; sentence ``i`` owns rows
    ``offsets[i]:offsets[i + 1]``. ``unknown`` flags rows without a static vector."""

    vectors: torch.Tensor
    offsets: np.ndarray
    unknown: torch.Tensor | None

    def spans(self, sentence: np.ndarray, start: np.ndarray, length: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Inputs for spans of one ``length``: (spans, length, dim) vectors and unknown flags."""
        rows = torch.from_numpy(self.offsets[sentence] + start)[:, None] + torch.arange(length)
        return self.vectors[rows], None if self.unknown is None else self.unknown[rows]
