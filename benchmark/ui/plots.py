"""Figures logged with runs (matplotlib, PNG)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def plot_confusion(matrices: dict[str, pd.DataFrame], path: Path, title: str) -> None:
    """Row-normalised confusion matrices (gold rows, predicted columns) as heat maps, one panel
    per run or method (``matrices``: name → the evaluator's confusion matrix)."""
    size = max(5.0, 0.18 * len(next(iter(matrices.values()))))
    columns = min(3, len(matrices))
    rows = -(-len(matrices) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(size * columns, size * rows), squeeze=False, layout="constrained")
    for ax in axes.flat[len(matrices) :]:
        ax.axis("off")
    for ax, (name, matrix) in zip(axes.flat, matrices.items(), strict=False):
        normalised = matrix.div(matrix.sum(axis=1).replace(0, 1), axis=0)
        image = ax.imshow(normalised.to_numpy(), cmap="Blues", vmin=0, vmax=1)
        fontsize = 6 if len(matrix) > 20 else 8
        ax.set_xticks(range(len(matrix.columns)), matrix.columns, rotation=90, fontsize=fontsize)
        ax.set_yticks(range(len(matrix.index)), matrix.index, fontsize=fontsize)
        ax.set_xlabel("predicted")
        ax.set_ylabel("gold")
        ax.set_title(name if len(matrices) > 1 else title, fontsize=9)
    fig.colorbar(image, ax=axes, fraction=0.03, label="share of gold row")
    if len(matrices) > 1:
        fig.suptitle(title)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_precision_at_k(curves: dict[str, np.ndarray], path: Path, title: str, marks: tuple[int, ...]) -> None:
    """Precision of the K most confident predictions for every K, one line per run or method
    (``curves``: name → the evaluator's `precision_curve`); the marked K as points."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, precision in curves.items():
        k = np.arange(1, len(precision) + 1)
        (line,) = ax.plot(k, precision, lw=1, label=name)
        shown = [m for m in marks if m <= len(precision)]
        ax.scatter(shown, precision[np.array(shown, dtype=int) - 1], zorder=3, s=12, color=line.get_color())
    ax.set_xscale("log")
    _finish_lines(fig, ax, len(curves), "K (most confident predictions)", "precision@K", title, path)


def plot_per_type_f1(tables: dict[str, pd.DataFrame], path: Path, title: str) -> None:
    """F1 of every fine type as one heat map: a row per run or method, a column per fine type,
    grouped and labelled by coarse type (``tables``: name → the evaluator's per-type table, or a
    mean of them over seeds). Sized to fit a screen: 28 rows are about 1,400 × 1,000 pixels."""
    fine = {name: table[table["level"] == "fine"].set_index("type")["f1"] for name, table in tables.items()}
    matrix = pd.DataFrame(fine).T
    types = list(matrix.columns)
    coarse = [t.split("-")[0] for t in types]
    fig, ax = plt.subplots(figsize=(14, 0.26 * len(matrix) + 2.6), layout="constrained")
    image = ax.imshow(matrix.to_numpy(dtype=float), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(types)), [t.split("-", 1)[1] for t in types], rotation=90, fontsize=6)
    ax.set_yticks(range(len(matrix)), matrix.index, fontsize=7)
    starts = [i for i, c in enumerate(coarse) if i == 0 or c != coarse[i - 1]]
    for start in starts[1:]:
        ax.axvline(start - 0.5, color="white", lw=1.5)
    top = ax.secondary_xaxis("top")
    ends = [*starts[1:], len(types)]
    top.set_xticks([(a + b - 1) / 2 for a, b in zip(starts, ends, strict=True)], [coarse[i] for i in starts])
    top.tick_params(labelsize=7, length=0)
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.02, pad=0.01, label="F1")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_f1_by_length(tables: dict[str, pd.DataFrame], path: Path, title: str) -> None:
    """Strict fine F1 by entity length, one line per run or method (the evaluator's
    `by_length_table` each)."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, table in tables.items():
        ax.plot(table["length"], table["f1"], marker="o", lw=1, label=name)
    _finish_lines(fig, ax, len(tables), "entity length (tokens)", "F1", title, path)


def _finish_lines(fig: plt.Figure, ax: plt.Axes, lines: int, xlabel: str, ylabel: str, title: str, path: Path) -> None:
    """Legend (for several lines), labels, a 0–1 y axis, grid; save and close."""
    if lines > 1:
        ax.legend(fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
