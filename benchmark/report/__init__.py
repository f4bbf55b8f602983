"""``python -m benchmark report``: comparison tables and plots from the MLflow store.

Only FINISHED seed runs are read (never FAILED or KILLED ones). Runs are grouped into
*sections* — one per (dataset, protocol) and data fingerprint —
and, within a section, into *variants*: one method with one exact set of settings. A variant
keeps the runs of its newest code fingerprint, one per seed (the newest).

Per variant: each main metric as mean ± std over seeds; a 95 % CI of the headline's seed mean
(percentiles of 1,000 sentence-bootstrap resamples, the same resamples for every variant);
significance between every pair by approximate randomization on per-sentence counts averaged
over seeds, Holm-corrected. ``rank`` = 1 + the number of ranked variants significantly better, so
variants that share a rank are not significantly different from each other's betters. Only rows
whose settings were chosen honestly (provenance ``paper``, ``prior`` or ``dev``) are ranked;
``oracle`` and ``custom`` rows are listed below them, marked, with their pairs still tested.
Every metric is recomputed by the current evaluator from the stored predictions and the test
gold, whatever evaluator logged the run. Nothing is written outside ``--out`` but the README's
results block (by default only for the default ``reports/``), and that only if it keeps every row
it shows (``--force`` overrides).
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

from benchmark.core.config import config_dict
from benchmark.core.data.fewnerd import Sentence, load_corpus
from benchmark.core.errors import BenchmarkError
from benchmark.core.labels import LabelHierarchy
from benchmark.core.method import CUSTOM, MARKS, MARKS_SENTENCE, RANKED, REGIMES
from benchmark.core.protocols import Protocol
from benchmark.core.registry import PROTOCOLS
from benchmark.core.spans import Span
from benchmark.evaluate import (
    EVALUATOR_VERSION,
    P_AT_K,
    CountTable,
    RandomizationTest,
    by_length_table,
    confusion_matrices,
    count_table,
    holm_adjust,
    match,
    mean_table,
    per_type_table,
    precision_curve,
    scalar_metrics,
    seed_mean_draws,
    token_counts,
)
from benchmark.report.claims import CLAIMS, GOLD_SPAN_RECALL, claims_table, gold_span_recall_table
from benchmark.run.tracking import tracking_uri
from benchmark.ui.plots import plot_confusion, plot_f1_by_length, plot_per_type_f1, plot_precision_at_k

FORMATS = ("md", "csv", "tex")
README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


@dataclass(frozen=True)
class ReportRequest:
    dataset: str | None = None
    protocol: str | None = None
    regime: str | None = None
    formats: tuple[str, ...] = FORMATS
    out: Path = Path("reports")
    data_dir: Path | None = None
    verify: bool = True  # check --data-dir files against the official checksums
    readme: Path | None = Path("reports", "README.md")
    force: bool = False  # rewrite the README block even if it would lose rows
    alpha: float = 0.05
    trials: int = 1000  # randomization trials and bootstrap resamples


def default_readme(out: Path) -> Path | None:
    """The README whose results block a report updates unless told otherwise:
    ``reports/README.md`` when ``out`` is the default ``reports/`` of the working directory, else
    none (a report written elsewhere touches no README of the project)."""
    return Path("reports", "README.md") if out.resolve() == Path("reports").resolve() else None


@dataclass
class Variant:
    """One method with one exact set of settings: its runs, one per seed."""

    label: str
    runs: pd.DataFrame
    ignored: int = 0  # runs superseded by newer code or a newer run of the same seed
    tables: list[CountTable] | None = None  # per seed, from the stored predictions
    predictions: list[list[Span]] | None = None
    matches: list[np.ndarray] | None = None  # per seed, the evaluator's `match` rows

    @property
    def scored_by(self) -> str:
        """Who computed the row's metrics: the current evaluator from the stored predictions,
        or (runs without predictions) the evaluator versions that logged them."""
        if self.tables is not None:
            return f"evaluator {EVALUATOR_VERSION}"
        logged = sorted(set(self.runs.get("tags.evaluator_version", pd.Series(["?"])).astype(str)))
        return f"logged by evaluator {', '.join(logged)}"

    def tag(self, name: str) -> str:
        return str(self.runs[f"tags.{name}"].iloc[0])

    @cached_property
    def declared(self) -> tuple[str, str] | None:
        """The method's declared setting set (``default`` or a variant) whose settings are exactly
        the runs', with its provenance, if one is."""
        params = {k.removeprefix("params."): v for k, v in self.runs.iloc[0].items() if k.startswith("params.")}
        return declared_settings(self.tag("method"), {k: v for k, v in params.items() if pd.notna(v)})

    @property
    def provenance(self) -> str:
        """How the settings were chosen: the current declaration of the setting set the runs'
        settings are exactly (so reclassifying a variant reaches its earlier runs), else what
        the runs logged, else `custom`."""
        if self.declared is not None:
            return self.declared[1]
        logged = self.runs.get("tags.provenance", pd.Series([None])).iloc[0]
        return str(logged) if isinstance(logged, str) and logged else CUSTOM

    @property
    def command(self) -> str:
        """The `run` command that repeats the row (its declaration's, when it has one)."""
        if self.declared is None:
            return self.tag("command") if "tags.command" in self.runs else ""
        from benchmark.run.plan import DataSource, RunRequest, plan_run

        variant = None if self.declared[0] == "default" else self.declared[0]
        request = RunRequest(self.tag("method"), self.tag("protocol"), variant, DataSource(self.tag("dataset")))
        return plan_run(request).command

    @property
    def settings(self) -> str:
        """The runs' settings as JSON (a column of the table)."""
        return str(self.runs["_settings"].iloc[0])

    @property
    def regime(self) -> str:
        """``frozen`` or ``finetuned`` (`run_regimes`)."""
        return str(run_regimes(self.runs).iloc[0])


