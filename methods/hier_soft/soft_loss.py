"""The hierarchy-aware soft loss: gold labels smoothed by a type-confusion weight matrix W.

The soft gold distribution of an entity of type ``g`` is row ``g`` of W, normalised to sum to
one; the loss is the cross-entropy against it. W comes from the type hierarchy (1 for the gold
type, β for its siblings under the same coarse type, γ for every other type), from a first
model's dev confusion matrix, or from a CSV file. With β = γ = 0, W is the identity and the
loss is plain cross-entropy (the "w/o soft loss" ablation).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.core.errors import ConfigError
from benchmark.core.labels import coarse_of


def hierarchy_weights(types: Sequence[str], beta: float, gamma: float) -> np.ndarray:
    """W over ``types`` (``coarse-fine`` names): 1 on the diagonal, ``beta`` between siblings,
    ``gamma`` between types under different coarse types."""
    coarse = np.array([coarse_of(t) for t in types])
    weights = np.where(coarse[:, None] == coarse[None, :], beta, gamma).astype(np.float64)
    np.fill_diagonal(weights, 1.0)
    return weights


def confusion_weights(confusion: np.ndarray) -> np.ndarray:
    """W from a confusion matrix (rows: gold, columns: predicted): 1 on the diagonal and, off
    it, the share of the gold type's entities predicted as the other type. A type without
    examples keeps a one-hot row."""
    counts = np.asarray(confusion, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    weights = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    np.fill_diagonal(weights, 1.0)
    return weights


def soft_targets(weights: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
    """The soft gold distributions: the rows of W picked by ``gold``, each summing to one."""
    rows = weights[gold]
    return rows / rows.sum(dim=-1, keepdim=True)


def soft_cross_entropy(logits: torch.Tensor, gold: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``logits`` against the soft targets of ``gold`` under W."""
    return F.cross_entropy(logits, soft_targets(weights, gold))


def check_weights(weights: np.ndarray, n_types: int, source: str = "W") -> None:
    """Refuse a W that cannot define soft targets: wrong shape, non-finite or negative entries,
    or a non-positive diagonal (the gold type must keep weight)."""
    if weights.shape != (n_types, n_types):
        raise ConfigError(f"{source}: W must be {n_types}×{n_types} (one row and column per type), got {weights.shape}")
    if not np.isfinite(weights).all():
        raise ConfigError(f"{source}: W has non-finite entries")
    if (weights < 0).any():
        i, j = np.argwhere(weights < 0)[0]
        raise ConfigError(f"{source}: W has a negative weight {weights[i, j]} at row {i + 1}, column {j + 1}")
    if (np.diag(weights) <= 0).any():
        i = int(np.flatnonzero(np.diag(weights) <= 0)[0])
        raise ConfigError(f"{source}: the diagonal of W must be positive (the gold type keeps weight); row {i + 1}")


def read_weights(path: Path, types: Sequence[str]) -> np.ndarray:
    """W from a CSV file: a header row ``type,<type 1>,…,<type n>`` and one row per type
    (its name, then its weights); rows and columns may come in any order."""
    where = str(path)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except OSError as error:
        raise ConfigError(f"{where}: cannot read the weight matrix ({error.strerror})") from None
    if not rows:
        raise ConfigError(f"{where}: empty file; expected a header row 'type,<type 1>,…' and one row per type")
    columns = rows[0][1:]
    expected = set(types)
    if set(columns) != expected or len(columns) != len(expected):
        missing, unknown = sorted(expected - set(columns)), sorted(set(columns) - expected)
        raise ConfigError(
            f"{where}, line 1: the header must name each of the {len(types)} types once "
            f"(missing {missing[:3]}, unknown {unknown[:3]}, {len(columns)} columns)"
        )
    position = {t: k for k, t in enumerate(columns)}
    order = [position[t] for t in types]
    found: dict[str, np.ndarray] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        name = row[0]
        if name not in expected or name in found:
            raise ConfigError(f"{where}, line {line}: {name!r} is not a type or repeats one")
        if len(row) != len(columns) + 1:
            raise ConfigError(f"{where}, line {line}: expected {len(columns)} weights, got {len(row) - 1}")
        try:
            values = np.array([float(x) for x in row[1:]])
        except ValueError:
            raise ConfigError(f"{where}, line {line}: weights must be numbers") from None
        if (values < 0).any() or not np.isfinite(values).all():
            raise ConfigError(f"{where}, line {line}: weights must be finite and non-negative")
        found[name] = values[order]
    if len(found) != len(types):
        absent = sorted(expected - set(found))
        raise ConfigError(f"{where}: {len(absent)} types have no row, e.g. {absent[0]!r}")
    weights = np.stack([found[t] for t in types])
    check_weights(weights, len(types), where)
    return weights


def write_weights(path: Path, weights: np.ndarray, types: Sequence[str]) -> None:
    """W as a CSV file that `read_weights` reads back."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["type", *types])
        for name, row in zip(types, weights, strict=True):
            writer.writerow([name, *(f"{x:.6g}" for x in row)])
