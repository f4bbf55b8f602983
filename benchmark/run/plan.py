"""One benchmark invocation: check the request, load data, fit/predict/evaluate per seed, track.

Everything the user supplied is validated (`plan_run`) before the first MLflow run is created,
so bad input leaves nothing behind. A seed that already finished with the same `RunConfig.key`
(method, settings, data, seed, evaluator, code and packages) is skipped unless forced, so an
interrupted comparison resumes where it stopped.
"""

from __future__ import annotations

import functools
import shlex
import signal
import statistics
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.core.cache import FeatureCache
from benchmark.core.config import RunConfig, config_dict, flat_settings, format_value, resolve_config
from benchmark.core.data.fewnerd import Corpus, load_corpus
from benchmark.core.encoders import check_encoder, encoder_settings
from benchmark.core.errors import BenchmarkError, ConfigError
from benchmark.core.fit import fit_predict
from benchmark.core.method import CUSTOM, Method, Settings
from benchmark.core.protocols import Protocol
from benchmark.core.registry import METHODS, PROTOCOLS, get_protocol
from benchmark.evaluate import EVALUATOR_VERSION, evaluate_split
from benchmark.run.provenance import code_fingerprint, code_version, package_versions

if TYPE_CHECKING:
    from benchmark.run.executors import Executor


@dataclass(frozen=True)
class RunRequest:
    """What the user asked for on the command line."""

    method: str
    protocol: str | None = None
    variant: str | None = None
    dataset: str = "embedded"
    data_dir: Path | None = None
    from_hub: bool = False
    verify: bool = True
    seeds: tuple[int, ...] = (1,)
    config_file: Path | None = None
    settings: tuple[str, ...] = ()
    resamples: int = 1000
    cache_dir: Path | None = None
    force: bool = False


@dataclass(frozen=True)
class RunPlan:
    """A checked request: the method, protocol and resolved settings, nothing loaded yet."""

    request: RunRequest
    method_cls: type[Method]
    protocol: Protocol
    config: Any
    label: str  # method[:variant][ [key=value, ...]] — a row of the comparison tables
    command: str  # the command line that repeats it (without --seeds)
    provenance: str  # how the settings were chosen: the variant's (or defaults') or `custom`


@dataclass
class SeedResult:
    run_config: RunConfig
    metrics: dict[str, float]
    run_id: str
    seconds: float
    extra: dict[str, float]
    skipped: bool = False  # finished earlier with the same key; metrics read from the store


@dataclass
class RunSummary:
    plan: RunPlan
    experiment: str
    tracking_uri: str
    parent_run_id: str | None  # None when every seed was skipped
    runs_url: str  # the experiment's runs table in `mlflow ui` at its default address
    results: list[SeedResult] = field(default_factory=list)
    error: BaseException | None = None  # the first failing seed's error


def resolve_method(name: str, protocol: str | None) -> tuple[type[Method], Protocol]:
    """The method class and the protocol to run it under (its first one by default)."""
    method_cls = METHODS.get(name)
    if protocol is None:
        protocol = method_cls.default_protocol or next(p for p in PROTOCOLS if p in method_cls.protocols)
    chosen = get_protocol(protocol)
    if chosen.name not in method_cls.protocols:
        raise BenchmarkError(
            f"method {name!r} does not support protocol {chosen.name!r}; "
            f"it supports: {', '.join(p for p in PROTOCOLS if p in method_cls.protocols)}"
        )
    return method_cls, chosen


def chosen_settings(method_cls: type[Method], variant: str | None, method: str) -> Settings:
    """The variant's settings (or the defaults') with their provenance; unknown names raise."""
    if variant is None:
        return method_cls.defaults
    if variant not in method_cls.variants:
        known = ", ".join(method_cls.variants) or "none"
        raise BenchmarkError(f"method {method!r} has no variant {variant!r}; its variants: {known}")
    return method_cls.variants[variant]


def resolve_settings(
    method: str, variant: str | None, file: Path | None = None, assignments: Sequence[str] = ()
) -> tuple[Any, dict[str, Any], str]:
    """The config, its overrides of the variant (or defaults) and its provenance: the variant's,
    or `custom` when ``--set``/``--config`` changed anything."""
    method_cls = METHODS.get(method)
    chosen = chosen_settings(method_cls, variant, method)
    preset = None if variant is None else (variant, chosen.overrides)
    config = resolve_config(method_cls.Config, file, list(assignments), preset)
    base = flat_settings(resolve_config(method_cls.Config, preset=preset))
    overrides = {k: v for k, v in flat_settings(config).items() if v != base[k]}
    return config, overrides, CUSTOM if overrides else chosen.provenance