def completed_settings(method: str, params: dict[str, str]) -> dict[str, str]:
    """A run's logged settings with every setting added to ``method`` since then at its default
    (a setting is only ever added with a default that keeps the earlier behaviour), so runs from
    before and after the addition compare equal."""
    from benchmark.core.registry import METHODS
    from benchmark.run.tracking import flatten

    if method not in METHODS:
        return dict(sorted(params.items()))
    defaults = flatten(config_dict(METHODS.get(method).Config()))
    return dict(sorted({**defaults, **params}.items()))


def declared_settings(method: str, params: dict[str, str]) -> tuple[str, str] | None:
    """(variant name or ``default``, provenance) of ``method``'s declared setting set whose
    resolved settings are exactly ``params`` (a run's logged settings, completed with the
    defaults of settings added since: `completed_settings`), if any."""
    from benchmark.core.registry import METHODS
    from benchmark.run.plan import resolve_settings
    from benchmark.run.tracking import flatten

    if method not in METHODS:
        return None
    params = completed_settings(method, params)
    for variant in ("default", *METHODS.get(method).variants):
        config, _, provenance = resolve_settings(method, None if variant == "default" else variant)
        if flatten(config_dict(config)) == params:
            return variant, provenance
    return None


@dataclass
class Section:
    """The runs of one (dataset, protocol) and one data fingerprint, scored by
    ``evaluator_version`` (the current evaluator, from stored predictions)."""

    dataset: str
    protocol: Protocol
    dataset_sha256: str
    evaluator_version: str
    variants: list[Variant]
    notes: list[str] = field(default_factory=list)
    table: pd.DataFrame | None = None
    pairs: pd.DataFrame | None = None

    @property
    def slug(self) -> str:
        return f"{self.dataset}/{self.protocol.name}"


def load_runs(
    uri: str | None = None, dataset: str | None = None, protocol: str | None = None, regime: str | None = None
) -> pd.DataFrame:
    """Finished seed runs of the store as one frame (``mlflow.search_runs``), filtered."""
    import mlflow

    uri = uri or tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise BenchmarkError(
            f"no MLflow store at {uri}: run `python -m benchmark run ...` first, or set MLFLOW_TRACKING_URI"
        )
    try:
        mlflow.set_tracking_uri(uri)
        runs = mlflow.search_runs(
            search_all_experiments=True,
            filter_string="tags.role = 'seed' and attributes.status = 'FINISHED'",
            output_format="pandas",
        )
    except Exception as error:  # MLflow, SQLAlchemy and OS errors alike: the store is unusable
        raise BenchmarkError(f"cannot read the MLflow store {uri}: {type(error).__name__}: {error}") from error
    if not runs.empty:
        runs = runs.dropna(subset=["tags.dataset", "tags.protocol", "tags.method"])
        if dataset:
            runs = runs[runs["tags.dataset"] == dataset]
        if protocol:
            runs = runs[runs["tags.protocol"] == protocol]
        if regime:
            runs = runs[run_regimes(runs) == regime]
    if runs.empty:
        wanted = ", ".join(
            f"{k}={v}" for k, v in (("dataset", dataset), ("protocol", protocol), ("regime", regime)) if v
        )
        raise BenchmarkError(f"no finished runs in {uri}" + (f" with {wanted}" if wanted else "") + ": nothing written")
    return runs.reset_index(drop=True)


