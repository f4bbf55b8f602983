"""One seed task, run by any executor: load the data, fit, predict, score, log into its own run.

The driver plans a task once (`SeedTask`: its plan, run record and where to log); a worker runs
exactly that task, after checking that its data, code and packages are the driver's.
"""

from __future__ import annotations

import functools
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from benchmark.core.cache import FeatureCache
from benchmark.core.data.fewnerd import Corpus, Sentence, load_corpus
from benchmark.core.errors import BenchmarkError
from benchmark.core.fit import fit_predict
from benchmark.core.labels import LabelHierarchy, coarse_of
from benchmark.core.protocols import Protocol, View, withhold_coarse
from benchmark.core.spans import Span
from benchmark.core.training import device
from benchmark.evaluate import evaluate, evaluate_split
from benchmark.run.cpu import measure
from benchmark.run.episodes import describe, episode_sets, meta_training, score_episodes
from benchmark.run.plan import DataSource, RunPlan
from benchmark.run.provenance import package_versions, row_fingerprint
from benchmark.run.record import RunConfig
from benchmark.run.tracking import Tracker, predictions_jsonl
from benchmark.ui.progress import ignore

BLIND = "blind_coarse"  # metric prefix of coarse-blind typing (a weak-typing sweep without --oracle)


@dataclass(frozen=True)
class SeedTask:
    """One seed of one plan, to log as a child of ``parent_id``: all a worker needs, picklable.
    The worker creates the run when it starts (so its duration is the task's, not its queue's)."""

    plan: RunPlan
    run_config: RunConfig
    tracking_uri: str
    experiment: str
    parent_id: str
    tags: dict[str, str]
    params: dict[str, str]

    @property
    def regime(self) -> str:
        return self.plan.regime


@dataclass
class SeedResult:
    run_config: RunConfig
    metrics: dict[str, float]  # what the run logged: scores (``dev/…`` for a sweep) and bookkeeping
    run_id: str
    seconds: float  # fit and predict
    skipped: bool = False  # finished earlier with the same key; metrics read from the store
    wall: float = 0.0  # the whole task on its worker: loading, fitting, scoring, logging


def run_seed(task: SeedTask, echo: Callable[[str], None] = print) -> SeedResult:
    """Fit, predict and score one seed into a new child run of the task's parent, which ends
    FINISHED, FAILED on an exception or KILLED on Ctrl-C/SIGTERM."""
    started, plan, run_config = time.perf_counter(), task.plan, task.run_config
    tracker = Tracker(task.experiment, task.tracking_uri)
    tags = {**task.tags, "device": device_name()}
    with tracker.run(run_config.name, tags, task.params, parent_id=task.parent_id) as run_id:
        corpus = load(plan.source)
        check_same_inputs(run_config, corpus.sha256, plan)
        protocol, hierarchy, scoring = plan.protocol, corpus.hierarchy, plan.scoring
        tracker.log_datasets(run_id, corpus, scoring.splits)
        train, dev = (corpus.split(name) if name in scoring.splits else () for name in ("train", "dev"))
        views = (protocol.train_view(train, "train", hierarchy), protocol.train_view(dev, "dev", hierarchy))
        if scoring.episodes is not None:
            training = meta_training(corpus)
            train = training.sentences
            views = (protocol.train_view(train, "train", hierarchy), views[1])
            sets = episode_sets(scoring.episodes, corpus)
            view, queries = protocol.episode_view(sets, hierarchy)  # type: ignore[attr-defined]
            record = describe(scoring.episodes, sets, training)
            tags = {f"episodes/{k}": v["sha256"] for k, v in record["settings"].items()}  # type: ignore[union-attr]
            tags |= {"episodes/source": scoring.episodes.name, "episodes/meta_training": training.sha256}
            tracker.log(run_id, tags=tags)
        elif scoring.split == "test":
            test = corpus.split("test")
            view, gold = protocol.test_view(test, hierarchy), [span for s in test for span in s.spans]
        else:
            view, gold = dev_scoring(protocol, scoring.blind, dev, views[1], hierarchy)
        doing = ", scoring dev" if scoring.split == "dev" else ""
        echo(f"[{run_config.name}] fitting on {len(train)} sentences{doing} ...")
        # a sweep point logs no learning curves: its dev criterion is its final dev score
        curves = ignore if scoring.split == "dev" else lambda metrics, step: tracker.log(run_id, metrics, step=step)
        with tempfile.TemporaryDirectory(prefix="benchmark-") as tmp:
            with measure() as cpu:  # did other processes share the machine while it fitted and predicted?
                predictions, extra = fit_predict(
                    plan.method_cls(plan.config), protocol, views, view, run_config.seed,
                    FeatureCache(plan.cache_dir), Path(tmp), curves,
                    split=scoring.split,
                )  # fmt: skip
            extra = {**extra, **cpu.metrics(), "time/predict_sentences_per_second": _rate(view, extra)}
            if scoring.episodes is not None:
                metrics = {**score_episodes(view, queries, predictions, hierarchy, scoring.resamples), **extra}
                tracker.log(run_id, metrics=metrics)
                tracker.log_json(run_id, record, "episodes.json")
                tracker.log_text(run_id, run_config.to_json(), "run_config.json")
                tracker.log_text(run_id, predictions_jsonl(predictions), "predictions.jsonl")
            elif scoring.split == "test":
                scores = evaluate_split(test, predictions, hierarchy, protocol.scoring, scoring.resamples)
                scores = replace(scores, metrics=informative(scores.metrics, protocol))
                tracker.log_result(run_id, run_config, scores, predictions, extra, Path(tmp, "artifacts"), gold)
                metrics = {**scores.metrics, **extra}
            else:
                lengths = [len(s.tokens) for s in dev]
                scored = dev_score(protocol, scoring.blind, predictions, gold, lengths, hierarchy)
                metrics = {**{f"dev/{k}": v for k, v in scored.items()}, **extra}
                tracker.log(run_id, metrics=metrics)
    seconds = extra["time/fit_seconds"] + extra["time/predict_seconds"]
    return SeedResult(run_config, metrics, run_id, seconds, wall=time.perf_counter() - started)


