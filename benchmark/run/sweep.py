"""``python -m benchmark sweep``: choose settings on dev, the way a reviewer accepts it.

Each grid point is fitted on train (with dev for early stopping, as in `run`), predicts the
**dev** split and is scored there by the one evaluator; the test split is never taken from the
corpus. Under ``typing`` and ``ner`` dev carries the fine labels the protocol already allows.
Under ``weak-typing`` it carries coarse labels only, so by default a sweep scores *coarse-blind
typing*: the dev entities (the coarse dev view's spans) are handed over with their coarse type
withheld, the method picks among all fine types, and the criterion is the coarse accuracy of
those picks (``blind_coarse/accuracy``) — no fine label is read. ``--oracle`` scores dev with
fine labels instead, and what it selects is ``oracle``.

Each grid point is a `RunPlan` scored on dev; the driver runs every point's seeds as one batch
of tasks on the chosen executor (local or Ray), as for `run`. A parent MLflow run records the
sweep, a child run each grid point and seed (``dev/…`` metrics); a point that finished before
with the same settings, data, code and criterion is not refitted.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.core.config import format_value, parse_assignment, read_config_file, resolve_config
from benchmark.core.errors import BenchmarkError, ConfigError
from benchmark.core.labels import LabelHierarchy
from benchmark.core.protocols import Protocol
from benchmark.evaluate import evaluate
from benchmark.run.driver import Family, Row, execute, finish, prepare
from benchmark.run.plan import (
    DataSource,
    RunPlan,
    RunRequest,
    Scoring,
    check_encoders,
    check_seeds,
    chosen_settings,
    command_line,
    overrides_of,
    plan_run,
    preset,
    resolve_method,
    row_label,
)
from benchmark.run.seed import BLIND
from benchmark.seeds import SeedSummary

if TYPE_CHECKING:
    from benchmark.run.executors import Executor


@dataclass(frozen=True)
class SweepRequest:
    """What the user asked for: the method, the grid and how dev is scored."""

    method: str
    grid: tuple[str, ...] = ()  # "key=v1,v2,…", TOML values
    grid_file: Path | None = None  # a TOML table: key = [v1, v2, …]
    protocol: str | None = None
    variant: str | None = None  # the base the grid overrides
    settings: tuple[str, ...] = ()  # --set on top of the base, below the grid
    seeds: tuple[int, ...] = (1,)
    metric: str | None = None
    oracle: bool = False
    source: DataSource = field(default_factory=DataSource)
    cache_dir: Path | None = None
    force: bool = False


@dataclass
class PointResult:
    """One grid point: its dev criterion over its seeds and where its runs are."""

    point: dict[str, Any]
    plan: RunPlan
    values: list[float]  # the criterion, one per seed
    seconds: list[float]
    encoded: float  # sentences the encoder had to encode (0: all from the feature cache)
    run_ids: list[str]  # one per seed, fitted now or finished before

    @property
    def summary(self) -> SeedSummary:
        return SeedSummary.of(self.values)


@dataclass
class SweepSummary:
    request: SweepRequest
    protocol: Protocol
    metric: str
    provenance: str  # of the selected point: dev, or oracle with --oracle
    points: list[PointResult]
    best: PointResult
    run_command: str
    command: str  # the sweep's own
    experiment: str
    parent_run_id: str | None


def parse_grid(texts: Sequence[str], file: Path | None) -> dict[str, list[Any]]:
    """``key=v1,v2`` options (values in TOML syntax, comma-separated) and a TOML grid file."""
    grid: dict[str, list[Any]] = {}
    if file is not None:
        for key, values in read_config_file(file).items():
            grid[key] = list(values) if isinstance(values, list) else [values]
    for text in texts:
        key, sep, raw = text.partition("=")
        key = key.strip()
        if not sep or not key or any(not piece.strip() for piece in raw.split(",")):
            raise ConfigError(f"--grid {text!r}: expected key=value1,value2, e.g. --grid encoder.layer=2,3,4")
        if key in grid:
            raise ConfigError(f"--grid {key}: given twice (in the grid file or another --grid)")
        grid[key] = [parse_assignment(f"{key}={piece}")[1] for piece in raw.split(",")]
    if not grid or not all(grid.values()):
        raise ConfigError("the grid is empty: give --grid key=value1,value2 (repeatable) or --grid-file FILE.toml")
    for key, values in grid.items():
        if len({json.dumps(v) for v in values}) < len(values):
            raise ConfigError(f"--grid {key}: a value is repeated")
    return grid


def criterion_metrics(protocol: Protocol, blind: bool) -> list[str]:
    """The metric names a sweep's dev scoring produces (for checking ``--metric`` up front)."""
    hierarchy = LabelHierarchy(("a-x", "a-y"))
    names = evaluate([], [], [1], hierarchy, protocol.scoring, resamples=0).metrics
    lower_is_better = ("errors/", "fewnerd/")  # counts and rates of errors: a sweep maximises
    higher_is_better = [k for k in names if "/" in k and not k.startswith(lower_is_better)]
    if blind:
        return [f"{BLIND}/{k.split('/', 1)[1]}" for k in higher_is_better if k.startswith("fine/")]
    return higher_is_better


