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
    """F1 of every fine type as bars coloured by coarse type, one panel per run or method
    (``tables``: name → the evaluator's per-type table, or a mean of them over seeds)."""
    fig, axes = plt.subplots(
        len(tables), 1, figsize=(11, 2.4 * len(tables) + 1.6), sharex=True, squeeze=False, layout="constrained"
    )
    for ax, (name, table) in zip(axes[:, 0], tables.items(), strict=True):
        fine = table[table["level"] == "fine"]
        coarse = fine["type"].str.split("-").str[0]
        colours = {c: plt.get_cmap("tab10")(i) for i, c in enumerate(dict.fromkeys(coarse))}
        ax.bar(range(len(fine)), fine["f1"], color=[colours[c] for c in coarse])
        ax.set_ylim(0, 1)
        ax.set_xlim(-0.7, len(fine) - 0.3)
        ax.set_ylabel("F1")
        ax.set_title(name, fontsize=9, loc="left")
        ax.grid(axis="y", alpha=0.3)
    ax.set_xticks(range(len(fine)), fine["type"], rotation=90, fontsize=6)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours.values()]
    fig.legend(handles, list(colours), fontsize=7, ncol=len(colours), loc="outside upper center", title=title)
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