def plan_run(request: RunRequest) -> RunPlan:
    """Check a request completely (method, protocol, variant, settings, encoder, seeds)."""
    method_cls, protocol = resolve_method(request.method, request.protocol)
    config, overrides, provenance = resolve_settings(
        request.method, request.variant, request.config_file, request.settings
    )
    method_cls.check_config(config, protocol.name)
    for name in dict.fromkeys(s.name for s in encoder_settings(config)):
        check_encoder(name, FeatureCache(request.cache_dir).root)
    if not request.seeds:
        raise BenchmarkError("--seeds needs at least one seed")
    label = request.method + (f":{request.variant}" if request.variant else "")
    if overrides:
        label += " [" + ", ".join(f"{k}={v}" for k, v in overrides.items()) + "]"
    words = ["python", "-m", "benchmark", "run", "--method", request.method, "--protocol", protocol.name]
    words += ["--variant", request.variant] if request.variant else []
    words += ["--dataset", request.dataset] if request.dataset != "embedded" else []
    words += ["--data-dir", str(request.data_dir)] if request.data_dir else []
    words += ["--from-hub"] if request.from_hub else []
    words += ["--no-verify"] if not request.verify else []
    for key, value in overrides.items():
        words += ["--set", f"{key}={format_value(value)}"]
    return RunPlan(request, method_cls, protocol, config, label, shlex.join(words), provenance)


def comparison_requests(methods: Sequence[str], protocol: str | None, template: RunRequest) -> list[RunRequest]:
    """Every named method (``all``: every registered one) with its defaults and each of its
    variants that applies, on ``protocol`` or, if None, on every protocol it supports."""
    names = METHODS.names() if list(methods) == ["all"] else [METHODS.check(m) for m in methods]
    if protocol is not None:
        get_protocol(protocol)
    requests = []
    for name in names:
        method_cls = METHODS.get(name)
        chosen = [p for p in PROTOCOLS if p in method_cls.protocols and protocol in (None, p)]
        if not chosen and list(methods) != ["all"]:
            resolve_method(name, protocol)  # raises: the named method cannot run that protocol
        for p in chosen:
            for variant in (None, *method_cls.variants):
                if variant is None or _variant_applies(method_cls, variant, p):
                    requests.append(replace(template, method=name, protocol=p, variant=variant))
    return requests


def _variant_applies(method_cls: type[Method], variant: str, protocol: str) -> bool:
    """Whether the variant's settings pass the method's check for ``protocol`` (a supervised
    variant, say, does not apply to a protocol without fine labels)."""
    config = resolve_config(method_cls.Config, preset=(variant, method_cls.variants[variant].overrides))
    try:
        method_cls.check_config(config, protocol)
    except ConfigError:
        return False
    return True


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def identity_tags(
    method: str, variant: str | None, protocol: Protocol, corpus: Corpus, method_cls: type[Method], packages: dict
) -> dict[str, str]:
    """What every run and sweep records: the method and variant, protocol, data, code, evaluator
    and package versions."""
    return {
        "method": method,
        "protocol": protocol.name,
        "variant": variant or "default",
        "dataset": corpus.name,
        "dataset_sha256": corpus.sha256,
        "dataset_sources": ",".join(corpus.sources),
        "code_version": code_version(),
        "code_sha256": code_fingerprint(method_cls.__module__, protocol),
        "evaluator_version": EVALUATOR_VERSION,
        **{f"version.{k}": v for k, v in packages.items()},
    }


@dataclass(frozen=True)
class SeedTask:
    """One (method, variant, protocol, seed) to run into its MLflow run, which the driver created
    (status SCHEDULED): all a worker needs, picklable. The same `run_seed` runs it whatever the
    executor."""

    request: RunRequest  # the request, with this seed only
    run_config: RunConfig
    tracking_uri: str
    experiment: str
    run_id: str
    regime: str


@dataclass
class Prepared:
    """A planned run on the driver: its parent run and the seeds still to run."""

    plan: RunPlan
    summary: RunSummary
    tracker: Any
    params: dict[str, str]  # each seed run's (its parent's add the seeds)
    pending: list[RunConfig]
    base: dict[str, str]
    corpus: Corpus


