"""The report's text: a section's markdown and LaTeX, the README's results block and claims.md."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from benchmark.core.episodic import EpisodeProtocol
from benchmark.core.method import MARKS_SENTENCE
from benchmark.core.protocols import Protocol
from benchmark.core.registry import METHODS, PROTOCOLS
from benchmark.evaluate import SEMEVAL_SCHEMES
from benchmark.report.claims import (
    ABLATIONS,
    EPISODE_SOURCES,
    EPISODES_DIFFER,
    GOLD_SPAN_RECALL,
    claims_table,
    episode_claims_table,
    gold_span_recall_table,
)
from benchmark.report.collect import Section
from benchmark.report.stats import (
    ALL_TYPES,
    ASO_THRESHOLD,
    ERROR_ANALYSIS_PROTOCOLS,
    FEWNERD_ERRORS,
    RANKING_RULE,
    SEED_FREE_SCORES,
)
from benchmark.run.cpu import SHARED_ABOVE
from benchmark.run.external import EXTERNAL, EXTERNAL_SENTENCE, ROW_MARKS
from benchmark.seeds import SeedSummary

README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"
#: marks a row whose runs kept no predictions: it shows the metrics they logged
LOGGED_MARK = "◦"
#: what a table with both regimes says about its ranks
REGIME_SENTENCE = (
    "*regime*: `frozen` rows train on fixed encoder features, `finetuned` rows train the encoder's weights too; "
    "each regime is ranked on its own (only rows of the same regime can beat a row), frozen rows first; pairs across "
    "regimes are still compared, apart from the ranking pairs (*Significance*)."
)


def has_finetuned(table: pd.DataFrame) -> bool:
    """Whether a table has fine-tuned rows (then it shows, and ranks by, the regime)."""
    return "regime" in table and bool((table["regime"] == "finetuned").any())


def marks_sentence(tables: Iterable[pd.DataFrame]) -> str:
    """What the marks of unranked rows mean (external rows' only where a table has one)."""
    external = any("provenance" in t and bool((t["provenance"] == EXTERNAL).any()) for t in tables)
    return MARKS_SENTENCE + (f" {EXTERNAL_SENTENCE}" if external else "")


def runs_command(tables: Iterable[pd.DataFrame], protocols: Iterable[str], dataset: str = "embedded") -> str:
    """The `run` command that makes the runs ``tables`` show: ``--method all`` when they have rows
    of every method that runs one of ``protocols``, else their methods by name, and ``--seeds``
    unless every row has its regime's comparison seeds (`COMPARISON_SEEDS`), then every seed
    their rows have."""
    from benchmark.run.plan import COMPARISON_SEEDS

    tables, protocols = list(tables), set(protocols)
    # `run` makes neither a scored system's row nor a row of a method that needs the user's input
    apart = {name for name in METHODS.names() if not getattr(METHODS.get(name), "in_comparison", True)}
    provenances = (t.get("provenance", pd.Series("", index=t.index)) for t in tables)
    labels = [label for t, p in zip(tables, provenances, strict=True) for label in t["method"][p != EXTERNAL]]
    methods = {label.split(":")[0].split(" ")[0] for label in labels} - apart
    wanted = {name for name in METHODS.names() if METHODS.get(name).protocols & protocols} - apart
    rows = [
        (str(regime), tuple(int(seed) for seed in str(cell).split()))
        for table in tables
        for regime, cell in zip(
            table.get("regime", pd.Series("frozen", index=table.index)),
            table.get("seed_list", pd.Series("", index=table.index)).fillna(""),
            strict=True,
        )
    ]
    seeds = sorted({seed for _, row_seeds in rows for seed in row_seeds})
    comparison = wanted <= methods or len(methods) > 1  # one method alone runs with seed 1 by default
    default = comparison and all(COMPARISON_SEEDS.get(regime) == row_seeds for regime, row_seeds in rows)
    words = ["python", "-m", "benchmark", "run", "--method", *(["all"] if wanted <= methods else sorted(methods))]
    words += ["--dataset", dataset] if dataset != "embedded" else []
    words += ["--seeds", *map(str, seeds)] if seeds and not default else []
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
        method = f"{r['method']} {ROW_MARKS[r['provenance']]}" if r["provenance"] in ROW_MARKS else r["method"]
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


def render_markdown(section: Section, plots: list[str], alpha: float = 0.05) -> str:
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
        marks_sentence([table]) + (f" {REGIME_SENTENCE}" if has_finetuned(table) else ""),
        "",
        f"*rank*: {RANKING_RULE} (α = {alpha}); rows that no ranked row of their regime beats share rank 1, and two "
        "rows that do not beat each other may still differ in rank. "
        f"*95% CI*: of the seed mean, {_bootstrap_sentence(section)} "
        f"*seeds*: trained runs in the row. *s/seed*: {SECONDS_SENTENCE}",
    ]
    if protocol.name in ERROR_ANALYSIS_PROTOCOLS:
        lines += ["", *_error_analysis(table)]
    if section.partial is not None:
        lines += ["", *_partial_matches(section)]
    if len(section.pairs):
        episodic = isinstance(section.protocol, EpisodeProtocol)
        pairs = (
            PAIRS_SENTENCE.replace("the sentences' variance", "the episodes' variance") if episodic else PAIRS_SENTENCE
        )
        lines += ["", "## Significance", "", pairs]
        for family, pairs in section.pairs.groupby("family", sort=False):
            lines += ["", f"### {_family_title(family, len(pairs))}", "", pairs_markdown(pairs, protocol.headline)]
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{name[:-4]}]({protocol.name}/{name})" for name in plots]
    if section.seeds is not None and len(section.seeds):
        lines += ["", "## Seed runs", "", SEEDS_SENTENCE, "", seeds_markdown(section.seeds)]
    lines += ["", "## Commands", ""]
    lines += [f"- {r['method']}: `{r['command']} --seeds {r['seed_list']}`" for r in table.to_dict("records")]
    if section.notes:
        lines += ["", "## Notes", "", *(f"- {note}" for note in section.notes)]
    return "\n".join(lines) + "\n"


