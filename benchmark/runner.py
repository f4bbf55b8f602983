"""One benchmark invocation: check the request, load data, fit/predict/evaluate per seed, track.

Everything the user supplied is validated (`plan_run`) before the first MLflow run is created,
so bad input leaves nothing behind. A seed that already finished with the same `RunConfig.key`
(method, settings, data, seed, evaluator, code and packages) is skipped unless forced, so an
interrupted comparison resumes where it stopped.
"""

from __future__ import annotations

import shlex
import signal
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmark.cache import FeatureCache
from benchmark.config import RunConfig, config_dict, format_value, resolve_config
from benchmark.data.fewnerd import Corpus, load_corpus
from benchmark.encoders import check_encoder
from benchmark.errors import BenchmarkError, ConfigError
from benchmark.evaluate import EVALUATOR_VERSION, evaluate_split
from benchmark.method import CUSTOM, Context, Method, Settings
from benchmark.progress import MetricLog, ignore, stage
from benchmark.protocols import PROTOCOLS, Protocol, View, get_protocol
from benchmark.registry import METHODS
from benchmark.reproducibility import code_version, package_versions, seed_everything, source_fingerprint
from benchmark.spans import Span


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
    base = config_dict(resolve_config(method_cls.Config, preset=preset))
    overrides = {k: v for k, v in config_dict(config).items() if v != base[k]}
    return config, overrides, CUSTOM if overrides else chosen.provenance


def plan_run(request: RunRequest) -> RunPlan:
    """Check a request completely (method, protocol, variant, settings, encoder, seeds)."""
    method_cls, protocol = resolve_method(request.method, request.protocol)
    config, overrides, provenance = resolve_settings(
        request.method, request.variant, request.config_file, request.settings
    )
    method_cls.check_config(config, protocol.name)
    if hasattr(config, "encoder"):
        check_encoder(config.encoder, FeatureCache(request.cache_dir).root)
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
        "code_sha256": source_fingerprint(method_cls.__module__),
        "evaluator_version": EVALUATOR_VERSION,
        **{f"version.{k}": v for k, v in packages.items()},
    }


def run_benchmark(request: RunRequest | RunPlan, echo: Callable[[str], None] = print) -> RunSummary:
    """Run one method under one protocol for each seed; every seed is a child MLflow run."""
    plan = request if isinstance(request, RunPlan) else plan_run(request)
    request, method_cls, protocol, config = plan.request, plan.method_cls, plan.protocol, plan.config
    corpus = load_corpus(request.dataset, request.data_dir, request.from_hub, request.verify)
    train, dev, test = corpus.split("train"), corpus.split("dev"), corpus.split("test")
    train_view = protocol.train_view(train, "train", corpus.hierarchy)
    dev_view = protocol.train_view(dev, "dev", corpus.hierarchy)
    test_view = protocol.test_view(test, corpus.hierarchy)
    gold = [span for sentence in test for span in sentence.spans]

    from benchmark.tracking import Tracker, flatten

    signal.signal(signal.SIGTERM, _raise_interrupt)
    tracker = Tracker(f"{corpus.name}/{protocol.name}")
    settings = config_dict(config)
    packages = package_versions()
    base = {
        **identity_tags(request.method, request.variant, protocol, corpus, method_cls, packages),
        "label": plan.label,
        "provenance": plan.provenance,
        "command": plan.command,
        "encoder": str(settings.get("encoder", "none")),
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
    if not pending:
        return summary
    parent_name = f"{plan.label}:protocol={protocol.name}"
    with tracker.run(parent_name, {**base, "role": "parent"}, {**params, "seeds": str(request.seeds)}) as parent:
        summary.parent_run_id = parent
        tracker.log_datasets(parent, corpus)  # the runs table shows parents: their Dataset column
        for run_config in pending:
            tags = {**base, "role": "seed", "seed": str(run_config.seed), "run_key": run_config.key}
            with tracker.run(run_config.name, tags, params, parent_id=parent) as run_id:
                tracker.log_datasets(run_id, corpus)
                echo(f"[{run_config.name}] fitting on {len(train)} sentences ...")
                with tempfile.TemporaryDirectory(prefix="benchmark-") as tmp:
                    predictions, extra = fit_predict(
                        method_cls(config), protocol, (train_view, dev_view), test_view, run_config.seed,
                        FeatureCache(request.cache_dir), Path(tmp),
                        lambda metrics, step, run_id=run_id: tracker.log(run_id, metrics, step=step),
                    )  # fmt: skip
                    scores = evaluate_split(test, predictions, corpus.hierarchy, protocol.scoring, request.resamples)
                    tracker.log_result(run_id, run_config, scores, predictions, extra, Path(tmp, "artifacts"), gold)
                seconds = extra["time/fit_seconds"] + extra["time/predict_seconds"]
                summary.results.append(SeedResult(run_config, scores.metrics, run_id, seconds, extra))
        summary.results.sort(key=lambda r: request.seeds.index(r.run_config.seed))
        tracker.log(parent, metrics=_seed_statistics([r.metrics for r in summary.results]))
    return summary


def fit_predict(
    method: Method,
    protocol: Protocol,
    training: tuple[View, View],
    view: View,
    seed: int,
    features: FeatureCache,
    scratch: Path,
    log: MetricLog = ignore,
    split: str = "test",
) -> tuple[list[Span], dict[str, float]]:
    """Seed, fit on (train, dev), predict ``view`` and check the predictions against the protocol.

    ``scratch/work`` is the method's scratch space and ``scratch/artifacts`` what it logs; ``log``
    receives learning-curve points as they happen; ``split`` names ``view`` in progress lines.
    Returns the predictions and the run's bookkeeping metrics (seconds, cache use, the method's own).
    """
    workdir, artifact_dir = scratch / "work", scratch / "artifacts"
    workdir.mkdir()
    artifact_dir.mkdir()
    seed_everything(seed)
    ctx = Context(seed, workdir, artifact_dir, features, log=log)
    started = time.perf_counter()
    method.fit(*training, ctx)
    fitted = time.perf_counter()
    with stage(f"predicting {len(view.examples)} {split} sentences"):
        predictions = protocol.validate(method.predict(view), view)
    predicted = time.perf_counter()
    return predictions, {
        "time/fit_seconds": fitted - started,
        "time/predict_seconds": predicted - fitted,
        "features/cache_hits": features.hits,
        "features/cache_misses": features.misses,
        "features/encoded_sentences": features.encoded_sentences,
        "features/stage_cache_hits": features.stage_hits,
        **{f"method/{k}": float(v) for k, v in ctx.metrics.items()},
    }


def _seed_statistics(per_seed: list[dict[str, float]]) -> dict[str, float]:
    """Mean and standard deviation over seeds of every metric (std 0 for one seed)."""
    out = {}
    for key in per_seed[0]:
        values = [m[key] for m in per_seed if key in m]
        out[f"{key}_mean"] = statistics.fmean(values)
        out[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return out
