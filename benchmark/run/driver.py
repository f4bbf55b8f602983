"""The driver: plans in, seed tasks out, results back — the one path `run` and `sweep` share.

For each plan it loads the data once (for its sha256), builds each seed's `RunConfig`, and
skips a seed that finished before with the same key (unless forced), reading its metrics back.
The rest become `SeedTask`s under a parent run per `Family` (a `run` row, or a whole sweep) and
go to an executor in one batch. Every run ends with a final status: a parent FINISHED when all
its seeds did, FAILED when one failed (the others still run), KILLED on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from benchmark.core.config import config_dict
from benchmark.core.data.fewnerd import Corpus
from benchmark.evaluate import EVALUATOR_VERSION
from benchmark.run.episodes import episode_sets, meta_training
from benchmark.run.executors import LocalExecutor
from benchmark.run.plan import RunPlan
from benchmark.run.provenance import code_version, package_versions, row_fingerprint
from benchmark.run.record import RunConfig
from benchmark.run.seed import SeedResult, SeedTask, load
from benchmark.run.tracking import Tracker, absolute_uri, flatten
from benchmark.seeds import summarise_seeds

if TYPE_CHECKING:
    from benchmark.run.executors import Executor


@dataclass
class Row:
    """A plan on the driver: its data, what its runs record, and its seeds' results so far."""

    plan: RunPlan
    corpus: Corpus
    tracker: Tracker  # its experiment
    tags: dict[str, str]  # what each of its seed runs is tagged with (seed and key added per seed)
    params: dict[str, str]  # each seed run's settings
    pending: list[RunConfig]
    results: list[SeedResult] = field(default_factory=list)
    error: BaseException | None = None  # the first failing seed's
    parent_id: str | None = None  # its family's parent run; None when every seed was skipped


@dataclass
class Family:
    """Rows whose seed runs share one parent run in one experiment."""

    tracker: Tracker
    name: str
    tags: dict[str, str]
    params: dict[str, str]
    rows: list[Row]
    parent_id: str | None = None  # None until opened; stays None when every seed was skipped


def identity_tags(plan: RunPlan, corpus: Corpus, packages: Mapping[str, str]) -> dict[str, str]:
    """What every run records: the row, its method, variant and settings' provenance, protocol,
    data, code, encoder, regime, evaluator and package versions."""
    settings = config_dict(plan.config)
    return {
        "method": plan.method,
        "protocol": plan.protocol.name,
        "variant": plan.variant or "default",
        "dataset": corpus.name,
        "dataset_sha256": corpus.sha256,
        "dataset_sources": ",".join(corpus.sources),
        "code_version": code_version(),
        "code_sha256": row_fingerprint(plan),
        "evaluator_version": EVALUATOR_VERSION,
        **{f"version.{k}": v for k, v in packages.items()},
        "label": plan.label,
        "provenance": plan.provenance,
        "command": plan.command,
        "encoder": str(settings.get("encoder", {}).get("name", "none")),
        "regime": plan.regime,
    }


def prepare(plan: RunPlan, experiment: Callable[[Corpus], str], role: str, echo: Callable[[str], None]) -> Row:
    """Load the plan's data (a missing split fails here, before anything is logged), open its
    experiment, and find which seeds finished before with the same key (skipped, their metrics
    read back) and which are still to run."""
    corpus = load(plan.source)
    packages = package_versions()
    for split in plan.scoring.splits:
        corpus.split(split)
    scored_on = plan.scoring.name
    if plan.scoring.episodes is not None:  # episodes that cannot be drawn or read fail here, before anything is logged
        episode_sets(plan.scoring.episodes, corpus)
        scored_on += f",meta_training={meta_training(corpus).sha256[:16]}"  # what it meta-trains on is in its key
    tags = {**identity_tags(plan, corpus, packages), "role": role}
    row = Row(plan, corpus, Tracker(experiment(corpus)), tags, flatten(config_dict(plan.config)), [])
    tracker = row.tracker
    for seed in plan.seeds:
        run_config = RunConfig(
            method=plan.method,
            label=plan.label,
            protocol=plan.protocol.name,
            dataset=corpus.name,
            dataset_sha256=corpus.sha256,
            seed=seed,
            config=config_dict(plan.config),
            scored_on=scored_on,
            provenance=plan.provenance,
            evaluator_version=EVALUATOR_VERSION,
            code_version=tags["code_version"],
            code_sha256=tags["code_sha256"],
            packages=packages,
        )
        found = None if plan.force else tracker.find_finished(run_config.key)
        if found is None:
            row.pending.append(run_config)
            continue
        run_id, metrics = found
        echo(f"[{run_config.name}] finished before as run {run_id} (same settings, data and code): skipped")
        seconds = metrics.get("time/fit_seconds", 0.0) + metrics.get("time/predict_seconds", 0.0)
        row.results.append(SeedResult(run_config, metrics, run_id, seconds, skipped=True))
    return row