@dataclass(frozen=True)
class SweepPlan:
    """A checked sweep: one dev-scored plan per grid point, the criterion, and what its choice will be."""

    protocol: Protocol
    metric: str
    blind: bool  # weak-typing without --oracle: coarse-blind typing, coarse labels only
    grid: dict[str, list[Any]]
    points: list[dict[str, Any]]
    plans: list[RunPlan]
    provenance: str  # of the selected point: `oracle` with --oracle or from an oracle base it does not redo
    command: str  # the sweep's own command line (what a method card quotes)


def plan_sweep(request: SweepRequest) -> SweepPlan:
    """Check everything the user gave before anything is loaded or logged."""
    method_cls, protocol = resolve_method(request.method, request.protocol)
    base_settings = chosen_settings(method_cls, request.variant, request.method)
    base = preset(method_cls, request.variant)
    blind = protocol.name == "weak-typing" and not request.oracle
    if request.oracle and protocol.name != "weak-typing":
        raise BenchmarkError(
            f"--oracle is not needed under {protocol.name!r}: its dev split already carries the fine labels "
            "the protocol allows, so a dev sweep there is `dev`, not `oracle`"
        )
    metric = request.metric or (f"{BLIND}/accuracy" if blind else protocol.headline)
    known = criterion_metrics(protocol, blind)
    if metric not in known:
        how = "coarse-blind dev scoring (weak-typing without --oracle)" if blind else f"{protocol.name} on dev"
        raise BenchmarkError(f"--metric {metric!r} is not produced by {how}; choose one of: {', '.join(known)}")
    seeds = check_seeds(request.seeds)
    grid = parse_grid(request.grid, request.grid_file)
    points = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    # an oracle base taints the choice unless the grid re-derives every setting it chose forbiddenly
    tainted = base_settings.provenance == "oracle" and not base_settings.decided <= set(points[0])
    provenance = "oracle" if request.oracle or tainted else "dev"
    default = resolve_config(method_cls.Config, preset=base)
    command = sweep_command(request, protocol)
    plans = []
    for point in points:
        config = resolve_config(method_cls.Config, None, list(request.settings), base, point)
        method_cls.check_config(config, protocol.name)
        check_encoders(config, request.cache_dir)
        overrides = overrides_of(config, default)  # the fixed --set ones, then the point
        plans.append(
            RunPlan(
                method=request.method,
                variant=request.variant,
                protocol=protocol,
                config=config,
                provenance=provenance,
                label=row_label(request.method, request.variant, {**overrides, **point}),
                command=command,
                source=request.source,
                seeds=seeds,
                scoring=Scoring("dev", resamples=0, blind=blind),
                cache_dir=request.cache_dir,
                force=request.force,
            )
        )
    return SweepPlan(protocol, metric, blind, grid, points, plans, provenance, command)


