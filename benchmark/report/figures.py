"""A section's plots: what they show, averaged over seeds, and their drawing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmark.core.labels import LabelHierarchy
from benchmark.core.spans import Span
from benchmark.evaluate import P_AT_K, by_length_table, confusion_matrices, per_type_table
from benchmark.report.collect import Section
from benchmark.ui.plots import plot_confusion, plot_f1_by_length, plot_per_type_f1, plot_precision_at_k

PLOTS = ("per_type_f1.png", "confusion_coarse.png", "p_at_k.png", "f1_by_length.png")


def plot_data(section: Section, gold: list[Span], hierarchy: LabelHierarchy) -> dict[str, dict] | None:
    """What the plots show, averaged over seeds, one entry per variant in table order: per-type
    F1, summed coarse confusions, P@K curves, F1 by entity length (None: nothing to plot)."""
    order = {label: i for i, label in enumerate(section.table["method"])}
    shown = sorted((v for v in section.variants if v.predictions), key=lambda v: order[v.label])
    if not shown:
        return None
    data: dict[str, dict] = {"per_type": {}, "confusion": {}, "curves": {}, "lengths": {}}
    for v in shown:
        tables = [per_type_table(t, hierarchy) for t in v.tables]
        data["per_type"][v.label] = tables[0].assign(f1=np.mean([t["f1"] for t in tables], axis=0))
        matrices = [confusion_matrices(pairs, hierarchy)["coarse"] for pairs in v.matches]
        data["confusion"][v.label] = sum(matrices[1:], matrices[0])
        shortest = min(len(c) for c in v.curves)
        data["curves"][v.label] = np.mean([c[:shortest] for c in v.curves], axis=0)
        by_length = [by_length_table(gold, p) for p in v.predictions]
        data["lengths"][v.label] = by_length[0].assign(f1=np.mean([t["f1"] for t in by_length], axis=0))
    return data


def plot_jobs(data: dict[str, dict], folder: Path, slug: str) -> list[tuple[Callable[..., None], tuple]]:
    """Each of `PLOTS` as its drawing function (`benchmark.ui.plots`) and that function's arguments:
    run in painter processes, which import only the drawing module, so that drawing overlaps the
    other sections' statistics and one section's plots are drawn side by side."""
    title = f"{slug} (mean over seeds)"
    return [
        (plot_per_type_f1, (data["per_type"], folder / PLOTS[0], f"per-type F1, {title}")),
        (plot_confusion, (data["confusion"], folder / PLOTS[1], f"coarse confusion, {slug} (all seeds)")),
        (plot_precision_at_k, (data["curves"], folder / PLOTS[2], f"precision@K, {title}", P_AT_K)),
        (plot_f1_by_length, (data["lengths"], folder / PLOTS[3], f"F1 by entity length, {title}")),
    ]
