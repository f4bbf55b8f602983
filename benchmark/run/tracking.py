"""MLflow tracking: one experiment per (dataset, protocol), a parent run per row (or sweep) of
an invocation, a child run per seed. The only module that talks to MLflow: `report` and `export`
read the store through the read API at the end (`finished_seed_runs`, `read_predictions`,
`run_details`); `import` writes a published record through `Importer`.

The default store is ``sqlite:///mlflow.db`` in the working directory (what ``mlflow ui`` opens
with no flags); ``MLFLOW_TRACKING_URI`` overrides it. A fresh SQLite store is created under a file
lock, because concurrent first-time schema migrations race in MLflow.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import pandas as pd
from filelock import FileLock

from benchmark.core.config import dotted
from benchmark.core.data.fewnerd import Corpus
from benchmark.core.errors import BenchmarkError
from benchmark.core.spans import Span
from benchmark.evaluate import P_AT_K, Scores, by_length_table, precision_curve
from benchmark.run.record import RunConfig
from benchmark.ui.plots import plot_confusion, plot_f1_by_length, plot_per_type_f1, plot_precision_at_k

DEFAULT_URI = "sqlite:///mlflow.db"
MAX_PARAM_LENGTH = 500
#: what ``mlflow ui`` serves with no flags
DEFAULT_UI = "http://127.0.0.1:5000"
#: MLflow 3's experiment-kind tag: ours open on the runs table, not the GenAI overview
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
#: the dataset digest column holds 36 characters; the full sha256 is an input tag
DIGEST_LENGTH = 32


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def check_reachable(uri: str, timeout: float = 10.0) -> None:
    """Fail at once, before anything is logged, when ``uri`` is a tracking server (``http(s)://``)
    that does not answer, or refuses this client (MLflow's own client would retry for minutes)."""
    if not uri.startswith(("http://", "https://")):
        return
    import base64
    import urllib.error
    import urllib.request

    base = uri.rstrip("/")
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=timeout):
            pass
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise BenchmarkError(f"the tracking server {uri} (MLFLOW_TRACKING_URI) does not answer: {reason}") from None
    headers = {}  # /health is open to all; an API call shows whether the server accepts us
    if os.environ.get("MLFLOW_TRACKING_TOKEN"):
        headers["Authorization"] = f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"
    elif os.environ.get("MLFLOW_TRACKING_USERNAME"):
        pair = f"{os.environ['MLFLOW_TRACKING_USERNAME']}:{os.environ.get('MLFLOW_TRACKING_PASSWORD', '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    probe = urllib.request.Request(f"{base}/api/2.0/mlflow/experiments/search?max_results=1", headers=headers)
    try:
        with urllib.request.urlopen(probe, timeout=timeout):
            return
    except urllib.error.HTTPError as error:
        if error.code == 403:
            raise BenchmarkError(
                f"the tracking server {uri} refuses this client (403): start it with --allowed-hosts naming "
                "the host in MLFLOW_TRACKING_URI"
            ) from None
        if error.code == 401:
            raise BenchmarkError(
                f"the tracking server {uri} needs credentials (401): MLFLOW_TRACKING_USERNAME and "
                "MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN"
            ) from None
    except (urllib.error.URLError, OSError):
        pass  # it answered /health: let MLflow's client report anything else


def local_store(uri: str) -> bool:
    """Whether ``uri`` is a store on this machine's file system (SQLite or an ``mlruns`` folder)."""
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


def absolute_uri(uri: str) -> str:
    """``uri`` with a relative SQLite or folder path made absolute: a worker whose working folder
    differs from the driver's writes the same store."""
    path = _sqlite_path(uri)
    if path is not None and not path.is_absolute():
        return f"sqlite:///{path.resolve()}"
    if "://" not in uri:
        return str(Path(uri).resolve())
    return uri


def _sqlite_path(uri: str) -> Path | None:
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def flatten(values: Mapping[str, Any]) -> dict[str, str]:
    """Nested settings as ``a.b = value`` strings (`dotted` names), cut to MLflow's parameter length."""
    return {key: str(value)[:MAX_PARAM_LENGTH] for key, value in dotted(values).items()}


def predictions_jsonl(predictions: Sequence[Span]) -> str:
    """The text of ``predictions.jsonl``: one JSON object per span, as ``json.dumps(span._asdict())``
    writes it (formatted directly: a record's import writes about a million spans)."""
    labels: dict[str | None, str] = {}
    lines = []
    for s in predictions:
        label = labels.get(s.label) or labels.setdefault(s.label, json.dumps(s.label))
        score = float(s.score)
        number = repr(score) if math.isfinite(score) else json.dumps(score)  # as json writes it
        cluster = "null" if s.cluster is None else int(s.cluster)
        lines.append(
            f'{{"sentence_id": {int(s.sentence_id)}, "start": {int(s.start)}, "end": {int(s.end)}, "label": {label}, '
            f'"score": {number}, "cluster": {cluster}}}\n'
        )
    return "".join(lines)


class Tracker:
    """Creates runs in one experiment and records results, artifacts and final status."""

    def __init__(self, experiment: str, uri: str | None = None) -> None:
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        logging.getLogger("mlflow").setLevel(logging.WARNING)
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # `run` prints the runs table's URL
        self.uri = uri or tracking_uri()
        path = _sqlite_path(self.uri)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{path}.lock") if path is not None else nullcontext():
            self.client = MlflowClient(self.uri)  # creates or upgrades the store
            found = self.client.get_experiment_by_name(experiment)
            if found is None:
                try:
                    self.experiment_id = self.client.create_experiment(experiment, tags=EXPERIMENT_KIND)
                except MlflowException:  # created meanwhile by another process
                    self.experiment_id = self.client.get_experiment_by_name(experiment).experiment_id
            else:
                self.experiment_id = found.experiment_id
                for key, value in EXPERIMENT_KIND.items():
                    if found.tags.get(key) != value:  # made by an older version of the harness
                        self.client.set_experiment_tag(self.experiment_id, key, value)
        self.experiment = experiment

    def runs_url(self, ui: str | None = None) -> str:
        """The experiment's runs table (model-training view) in ``ui``: by default the tracking
        server itself when the store is one (``http(s)://``), else ``mlflow ui``'s default address."""
        if ui is None:
            ui = self.uri.rstrip("/") if self.uri.startswith(("http://", "https://")) else DEFAULT_UI
        return f"{ui}/#/experiments/{self.experiment_id}/runs?workflowType=machine_learning"

    def find_finished(self, run_key: str) -> tuple[str, dict[str, float]] | None:
        """The id and metrics of the latest FINISHED run whose ``run_key`` tag is ``run_key`` (a
        `RunConfig.key`), if any."""
        found = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.run_key = '{run_key}' and attributes.status = 'FINISHED'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        return (found[0].info.run_id, dict(found[0].data.metrics)) if found else None

    @contextmanager
    def run(
        self, name: str, tags: Mapping[str, str], params: Mapping[str, str], parent_id: str | None = None
    ) -> Iterator[str]:
        """A run that ends FINISHED, FAILED on an exception, KILLED on Ctrl-C or SIGTERM."""
        all_tags = dict(tags)
        if parent_id is not None:
            all_tags["mlflow.parentRunId"] = parent_id
        run_id = self.open(name, all_tags, params)
        with self._ending(run_id):
            yield run_id

    def open(self, name: str, tags: Mapping[str, str], params: Mapping[str, str]) -> str:
        """A run created now and left RUNNING: its owner sets its final status."""
        run = self.client.create_run(self.experiment_id, run_name=name, tags=dict(tags))
        self.log(run.info.run_id, params=params)
        return run.info.run_id

    def end(self, run_id: str, status: str) -> None:
        """Give a run its final ``status`` (FINISHED, FAILED or KILLED)."""
        self.client.set_terminated(run_id, status)

    def end_unfinished(self, run_id: str, status: str) -> None:
        """Set a run's final ``status`` unless it has one."""
        if self.client.get_run(run_id).info.status in ("SCHEDULED", "RUNNING"):
            self.end(run_id, status)

    def end_task(self, parent_id: str, run_key: str, status: str) -> None:
        """Set ``status`` on the child of ``parent_id`` with that ``run_key`` if its worker began
        it and left it unfinished (the worker died, or was cancelled)."""
        query = f"tags.mlflow.parentRunId = '{parent_id}' and tags.run_key = '{run_key}'"
        for child in self.client.search_runs([self.experiment_id], query):
            self.end_unfinished(child.info.run_id, status)

    def end_family(self, parent_id: str, status: str) -> None:
        """Set ``status`` on every child of ``parent_id`` that has no final status yet, then on
        the parent."""
        children = self.client.search_runs([self.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'")
        for run_id in [*(child.info.run_id for child in children), parent_id]:
            self.end_unfinished(run_id, status)

    @contextmanager
    def _ending(self, run_id: str) -> Iterator[None]:
        """End the run FINISHED, FAILED on an exception, KILLED on Ctrl-C or SIGTERM."""
        try:
            yield
        except (KeyboardInterrupt, SystemExit):
            self.end(run_id, "KILLED")
            raise
        except BaseException:
            self.end(run_id, "FAILED")
            raise
        self.end(run_id, "FINISHED")

    def log(
        self,
        run_id: str,
        metrics: Mapping[str, float] = {},
        params: Mapping[str, str] = {},
        tags: Mapping[str, str] = {},
        step: int = 0,
    ) -> None:
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.utils.time import get_current_time_millis

        now = get_current_time_millis()
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()],
            params=[Param(k, str(v)) for k, v in params.items()],
            tags=[RunTag(k, str(v)) for k, v in tags.items()],
        )

    def log_datasets(self, run_id: str, corpus: Corpus, splits: Sequence[str] = ("train", "dev", "test")) -> None:
        """Each of ``splits`` as an MLflow dataset input of the run: name ``few-nerd/<dataset>``,
        digest the split's content sha256 (cut to MLflow's column; the whole in the ``sha256``
        tag), the split as its context, the file (or hub id) it was read from as its source."""
        from mlflow.data.dataset_source_registry import get_dataset_source_from_json
        from mlflow.data.huggingface_dataset_source import HuggingFaceDatasetSource
        from mlflow.data.meta_dataset import MetaDataset
        from mlflow.entities import DatasetInput, InputTag
        from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

        from benchmark.core.data.fewnerd import HUB_ID, HUB_SPLITS
        from benchmark.run.provenance import REPO_ROOT

        inputs = []
        for split in splits:
            sentences = corpus.split(split)
            where = corpus.split_source(split)
            if where.startswith("hub:"):
                source = HuggingFaceDatasetSource(HUB_ID, config_name=corpus.name, split=HUB_SPLITS[split])
            else:  # shipped files are named from the repository root, --data-dir files as the user gave them
                path = Path(where) if Path(where).exists() else REPO_ROOT / where
                source = get_dataset_source_from_json(json.dumps({"uri": str(path.resolve())}), source_type="local")
            sha = corpus.split_sha256(split)
            dataset = MetaDataset(source, name=f"few-nerd/{corpus.name}", digest=sha[:DIGEST_LENGTH])
            tags = {MLFLOW_DATASET_CONTEXT: split, "sha256": sha, "sentences": str(len(sentences))}
            inputs.append(DatasetInput(dataset._to_mlflow_entity(), [InputTag(k, v) for k, v in tags.items()]))
        self.client.log_inputs(run_id, datasets=inputs)

    def log_text(self, run_id: str, text: str, name: str) -> None:
        """``text`` as the artifact ``name`` of the run."""
        self.client.log_text(run_id, text, name)

    def log_json(self, run_id: str, data: Any, name: str) -> None:
        """``data`` as the JSON artifact ``name`` of the run."""
        self.client.log_dict(run_id, data, name)

    def log_result(
        self,
        run_id: str,
        run_config: RunConfig,
        scores: Scores,
        predictions: Sequence[Span],
        extra_metrics: Mapping[str, float],
        method_artifacts: Path,
        gold: Sequence[Span],
    ) -> None:
        """Metrics, then artifacts: run config, metrics, predictions, per-type and by-length tables
        with their plots, confusions, P@K curve."""
        metrics = {**scores.metrics, **extra_metrics}
        self.log(run_id, metrics=metrics)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            (out / "run_config.json").write_text(run_config.to_json())
            (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
            (out / "predictions.jsonl").write_text(predictions_jsonl(predictions))
            scores.per_type.to_csv(out / "per_type.csv", index=False)
            plot_per_type_f1({run_config.name: scores.per_type}, out / "per_type_f1.png", run_config.name)
            by_length = by_length_table(gold, predictions)
            by_length.to_csv(out / "by_length.csv", index=False)
            plot_f1_by_length({run_config.name: by_length}, out / "f1_by_length.png", run_config.name)
            for level, matrix in scores.confusion.items():
                matrix.to_csv(out / f"confusion_{level}.csv")
                plot_confusion({level: matrix}, out / f"confusion_{level}.png", f"{run_config.name} ({level})")
            curve = {run_config.name: precision_curve(gold, predictions)}
            plot_precision_at_k(curve, out / "p_at_k.png", run_config.name, P_AT_K)
            self.client.log_artifacts(run_id, str(out))
        if any(method_artifacts.iterdir()):
            self.client.log_artifacts(run_id, str(method_artifacts), artifact_path="method")


# Reading the store: what `report` and the scripts read, without opening a `Tracker`


def finished_seed_runs(uri: str | None = None) -> pd.DataFrame:
    """Every FINISHED seed run of the store at ``uri`` (default `tracking_uri`), one row each as
    ``mlflow.search_runs`` gives them (``tags.*``, ``params.*``, ``metrics.*``, ``artifact_uri``)."""
    import mlflow

    uri = uri or tracking_uri()
    path = _sqlite_path(uri)
    if path is not None and not path.is_file():
        raise BenchmarkError(
            f"no MLflow store at {uri}: run `python -m benchmark run ...` first, or set MLFLOW_TRACKING_URI"
        )
    try:
        mlflow.set_tracking_uri(uri)
        return mlflow.search_runs(
            search_all_experiments=True,
            filter_string="tags.role = 'seed' and attributes.status = 'FINISHED'",
            output_format="pandas",
        )
    except Exception as error:  # MLflow, SQLAlchemy and OS errors alike: the store is unusable
        raise BenchmarkError(f"cannot read the MLflow store {uri}: {type(error).__name__}: {error}") from error


def read_predictions(artifact_uri: str) -> list[Span] | None:
    """The predictions.jsonl of the run whose artifacts are at ``artifact_uri`` (None if it has none)."""
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


def run_details(uri: str, run_id: str) -> dict[str, Any]:
    """What a record keeps of a run beyond `finished_seed_runs`' columns: every metric's history as
    (step, timestamp, value), its dataset inputs (a source inside the checkout named from its root)
    its ``run_config.json`` and, for a run on episodes, its ``episodes.json``."""
    from mlflow.tracking import MlflowClient
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    from benchmark.run.provenance import REPO_ROOT

    client = MlflowClient(uri)
    run = client.get_run(run_id)
    histories = {
        name: sorted((m.step, m.timestamp, m.value) for m in client.get_metric_history(run_id, name))
        for name in sorted(run.data.metrics)
    }
    datasets = []
    for given in run.inputs.dataset_inputs:
        source = json.loads(given.dataset.source)
        if given.dataset.source_type == "local" and Path(source.get("uri", "")).is_relative_to(REPO_ROOT):
            source["uri"] = Path(source["uri"]).relative_to(REPO_ROOT).as_posix()
        datasets.append({
            "name": given.dataset.name, "digest": given.dataset.digest, "source_type": given.dataset.source_type,
            "source": json.dumps(source), "tags": {t.key: t.value for t in given.tags},
        })  # fmt: skip
    datasets.sort(key=lambda d: ("train", "dev", "test").index(d["tags"].get(MLFLOW_DATASET_CONTEXT, "test")))
    details = {
        "start_time": run.info.start_time, "end_time": run.info.end_time, "metrics": histories,
        "datasets": datasets, "run_config": _artifact_json(client, run, "run_config.json") or {},
    }  # fmt: skip
    episodes = _artifact_json(client, run, "episodes.json")
    return details | ({"episodes": episodes} if episodes is not None else {})


def _artifact_json(client, run, name: str) -> dict[str, Any] | None:
    """A JSON artifact of the run (None where it has none: ``run_config.json`` of a run logged
    before it existed, ``episodes.json`` of a run not on episodes)."""
    local = Path(run.info.artifact_uri.removeprefix("file://"))
    if (local / name).is_file():
        return json.loads((local / name).read_text())
    if local.is_dir():
        return None
    import mlflow
    from mlflow.exceptions import MlflowException

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if not any(f.path == name for f in client.list_artifacts(run.info.run_id)):
        return None
    try:  # a remote artifact store
        return mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/{name}")
    except (MlflowException, OSError) as error:
        raise BenchmarkError(f"run {run.info.run_id}: cannot read its {name} ({error})") from None


#: the tag that names an imported run's original run id
ORIGIN_TAG = "published_run_id"


def finished_by_key(uri: str, experiment: str) -> dict[str, list[tuple[str, str, str]]]:
    """The FINISHED seed runs of ``experiment`` by run key: (run id, original id, artifact URI)
    each. Creates nothing: a store or experiment that does not exist holds none."""
    from mlflow.tracking import MlflowClient

    path = _sqlite_path(uri)
    if path is not None and not path.is_file():
        return {}
    client = MlflowClient(uri)
    found_experiment = client.get_experiment_by_name(experiment)
    if found_experiment is None:
        return {}
    found: dict[str, list[tuple[str, str, str]]] = {}
    query, token = "tags.role = 'seed' and attributes.status = 'FINISHED'", None
    while True:
        page = client.search_runs([found_experiment.experiment_id], query, max_results=1000, page_token=token)
        for run in page:
            tags = run.data.tags
            if "run_key" in tags:
                original = tags.get(ORIGIN_TAG, run.info.run_id)
                found.setdefault(tags["run_key"], []).append((run.info.run_id, original, run.info.artifact_uri))
        token = page.token
        if not token:
            return found


class Importer(Tracker):
    """Writes runs of a published record into a store as ordinary runs, times and histories kept."""

    def add_run(
        self,
        name: str,
        tags: Mapping[str, str],
        params: Mapping[str, str],
        histories: Mapping[str, Sequence[tuple[int, int, float]]],
        times: tuple[int, int],
        datasets: Sequence[Mapping[str, Any]] = (),
        artifacts: Mapping[str, str] = {},
    ) -> str:
        """A FINISHED run with these tags, params, metric histories, ``datasets`` (a record's form),
        text ``artifacts`` (name → content) and (start, end) ``times`` in ms; returns its id."""
        from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param

        from benchmark.run.provenance import REPO_ROOT

        run_id = self.client.create_run(
            self.experiment_id, start_time=times[0], tags=dict(tags), run_name=name
        ).info.run_id
        param_list = [Param(k, v) for k, v in params.items()]
        metrics = [Metric(k, v, ts, step) for k, history in histories.items() for step, ts, v in history]
        for i in range(0, max(len(param_list), len(metrics) // 10 + 1), 100):  # 100 params, 1,000 metrics a batch
            self.client.log_batch(run_id, metrics=metrics[10 * i : 10 * i + 1000], params=param_list[i : i + 100])
        inputs = []
        for d in datasets:
            source = json.loads(d["source"])
            if d["source_type"] == "local" and not Path(source.get("uri", "/")).is_absolute():
                source["uri"] = str(REPO_ROOT / source["uri"])
            dataset = Dataset(d["name"], d["digest"], d["source_type"], json.dumps(source))
            inputs.append(DatasetInput(dataset, [InputTag(k, v) for k, v in d["tags"].items()]))
        if inputs:
            self.client.log_inputs(run_id, datasets=inputs)
        with tempfile.TemporaryDirectory() as tmp:
            for artifact, text in artifacts.items():
                Path(tmp, artifact).write_text(text)
            if artifacts:
                self.client.log_artifacts(run_id, tmp)
        self.client.set_terminated(run_id, "FINISHED", end_time=times[1])
        return run_id

    def delete(self, run_ids: Sequence[str]) -> None:
        """Delete runs (an import that failed part-way takes its runs back)."""
        for run_id in run_ids:
            self.client.delete_run(run_id)
