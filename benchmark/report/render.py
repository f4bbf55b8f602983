"""The report's text: a section's markdown and LaTeX, the README's results block and claims.md."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from benchmark.core.method import MARKS, MARKS_SENTENCE
from benchmark.core.protocols import Protocol
from benchmark.core.registry import METHODS, PROTOCOLS
from benchmark.report.claims import GOLD_SPAN_RECALL, claims_table, gold_span_recall_table
from benchmark.report.collect import Section
from benchmark.report.stats import ERROR_ANALYSIS_PROTOCOLS, FEWNERD_ERRORS, randomization_trials
from benchmark.run.cpu import SHARED_ABOVE
from benchmark.seeds import SeedSummary

README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"
#: marks a row whose runs kept no predictions: it shows the metrics they logged
LOGGED_MARK = "◦"
#: what a table with both regimes says about its ranks
REGIME_SENTENCE = (
    "*regime*: `frozen` rows train on fixed encoder features, `finetuned` rows train the encoder's weights too; "
    "each regime is ranked on its own (ranks count only significantly better rows of the same regime), frozen rows "
    "first; pairs across regimes are still tested (*Significance*)."
)


def has_finetuned(table: pd.DataFrame) -> bool:
    """Whether a table has fine-tuned rows (then it shows, and ranks by, the regime)."""
    return "regime" in table and bool((table["regime"] == "finetuned").any())


def runs_command(tables: Iterable[pd.DataFrame], protocols: Iterable[str], dataset: str = "embedded") -> str:
    """The `run` command that makes the runs ``tables`` show: ``--method all`` when they have rows
    of every method that runs one of ``protocols``, else their methods by name, and every seed
    their rows have."""
    tables, protocols = list(tables), set(protocols)
    methods = {label.split(":")[0].split(" ")[0] for table in tables for label in table["method"]}
    wanted = {name for name in METHODS.names() if METHODS.get(name).protocols & protocols}
    seeds = {
        int(seed)
        for table in tables
        for cell in table.get("seed_list", pd.Series(dtype=str)).dropna()
        for seed in str(cell).split()
    }
    words = ["python", "-m", "benchmark", "run", "--method", *(["all"] if wanted <= methods else sorted(methods))]
    words += ["--dataset", dataset] if dataset != "embedded" else []
    words += ["--seeds", *map(str, sorted(seeds))] if seeds else []
    return " ".join(words)


def _mean_std(row: dict, metric: str) -> str:
    """The row's ``metric`` over its seeds, as `SeedSummary` prints it."""
    mean, std = (row.get(f"{metric}_{part}") for part in ("mean", "std"))
    return SeedSummary(_float(mean), _float(std), int(row["seeds"])).format()


def _float(value: object) -> float:
    return math.nan if pd.isna(value) else float(value)


def _ci(low: float, high: float) -> str:
    return "–" if pd.isna(low) else f"[{low:.4f}, {high:.4f}]"


#: what the s/seed column holds
SECONDS_SENTENCE = (
    "fit + predict seconds per seed, the mean over the seeds that had the machine to themselves (other processes "
    f"kept at most {SHARED_ABOVE} cores busy while they fitted and predicted: `time/other_cpu_share` × "
    "`time/cpu_count`), with (k/n) when only k of its n seeds did; — where none did, or its runs predate that "
    "measure."
)


def seconds_text(value: float, timed: object, seeds: object) -> str:
    """s/seed: the unshared seeds' mean, with (k/n) when only k of n seeds had the machine alone."""
    if pd.isna(value):
        return "—"
    partial = timed is not None and not pd.isna(timed) and int(timed) < int(seeds)
    return f"{value:.0f}" + (f" ({int(timed)}/{int(seeds)})" if partial else "")