#: what the Significance tables hold
PAIRS_SENTENCE = (
    "Every pair of rows with predictions, the better seed mean first: Δ = the difference of seed means (the numbers "
    "the table prints), its 95 % CI and two-sided p from the same two-level bootstrap (p = twice the share of "
    "resampled differences on the far side of 0; at the floor, 2 / (resamples + 1), it is printed as ≤), Holm's "
    "correction within the pair's family, and ASO's ε_min (Dror et al. 2019, as deepsig 1.2.8's `aso` computes it, "
    "re-implemented on whole arrays and equal to it to the last bit; on one score per "
    "seed: seed *i* on bootstrap resample *i*, so each score carries the seed's and the sentences' variance; a "
    f"row whose seed changes nothing gives its first {SEED_FREE_SCORES} bootstrap draws; "
    f"Bonferroni over the family, as deepsig does). *beats*: p (Holm) < α and ε_min < {ASO_THRESHOLD}. Only the "
    "ranking pairs (two ranked rows of one regime) decide ranks; the other pairs (an oracle, custom or one-seed "
    "row of a seeded method, or two regimes) form a family of their own."
)


#: what the Seed runs table holds
SEEDS_SENTENCE = (
    "Every seed run of the table: its fit and predict seconds (wall clock), its prediction throughput (test "
    "sentences ÷ predict seconds; faster where the run found its test features in the feature cache) and the device "
    "visible to it (its `device` tag, where torch computations ran; for a run from before that tag, `cpu` where its "
    "torch was a CPU build, — for predictions made outside the harness), "
    "the cores other processes kept busy "
    f"meanwhile (`time/other_cpu_share` × `time/cpu_count`; above {SHARED_ABOVE} the seed shared the machine and "
    "its seconds stay out of *s/seed*) and the epoch it kept (`best_epoch`; — where the run logged none). Also in "
    "`<protocol>_seeds.csv`."
)


def seeds_markdown(seeds: pd.DataFrame) -> str:
    """The Seed runs table: one line per seed run."""

    def number(value: object, digits: int) -> str:
        return "—" if pd.isna(value) else f"{float(value):.{digits}f}"

    rows = [
        [r["method"], str(r["seed"]), number(r["fit_seconds"], 1), number(r["predict_seconds"], 1),
         number(r["sentences_per_second"], 0), "—" if pd.isna(r["device"]) else str(r["device"]),
         number(r["other_cores"], 2), number(r["best_epoch"], 0)]
        for r in seeds.to_dict("records")
    ]  # fmt: skip
    headers = ["method", "seed", "fit (s)", "predict (s)", "predict (sent/s)", "device", "other cores", "best epoch"]
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def _bootstrap_sentence(section: Section) -> str:
    if isinstance(section.protocol, EpisodeProtocol):
        return (
            f"two-level bootstrap of each setting ({section.resamples:,} resamples of its episodes, whole episodes "
            "drawn, the seeds' spread added as a Student-t draw), the average's draw the mean of the settings' "
            "draws; `sentence_ci_*` in the CSV hold the episodes-only interval, seeds held fixed."
        )
    return (
        f"two-level bootstrap ({section.resamples:,} resamples of the test sentences, the seeds' spread added as a "
        "Student-t draw; `sentence_ci_*` in the CSV hold the sentence-only interval, seeds held fixed)."
    )