def prepare(plan: RunPlan, echo: Callable[[str], None] = print) -> Prepared:
    """Load the data (for its sha256), open the experiment, and find which seeds finished before
    with the same run key (skipped, their metrics read back) and which are still to run."""
    request, method_cls, protocol, config = plan.request, plan.method_cls, plan.protocol, plan.config
    corpus = _corpus(request.dataset, request.data_dir, request.from_hub, request.verify)
    for split in ("train", "dev", "test"):  # a missing split fails here, before anything is logged
        corpus.split(split)

    from benchmark.run.tracking import Tracker, flatten

    tracker = Tracker(f"{corpus.name}/{protocol.name}")
    settings = config_dict(config)
    packages = package_versions()
    base = {
        **identity_tags(request.method, request.variant, protocol, corpus, method_cls, packages),
        "label": plan.label,
        "provenance": plan.provenance,
        "command": plan.command,
        "encoder": str(settings.get("encoder", {}).get("name", "none")),
        "regime": method_cls.regime(config),
    }
    params = flatten(settings)
    summary = RunSummary(plan, tracker.experiment, tracker.uri, None, tracker.runs_url())
    pending = []
    for seed in request.seeds:
        run_config = RunConfig(
            method=request.method,
            protocol=protocol.name,
            dataset=corpus.name,
            dataset_sha256=corpus.sha256,
            seed=seed,
            config=settings,
            provenance=plan.provenance,
            evaluator_version=EVALUATOR_VERSION,
            code_version=base["code_version"],
            code_sha256=base["code_sha256"],
            packages=packages,
        )
        found = None if request.force else tracker.find_finished(run_config.key)
        if found is None:
            pending.append(run_config)
            continue
        run_id, metrics = found
        echo(f"[{run_config.name}] finished before as run {run_id} (same settings, data and code): skipped")
        seconds = metrics.get("time/fit_seconds", 0.0) + metrics.get("time/predict_seconds", 0.0)
        summary.results.append(SeedResult(run_config, metrics, run_id, seconds, metrics, skipped=True))
    return Prepared(plan, summary, tracker, params, pending, base, corpus)


def seed_tasks(prepared: Prepared, parent_id: str) -> list[SeedTask]:
    """A scheduled child run under ``parent_id`` for each pending seed, and its task."""
    from benchmark.run.tracking import absolute_uri

    tracker, request = prepared.tracker, prepared.plan.request
    # a worker may start in another folder: paths and the store as the driver resolves them
    request = replace(
        request,
        data_dir=request.data_dir and request.data_dir.resolve(),
        cache_dir=request.cache_dir and request.cache_dir.resolve(),
        config_file=request.config_file and request.config_file.resolve(),
    )
    uri, regime, tasks = absolute_uri(tracker.uri), prepared.base["regime"], []
    for run_config in prepared.pending:
        tags = {**prepared.base, "role": "seed", "seed": str(run_config.seed), "run_key": run_config.key}
        run_id = tracker.schedule(run_config.name, tags, prepared.params, parent_id)
        task_request = replace(request, seeds=(run_config.seed,))
        tasks.append(SeedTask(task_request, run_config, uri, tracker.experiment, run_id, regime))
    return tasks


def run_seed(task: SeedTask, echo: Callable[[str], None] = print) -> SeedResult:
    """Fit, predict and evaluate one seed and log it into its scheduled run, which ends FINISHED,
    FAILED on an exception or KILLED on Ctrl-C/SIGTERM."""
    from benchmark.run.tracking import Tracker

    plan = plan_run(task.request)
    request, protocol = plan.request, plan.protocol
    corpus = _corpus(request.dataset, request.data_dir, request.from_hub, request.verify)
    _check_same_inputs(task.run_config, corpus.sha256, plan.method_cls, protocol)
    train, dev, test = corpus.split("train"), corpus.split("dev"), corpus.split("test")
    views = (protocol.train_view(train, "train", corpus.hierarchy), protocol.train_view(dev, "dev", corpus.hierarchy))
    test_view = protocol.test_view(test, corpus.hierarchy)
    tracker = Tracker(task.experiment, task.tracking_uri)
    run_config, run_id = task.run_config, task.run_id
    with tracker.resume(run_id):
        tracker.log_datasets(run_id, corpus)
        echo(f"[{run_config.name}] fitting on {len(train)} sentences ...")
        with tempfile.TemporaryDirectory(prefix="benchmark-") as tmp:
            predictions, extra = fit_predict(
                plan.method_cls(plan.config), protocol, views, test_view, run_config.seed,
                FeatureCache(request.cache_dir), Path(tmp),
                lambda metrics, step: tracker.log(run_id, metrics, step=step),
            )  # fmt: skip
            scores = evaluate_split(test, predictions, corpus.hierarchy, protocol.scoring, request.resamples)
            gold = [span for sentence in test for span in sentence.spans]
            tracker.log_result(run_id, run_config, scores, predictions, extra, Path(tmp, "artifacts"), gold)
    seconds = extra["time/fit_seconds"] + extra["time/predict_seconds"]
    return SeedResult(run_config, scores.metrics, run_id, seconds, extra)


