"""Finished seed runs from the store, grouped into sections and variants, and re-scored from
their stored predictions by the current evaluator."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.core.config import RENAMED, config_dict
from benchmark.core.data.fewnerd import Corpus, Sentence, load_corpus
from benchmark.core.episodic import EpisodeProtocol
from benchmark.core.errors import BenchmarkError
from benchmark.core.labels import LabelHierarchy
from benchmark.core.method import CUSTOM
from benchmark.core.protocols import Protocol
from benchmark.core.registry import PROTOCOLS
from benchmark.core.spans import Span
from benchmark.evaluate import (
    EVALUATOR_VERSION,
    CountTable,
    count_table,
    match,
    precision_curve,
    scalar_metrics,
    semeval_counts,
    token_counts,
)
from benchmark.run.published import PublishedRun, first_outside, runs_frame
from benchmark.run.tracking import ORIGIN_TAG, finished_seed_runs, flatten, read_predictions, tracking_uri


@dataclass
class Variant:
    """One method with one exact set of settings: its runs, one per seed."""

    label: str
    runs: pd.DataFrame
    ignored: int = 0  # runs superseded by newer code or a newer run of the same seed
    tables: list[CountTable] | None = None  # per seed, from the stored predictions
    episode_tables: dict[str, list[CountTable]] | None = None  # per episode setting, per seed: counts per episode
    predictions: list[list[Span]] | None = None
    matches: list[np.ndarray] | None = None  # per seed, the evaluator's `match` rows
    curves: list[np.ndarray] | None = None  # per seed, the evaluator's `precision_curve`

    @property
    def scored_by(self) -> str:
        """Who computed the row's metrics: the current evaluator from the stored predictions,
        or (runs without predictions) the evaluator versions that logged them."""
        if self.scored:
            return f"evaluator {EVALUATOR_VERSION}"
        logged = sorted(set(self.runs.get("tags.evaluator_version", pd.Series(["?"])).astype(str)))
        return f"logged by evaluator {', '.join(logged)}"

    @property
    def scored(self) -> bool:
        """Whether the current evaluator re-scored every run from its predictions."""
        return self.tables is not None or self.episode_tables is not None

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
        """The `run` command that repeats the row: its declaration's, with the sampled episodes it
        was scored on, when it has one; else the command it logged."""
        from benchmark.run.plan import DataSource, EpisodeSource, RunRequest, plan_run

        episodes = self.runs.get("tags.episodes/source", pd.Series([None])).iloc[0]
        sampled = EpisodeSource.sampled(episodes) if isinstance(episodes, str) and episodes else EpisodeSource()
        if self.declared is None or sampled is None:
            return self.tag("command") if "tags.command" in self.runs else ""
        variant = None if self.declared[0] == "default" else self.declared[0]
        source = DataSource(self.tag("dataset"))
        return plan_run(RunRequest(self.tag("method"), self.tag("protocol"), variant, source, episodes=sampled)).command

    @property
    def settings(self) -> str:
        """The runs' settings as JSON (a column of the table)."""
        return str(self.runs["_settings"].iloc[0])

    @property
    def regime(self) -> str:
        """``frozen`` or ``finetuned`` (`run_regimes`)."""
        return str(run_regimes(self.runs).iloc[0])


def completed_settings(method: str, params: dict[str, str]) -> dict[str, str]:
    """A run's logged settings by their current names (`RENAMED`: a run logged before settings
    were nested says ``layer`` for ``encoder.layer``), with every setting added to ``method`` since
    then at its default (a setting is only ever added with a default that keeps the earlier
    behaviour), so runs from before and after compare equal."""
    from benchmark.core.registry import METHODS

    params = {RENAMED.get(k, k): v for k, v in params.items()}
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
    resamples: int = 0  # the two-level bootstrap's resamples (`benchmark.report.stats.summarise`)
    seeds: pd.DataFrame | None = None  # one line per seed run (`benchmark.report.stats.seed_table`)
    partial: pd.DataFrame | None = None  # partial-match scores (`benchmark.report.stats.partial_table`)
    partial_resamples: int = 0  # the resamples of their intervals
    ablations: pd.DataFrame | None = None  # the papers' ablations (`benchmark.report.stats.ablation_pairs`)

    @property
    def slug(self) -> str:
        return f"{self.dataset}/{self.protocol.name}"

    @property
    def run_count(self) -> int:
        """The seed runs of all its rows."""
        return sum(len(v.runs) for v in self.variants)


