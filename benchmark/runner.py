"""One benchmark invocation: check the request, load data, fit/predict/evaluate per seed, track.

Everything the user supplied is validated before the first MLflow run is created, so bad input
leaves nothing behind.
"""

from __future__ import annotations

import signal
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.cache import FeatureCache
from benchmark.config import RunConfig, config_dict, resolve_config
from benchmark.data.fewnerd import load_corpus
from benchmark.encoders import check_encoder
from benchmark.errors import BenchmarkError
from benchmark.evaluate import EVALUATOR_VERSION, Scores, evaluate
from benchmark.method import Context, Method
from benchmark.protocols import PROTOCOLS, Protocol, get_protocol
from benchmark.registry import METHODS
from benchmark.reproducibility import code_version, package_versions, seed_everything


@dataclass(frozen=True)
class RunRequest:
    """What the user asked for on the command line."""

    method: str
    protocol: str | None = None
    dataset: str = "embedded"
    data_dir: Path | None = None
    from_hub: bool = False
    verify: bool = True
    seeds: tuple[int, ...] = (1,)
    config_file: Path | None = None
    settings: tuple[str, ...] = ()
    resamples: int = 1000
    cache_dir: Path | None = None


@dataclass
class SeedResult:
    run_config: RunConfig
    scores: Scores
    run_id: str
    seconds: float
    extra: dict[str, float]


@dataclass
class RunSummary:
    protocol: Protocol
    experiment: str
    tracking_uri: str
    parent_run_id: str
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


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_benchmark(request: RunRequest, echo: Callable[[str], None] = print) -> RunSummary:
    """Run one method under one protocol for each seed; every seed is a child MLflow run."""
    method_cls, protocol = resolve_method(request.method, request.protocol)
    config = resolve_config(method_cls.Config, request.config_file, list(request.settings))
    method_cls.check_config(config, protocol.name)
    if hasattr(config, "encoder"):
        check_encoder(config.encoder, FeatureCache(request.cache_dir).root)
    if not request.seeds:
        raise BenchmarkError("--seeds needs at least one seed")
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
    base = {
        "method": request.method,
        "protocol": protocol.name,
        "dataset": corpus.name,
        "dataset_sha256": corpus.sha256,
        "dataset_sources": ",".join(corpus.sources),
        "encoder": str(settings.get("encoder", "none")),
        "code_version": code_version(),
        "evaluator_version": EVALUATOR_VERSION,
        **{f"version.{k}": v for k, v in package_versions().items()},
    }
    params = flatten(settings)
    parent_name = f"{request.method}:protocol={protocol.name}"
    with tracker.run(parent_name, {**base, "role": "parent"}, {**params, "seeds": str(request.seeds)}) as parent:
        summary = RunSummary(protocol, tracker.experiment, tracker.uri, parent)
        for seed in request.seeds:
            run_config = RunConfig(
                method=request.method,
                protocol=protocol.name,
                dataset=corpus.name,
                dataset_sha256=corpus.sha256,
                seed=seed,
                config=settings,
                evaluator_version=EVALUATOR_VERSION,
                code_version=base["code_version"],
            )
            tags = {**base, "role": "seed", "seed": str(seed), "run_key": run_config.key}
            with tracker.run(run_config.name, tags, params, parent_id=parent) as run_id:
                echo(f"[{run_config.name}] fitting on {len(train)} sentences ...")
                with tempfile.TemporaryDirectory(prefix="benchmark-") as tmp:
                    workdir, artifact_dir = Path(tmp, "work"), Path(tmp, "artifacts")
                    workdir.mkdir()
                    artifact_dir.mkdir()
                    seed_everything(seed)
                    features = FeatureCache(request.cache_dir)
                    ctx = Context(seed, workdir, artifact_dir, features)
                    started = time.perf_counter()
                    method = method_cls(config).fit(train_view, dev_view, ctx)
                    fitted = time.perf_counter()
                    predictions = protocol.validate(method.predict(test_view), test_view)
                    predicted = time.perf_counter()
                    scores = evaluate(
                        gold, predictions, len(test), corpus.hierarchy, protocol.scoring, request.resamples
                    )
                    extra = {
                        "time/fit_seconds": fitted - started,
                        "time/predict_seconds": predicted - fitted,
                        "features/cache_hits": features.hits,
                        "features/cache_misses": features.misses,
                        "features/encoded_sentences": features.encoded_sentences,
                        "features/stage_cache_hits": features.stage_hits,
                        **{f"method/{k}": float(v) for k, v in ctx.metrics.items()},
                    }
                    tracker.log_result(run_id, run_config, scores, predictions, extra, artifact_dir, gold)
                summary.results.append(SeedResult(run_config, scores, run_id, predicted - started, extra))
        tracker.log(parent, metrics=_seed_statistics([r.scores.metrics for r in summary.results]))
    return summary


def _seed_statistics(per_seed: list[dict[str, float]]) -> dict[str, float]:
    """Mean and standard deviation over seeds of every metric (std 0 for one seed)."""
    out = {}
    for key in per_seed[0]:
        values = [m[key] for m in per_seed]
        out[f"{key}_mean"] = statistics.fmean(values)
        out[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return out