def execute(families: Sequence[Family], executor: Executor | None = None, echo: Callable[[str], None] = print) -> None:
    """Open a parent run for each family with seeds to run, hand every pending seed of every
    family to ``executor`` (default: `LocalExecutor`) in one batch, and collect each row's results
    (in its seeds' order) or first error. Parents stay open: `finish` ends them."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
    tasks: list[SeedTask] = []
    owners: list[Row] = []
    try:
        for family in families:
            if any(row.pending for row in family.rows):
                _open(family)
                for row in family.rows:
                    tasks += [_task(family, row, run_config) for run_config in row.pending]
                    owners += [row] * len(row.pending)
        outcomes = (executor or LocalExecutor()).run(tasks, echo)
    except BaseException as error:  # every run left without a final status ends KILLED (Ctrl-C) or FAILED
        status = "KILLED" if isinstance(error, (KeyboardInterrupt, SystemExit)) else "FAILED"
        for family in families:
            if family.parent_id is not None:
                family.tracker.end_family(family.parent_id, status)
        raise
    for row, outcome in zip(owners, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            row.error = row.error or outcome
        else:
            row.results.append(outcome)
    for family in families:
        for row in family.rows:
            row.results.sort(key=lambda r: row.plan.seeds.index(r.run_config.seed))


def finish(family: Family, metrics: Mapping[str, float] = {}, tags: Mapping[str, str] = {}) -> None:
    """Log ``metrics`` and ``tags`` on the family's parent and end it: FAILED if a seed failed,
    else FINISHED (nothing to do when every seed was skipped)."""
    if family.parent_id is None:
        return
    failed = any(row.error is not None for row in family.rows)
    if not failed:
        family.tracker.log(family.parent_id, metrics=metrics, tags=tags)
    family.tracker.end_family(family.parent_id, "FAILED" if failed else "FINISHED")


def run_plans(
    plans: Sequence[RunPlan], executor: Executor | None = None, echo: Callable[[str], None] = print
) -> list[Row]:
    """`run`: every seed of every plan, each plan under a parent run of its own that logs the
    seed summary of every metric. Raises the first seed's error for a single plan, so `run`
    reports it; a comparison reports failures per row."""
    rows = [prepare(plan, lambda corpus, p=plan: f"{corpus.name}/{p.protocol.name}", "seed", echo) for plan in plans]
    families = [
        Family(row.tracker, f"{row.plan.label}:protocol={row.plan.protocol.name}", {**row.tags, "role": "parent"},
               {**row.params, "seeds": str(row.plan.seeds)}, [row])
        for row in rows
    ]  # fmt: skip
    execute(families, executor, echo)
    for family in families:
        summaries = summarise_seeds([r.metrics for r in family.rows[0].results]) if family.rows[0].results else {}
        finish(family, metrics={k: v for key, s in summaries.items() for k, v in s.metrics(key).items()})
    if len(rows) == 1 and rows[0].error is not None:
        raise rows[0].error
    return rows


def _open(family: Family) -> None:
    family.parent_id = family.tracker.open(family.name, family.tags, family.params)
    for row in family.rows:
        row.parent_id = family.parent_id
    first = family.rows[0]
    family.tracker.log_datasets(
        family.parent_id, first.corpus, first.plan.scoring.splits
    )  # the runs table lists parents


def _task(family: Family, row: Row, run_config: RunConfig) -> SeedTask:
    """The seed's task: paths and the store as the driver resolves them (a worker may start in
    another folder)."""
    plan = replace(
        row.plan, source=row.plan.source.resolved(), cache_dir=row.plan.cache_dir and row.plan.cache_dir.resolve()
    )
    tags = {**row.tags, "seed": str(run_config.seed), "run_key": run_config.key}
    assert family.parent_id is not None
    return SeedTask(plan, run_config, absolute_uri(family.tracker.uri), family.tracker.experiment, family.parent_id,
                    tags, row.params)  # fmt: skip


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