#: how a report gets one run's test predictions (None: the run has none)
PredictionReader = Callable[[Mapping[str, Any]], "list[Span] | None"]


def original_id(run: Mapping[str, Any]) -> str:
    """A run's id as published: an imported run's original id, else its own."""
    origin = run.get(f"tags.{ORIGIN_TAG}")
    return origin if isinstance(origin, str) else str(run["run_id"])


def stored_predictions(run: Mapping[str, Any]) -> list[Span] | None:
    """A store's run's predictions, from its artifacts."""
    return read_predictions(run["artifact_uri"])


def load_runs(
    uri: str | None = None, dataset: str | None = None, protocol: str | None = None, regime: str | None = None
) -> pd.DataFrame:
    """Finished seed runs of the store (`finished_seed_runs`) as one frame, filtered."""
    uri = uri or tracking_uri()
    return _filtered(finished_seed_runs(uri), uri, dataset, protocol, regime)


def load_published(
    runs: Sequence[PublishedRun],
    where: str,
    dataset: str | None = None,
    protocol: str | None = None,
    regime: str | None = None,
) -> tuple[pd.DataFrame, PredictionReader]:
    """The runs of the published record at ``where`` (`read_record`) as `load_runs` gives a
    store's, filtered, with the reader of their predictions."""
    by_id = {run.run_id: run for run in runs}

    def read(run: Mapping[str, Any]) -> list[Span] | None:
        found = by_id.get(run["run_id"])
        return found.predictions if found is not None else None

    return _filtered(runs_frame(runs), where, dataset, protocol, regime), read


def _filtered(
    runs: pd.DataFrame, where: str, dataset: str | None, protocol: str | None, regime: str | None
) -> pd.DataFrame:
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
        raise BenchmarkError(
            f"no finished runs in {where}" + (f" with {wanted}" if wanted else "") + ": nothing written"
        )
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
    runs = runs.sort_values(  # newest first; the same order from a store and from its published record
        ["start_time", *(["tags.run_key"] if "tags.run_key" in runs else [])], ascending=False, kind="stable"
    )
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
        if isinstance(PROTOCOLS[protocol_name], EpisodeProtocol):
            keep &= _one_episode_set(found, keep, f"{dataset}/{protocol_name}", notes)
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


def _one_episode_set(found: pd.DataFrame, keep: pd.Series, slug: str, notes: list[str]) -> pd.Series:
    """Which of an episode section's runs it shows: those of one test episode set, the default
    (`EpisodeSource`'s) where any run has it, else the newest run's; a note counts the others."""
    from benchmark.run.plan import EpisodeSource

    sources = found.get("tags.episodes/source", pd.Series("", index=found.index)).fillna("")
    default = EpisodeSource().name
    chosen = default if (sources[keep] == default).any() else (sources[keep].iloc[0] if keep.any() else "")
    others = keep & (sources != chosen)
    if others.any():
        notes.append(f"{slug}: {int(others.sum())} runs on other episode sets left out (this report: {chosen})")
    return sources == chosen


def attach_episodes(
    section: Section, corpus: Corpus | BenchmarkError, read: PredictionReader = stored_predictions
) -> None:
    """`attach_predictions` for an episode section: each run re-scored from its predictions on its
    test episodes, sampled again and checked against the sha256 it recorded
    (`benchmark.run.episodes.rebuilt_view`), with its per-setting tables of episode counts."""
    from benchmark.run.episodes import rebuilt_view, scored_settings

    if _gold_unavailable(section, corpus):
        return
    for variant in section.variants:
        predictions, tables, metrics = [], [], []
        for _, run in variant.runs.iterrows():
            tags = {k[5:]: v for k, v in run.items() if k.startswith("tags.") and isinstance(v, str)}
            try:
                view, gold = rebuilt_view(tags, corpus, section.protocol)  # type: ignore[arg-type]
            except BenchmarkError as error:
                why = f"cannot be re-scored: {error}"
                found = None
            else:
                found = read(run)
                lengths = [len(sentence.tokens) for sentence in gold]
                inside = found is not None and first_outside(found, lengths) is None
                why = "has no predictions" if found is None else "predicts spans outside its query sentences"
            if found is None or not inside:
                section.notes.append(
                    f"{variant.label}: run {original_id(run)} (seed {run['tags.seed']}) {why}; the row shows the "
                    "metrics its runs logged, and is left out of paired comparisons"
                )
                break
            predictions.append(found)
            counts, scores = scored_settings(view, gold, found, corpus.hierarchy)  # type: ignore[union-attr]
            tables.append(counts)
            metrics.append(scores)
        else:
            variant.episode_tables = {name: [t[name] for t in tables] for name in tables[0]} if tables else None
            variant.predictions = predictions
            stale = [c for c in variant.runs if c.startswith("metrics.") and _episode_metric(c[8:])]
            rescored = pd.DataFrame(metrics, index=variant.runs.index).add_prefix("metrics.")
            variant.runs = pd.concat([variant.runs.drop(columns=stale), rescored], axis=1)


