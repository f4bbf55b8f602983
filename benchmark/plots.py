"""Figures logged with runs (matplotlib, PNG)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd


def plot_confusion(matrix: pd.DataFrame, path: Path, title: str) -> None:
    """Row-normalised confusion matrix (gold rows, predicted columns) as a heat map."""
    totals = matrix.sum(axis=1).replace(0, 1)
    normalised = matrix.div(totals, axis=0)
    size = max(6.0, 0.18 * len(matrix))
    fig, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(normalised.to_numpy(), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(matrix.columns)), matrix.columns, rotation=90, fontsize=6 if len(matrix) > 20 else 9)
    ax.set_yticks(range(len(matrix.index)), matrix.index, fontsize=6 if len(matrix) > 20 else 9)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.04, label="share of gold row")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_precision_at_k(correct_by_rank: list[bool], path: Path, title: str, marks: tuple[int, ...]) -> None:
    """Precision of the K most confident predictions, for every K (the marked K as points)."""
    import numpy as np

    correct = np.asarray(correct_by_rank, dtype=float)
    k = np.arange(1, len(correct) + 1)
    precision = np.cumsum(correct) / k
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(k, precision, lw=1)
    shown = [m for m in marks if m <= len(correct)]
    ax.scatter(shown, precision[np.array(shown, dtype=int) - 1], zorder=3)
    ax.set_xscale("log")
    ax.set_xlabel("K (most confident predictions)")
    ax.set_ylabel("precision@K")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