def run_regimes(runs: pd.DataFrame) -> pd.Series:
    """Each run's encoder regime: its ``regime`` tag, or for runs logged before the tag existed,
    ``finetuned`` when its settings have ``mode = finetune``, else ``frozen``."""
    derived = (
        runs.get("params.mode", pd.Series("", index=runs.index))
        .eq("finetune")
        .map({True: "finetuned", False: "frozen"})
    )
    return runs.get("tags.regime", pd.Series(None, index=runs.index, dtype=object)).fillna(derived)


def group_runs(runs: pd.DataFrame, current_sha: dict[str, str] | None = None) -> tuple[list[Section], list[str]]:
    """Sections and their variants; notes on what was left out.

    A section shows the runs of one data fingerprint: the data whose gold can be loaded now
    (``current_sha``: dataset → sha256) where runs of it exist, else that of the newest run.
    Whatever evaluator logged a run, `attach_predictions` re-scores it with the current one.
    """
    notes = []
    runs = runs.sort_values("start_time", ascending=False)
    param_columns = sorted(c for c in runs.columns if c.startswith("params."))
    settings = [
        json.dumps(completed_settings(method, {k.removeprefix("params."): v for k, v in row.dropna().items()}))
        for method, (_, row) in zip(runs["tags.method"], runs[param_columns].iterrows(), strict=True)
    ]
    runs = runs.assign(_settings=settings)
    sections = []
    for (dataset, protocol_name), found in runs.groupby(["tags.dataset", "tags.protocol"], sort=True):
        if protocol_name not in PROTOCOLS:
            notes.append(f"{dataset}/{protocol_name}: unknown protocol, left out")
            continue
        sha = found["tags.dataset_sha256"].iloc[0]
        if (current_sha or {}).get(dataset) in set(found["tags.dataset_sha256"]):
            sha = current_sha[dataset]
        keep = found["tags.dataset_sha256"] == sha
        if (~keep).any():
            notes.append(
                f"{dataset}/{protocol_name}: {int((~keep).sum())} runs of other data left out (this report: data "
                f"{sha[:12]})"
            )
        variants = []
        for (method, _), group in found[keep].groupby(["tags.method", "_settings"], sort=False):
            codes = group.get("tags.code_sha256", pd.Series("", index=group.index)).fillna("")
            current = group[codes == codes.iloc[0]].drop_duplicates("tags.seed")
            current = current.sort_values("tags.seed", key=lambda seeds: seeds.astype(int))
            variant = Variant("", current.reset_index(drop=True), len(group) - len(current))
            if variant.declared is not None:  # named by its declaration now (a renamed variant's runs follow)
                name = variant.declared[0]
                variant.label = str(method) + ("" if name == "default" else f":{name}")
            else:
                variant.label = str(group.get("tags.label", group["tags.method"]).fillna(group["tags.method"]).iloc[0])
            variants.append(variant)
        superseded = sum(v.ignored for v in variants)
        if superseded:
            notes.append(
                f"{dataset}/{protocol_name}: {superseded} runs superseded by newer runs of the same settings and "
                "seed or by runs of newer code, left out"
            )
        labels = [v.label for v in variants]
        for v in variants:  # same label, different settings (defaults changed between versions)
            if labels.count(v.label) > 1:
                v.label += f" #{hashlib.sha256(v.runs['_settings'].iloc[0].encode()).hexdigest()[:6]}"
        sections.append(Section(dataset, PROTOCOLS[protocol_name], sha, EVALUATOR_VERSION, variants))
    return sections, notes


def _read_predictions(artifact_uri: str) -> list[Span] | None:
    """The run's predictions.jsonl (None if it has none)."""
    local = artifact_uri.removeprefix("file://")
    if Path(local).is_dir():
        path = Path(local, "predictions.jsonl")
    else:  # a remote artifact store (a tracking server): no MLflow download bars in the report's output
        import mlflow
        from mlflow.exceptions import MlflowException

        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

        try:
            path = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"{artifact_uri}/predictions.jsonl"))
        except (MlflowException, OSError):
            return None
    if not path.is_file():
        return None
    with path.open() as f:
        return [Span(**json.loads(line)) for line in f]


def _inside(span: Span, lengths: Sequence[int]) -> bool:
    return 0 <= span.sentence_id < len(lengths) and 0 <= span.start < span.end <= lengths[span.sentence_id]