def _episode_metric(name: str) -> bool:
    """Whether a metric is the evaluator's (a setting's or the average's), not bookkeeping."""
    scope, _, rest = name.partition("/")
    return ("-way-" in scope or scope == "avg") and rest.startswith(EVALUATED)


def _gold_unavailable(section: Section, corpus: Corpus | BenchmarkError) -> bool:
    """Whether the section's test data cannot be had (a note says why)."""
    if isinstance(corpus, BenchmarkError):
        section.notes.append(f"test gold unavailable ({corpus}): runs not re-scored, no paired comparisons, no plots")
        return True
    if corpus.sha256 != section.dataset_sha256:
        section.notes.append(
            f"the runs used data {section.dataset_sha256[:12]}, the loadable {section.dataset} is "
            f"{corpus.sha256[:12]}: runs not re-scored, no paired comparisons, no plots"
        )
        return True
    return False


def load_gold_corpus(name: str, data_dir: Path | None, verify: bool = True) -> Corpus | BenchmarkError:
    """The dataset, or the error that says why it cannot be loaded. Whatever files are loaded,
    runs are re-scored only against the data they were run on (same sha256)."""
    try:
        return load_corpus(name, data_dir if name != "embedded" else None, verify=verify)
    except BenchmarkError as error:
        return error


def gold_split(section: Section, corpus: Corpus | BenchmarkError) -> list[Sentence] | None:
    """The test sentences of the section's dataset, or None (with a note) if they cannot be had."""
    return None if _gold_unavailable(section, corpus) else list(corpus.split("test"))  # type: ignore[union-attr]


#: the metric names the evaluator owns: a re-scored run shows only what the current one computes
EVALUATED = ("fine/", "coarse/", "detection/", "errors/", "fewnerd/", "clusters/", "semeval/", "n_gold", "n_predicted")


def attach_predictions(
    section: Section,
    test: Sequence[Sentence],
    hierarchy: LabelHierarchy,
    read: PredictionReader = stored_predictions,
) -> None:
    """Re-score every run from its stored predictions with the current evaluator: count tables
    per seed, and the runs' metrics replaced by the current evaluator's (so runs logged by an
    older evaluator gain its new metrics). A variant any of whose runs lacks predictions keeps
    the metrics its runs logged (`Variant.scored_by` says so)."""
    gold = [span for sentence in test for span in sentence.spans]
    lengths = [len(sentence.tokens) for sentence in test]
    spans = section.protocol.scoring == "spans"
    for variant in section.variants:
        predictions, tables, matches, curves, metrics = [], [], [], [], []
        for _, run in variant.runs.iterrows():
            found = read(run)
            if found is None or first_outside(found, lengths) is not None:
                why = "has no predictions" if found is None else "predicts spans outside the test sentences"
                section.notes.append(
                    f"{variant.label}: run {original_id(run)} (seed {run['tags.seed']}) {why}; the row shows the "
                    "metrics its runs logged, and is left out of paired comparisons and plots"
                )
                break
            predictions.append(found)
            matches.append(match(gold, found, hierarchy))
            semeval = semeval_counts(gold, found, len(lengths), hierarchy) if spans else None
            tables.append(count_table(matches[-1], token_counts(gold, found, lengths), hierarchy, semeval))
            curves.append(precision_curve(gold, found))
            metrics.append(scalar_metrics(tables[-1], gold, found, section.protocol.scoring, curves[-1]))
        else:
            variant.tables, variant.predictions, variant.matches, variant.curves = tables, predictions, matches, curves
            stale = [c for c in variant.runs if c.startswith("metrics.") and c[8:].startswith(EVALUATED)]
            rescored = pd.DataFrame(metrics, index=variant.runs.index).add_prefix("metrics.")
            variant.runs = pd.concat([variant.runs.drop(columns=stale), rescored], axis=1)