def _family_title(family: str, size: int) -> str:
    if family == "apart":
        return f"Other pairs (an unranked row or two regimes; Holm over these {size}; no rank depends on them)"
    return f"Ranking pairs, {family.removeprefix('ranked ')} rows (Holm over these {size})"


def p_text(p: float, bound: object) -> str:
    """A p-value to 4 decimals (2 significant digits below 0.001), "≤ x" when it is a bound."""
    text = f"{p:.4f}" if p >= 0.001 else f"{p:.1e}"
    return f"≤ {text}" if str(bound) == "True" else text


def pairs_markdown(pairs: pd.DataFrame, headline: str) -> str:
    """One family's pairs as a markdown table."""
    rows = [
        [r["better"], r["worse"], f"{r['delta']:+.4f}", _ci(r["ci_low"], r["ci_high"]), p_text(r["p"], r["p_bound"]),
         p_text(r["p_holm"], r["p_holm_bound"]), f"{r['eps_min']:.2f}", "yes" if str(r["beats"]) == "True" else "no"]
        for r in pairs.to_dict("records")
    ]  # fmt: skip
    headers = ["better", "worse", f"Δ {headline}", "95% CI of Δ", "p", "p (Holm)", "ε_min", "beats"]
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


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
            f"{', '.join(versions)}), no CI (the CSV's `sentence_ci_*` average their runs' own sentence-bootstrap "
            "CIs) and take no part in paired comparisons or plots."
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


#: what the partial-match schemes count (nervaluate's names and definitions)
PARTIAL_SENTENCE = (
    "The four schemes of SemEval-2013 task 9.1 as `nervaluate` defines and counts them: *strict*: boundaries and type "
    "(= `fine/micro_f1`); *exact*: boundaries, any type (= `detection/f1`); *partial*: boundaries that overlap, a "
    "partial match counting one half; *ent_type*: the type, with boundaries that overlap."
)


def _partial_matches(section: Section) -> list[str]:
    """The partial-match F1 of every row with predictions: mean ± std over seeds and the CI of the seed mean."""
    partial = section.partial
    overall = partial[partial["type"] == ALL_TYPES]
    rows = []
    for method, lines in overall.groupby("method", sort=False):
        by_scheme = {line["scheme"]: line for line in lines.to_dict("records")}
        cells = [
            f"{_mean_std(by_scheme[s], 'f1')} {_ci(by_scheme[s]['f1_ci_low'], by_scheme[s]['f1_ci_high'])}"
            for s in SEMEVAL_SCHEMES
        ]
        rows.append([method, *cells])
    headers = ["method", *(f"{scheme} F1" for scheme in SEMEVAL_SCHEMES)]
    return [
        "## Partial matches (SemEval-2013 schemes)",
        "",
        f"{PARTIAL_SENTENCE} F1 over every span with its fine type: mean ± std over seeds and the 95 % CI of the seed "
        f"mean (two-level bootstrap: {section.partial_resamples:,} resamples of the test sentences, the seeds' "
        "spread added as a Student-t draw). "
        f"Precision, recall and each coarse type are in `{section.protocol.name}_partial.csv` (a coarse type's "
        "spans alone, scored with coarse types: there every type agrees, so strict equals exact).",
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


def render_readme_block(
    tables: dict[tuple[str, str], pd.DataFrame], out: Path, readme: Path, alpha: float = 0.05
) -> str:
    """The README's results block: the compact table of every (dataset, protocol) in ``tables``."""
    lines = [
        README_START,
        "",
        f"Written by `python -m benchmark report`; do not edit by hand. *rank*: {RANKING_RULE} (α = {alpha}; the "
        "full reports have every pair); *95% CI*: of the seed mean, the test sentences (for episodes, each "
        "setting's episodes) resampled, the seeds' spread added as a Student-t draw; *seeds*: trained runs per "
        "row; *provenance*: how the row's settings were chosen "
        "(`python -m benchmark list`). "
        f"{marks_sentence(tables.values())}",
    ]
    for (dataset, protocol), table in sorted(tables.items()):
        link = os.path.relpath(out / dataset / f"{protocol}.md", readme.parent)
        headers, rows = _display_rows(table, PROTOCOLS[protocol], compact=True)
        lines += ["", f"**{dataset}/{protocol}** ([full report]({link}))", ""]
        lines += [tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)]
        lines += ["", REGIME_SENTENCE] if has_finetuned(table) else []
    return "\n".join([*lines, "", README_END])