#: the metric names the evaluator owns: a re-scored run shows only what the current one computes
EVALUATED = ("fine/", "coarse/", "detection/", "errors/", "fewnerd/", "clusters/", "n_gold", "n_predicted")


def attach_predictions(section: Section, test: Sequence[Sentence], hierarchy: LabelHierarchy) -> None:
    """Re-score every run from its stored predictions with the current evaluator: count tables
    per seed, and the runs' metrics replaced by the current evaluator's (so runs logged by an
    older evaluator gain its new metrics). A variant any of whose runs lacks predictions keeps
    the metrics its runs logged (`Variant.scored_by` says so)."""
    gold = [span for sentence in test for span in sentence.spans]
    lengths = [len(sentence.tokens) for sentence in test]
    for variant in section.variants:
        predictions, tables, matches, metrics = [], [], [], []
        for _, run in variant.runs.iterrows():
            found = _read_predictions(run["artifact_uri"])
            if found is None or not all(_inside(p, lengths) for p in found):
                why = "has no predictions.jsonl" if found is None else "predicts spans outside the test sentences"
                section.notes.append(
                    f"{variant.label}: run {run['run_id']} (seed {run['tags.seed']}) {why}; the row shows the "
                    "metrics its runs logged, and is left out of significance tests and plots"
                )
                break
            predictions.append(found)
            matches.append(match(gold, found, hierarchy))
            tables.append(count_table(matches[-1], token_counts(gold, found, lengths), hierarchy))
            metrics.append(scalar_metrics(tables[-1], gold, found, section.protocol.scoring))
        else:
            variant.tables, variant.predictions, variant.matches = tables, predictions, matches
            stale = [c for c in variant.runs if c.startswith("metrics.") and c[8:].startswith(EVALUATED)]
            rescored = pd.DataFrame(metrics, index=variant.runs.index).add_prefix("metrics.")
            variant.runs = pd.concat([variant.runs.drop(columns=stale), rescored], axis=1)


def randomization_trials(trials: int, n_pairs: int, alpha: float) -> int:
    """Enough randomization trials that Holm's correction over ``n_pairs`` can reach ``alpha``:
    the smallest p-value is 1 / (trials + 1), and Holm multiplies it by the number of pairs, so
    with 1,000 trials more than 50 pairs could never be significant at 0.05."""
    return max(trials, math.ceil(2 * n_pairs / alpha))


def summarise(section: Section, alpha: float = 0.05, trials: int = 1000) -> None:
    """The section's table (one row per variant) and pairs (one row per pair of variants)."""
    protocol = section.protocol
    headline = protocol.headline
    # besides the main metrics: P@K, what claims.md quotes and cluster quality (in the CSV only)
    extra = [f"fine/p_at_{k}" for k in P_AT_K] + [c.metric for c in CLAIMS if c.protocol == protocol.name]
    extra += ["clusters/nmi", "clusters/ari"]  # methods that cluster their predictions (cofee)
    extra += list(FEWNERD_ERRORS) if protocol.name in ERROR_ANALYSIS_PROTOCOLS else []
    rows, draws = [], {}
    for v in section.variants:
        row = {
            "method": v.label,
            "variant": v.declared[0] if v.declared else v.tag("variant") if "tags.variant" in v.runs else "default",
            "provenance": v.provenance,
            "regime": v.regime,
            "scored_by": v.scored_by,
            "settings": v.settings,
        }
        for metric in dict.fromkeys([*protocol.main_metrics, *extra]):
            values = v.runs.get(f"metrics.{metric}", pd.Series(dtype=float)).astype(float)
            row[f"{metric}_mean"] = values.mean()
            row[f"{metric}_std"] = values.std(ddof=1) if len(values) > 1 else np.nan
        if v.tables is not None:
            draws[v.label] = seed_mean_draws(v.tables, protocol.scoring, headline, trials)
            row["ci_low"], row["ci_high"] = np.percentile(draws[v.label], [2.5, 97.5])
        else:  # the runs' own sentence-bootstrap CIs, averaged over seeds
            row["ci_low"] = v.runs.get(f"metrics.{headline}_ci_low", pd.Series([np.nan])).astype(float).mean()
            row["ci_high"] = v.runs.get(f"metrics.{headline}_ci_high", pd.Series([np.nan])).astype(float).mean()
        seconds = v.runs.get("metrics.time/fit_seconds", 0.0) + v.runs.get("metrics.time/predict_seconds", 0.0)
        # the epoch each seed kept, from its learning curve (NaN: no curve — no training, or an older run)
        row["best_epoch"] = v.runs.get("metrics.best_epoch", pd.Series([np.nan])).astype(float).mean()
        row.update(
            seeds=len(v.runs),
            seed_list=" ".join(v.runs["tags.seed"].astype(str)),
            encoder=v.tag("encoder"),
            seconds=float(np.mean(seconds)),
            code_version=", ".join(sorted(set(v.runs["tags.code_version"].astype(str)))),
            command=v.command,
        )
        rows.append(row)
    table = pd.DataFrame(rows)
    tested = [v for v in section.variants if v.tables is not None]
    means = dict(zip(table["method"], table[f"{headline}_mean"], strict=True))
    pairs_frame = compare_pairs(tested, protocol.scoring, headline, means, draws, alpha, trials)
    tested_labels = {v.label for v in tested}
    section.table = rank_rows(table, pairs_frame, headline, tested_labels)
    section.pairs = pairs_frame.sort_values(["better", "worse"]).reset_index(drop=True)