def sweep_command(request: SweepRequest, protocol: Protocol) -> str:
    """The sweep's own command line (what a method card quotes)."""
    words = [w for a in request.settings for w in ("--set", a)]
    words += [w for g in request.grid for w in ("--grid", g)]
    words += ["--grid-file", str(request.grid_file)] if request.grid_file else []
    words += ["--seeds", *map(str, request.seeds)] if request.seeds != (1,) else []
    words += ["--metric", request.metric] if request.metric else []
    words += ["--oracle"] if request.oracle else []
    return command_line("sweep", request.method, protocol.name, request.variant, DataSource(), words)


def run_sweep(
    request: SweepRequest, echo: Callable[[str], None] = print, executor: Executor | None = None
) -> SweepSummary:
    """Fit and dev-score every point and seed (skipping those that finished before) on
    ``executor``, under one parent run that records the grid, the choice and every point's runs."""
    plan = plan_sweep(request)
    protocol, metric = plan.protocol, plan.metric
    rows = [prepare(p, lambda corpus: f"{corpus.name}/{protocol.name}/sweeps", "sweep-point", echo) for p in plan.plans]
    criterion = {True: "dev, coarse-blind typing (coarse labels only)", False: "dev, fine labels"}[plan.blind]
    for point, row in zip(plan.points, rows, strict=True):
        row.tags.update({"criterion": criterion, "metric": metric, "point": json.dumps(point)})
    tags = {**rows[0].tags, "role": "sweep", "label": request.method, "grid": json.dumps(plan.grid)}
    tags = {k: v for k, v in tags.items() if k != "point"}
    family = Family(rows[0].tracker, f"sweep:{request.method}:protocol={protocol.name}", tags, {}, rows)
    execute([family], executor, echo)
    if family.parent_id is None:  # every point finished before: the sweep is recorded in a new parent all the same
        family.parent_id = family.tracker.open(family.name, family.tags, family.params)
    results = [_point_result(point, row, metric) for point, row in zip(plan.points, rows, strict=True)]
    failed = next((row.error for row in rows if row.error is not None), None)
    if failed is not None:
        finish(family)
        raise failed
    best = max(results, key=lambda r: -math.inf if math.isnan(r.summary.mean) else r.summary.mean)  # first of equals
    run_command = _run_command(request, protocol, best.point)
    points_table = [{"point": r.point, "values": r.values, "runs": r.run_ids} for r in results]
    family.tracker.log_json(family.parent_id, points_table, "points.json")  # every point's runs, reused ones too
    selected = {"selected": json.dumps(best.point), "selected_command": run_command}
    finish(family, metrics={f"best/dev/{metric}": best.summary.mean}, tags=selected)
    return SweepSummary(request, protocol, metric, plan.provenance, results, best, run_command, plan.command,
                        family.tracker.experiment, family.parent_id)  # fmt: skip


def _point_result(point: dict[str, Any], row: Row, metric: str) -> PointResult:
    results = row.results
    return PointResult(
        point,
        row.plan,
        [r.metrics[f"dev/{metric}"] for r in results],
        [r.seconds for r in results],
        sum(r.metrics.get("features/encoded_sentences", 0.0) for r in results if not r.skipped),
        [r.run_id for r in results],
    )


def _run_command(request: SweepRequest, protocol: Protocol, point: dict[str, Any]) -> str:
    """The `run` command that uses the selected point (its ``--set`` make it `custom` until the
    point is declared as a named variant)."""
    assignments = (*request.settings, *(f"{k}={format_value(v)}" for k, v in point.items()))
    run = RunRequest(request.method, protocol.name, request.variant, request.source, settings=assignments,
                     cache_dir=request.cache_dir)  # fmt: skip
    return plan_run(run).command