def _display_rows(table: pd.DataFrame, protocol: Protocol, compact: bool = False) -> tuple[list[str], list[list[str]]]:
    """Rank, method, provenance, (regime, when the table has fine-tuned rows), headline (bold at
    rank 1 of each regime) and its CI, the other main metrics, seeds, …"""
    headline = protocol.headline
    others = [] if compact else [m for m in protocol.main_metrics if m != headline]
    mixed = has_finetuned(table)
    headers = ["rank", "method", "provenance", *(["regime"] if mixed else []), f"{headline} (mean ± std)", "95% CI"]
    headers += [*others, "seeds"] + ([] if compact else ["encoder", "s/seed"])
    rows = []
    for r in table.to_dict("records"):
        top = r["rank"] == 1
        value = _mean_std(r, headline)
        method = f"{r['method']} {MARKS[r['provenance']]}" if r["provenance"] in MARKS else r["method"]
        if str(r.get("scored_by", "")).startswith("logged"):
            method += f" {LOGGED_MARK}"
        cells = ["–" if pd.isna(r["rank"]) else str(r["rank"]), method, r["provenance"]]
        cells += [r.get("regime", "frozen")] if mixed else []
        cells += [f"**{value}**" if top else value]
        cells += [_ci(r["ci_low"], r["ci_high"]), *(_mean_std(r, m) for m in others)]
        cells += [str(r["seeds"])] + (
            [] if compact else [r["encoder"], seconds_text(r["seconds"], r.get("timed_seeds"), r["seeds"])]
        )
        rows.append(cells)
    return headers, rows


def render_markdown(section: Section, plots: list[str], alpha: float = 0.05, trials: int = 1000) -> str:
    protocol, table = section.protocol, section.table
    headers, rows = _display_rows(table, protocol)
    commits = sorted({c for cell in table["code_version"] for c in cell.split(", ")})
    lines = [
        f"# {section.dataset} / {protocol.name}",
        "",
        f"Regenerate: `python -m benchmark report --runs reports/runs --dataset {section.dataset} --protocol "
        f"{protocol.name}` from the published runs, or `python -m benchmark report --dataset {section.dataset} "
        f"--protocol {protocol.name}` after the runs `{runs_command([table], [protocol.name], section.dataset)}` "
        "(each row's own command is under *Commands*).",
        "",
        f"Runs from commit {', '.join(f'`{c[:12]}{c[40:]}`' for c in commits)}; data `{section.dataset}` sha256 "
        f"`{section.dataset_sha256}`.",
        "",
        _scoring_sentence(section),
        "",
        f"Protocol: {protocol.summary}. Headline: `{protocol.headline}`.",
        "",
        tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True),
        "",
        MARKS_SENTENCE + (f" {REGIME_SENTENCE}" if has_finetuned(table) else ""),
        "",
        "*rank*: 1 + the number of ranked rows significantly better on the headline (approximate randomization on "
        "per-sentence counts averaged over seeds, "
        f"{randomization_trials(trials, len(section.pairs), alpha):,} trials, Holm-corrected, α = {alpha}), "
        "so rows with as many significantly better rows share a rank (two rows the test cannot separate may still "
        "differ in rank); every pair is under *Significance*. "
        f"*95% CI*: of the seed mean, sentence bootstrap ({trials:,} resamples). "
        f"*s/seed*: {SECONDS_SENTENCE}",
    ]
    if protocol.name in ERROR_ANALYSIS_PROTOCOLS:
        lines += ["", *_error_analysis(table)]
    pairs = section.pairs
    if len(pairs):
        rows = [
            [r["better"], r["worse"], f"{r['delta']:+.4f}", _ci(r["ci_low"], r["ci_high"]), f"{r['p']:.4f}",
             f"{r['p_holm']:.4f}", "yes" if r["significant"] else "no"]
            for r in pairs.to_dict("records")
        ]  # fmt: skip
        headers = ["better", "worse", f"Δ {protocol.headline}", "95% CI of Δ", "p", "p (Holm)", "significant"]
        lines += ["", "## Significance", "", tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)]
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{name[:-4]}]({protocol.name}/{name})" for name in plots]
    lines += ["", "## Commands", ""]
    lines += [f"- {r['method']}: `{r['command']} --seeds {r['seed_list']}`" for r in table.to_dict("records")]
    if section.notes:
        lines += ["", "## Notes", "", *(f"- {note}" for note in section.notes)]
    return "\n".join(lines) + "\n"


def _scoring_sentence(section: Section) -> str:
    """Which evaluator computed the table, and which rows it could not re-score."""
    logged = section.table.loc[section.table["scored_by"].str.startswith("logged"), "scored_by"]
    text = (
        f"Scored by evaluator {section.evaluator_version} (`benchmark/evaluate.py`): every metric is recomputed from "
        "each run's stored `predictions.jsonl` and the test gold, whatever evaluator the run logged with."
    )
    if len(logged):
        versions = sorted({v.removeprefix("logged by evaluator ") for v in logged})
        text += (
            f" Rows marked {LOGGED_MARK} kept no predictions: they show the metrics their runs logged (evaluator "
            f"{', '.join(versions)}) and take no part in significance tests or plots."
        )
    return text