def compare_pairs(
    tested: Sequence[Variant],
    scoring: str,
    metric: str,
    means: dict[str, float],
    draws: dict[str, np.ndarray],
    alpha: float = 0.05,
    trials: int = 1000,
) -> pd.DataFrame:
    """Every pair of ``tested`` (variants with count tables) on ``metric``: the difference of
    seed ``means`` (better first), its paired bootstrap CI from the variants' seed-mean
    ``draws``, the approximate-randomization p on per-sentence counts averaged over seeds, and
    Holm's correction over these pairs."""
    pooled = {v.label: mean_table(v.tables) for v in tested}
    pairs = []
    if tested:
        n_pairs = len(tested) * (len(tested) - 1) // 2
        test = RandomizationTest(
            tested[0].tables[0].n_sentences, scoring, metric, randomization_trials(trials, n_pairs, alpha)
        )
    for i, first in enumerate(tested):
        for second in tested[i + 1 :]:
            a, b = sorted((first, second), key=lambda v: -means[v.label])  # a: the better mean
            p = test.p_value(pooled[a.label], pooled[b.label])
            low, high = np.percentile(draws[a.label] - draws[b.label], [2.5, 97.5])
            delta = means[a.label] - means[b.label]
            pairs.append({"better": a.label, "worse": b.label, "delta": delta, "ci_low": low, "ci_high": high, "p": p})
    frame = pd.DataFrame(pairs, columns=["better", "worse", "delta", "ci_low", "ci_high", "p"])
    frame["p_holm"] = holm_adjust(frame["p"]) if len(frame) else []
    frame["significant"] = frame["p_holm"] < alpha
    return frame


def rank_rows(table: pd.DataFrame, pairs: pd.DataFrame, headline: str, tested: set[str]) -> pd.DataFrame:
    """``table`` ordered and ranked within each encoder regime (frozen first, then fine-tuned):
    ranked rows (provenance paper, prior, dev) by the headline's mean, each at 1 + the number of
    ranked rows *of its regime* significantly better (``pairs``); then the unranked ones (oracle,
    custom, or untested), with no rank. Rows of different regimes are tested, never ranked
    against each other."""
    if "regime" not in table:  # a table written before regimes: every row was frozen
        table = table.assign(regime="frozen")
    order = table.assign(
        _regime=table["regime"].map({r: i for i, r in enumerate(REGIMES)}).fillna(len(REGIMES)),
        _unranked=~table["provenance"].isin(RANKED),
    )
    order = order.sort_values(
        ["_regime", "_unranked", f"{headline}_mean"], ascending=[True, True, False], kind="stable"
    )
    table = order.drop(columns=["_regime", "_unranked"]).reset_index(drop=True)
    ranked = set(table.loc[table["provenance"].isin(RANKED), "method"]) & tested
    regime = dict(zip(table["method"], table["regime"], strict=True))
    significant = pairs["significant"].astype(str) == "True"  # a bool, or its text in a CSV
    same = [regime.get(b) == regime.get(w) for b, w in zip(pairs["better"], pairs["worse"], strict=True)]
    beaten = pairs[significant & pairs["better"].isin(ranked) & pd.Series(same, index=pairs.index, dtype=bool)]
    beaten = beaten.groupby("worse").size()
    table["rank"] = [1 + int(beaten.get(label, 0)) if label in ranked else pd.NA for label in table["method"]]
    return table