def _check_same_inputs(run_config: RunConfig, data_sha256: str, method_cls: type[Method], protocol: Protocol) -> None:
    """Refuse to run a task whose data, code or packages here (a worker on another node) differ
    from those its run key was made from on the driver: its run would claim results it did not
    compute."""
    here = {
        "data (sha256)": (data_sha256, run_config.dataset_sha256),
        "code (sha256)": (code_fingerprint(method_cls.__module__, protocol), run_config.code_sha256),
        "package versions": (package_versions(), run_config.packages),
    }
    differ = [name for name, (mine, driver) in here.items() if mine != driver]
    if differ:
        raise BenchmarkError(
            f"{run_config.name}: this worker's {' and '.join(differ)} differ from the driver's; every node "
            "needs the same checkout, data files and packages"
        )


def run_benchmark(
    request: RunRequest | RunPlan, echo: Callable[[str], None] = print, executor: Executor | None = None
) -> RunSummary:
    """Run one method under one protocol for each seed; every seed is a child MLflow run."""
    return run_plans([request if isinstance(request, RunPlan) else plan_run(request)], echo, executor)[0]


def run_plans(
    plans: Sequence[RunPlan], echo: Callable[[str], None] = print, executor: Executor | None = None
) -> list[RunSummary]:
    """Every seed of every plan as one batch of tasks for ``executor`` (default: `LocalExecutor`,
    one after another in this process). Each plan's parent run ends FINISHED when all its seeds
    did, FAILED when one failed (its other seeds still run), KILLED on Ctrl-C. Raises the first
    seed's error for a single plan, so `run` reports it; a comparison reports failures per row."""
    from benchmark.run.executors import LocalExecutor

    executor = executor or LocalExecutor()
    signal.signal(signal.SIGTERM, _raise_interrupt)
    prepared = [prepare(plan, echo) for plan in plans]
    parents: dict[int, str] = {}
    try:
        tasks: list[tuple[int, SeedTask]] = []
        for k, item in enumerate(prepared):
            if item.pending:
                name = f"{item.plan.label}:protocol={item.plan.protocol.name}"
                params = {**item.params, "seeds": str(item.plan.request.seeds)}
                parents[k] = item.tracker.open(name, {**item.base, "role": "parent"}, params)
                item.tracker.log_datasets(parents[k], item.corpus)  # the runs table lists parents: their Dataset column
                item.summary.parent_run_id = parents[k]
                tasks += [(k, task) for task in seed_tasks(item, parents[k])]
        outcomes = executor.run([task for _, task in tasks], echo)
    except BaseException as error:  # every run left without a final status ends KILLED (Ctrl-C) or FAILED
        status = "KILLED" if isinstance(error, (KeyboardInterrupt, SystemExit)) else "FAILED"
        for k, parent in parents.items():
            prepared[k].tracker.end_family(parent, status)
        raise
    for (k, _), outcome in zip(tasks, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            prepared[k].summary.error = prepared[k].summary.error or outcome
        else:
            prepared[k].summary.results.append(outcome)
    for k, item in enumerate(prepared):
        seeds = item.plan.request.seeds
        item.summary.results.sort(key=lambda r: seeds.index(r.run_config.seed))
        if k in parents:
            if item.summary.error is None:
                item.tracker.log(parents[k], metrics=_seed_statistics([r.metrics for r in item.summary.results]))
            item.tracker.client.set_terminated(parents[k], "FAILED" if item.summary.error else "FINISHED")
    if len(prepared) == 1 and prepared[0].summary.error is not None:
        raise prepared[0].summary.error
    return [item.summary for item in prepared]


def _corpus(dataset: str, data_dir: Path | None, from_hub: bool, verify: bool) -> Corpus:
    """The corpus; the shipped ones are read once per process (a worker runs many seeds of them),
    files from ``--data-dir`` every time (they may change between runs)."""
    if data_dir is None:
        return _shipped_corpus(dataset, from_hub, verify)
    return load_corpus(dataset, data_dir, from_hub, verify)


@functools.lru_cache(maxsize=4)
def _shipped_corpus(dataset: str, from_hub: bool, verify: bool) -> Corpus:
    return load_corpus(dataset, None, from_hub, verify)


def _seed_statistics(per_seed: list[dict[str, float]]) -> dict[str, float]:
    """Mean and standard deviation over seeds of every metric (std 0 for one seed)."""
    out = {}
    for key in per_seed[0]:
        values = [m[key] for m in per_seed if key in m]
        out[f"{key}_mean"] = statistics.fmean(values)
        out[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return out
