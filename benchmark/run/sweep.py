"""``python -m benchmark sweep``: choose settings on dev, the way a reviewer accepts it.

Each grid point is fitted on train (with dev for early stopping, as in `run`), predicts the
**dev** split and is scored there by the one evaluator; the test split is never taken from the
corpus. Under ``typing`` and ``ner`` dev carries the fine labels the protocol already allows.
Under ``weak-typing`` it carries coarse labels only, so by default a sweep scores *coarse-blind
typing*: the dev entities (the coarse dev view's spans) are handed over with their coarse type
withheld, the method picks among all fine types, and the criterion is the coarse accuracy of
those picks (``blind_coarse/accuracy``) — no fine label is read. ``--oracle`` scores dev with
fine labels instead, and what it selects is ``oracle``.

A parent MLflow run records the sweep, a child run each grid point and seed (``dev/…`` metrics);
a point that finished before with the same settings, data, code and criterion is not refitted.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import shlex
import statistics
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.core.cache import FeatureCache
from benchmark.core.config import (
    RunConfig,
    config_dict,
    format_value,
    parse_assignment,
    read_config_file,
    resolve_config,
)
from benchmark.core.data.fewnerd import load_corpus
from benchmark.core.encoders import check_encoder, encoder_settings
from benchmark.core.errors import BenchmarkError, ConfigError
from benchmark.core.fit import fit_predict
from benchmark.core.labels import LabelHierarchy, coarse_of
from benchmark.core.protocols import Protocol, View, withhold_coarse
from benchmark.core.spans import Span
from benchmark.evaluate import EVALUATOR_VERSION, evaluate
from benchmark.run.plan import RunRequest, chosen_settings, identity_tags, plan_run, resolve_method
from benchmark.run.provenance import package_versions

BLIND = "blind_coarse"  # metric prefix of coarse-blind typing (weak-typing without --oracle)


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
    dataset: str = "embedded"
    data_dir: Path | None = None
    from_hub: bool = False
    verify: bool = True
    cache_dir: Path | None = None
    force: bool = False


@dataclass
class PointResult:
    point: dict[str, Any]
    values: list[float] = field(default_factory=list)  # the criterion, one per seed
    seconds: list[float] = field(default_factory=list)
    encoded: float = 0.0  # sentences the encoder had to encode (0: all from the feature cache)
    run_ids: list[str] = field(default_factory=list)  # one per seed, fitted now or finished before

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0


@dataclass
class SweepSummary:
    request: SweepRequest
    protocol: Protocol
    metric: str
    provenance: str  # of the selected point: dev, or oracle with --oracle
    points: list[PointResult]
    best: PointResult
    run_command: str
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


def _blind_score(
    predictions: Sequence[Span], gold: Sequence[Span], lengths: Sequence[int], hierarchy: LabelHierarchy
) -> dict[str, float]:
    """Coarse-level scores of fine predictions on coarse gold spans: the evaluator over a
    hierarchy whose types are the coarse types, so its "fine" level is the coarse one."""
    coarse = LabelHierarchy(hierarchy.coarse_types)
    mapped = [p._replace(label=coarse_of(p.label), cluster=None) for p in predictions]
    metrics = evaluate(gold, mapped, lengths, coarse, "typing", resamples=0).metrics
    return {f"{BLIND}/{k.split('/', 1)[1]}": v for k, v in metrics.items() if k.startswith("fine/")}


@dataclass(frozen=True)
class SweepPlan:
    """A checked sweep: what it fits, how dev is scored, and what its choice will be."""

    method_cls: type
    protocol: Protocol
    metric: str
    blind: bool  # weak-typing without --oracle: coarse-blind typing, coarse labels only
    grid: dict[str, list[Any]]
    points: list[dict[str, Any]]
    configs: list[Any]
    provenance: str  # of the selected point: `oracle` with --oracle or from an oracle base it does not redo


def plan_sweep(request: SweepRequest) -> SweepPlan:
    """Check everything the user gave before anything is loaded or logged."""
    method_cls, protocol = resolve_method(request.method, request.protocol)
    base_settings = chosen_settings(method_cls, request.variant, request.method)
    preset = None if request.variant is None else (request.variant, base_settings.overrides)
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
    if not request.seeds:
        raise BenchmarkError("--seeds needs at least one seed")
    grid = parse_grid(request.grid, request.grid_file)
    points = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    configs = []
    for point in points:
        config = resolve_config(method_cls.Config, None, list(request.settings), preset, point)
        method_cls.check_config(config, protocol.name)
        configs.append(config)
    for name in dict.fromkeys(s.name for c in configs for s in encoder_settings(c)):
        check_encoder(name, FeatureCache(request.cache_dir).root)
    # an oracle base taints the choice unless the grid re-derives every setting it chose forbiddenly
    tainted = base_settings.provenance == "oracle" and not base_settings.decided <= set(points[0])
    provenance = "oracle" if request.oracle or tainted else "dev"
    return SweepPlan(method_cls, protocol, metric, blind, grid, points, configs, provenance)


def _command(request: SweepRequest, protocol: Protocol, point: Mapping[str, Any]) -> str:
    """The `run` command that uses the selected point (its ``--set`` make it `custom` until the
    point is declared as a named variant)."""
    assignments = (*request.settings, *(f"{k}={format_value(v)}" for k, v in point.items()))
    run = RunRequest(
        request.method, protocol.name, request.variant, request.dataset, request.data_dir, request.from_hub,
        request.verify, settings=assignments, cache_dir=request.cache_dir,
    )  # fmt: skip
    return plan_run(run).command


def sweep_command(request: SweepRequest, protocol: Protocol) -> str:
    """The sweep's own command line (what a method card quotes)."""
    words = ["python", "-m", "benchmark", "sweep", "--method", request.method, "--protocol", protocol.name]
    words += ["--variant", request.variant] if request.variant else []
    words += [w for a in request.settings for w in ("--set", a)]
    words += [w for g in request.grid for w in ("--grid", g)]
    words += ["--grid-file", str(request.grid_file)] if request.grid_file else []
    words += ["--seeds", *map(str, request.seeds)] if request.seeds != (1,) else []
    words += ["--metric", request.metric] if request.metric else []
    words += ["--oracle"] if request.oracle else []
    return shlex.join(words)