#: Few-NERD's error analysis (`benchmark.evaluate`), tabulated for the protocols that find or type
#: spans without a given coarse type (under weak-typing no span can be outer, nor a token wrong)
FEWNERD_ERRORS = ("fewnerd/fp_rate", "fewnerd/fn_rate", "fewnerd/within_rate", "fewnerd/outer_rate")
ERROR_ANALYSIS_PROTOCOLS = ("ner", "typing")
LOGGED_MARK = "◦"


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
        seed_curves = [precision_curve(gold, p) for p in v.predictions]
        shortest = min(len(c) for c in seed_curves)
        data["curves"][v.label] = np.mean([c[:shortest] for c in seed_curves], axis=0)
        by_length = [by_length_table(gold, p) for p in v.predictions]
        data["lengths"][v.label] = by_length[0].assign(f1=np.mean([t["f1"] for t in by_length], axis=0))
    return data


def render_plots(data: dict[str, dict], folder: Path, slug: str) -> None:
    """Write `PLOTS` (run in a worker process, so drawing overlaps the next section's statistics)."""
    folder.mkdir(parents=True, exist_ok=True)
    title = f"{slug} (mean over seeds)"
    plot_per_type_f1(data["per_type"], folder / PLOTS[0], f"per-type F1, {title}")
    plot_confusion(data["confusion"], folder / PLOTS[1], f"coarse confusion, {slug} (all seeds)")
    plot_precision_at_k(data["curves"], folder / PLOTS[2], f"precision@K, {title}", P_AT_K)
    plot_f1_by_length(data["lengths"], folder / PLOTS[3], f"F1 by entity length, {title}")


def _mean_std(mean: float, std: float) -> str:
    if pd.isna(mean):
        return "–"
    return f"{mean:.4f}" + ("" if pd.isna(std) else f" ± {std:.4f}")


def _ci(low: float, high: float) -> str:
    return "–" if pd.isna(low) else f"[{low:.4f}, {high:.4f}]"


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
        value = _mean_std(r[f"{headline}_mean"], r[f"{headline}_std"])
        method = f"{r['method']} {MARKS[r['provenance']]}" if r["provenance"] in MARKS else r["method"]
        if str(r.get("scored_by", "")).startswith("logged"):
            method += f" {LOGGED_MARK}"
        cells = ["–" if pd.isna(r["rank"]) else str(r["rank"]), method, r["provenance"]]
        cells += [r.get("regime", "frozen")] if mixed else []
        cells += [f"**{value}**" if top else value]
        cells += [_ci(r["ci_low"], r["ci_high"]), *(_mean_std(r[f"{m}_mean"], r[f"{m}_std"]) for m in others)]
        cells += [str(r["seeds"])] + ([] if compact else [r["encoder"], f"{r['seconds']:.0f}"])
        rows.append(cells)
    return headers, rows


def has_finetuned(table: pd.DataFrame) -> bool:
    """Whether a table has fine-tuned rows (then it shows, and ranks by, the regime)."""
    return "regime" in table and bool((table["regime"] == "finetuned").any())


#: what a table with both regimes says about its ranks
REGIME_SENTENCE = (
    "*regime*: `frozen` rows train on fixed encoder features, `finetuned` rows train the encoder's weights too; "
    "each regime is ranked on its own (ranks count only significantly better rows of the same regime), frozen rows "
    "first; pairs across regimes are still tested (*Significance*)."
)


def _run_command(section: Section) -> str:
    seeds = sorted({int(s) for seeds in section.table["seed_list"] for s in seeds.split()})
    return f"python -m benchmark run --method all --seeds {' '.join(map(str, seeds))}"