def device_name() -> str:
    """The device a run's torch computations use (`benchmark.core.training.device`): ``cpu``, or
    ``cuda (<the GPU's name>)``."""
    return f"cuda ({torch.cuda.get_device_name(0)})" if device() == "cuda" else "cpu"


def _rate(view: View, extra: dict[str, float]) -> float:
    """Sentences predicted per second (faster where the test features came from the feature cache)."""
    return len(view.examples) / max(extra["time/predict_seconds"], 1e-9)


def informative(metrics: dict[str, float], protocol: Protocol) -> dict[str, float]:
    """The metrics worth logging: under a protocol that gives the gold coarse type with each
    span (weak-typing), every ``coarse/*`` score is constant by construction and left out."""
    if protocol.test_spans != "coarse":
        return metrics
    return {k: v for k, v in metrics.items() if not k.startswith("coarse/")}


def load(source: DataSource) -> Corpus:
    """The corpus; shipped ones are read once per process (a worker runs many seeds of them),
    files from ``--data-dir`` every time (they may change between runs)."""
    if source.data_dir is None:
        return _shipped(source.dataset, source.from_hub, source.verify)
    return load_corpus(source.dataset, source.data_dir, source.from_hub, source.verify)


@functools.lru_cache(maxsize=4)
def _shipped(dataset: str, from_hub: bool, verify: bool) -> Corpus:
    return load_corpus(dataset, None, from_hub, verify)


def check_same_inputs(run_config: RunConfig, data_sha256: str, plan: RunPlan) -> None:
    """Refuse to run a task whose data, code or packages here (a worker on another node) differ
    from those its run key was made from on the driver: its run would claim results it did not
    compute."""
    here = {
        "data (sha256)": (data_sha256, run_config.dataset_sha256),
        "code (sha256)": (row_fingerprint(plan), run_config.code_sha256),
        "package versions": (package_versions(), run_config.packages),
    }
    differ = [name for name, (mine, driver) in here.items() if mine != driver]
    if differ:
        raise BenchmarkError(
            f"{run_config.name}: this worker's {' and '.join(differ)} differ from the driver's; every node "
            "needs the same checkout, data files and packages"
        )


def dev_scoring(
    protocol: Protocol, blind: bool, dev: Sequence[Sentence], dev_view: View, hierarchy: LabelHierarchy
) -> tuple[View, list[Span]]:
    """The view a sweep's point predicts and the gold it is scored against — dev only. Coarse-blind:
    the coarse dev view's entities with their coarse type withheld; gold, their coarse types."""
    if blind:
        return withhold_coarse(dev_view), [s for e in dev_view.examples for s in e.spans]
    return protocol.test_view(dev, hierarchy, split="dev"), [s for sentence in dev for s in sentence.spans]


def dev_score(
    protocol: Protocol,
    blind: bool,
    predictions: Sequence[Span],
    gold: Sequence[Span],
    lengths: Sequence[int],
    hierarchy: LabelHierarchy,
) -> dict[str, float]:
    """A sweep point's dev scores (no bootstrap)."""
    if blind:
        return blind_score(predictions, gold, lengths, hierarchy)
    metrics = evaluate(gold, predictions, lengths, hierarchy, protocol.scoring, resamples=0).metrics
    return {k: v for k, v in metrics.items() if "/" in k}


def blind_score(
    predictions: Sequence[Span], gold: Sequence[Span], lengths: Sequence[int], hierarchy: LabelHierarchy
) -> dict[str, float]:
    """Coarse-level scores of fine predictions on coarse gold spans: the evaluator over a
    hierarchy whose types are the coarse types, so its "fine" level is the coarse one."""
    coarse = LabelHierarchy(hierarchy.coarse_types)
    mapped = [p._replace(label=coarse_of(p.label), cluster=None) for p in predictions]
    metrics = evaluate(gold, mapped, lengths, coarse, "typing", resamples=0).metrics
    return {f"{BLIND}/{k.split('/', 1)[1]}": v for k, v in metrics.items() if k.startswith("fine/")}