def _error_analysis(table: pd.DataFrame) -> list[str]:
    """Few-NERD's error analysis of every row (mean ± std over seeds)."""
    headers = ["method", "FP (token rate)", "FN (token rate)", "Within (÷ bounded spans)", "Outer (÷ bounded spans)"]
    rows = [[r["method"], *(_mean_std(r, m) for m in FEWNERD_ERRORS)] for r in table.to_dict("records")]
    return [
        "## Error analysis (Few-NERD's definitions)",
        "",
        "As `error_analysis` in Few-NERD's `util/framework.py`: *FP* = tokens inside a predicted span but no gold "
        "span, *FN* = tokens inside a gold span but no predicted span, each ÷ all test tokens; *Within* / *Outer* = "
        "correctly-bounded spans (a prediction with a gold span's exact boundaries, any type) typed wrong within "
        "the right coarse type / into another coarse type, ÷ correctly-bounded spans. Plain counts are in the CSV "
        "(`errors/*`).",
        "",
        tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True),
    ]


def _tex_escape(text: str) -> str:
    for char, escaped in (
        ("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("#", r"\#"), ("_", r"\_"), ("†", r"\dag{}"),
        ("‡", r"\ddag{}"),
    ):  # fmt: skip
        text = text.replace(char, escaped)
    return text


def _tex_cell(text: str) -> str:
    text = _tex_escape(text).replace(" ± ", r" $\pm$ ")
    return rf"\textbf{{{text[2:-2]}}}" if text.startswith("**") else text


def render_latex(section: Section) -> str:
    """A booktabs table of the main metrics (mean ± std) and the headline CI."""
    headers, rows = _display_rows(section.table, section.protocol)
    headers, rows = headers[:-2], [r[:-2] for r in rows]  # without encoder and seconds
    cells = [[_tex_cell(c) for c in row] for row in [headers, *rows]]
    body = [" & ".join(row) + r" \\" for row in cells]
    return "\n".join(
        [
            f"% python -m benchmark report --dataset {section.dataset} --protocol {section.protocol.name}",
            r"\begin{tabular}{l" + "l" * (len(headers) - 1) + "}",
            r"\toprule",
            body[0],
            r"\midrule",
            *body[1:],
            r"\bottomrule",
            r"\end{tabular}",
            "",
        ]
    )


def render_readme_block(tables: dict[tuple[str, str], pd.DataFrame], out: Path, readme: Path) -> str:
    """The README's results block: the compact table of every (dataset, protocol) in ``tables``."""
    lines = [
        README_START,
        "",
        "Written by `python -m benchmark report`; do not edit by hand. Rank 1 + ranked rows significantly better "
        "(see the full reports); CI of the seed mean; *provenance*: how the row's settings were chosen "
        f"(`python -m benchmark list`). {MARKS_SENTENCE}",
    ]
    for (dataset, protocol), table in sorted(tables.items()):
        link = os.path.relpath(out / dataset / f"{protocol}.md", readme.parent)
        headers, rows = _display_rows(table, PROTOCOLS[protocol], compact=True)
        lines += ["", f"**{dataset}/{protocol}** ([full report]({link}))", ""]
        lines += [tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)]
        lines += ["", REGIME_SENTENCE] if has_finetuned(table) else []
    return "\n".join([*lines, "", README_END])


def render_claims(tables: dict[str, pd.DataFrame]) -> str:
    """claims.md from ``tables`` (protocol → the report's table of the default dataset)."""
    frame = claims_table(tables)
    return "\n".join(
        [
            "# Claims vs measured",
            "",
            "Regenerate: `python -m benchmark report --runs reports/runs` from the published runs, or "
            f"`python -m benchmark report` after `{runs_command(tables.values(), tables)}`. *paper*: the "
            "number as the paper states it; *ours*: mean ± std over seeds on the "
            "embedded default split, on the paper's scale; *our setting*: protocol · method · metric. Per-protocol "
            "tables with CIs and significance: `embedded/<protocol>.md` beside this file. An *ours* entry marked † "
            "(oracle) or ‡ (custom) comes from settings chosen with information its protocol forbids (test or fine "
            "labels), or by hand: shown for reference, never ranked.",
            "",
            tabulate(frame, headers="keys", tablefmt="github", showindex=False, disable_numparse=True),
            "",
            GOLD_SPAN_RECALL,
            "",
            tabulate(
                gold_span_recall_table(tables),
                headers="keys",
                tablefmt="github",
                showindex=False,
                missingval="–",
                floatfmt=".2f",
            ),
            "",
        ]
    )