def render_markdown(section: Section, plots: list[str], alpha: float = 0.05, trials: int = 1000) -> str:
    protocol, table = section.protocol, section.table
    headers, rows = _display_rows(table, protocol)
    commits = sorted({c for cell in table["code_version"] for c in cell.split(", ")})
    lines = [
        f"# {section.dataset} / {protocol.name}",
        "",
        f"Regenerate: `python -m benchmark report --dataset {section.dataset} --protocol {protocol.name}` "
        f"after the runs `{_run_command(section)}` (each row's own command is under *Commands*).",
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
        "*s/seed*: fit + predict seconds per seed.",
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
    rows = [
        [r["method"], *(_mean_std(r.get(f"{m}_mean"), r.get(f"{m}_std")) for m in FEWNERD_ERRORS)]
        for r in table.to_dict("records")
    ]
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
    frame = claims_table(tables)
    return "\n".join(
        [
            "# Claims vs measured",
            "",
            "Regenerate: `python -m benchmark report` after `python -m benchmark run --method all "
            "--seeds 1 2 3`. *paper*: the number as the paper states it; *ours*: mean ± std over seeds on the "
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


def write_reports(request: ReportRequest, echo: Callable[[str], None] = print) -> list[Path]:
    """Read the store, build every section and write its files; nothing is written on error."""
    bad = [f for f in request.formats if f not in FORMATS]
    if bad or not request.formats:
        raise BenchmarkError(f"--format: unknown {', '.join(bad) or 'none given'}; choose from {', '.join(FORMATS)}")
    if request.protocol is not None and request.protocol not in PROTOCOLS:
        raise BenchmarkError(f"unknown protocol {request.protocol!r}; choose one of: {', '.join(PROTOCOLS)}")
    if request.regime is not None and request.regime not in REGIMES:
        raise BenchmarkError(f"unknown regime {request.regime!r}; choose one of: {', '.join(REGIMES)}")
    painter = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    painter.submit(int)  # start the drawing process (imports) while the store is read
    try:
        return _build_and_write(request, echo, painter)
    finally:
        painter.shutdown(cancel_futures=True)


def _build_and_write(request: ReportRequest, echo: Callable[[str], None], painter: ProcessPoolExecutor) -> list[Path]:
    runs = load_runs(None, request.dataset, request.protocol, request.regime)
    names = sorted(set(runs["tags.dataset"]))
    corpora = {name: _load_gold_corpus(name, request.data_dir, request.verify) for name in names}
    current = {name: c.sha256 for name, c in corpora.items() if not isinstance(c, BenchmarkError)}
    sections, notes = group_runs(runs, current)
    for note in notes:
        echo(f"note: {note}")
    created = not request.out.exists()
    request.out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".report-", dir=request.out))  # inside --out: nothing written elsewhere
    written: list[Path] = []
    try:
        drawing = []
        for section in sections:
            test = _test_split(section, corpora[section.dataset])
            hierarchy = corpora[section.dataset].hierarchy if test is not None else None
            if test is not None:
                attach_predictions(section, test, hierarchy)
            summarise(section, request.alpha, request.trials)
            folder = staging / section.dataset
            gold = [span for sentence in test for span in sentence.spans] if test is not None else None
            data = plot_data(section, gold, hierarchy) if gold else None
            plots = list(PLOTS) if data else []
            if data:
                drawing.append(painter.submit(render_plots, data, folder / section.protocol.name, section.slug))
            folder.mkdir(parents=True, exist_ok=True)
            name = section.protocol.name
            if "md" in request.formats:
                (folder / f"{name}.md").write_text(render_markdown(section, plots, request.alpha, request.trials))
            if "csv" in request.formats:
                section.table.to_csv(folder / f"{name}.csv", index=False)
                section.pairs.to_csv(folder / f"{name}_pairs.csv", index=False)
            if "tex" in request.formats:
                (folder / f"{name}.tex").write_text(render_latex(section))
            for note in section.notes:
                echo(f"note: {section.slug}: {note}")
            echo(f"{section.slug}: {len(section.variants)} rows from {sum(len(v.runs) for v in section.variants)} "
                 f"runs, {len(section.pairs)} pairs tested")  # fmt: skip
        for job in drawing:
            job.result()  # a failed plot fails the report before anything is moved into place
        if request.readme is not None and request.readme.is_file() and not request.force:
            ahead = {**read_tables(request.out, lambda _: None), **read_tables(staging, lambda _: None)}
            _refuse_lost_rows(request.readme, ahead)
        for file in sorted(p for p in staging.rglob("*") if p.is_file()):
            target = request.out / file.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(file, target)
            written.append(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not written:
            shutil.rmtree(request.out, ignore_errors=True)
    tables = read_tables(request.out, echo)
    defaults = {protocol: table for (dataset, protocol), table in tables.items() if dataset == "embedded"}
    if defaults:
        (request.out / "claims.md").write_text(render_claims(defaults))
        written.append(request.out / "claims.md")
    from benchmark.report.leaderboard import render_leaderboard

    (request.out / "index.html").write_text(render_leaderboard(tables, request.out))
    (request.out / ".nojekyll").touch()  # GitHub Pages serves the .md and .csv files as they are
    written += [request.out / "index.html", request.out / ".nojekyll"]
    if request.readme is not None and request.readme.is_file():
        _update_readme(request, tables, echo)
    return written


def read_tables(out: Path, echo: Callable[[str], None] = print) -> dict[tuple[str, str], pd.DataFrame]:
    """Every report table under ``out`` (``<dataset>/<protocol>.csv`` with its pairs), ranked by
    `rank_rows`: the README block and claims.md summarise the committed tables, whichever run
    of `report` wrote each. A table written before rows had a provenance gets each row's
    current declaration (by its method and variant), and says so."""
    tables = {}
    for path in sorted(out.glob("*/*.csv")):
        if path.stem not in PROTOCOLS:
            continue
        table = pd.read_csv(path)
        pairs_path = path.with_name(f"{path.stem}_pairs.csv")
        pairs = pd.read_csv(pairs_path) if pairs_path.is_file() else pd.DataFrame(columns=["better", "worse"])
        pairs["significant"] = pairs.get("significant", pd.Series(dtype=str)).astype(str) == "True"
        if "provenance" not in table:
            table["provenance"] = [
                _declared_by_name(label, v) for label, v in zip(table["method"], table["variant"], strict=True)
            ]
            echo(f"note: {path}: written before provenance was recorded; rows take their variant's declaration now")
        tested = set(pairs["better"]) | set(pairs["worse"])
        tables[(path.parent.name, path.stem)] = rank_rows(table, pairs, PROTOCOLS[path.stem].headline, tested)
    return tables


def _declared_by_name(label: str, variant: str) -> str:
    """A row's current declared provenance from its label (`method[:variant]`); `custom` for a
    row with overrides (``[k=v]``) or settings no declaration names (``#hash``)."""
    from benchmark.run.plan import resolve_settings

    if " " in label:
        return CUSTOM
    try:
        return resolve_settings(label.split(":")[0], None if variant == "default" else variant)[2]
    except BenchmarkError:
        return CUSTOM


def _load_gold_corpus(name: str, data_dir: Path | None, verify: bool = True):
    """The dataset, or the error that says why it cannot be loaded. Whatever files are loaded,
    runs are re-scored only against the data they were run on (same sha256)."""
    try:
        return load_corpus(name, data_dir if name != "embedded" else None, verify=verify)
    except BenchmarkError as error:
        return error


def _test_split(section: Section, corpus) -> list[Sentence] | None:
    """The test sentences of the section's dataset, or None (with a note) if they cannot be had."""
    if isinstance(corpus, BenchmarkError):
        section.notes.append(f"test gold unavailable ({corpus}): runs not re-scored, no significance tests, no plots")
        return None
    if corpus.sha256 != section.dataset_sha256:
        section.notes.append(
            f"the runs used data {section.dataset_sha256[:12]}, the loadable {section.dataset} is "
            f"{corpus.sha256[:12]}: runs not re-scored, no significance tests, no plots"
        )
        return None
    return list(corpus.split("test"))


def block_rows(readme: Path) -> dict[str, set[str]]:
    """The rows (method labels, marks stripped) the README's results block shows now, per
    ``dataset/protocol``."""
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        return {}
    block = text.split(README_START, 1)[1].split(README_END, 1)[0]
    rows: dict[str, set[str]] = {}
    section = None
    for line in block.splitlines():
        if line.startswith("**") and "**" in line[2:]:
            section = line[2:].split("**", 1)[0]
        elif section and line.startswith("|") and not line.startswith(("| rank", "|--", "| --")):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if len(cells) > 1:
                label = cells[1]
                for mark in (*MARKS.values(), LOGGED_MARK):
                    label = label.replace(mark, "")
                rows.setdefault(section, set()).add(label.strip())
    return rows


def _refuse_lost_rows(readme: Path, tables: dict[tuple[str, str], pd.DataFrame]) -> None:
    """Refuse (before anything is written) a results block that would drop rows it shows."""
    after = {f"{dataset}/{protocol}": set(table["method"]) for (dataset, protocol), table in tables.items()}
    lost = {
        section: sorted(shown - after.get(section, set()))
        for section, shown in block_rows(readme).items()
        if shown - after.get(section, set())
    }
    if lost:
        listed = "; ".join(f"{section}: {', '.join(labels)}" for section, labels in sorted(lost.items()))
        raise BenchmarkError(
            f"{readme}: its results block shows rows this report would drop ({listed}); nothing written. "
            "Run them into this store, write elsewhere with --out, or pass --force to rewrite the block anyway"
        )


def _update_readme(
    request: ReportRequest, tables: dict[tuple[str, str], pd.DataFrame], echo: Callable[[str], None]
) -> None:
    text = request.readme.read_text()
    if README_START not in text or README_END not in text:
        return
    head, rest = text.split(README_START, 1)
    tail = rest.split(README_END, 1)[1]
    request.readme.write_text(head + render_readme_block(tables, request.out, request.readme) + tail)
    echo(f"{request.readme}: results block rewritten")
