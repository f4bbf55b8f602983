"""The multi-task network of the slides.

A 2-layer BiLSTM (200 hidden units) runs over a sentence's word vectors. Its states feed a
detection head (untyped BIO tags, one linear layer) and a type head (a 2-layer feed-forward
network with ReLU) over each span, represented by the states of its first and last words.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence


class HierSoftNet(nn.Module):
    """BiLSTM states → BIO detection logits per word and type logits per span."""

    def __init__(self, dim: int, hidden: int, n_types: int, dropout: float) -> None:
        super().__init__()
        self.lstm = nn.LSTM(dim, hidden, num_layers=2, bidirectional=True, batch_first=True, dropout=dropout)
        self.dropout = nn.Dropout(dropout)
        self.detect = nn.Linear(2 * hidden, 3)
        self.type_hidden = nn.Sequential(nn.Linear(4 * hidden, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.type_out = nn.Linear(hidden, n_types)

    def states(self, words: torch.Tensor, counts: Sequence[int]) -> torch.Tensor:
        """BiLSTM states of the words of several sentences, flat (words, 2·hidden), in the
        order of ``words`` (sentence after sentence, ``counts`` words each)."""
        if len(set(counts)) == 1:  # one length (see `length_batches`): no padding, no packing
            out, _ = self.lstm(words.view(len(counts), counts[0], -1))
            return self.dropout(out.reshape(-1, out.shape[-1]))
        padded = pad_sequence(words.split(list(counts)), batch_first=True)
        lengths = torch.tensor(counts)
        packed = pack_padded_sequence(padded, lengths, batch_first=True, enforce_sorted=False)
        out, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True)
        mask = torch.arange(out.shape[1])[None, :] < lengths[:, None]
        return self.dropout(out[mask.to(out.device)])

    def type_logits(self, states: torch.Tensor, first: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """Type logits of spans given by the flat rows of their first and last words."""
        return self.type_out(self.type_hidden(torch.cat([states[first], states[last]], dim=-1)))

    def retarget(self, parent: Sequence[int]) -> None:
        """Swap the type output layer for one over finer types; fine type ``k`` starts from the
        weights of its coarse type ``parent[k]`` (coarse → fine transfer)."""
        old = self.type_out
        self.type_out = nn.Linear(old.in_features, len(parent)).to(old.weight.device)
        with torch.no_grad():
            self.type_out.weight.copy_(old.weight[list(parent)])
            self.type_out.bias.copy_(old.bias[list(parent)])