def render_claims(tables: dict[str, pd.DataFrame], alpha: float = 0.05, ablations: Iterable[pd.DataFrame] = ()) -> str:
    """claims.md from ``tables`` (protocol → the report's table of the default dataset) and the
    default dataset's ablation pairs (`benchmark.report.stats.ablation_pairs`)."""
    frame = claims_table(tables)
    return "\n".join(
        [
            "# Claims vs measured",
            "",
            "Regenerate: `python -m benchmark report --runs reports/runs` from the published runs, or "
            f"`python -m benchmark report` after `{runs_command(tables.values(), tables)}`. *paper*: the "
            "number as the paper states it; *ours*: mean ± std over seeds on the "
            "embedded default split (Few-NERD's episodes: on INTER), on the paper's scale; *our setting*: protocol · "
            "method · metric. Per-protocol tables with CIs and significance: `embedded/<protocol>.md` and "
            "`inter/episodes.md` beside this file. An *ours* entry marked † "
            "(oracle) or ‡ (custom) comes from settings chosen with information its protocol forbids (test or fine "
            "labels), or by hand: shown for reference, never ranked. The tables rank their rows by one rule: "
            f"{RANKING_RULE} (α = {alpha}).",
            "",
            tabulate(frame, headers="keys", tablefmt="github", showindex=False, disable_numparse=True),
            "",
            "## Few-NERD's episodes",
            "",
            "Micro F1 (%) over every query set of a setting's episodes (Few-NERD's metric). " + EPISODES_DIFFER,
            "",
            EPISODE_SOURCES,
            "",
            tabulate(
                episode_claims_table(tables.get("episodes")),
                headers="keys",
                tablefmt="github",
                showindex=False,
                disable_numparse=True,
            ),
            "",
            ABLATION_INTRO,
            "",
            *ablation_sections(pd.concat([*ablations, pd.DataFrame(columns=["source"])], ignore_index=True), tables),
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


ABLATION_INTRO = """\
## The papers' ablations, on their own metric

Every pair of an ablation's rows on the paper's metric (in %; differences in points), under the
protocol named: the difference of seed means, its 95 % CI and p from the two-level bootstrap over
seeds and test sentences, Holm's correction over the ablation's pairs only (its own family, not
the ranking's), and ASO's ε_min; *beats* as in the ranking rule."""


def ablation_sections(pairs: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> list[str]:
    """Per declared ablation, its title and its pairs (``pairs``: every ablation's CSV rows), or
    which of its rows the protocol's table (``tables``) lacks."""
    lines = []
    for ablation in ABLATIONS:
        lines += [f"**{ablation.source}**: `{ablation.protocol}` · `{ablation.metric}`", ""]
        found = pairs[pairs["source"] == ablation.source]
        if found.empty:
            table = tables.get(ablation.protocol)
            have = set(table["method"]) if table is not None else set()
            lacking = [r for r in ablation.rows if r not in have]
            why = f"no runs of {', '.join(lacking)}" if lacking else "not every row has stored predictions"
            lines += [f"Not tested yet: {why} (rows: {', '.join(ablation.rows)}).", ""]
            continue
        rows = [
            [r["better"], r["worse"], f"{100 * r['better_mean']:.2f}", f"{100 * r['worse_mean']:.2f}",
             f"{100 * r['delta']:+.2f}", f"[{100 * r['ci_low']:+.2f}, {100 * r['ci_high']:+.2f}]",
             p_text(r["p_holm"], r["p_holm_bound"]), f"{r['eps_min']:.2f}", _yes(r["beats"])]
            for r in found.to_dict("records")
        ]  # fmt: skip
        headers = ["better", "worse", "better (%)", "worse (%)", "difference", "95% CI", "p (Holm)", "ε_min", "beats"]
        lines += [tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True), ""]
    return lines


def _yes(flag: object) -> str:
    return "yes" if str(flag) == "True" else "no"