def run_sweep(request: SweepRequest, echo: Callable[[str], None] = print) -> SweepSummary:
    plan = plan_sweep(request)
    method_cls, protocol, metric, blind = plan.method_cls, plan.protocol, plan.metric, plan.blind
    corpus = load_corpus(request.dataset, request.data_dir, request.from_hub, request.verify)
    train, dev = corpus.split("train"), corpus.split("dev")  # never "test"
    train_view = protocol.train_view(train, "train", corpus.hierarchy)
    dev_view = protocol.train_view(dev, "dev", corpus.hierarchy)
    predict_view, gold = _dev_scoring(protocol, blind, dev, dev_view, corpus.hierarchy)

    from benchmark.run.tracking import Tracker, flatten

    criterion = {True: "dev, coarse-blind typing (coarse labels only)", False: "dev, fine labels"}[blind]
    provenance = plan.provenance
    tracker = Tracker(f"{corpus.name}/{protocol.name}/sweeps")
    packages = package_versions()
    base = {
        **identity_tags(request.method, request.variant, protocol, corpus, method_cls, packages),
        "criterion": criterion,
        "metric": metric,
        "provenance": provenance,
        "command": sweep_command(request, protocol),
    }
    results = [PointResult(point) for point in plan.points]
    with tracker.run(f"sweep:{request.method}:protocol={protocol.name}", {**base, "role": "sweep"}, {}) as parent:
        tracker.log(parent, tags={"grid": json.dumps(plan.grid)})
        for result, config in zip(results, plan.configs, strict=True):
            settings = config_dict(config)
            for seed in request.seeds:
                run_config = RunConfig(
                    request.method, protocol.name, corpus.name, corpus.sha256, seed, settings, provenance,
                    EVALUATOR_VERSION, base["code_version"], base["code_sha256"], packages,
                )  # fmt: skip
                key = hashlib.sha256(f"{run_config.key}|{criterion}".encode()).hexdigest()[:16]
                name = f"{_point_text(result.point)} seed={seed}"
                found = None if request.force else tracker.find_finished(key, tag="sweep_key")
                if found is not None:
                    echo(f"[{name}] finished before as run {found[0]}: skipped")
                    result.values.append(found[1][f"dev/{metric}"])
                    result.seconds.append(found[1]["time/fit_seconds"] + found[1]["time/predict_seconds"])
                    result.run_ids.append(found[0])
                    continue
                tags = {**base, "role": "sweep-point", "seed": str(seed), "sweep_key": key,
                        "point": json.dumps(result.point)}  # fmt: skip
                with tracker.run(name, tags, flatten(settings), parent_id=parent) as run_id:
                    tracker.log_datasets(run_id, corpus, ("train", "dev"))  # a sweep never reads test
                    echo(f"[{name}] fitting on {len(train)} sentences, scoring dev ...")
                    with tempfile.TemporaryDirectory(prefix="benchmark-sweep-") as tmp:
                        predictions, extra = fit_predict(
                            method_cls(config), protocol, (train_view, dev_view), predict_view, seed,
                            FeatureCache(request.cache_dir), Path(tmp), split="dev",
                        )  # fmt: skip
                    scores = _score(protocol, blind, predictions, gold, [len(s.tokens) for s in dev], corpus.hierarchy)
                    tracker.log(run_id, metrics={**{f"dev/{k}": v for k, v in scores.items()}, **extra})
                result.run_ids.append(run_id)
                result.values.append(scores[metric])
                result.seconds.append(extra["time/fit_seconds"] + extra["time/predict_seconds"])
                result.encoded += extra["features/encoded_sentences"]
        best = max(results, key=lambda r: -math.inf if math.isnan(r.mean) else r.mean)  # first of equals
        command = _command(request, protocol, best.point)
        tracker.log(
            parent,
            metrics={f"best/dev/{metric}": best.mean},
            tags={"selected": json.dumps(best.point), "selected_command": command},
        )
        points_table = [{"point": r.point, "values": r.values, "runs": r.run_ids} for r in results]
        tracker.log_json(parent, points_table, "points.json")  # every point's runs, reused ones too
    return SweepSummary(request, protocol, metric, provenance, results, best, command, tracker.experiment, parent)


def _dev_scoring(
    protocol: Protocol, blind: bool, dev, dev_view: View, hierarchy: LabelHierarchy
) -> tuple[View, list[Span]]:
    """The view a grid point predicts and the gold it is scored against — dev only."""
    if blind:  # the coarse dev view's entities, coarse type withheld; gold: their coarse types
        gold = [s for e in dev_view.examples for s in e.spans]
        return withhold_coarse(dev_view), gold
    return protocol.test_view(dev, hierarchy, split="dev"), [s for sentence in dev for s in sentence.spans]


def _score(
    protocol: Protocol, blind: bool, predictions, gold, lengths: Sequence[int], hierarchy: LabelHierarchy
) -> dict[str, float]:
    if blind:
        return _blind_score(predictions, gold, lengths, hierarchy)
    metrics = evaluate(gold, predictions, lengths, hierarchy, protocol.scoring, resamples=0).metrics
    return {k: v for k, v in metrics.items() if "/" in k}


def _point_text(point: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={format_value(v)}" for k, v in point.items())
