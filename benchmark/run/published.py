"""The published record of runs (``reports/runs/``): every finished seed run a report uses, in files
anyone can read, check and load back into an MLflow store.

One run is two files in ``<dataset>/<protocol>/<method>/<variant>/``:

- ``seed-<n>.json``: what the run logged — its name, times, tags (task key, code fingerprint, data
  sha256, package versions, provenance …), settings, every metric with its history (learning
  curves), its dataset inputs, its `RunConfig` — and of its predictions the span count, the
  sha256 of the spans and of the Parquet file (what a reader checks; format 1 had only the
  spans', which a reader checks then);
  a run on episodes adds ``episodes``: its ``episodes.json`` and how many query sentences its
  episodes hold;
- ``seed-<n>.parquet``: its test predictions, one row per span (sentence, start, end, label,
  score, cluster); for episodes, of the query sentences numbered across its episodes.

Adding a seed adds two files and rewrites none. Everything is checked before it is used: format
version, missing, extra or corrupt files (`read_record`), and predictions that do not fit the test
split (or, for episodes, the query sentences of the episodes drawn again) the run names
(`check_test_split`); a report reads and checks each run's predictions on the core that scores them.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import multiprocessing
import os
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.core.data.fewnerd import Corpus, load_corpus
from benchmark.core.errors import BenchmarkError, ProtocolViolation
from benchmark.core.registry import PROTOCOLS
from benchmark.core.spans import Span
from benchmark.evaluate import span_positions
from benchmark.run.cpu import collector_paused

#: the record's format (2: a run file names its Parquet file's sha256)
FORMAT = 2
#: the formats a reader reads (1: a run's Parquet file is checked by its spans' sha256); it refuses any other
READ_FORMATS = (1, 2)
#: where `benchmark export` writes and `import` / `report --runs` read by default
DEFAULT_RECORD = Path("reports", "runs")
#: the protocol whose runs predict the query sentences of episodes, not the test split
EPISODES = "episodes"
#: tags a store sets on its own and an imported run gets anew
STORE_TAGS = ("mlflow.parentRunId",)
PREDICTION_COLUMNS = ("sentence_id", "start", "end", "label", "score", "cluster")


@dataclass(frozen=True)
class PublishedRun:
    """One run of the record: its JSON (``record``), where it lies, and its predictions (read and
    checked when first used)."""

    path: Path
    record: dict[str, Any]

    @property
    def predictions_file(self) -> Path:
        """Its Parquet file; a missing one is a `BenchmarkError` that names it."""
        table = self.path.parent / self.record["predictions"]["file"]
        if not table.is_file():
            raise BenchmarkError(f"{table}: missing (the predictions of {self.path.name})")
        return table

    @cached_property
    def predictions(self) -> list[Span]:
        """Its Parquet file's spans, checked against the sha256 its JSON records and the sentences
        its test split (or its episodes' query sentences) holds."""
        table = self.predictions_file
        content = table.read_bytes()
        try:
            predictions = read_spans(io.BytesIO(content))
        except Exception as error:  # pyarrow's errors for a truncated or foreign file
            raise BenchmarkError(f"{table}: not readable predictions ({type(error).__name__}: {error})") from None
        recorded = self.record["predictions"]
        if "file_sha256" in recorded and hashlib.sha256(content).hexdigest() != recorded["file_sha256"]:
            raise BenchmarkError(f"{table}: its bytes do not match the sha256 its run file {self.path.name} records")
        if "file_sha256" not in recorded and predictions_sha256(predictions) != recorded["sha256"]:  # format 1
            raise BenchmarkError(f"{table}: its spans do not match the sha256 its run file {self.path.name} records")
        sentences, what = int(self.test_input["sentences"]), "test sentences"
        if self.tags["protocol"] == EPISODES:  # its predictions number its episodes' query sentences
            sentences, what = self.query_sentences, "query sentences of the episodes"
        outside = first_outside(predictions, sentences)
        if outside is not None:
            raise BenchmarkError(
                f"{table}: span {tuple(outside[:3])} lies outside the {sentences} {what} its run names"
            )
        return predictions

    @property
    def tags(self) -> dict[str, str]:
        return self.record["tags"]

    @property
    def run_id(self) -> str:
        return self.record["run_id"]

    @property
    def key(self) -> str:
        return self.tags["run_key"]

    @property
    def experiment(self) -> str:
        return self.record["experiment"]

    @property
    def metrics(self) -> dict[str, float]:
        """Each metric's latest value as MLflow defines it: the one of the highest step, then timestamp."""
        return {name: history[-1][2] for name, history in self.histories.items()}

    @property
    def histories(self) -> dict[str, list[tuple[int, int, float]]]:
        """Each metric's (step, timestamp, value) as logged, oldest first (NaN where the file says null)."""
        return {
            name: sorted((int(step), int(ts), metric_value(v)) for step, ts, v in history)
            for name, history in self.record["metrics"].items()
        }

    @property
    def query_sentences(self) -> int:
        """An episodes run's number of query sentences (what its predictions' sentence ids count)."""
        try:
            return int(self.record["episodes"]["query_sentences"])
        except (KeyError, TypeError, ValueError):
            raise BenchmarkError(f"{self.path}: a run on episodes without episodes.query_sentences") from None

    @property
    def test_input(self) -> dict[str, str]:
        """The tags of its ``test`` dataset input (sha256, sentences)."""
        return next(d["tags"] for d in self.record["datasets"] if d["tags"].get("mlflow.data.context") == "test")


def first_outside(spans: Sequence[Span], lengths: Sequence[int] | int) -> Span | None:
    """The first span not inside its sentence (``0 <= start < end <= `` the sentence's length), or
    None: ``lengths`` holds each sentence's token count, or is only how many sentences there are."""
    if not spans:
        return None
    sentence, start, end = span_positions(spans)
    count = lengths if isinstance(lengths, int) else len(lengths)
    if count == 0:
        return spans[0]
    known = (sentence >= 0) & (sentence < count)
    bad = ~known | (start < 0) | (start >= end)
    if not isinstance(lengths, int):
        bounds = np.asarray(lengths, dtype=np.int64)
        bad |= end > np.where(known, bounds[np.where(known, sentence, 0)], -1)
    found = np.flatnonzero(bad)
    return spans[found[0]] if len(found) else None


def run_path(root: Path, dataset: str, protocol: str, method: str, row: str, seed: int | str) -> Path:
    """The JSON file of a run: ``<dataset>/<protocol>/<method>/<row>/seed-<n>.json``, ``row`` being
    the declared setting set its settings are (``default`` or a variant's name) or, for settings
    no declaration names, ``custom-<sha256 of the settings, 10 digits>``."""
    return Path(root, dataset, protocol, method, row, f"seed-{seed}.json")


#: how the Parquet files encode their columns: span positions as deltas (sorted by sentence),
#: scores split by byte (doubles compress about twice as well), labels by dictionary; with zstd
#: a file is about 40 % smaller than with the defaults
PARQUET_ENCODINGS = {
    "use_dictionary": ["label"],
    "column_encoding": {
        **dict.fromkeys(("sentence_id", "start", "end", "cluster"), "DELTA_BINARY_PACKED"),
        "score": "BYTE_STREAM_SPLIT",
    },
}


def predictions_frame(predictions: Sequence[Span]) -> pd.DataFrame:
    """Spans as the record's table (compact types; NaN/NA where a span has no score or cluster)."""
    frame = pd.DataFrame(list(predictions), columns=list(PREDICTION_COLUMNS))
    return frame.astype({
        "sentence_id": "int32", "start": "int32", "end": "int32", "label": "string",
        "score": "float64", "cluster": "Int32",
    })  # fmt: skip


def predictions_sha256(predictions: Sequence[Span]) -> str:
    """A digest of the spans themselves (not of the file that holds them)."""
    return hashlib.sha256(json.dumps(list(predictions)).encode()).hexdigest()  # a Span dumps as a list


def read_spans(table: Path | io.BytesIO) -> list[Span]:
    """The spans of a record's Parquet file (or its content)."""
    frame = pd.read_parquet(table, columns=list(PREDICTION_COLUMNS))
    columns = [frame[c].to_numpy(dtype=object, na_value=None).tolist() for c in ("label", "cluster")]
    numbers = [frame[c].tolist() for c in ("sentence_id", "start", "end", "score")]
    return [
        Span(s, a, b, label, score, cluster) for s, a, b, score, label, cluster in zip(*numbers, *columns, strict=True)
    ]


def write_run(path: Path, record: dict[str, Any], predictions: Sequence[Span]) -> bool:
    """Write one run's JSON (its ``metrics`` as (step, timestamp, value) histories) and Parquet
    files (each to a temporary name, then moved into place), leaving a file of the same content
    alone: a JSON of the same text, a Parquet file that holds these spans (`_holds`). Returns
    whether anything was written."""
    sha = predictions_sha256(predictions)
    table = path.with_suffix(".parquet")
    old = path.read_text() if path.is_file() else None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        content = table.read_bytes() if table.is_file() else None
        kept = content is not None and _holds(content, sha, json.loads(old).get("predictions", {}) if old else {})
        if not kept:
            predictions_frame(predictions).to_parquet(
                table.with_suffix(".parquet.tmp"), index=False, compression="zstd", **PARQUET_ENCODINGS
            )
            os.replace(table.with_suffix(".parquet.tmp"), table)
            content = table.read_bytes()
        histories = {name: [[step, ts, json_value(v)] for step, ts, v in h] for name, h in record["metrics"].items()}
        file_sha = hashlib.sha256(content).hexdigest()
        record = {
            **record,
            "metrics": histories,
            "format": FORMAT,
            "predictions": {"file": table.name, "spans": len(predictions), "sha256": sha, "file_sha256": file_sha},
        }
        text = _compact_lists(json.dumps(record, indent=1, sort_keys=True, allow_nan=False)) + "\n"
        if old != text:
            path.with_suffix(".json.tmp").write_text(text)
            os.replace(path.with_suffix(".json.tmp"), path)
    except (OSError, json.JSONDecodeError) as error:
        raise BenchmarkError(f"{path}: cannot write the run ({error})") from None
    return not kept or old != text


def _holds(content: bytes, sha: str, recorded: dict[str, Any]) -> bool:
    """Whether a Parquet file's ``content`` holds the spans of digest ``sha``: its run file
    (``recorded``: its ``predictions``) names these spans and these very bytes, or (else) its spans
    are these. A damaged file does not."""
    if recorded.get("sha256") == sha and recorded.get("file_sha256") == hashlib.sha256(content).hexdigest():
        return True
    try:
        return predictions_sha256(read_spans(io.BytesIO(content))) == sha
    except Exception:  # pyarrow's errors for a truncated or foreign file
        return False


def _compact_lists(text: str) -> str:
    """Indented JSON with each innermost list on one line (a metric's [step, timestamp, value])."""
    return re.sub(r"\[\s+([^\[\]{}]*?)\s+\]", lambda m: "[" + re.sub(r"\s*\n\s*", " ", m.group(1)) + "]", text)


def read_record(root: Path, predictions: bool = True) -> list[PublishedRun]:
    """Every run under ``root``, each checked (`BenchmarkError` naming the file on the first
    problem); its predictions too, unless ``predictions`` is false (then each run's are read and
    checked when first used: a report reads them on the core that scores them)."""
    root = Path(root)
    if not root.is_dir():
        raise BenchmarkError(f"{root}: no such record folder (a record is written by `python -m benchmark export`)")
    runs = [read_run(path, predictions) for path in sorted(root.rglob("*.json"))]
    named = {run.path.with_suffix(".parquet") for run in runs}
    stray = sorted(p for p in root.rglob("*.parquet") if p not in named)
    if stray:
        raise BenchmarkError(f"{stray[0]}: predictions with no run file ({stray[0].with_suffix('.json').name} missing)")
    if not runs:
        raise BenchmarkError(f"{root}: no runs in this record folder")
    seen: dict[tuple[str, str], Path] = {}
    for run in runs:
        where = seen.setdefault((run.experiment, run.key), run.path)
        if where != run.path:
            raise BenchmarkError(f"{run.path}: the same run key {run.key} as {where}")
    return runs


def read_run(path: Path, predictions: bool = True) -> PublishedRun:
    """One run's files, checked: its JSON, its format, the test split it names, and (unless
    ``predictions`` is false: when first used) its predictions (`PublishedRun.predictions`)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BenchmarkError(f"{path}: not a readable run file ({error})") from None
    if not isinstance(record, dict) or "format" not in record:
        raise BenchmarkError(f"{path}: not a run file of a record (no format version)")
    if type(record["format"]) is not int or record["format"] not in READ_FORMATS:
        readable = " and ".join(map(str, READ_FORMATS))
        raise BenchmarkError(f"{path}: record format {record['format']!r}; this harness reads formats {readable}")
    _check_fields(record, path)
    run = PublishedRun(path, record)
    try:
        int(run.test_input["sentences"])
    except (StopIteration, KeyError, ValueError):
        raise BenchmarkError(f"{path}: names no test split (a dataset input with context test and sentences)") from None
    if run.tags["protocol"] == EPISODES:
        run.query_sentences  # noqa: B018 (checked now: its predictions are numbered by it)
    run.predictions_file  # noqa: B018 (checked now: a missing file is named before any run is used)
    if predictions:
        run.predictions  # noqa: B018 (read and checked now)
    return run


#: what a run file must hold, field by field (a checker and what it expects)
_STRINGS = (lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()), "an object of strings")
_SHAPE: dict[str, tuple[Callable[[Any], bool], str]] = {
    "name": (lambda v: isinstance(v, str), "a string"),
    "run_id": (lambda v: isinstance(v, str) and bool(v), "a string"),
    "experiment": (lambda v: isinstance(v, str), "a string"),
    "start_time": (lambda v: isinstance(v, int), "an integer (ms)"),
    "end_time": (lambda v: isinstance(v, int), "an integer (ms)"),
    "tags": _STRINGS,
    "params": _STRINGS,
    "metrics": (
        lambda v: (
            isinstance(v, dict)
            and all(
                isinstance(h, list) and h and all(isinstance(e, list) and len(e) == 3 for e in h) for h in v.values()
            )
        ),
        "an object of [step, timestamp, value] lists",
    ),
    "datasets": (
        lambda v: (
            isinstance(v, list)
            and all(
                isinstance(d, dict)
                and {"name", "digest", "source_type", "source"} <= set(d)
                and _STRINGS[0](d.get("tags"))
                for d in v
            )
        ),
        "a list of dataset inputs",
    ),
    "run_config": (lambda v: isinstance(v, dict), "an object"),
    "predictions": (lambda v: isinstance(v, dict) and {"file", "sha256", "spans"} <= set(v), "file, sha256, spans"),
}
#: the tags every run file must have
REQUIRED_TAGS = ("run_key", "method", "protocol", "dataset", "dataset_sha256", "code_sha256", "seed")


def _check_fields(record: dict[str, Any], path: Path) -> None:
    """One error naming the file and the first field that is missing or malformed."""
    for name, (valid, expected) in _SHAPE.items():
        if name not in record:
            raise BenchmarkError(f"{path}: incomplete run file, no {name}")
        if not valid(record[name]):
            raise BenchmarkError(f"{path}: {name} is not {expected}")
    missing = [tag for tag in REQUIRED_TAGS if tag not in record["tags"]]
    if missing:
        raise BenchmarkError(f"{path}: its tags lack {', '.join(missing)}")
    if record["format"] >= 2 and "file_sha256" not in record["predictions"]:
        raise BenchmarkError(f"{path}: its predictions lack file_sha256 (the sha256 of the Parquet file)")
    if not record["tags"]["seed"].isdigit():
        raise BenchmarkError(f"{path}: seed {record['tags']['seed']!r} is not a whole number")


def check_test_split(runs: Iterable[PublishedRun], corpus: Corpus, spans: bool = True) -> None:
    """Refuse runs of the corpus's dataset whose data or test split differ from the corpus, or
    (``spans``) whose predictions lie outside its test sentences (an episodes run's: outside the
    query sentences of its episodes, drawn again)."""
    dataset, sha256, test_sha256 = corpus.name, corpus.sha256, corpus.split_sha256("test")
    lengths = [len(sentence.tokens) for sentence in corpus.split("test")]
    sentences = len(lengths)
    for run in runs:
        if run.tags["dataset"] != dataset:
            continue
        test = run.test_input
        if run.tags["dataset_sha256"] != sha256 or test.get("sha256") != test_sha256:
            raise BenchmarkError(
                f"{run.path}: ran on {dataset} data {run.tags['dataset_sha256'][:12]} (test split "
                f"{str(test.get('sha256'))[:12]}); the {dataset} here is {sha256[:12]} (test {test_sha256[:12]})"
            )
        if int(test["sentences"]) != sentences:
            raise BenchmarkError(
                f"{run.path}: names {test['sentences']} test sentences; {dataset}'s test has {sentences}"
            )
        if not spans:
            continue
        bounds = lengths
        if run.tags["protocol"] == EPISODES:
            bounds = _query_lengths(run, corpus)
        outside = first_outside(run.predictions, bounds)
        if outside is not None:
            raise BenchmarkError(
                f"{run.path}: span {tuple(outside[:3])} lies outside {dataset}'s test sentences (its predictions "
                f"are not of the test split it names)"
            )


def _query_lengths(run: PublishedRun, corpus: Corpus) -> list[int]:
    """The lengths of an episodes run's query sentences, its episodes drawn again from ``corpus``
    and checked against the sha256 and query count it recorded."""
    from benchmark.run.episodes import rebuilt_view

    protocol = PROTOCOLS[EPISODES]
    try:
        view, gold = rebuilt_view(run.tags, corpus, protocol)  # type: ignore[arg-type]
    except BenchmarkError as error:
        raise BenchmarkError(f"{run.path}: {error}") from None
    if len(gold) != run.query_sentences:
        raise BenchmarkError(
            f"{run.path}: names {run.query_sentences} query sentences; its episodes drawn again hold {len(gold)}"
        )
    lengths = [len(sentence.tokens) for sentence in gold]
    if first_outside(run.predictions, lengths) is None:
        try:  # each span typed with its episode's types, none overlapping: what the run's protocol allowed
            protocol.validate(run.predictions, view)
        except ProtocolViolation as error:
            raise BenchmarkError(f"{run.path}: {error}") from None
    return lengths


def runs_frame(runs: Sequence[PublishedRun]) -> pd.DataFrame:
    """The runs as ``mlflow.search_runs`` gives them (``run_id``, ``start_time``, ``tags.*``,
    ``params.*``, ``metrics.*`` …), so a report reads a record as it reads a store."""
    rows = []
    for run in runs:
        r = run.record
        rows.append({
            "run_id": r["run_id"], "experiment_id": r["experiment"], "status": "FINISHED",
            "artifact_uri": None,
            "start_time": pd.Timestamp(r["start_time"], unit="ms", tz="UTC"),
            "end_time": pd.Timestamp(r["end_time"], unit="ms", tz="UTC"),
            **{f"metrics.{k}": v for k, v in run.metrics.items()},
            **{f"params.{k}": v for k, v in r["params"].items()},
            **{f"tags.{k}": v for k, v in r["tags"].items()},
        })  # fmt: skip
    return pd.DataFrame(rows)


def json_value(value: float) -> float | str | None:
    """A metric value as JSON holds it: NaN as null, an infinity as ``"inf"`` or ``"-inf"``."""
    if math.isnan(value):
        return None
    return str(value) if math.isinf(value) else value


def metric_value(value: float | str | None) -> float:
    """`json_value` read back."""
    return math.nan if value is None else float(value)


@dataclass
class Imported:
    """What `import_record` did: runs added, runs the store already held, parents created."""

    added: int = 0
    present: int = 0
    parents: int = 0


def _check_dataset(runs: Sequence[PublishedRun], dataset: str, data_dir: Path | None) -> str | None:
    """Check the runs of ``dataset`` against its test split (`check_test_split`), or say (a note)
    that it cannot be loaded here: then only the record's own consistency is checked."""
    try:
        corpus = load_corpus(dataset, data_dir if dataset != "embedded" else None)
    except BenchmarkError:
        return f"note: {dataset} cannot be loaded here (--data-dir): its runs are checked against the record only"
    check_test_split(runs, corpus)
    return None


def _check_aside(root: Path, dataset: str, data_dir: Path | None) -> str | None:
    """`_check_dataset` in another process: the record's runs of ``dataset`` read there."""
    return _check_dataset([r for r in read_record(root, predictions=False) if r.tags["dataset"] == dataset],
                          dataset, data_dir)  # fmt: skip


@collector_paused()  # the forked check inherits the pause
def import_record(
    root: Path, uri: str | None = None, data_dir: Path | None = None, echo: Callable[[str], None] = print
) -> Imported:
    """Load the record into the store as ordinary runs: per row (label, settings and code
    fingerprint) of each experiment one parent run and its seed runs, with their params, tags,
    metric histories, times, dataset inputs and artifacts (``predictions.jsonl``, ``run_config.json``).
    A run the store already holds under the same key (imported before, or the same predictions
    computed here) is not added again; one with other predictions, or none, under that key is
    refused. Everything is checked before anything is written; an import that fails part-way
    deletes the runs it added (MLflow's delete: they leave every search, `report` and `run`)."""
    from benchmark.run.provenance import package_versions
    from benchmark.run.tracking import (
        ORIGIN_TAG,
        Importer,
        finished_by_key,
        predictions_jsonl,
        read_predictions,
        tracking_uri,
    )

    runs = read_record(root, predictions=False)
    datasets = sorted({run.tags["dataset"] for run in runs})
    forks = len(datasets) > 1 and "fork" in multiprocessing.get_all_start_methods()
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) if forks else None
    with pool or contextlib.nullcontext():
        # the other datasets' runs are checked in a forked process while this one reads every run's predictions
        elsewhere = {d: pool.submit(_check_aside, root, d, data_dir) for d in datasets[1:]} if pool else {}
        for run in runs:
            run.predictions  # noqa: B018 (read and checked against its run file)
        notes = {d: _check_dataset(runs, d, data_dir) for d in datasets if d not in elsewhere}
        jsonl = {}
        for run in runs:  # as many as the other datasets' check leaves time for; the rest between store writes
            if all(future.done() for future in elsewhere.values()):
                break
            jsonl[run.path] = predictions_jsonl(run.predictions)
        notes |= {d: future.result() for d, future in elsewhere.items()}
    for dataset in datasets:
        if notes[dataset]:
            echo(notes[dataset])
    here = {f"version.{k}": v for k, v in package_versions().items()}
    differ = sorted(
        {f"{k[8:]} {run.tags[k]} (here {v})" for run in runs for k, v in here.items() if run.tags.get(k, v) != v}
    )
    if differ:
        echo(
            f"note: runs recorded with {', '.join(differ)}: `run` will not skip them here (the run key names them;"
            " `pip install -e . -c requirements/record.txt` installs the record's versions)"
        )
    uri = uri or tracking_uri()
    held = {experiment: finished_by_key(uri, experiment) for experiment in sorted({r.experiment for r in runs})}
    todo: dict[str, list[PublishedRun]] = {}
    done = Imported()
    for run in runs:  # every conflict is found before anything is written
        same = held[run.experiment].get(run.key, [])
        if not same:
            todo.setdefault(run.experiment, []).append(run)
            continue
        done.present += 1
        if any(original == run.run_id for _, original, _ in same):
            continue  # imported before
        for run_id, _, artifacts in same:  # computed here too: the same run only if its predictions are
            theirs = read_predictions(artifacts)
            if theirs != run.predictions:
                why = "it has no predictions" if theirs is None else "other predictions"
                raise BenchmarkError(
                    f"{run.path}: the store {uri} already holds a different run under the same key {run.key} "
                    f"(run {run_id}: {why}); nothing imported"
                )
    added: list[tuple[Importer, str]] = []
    try:
        for experiment, pending in todo.items():
            importer = Importer(experiment, uri)
            rows: dict[tuple[str, str, str], list[PublishedRun]] = {}
            for run in pending:
                row = (run.tags.get("label", run.tags["method"]), json.dumps(run.record["params"], sort_keys=True),
                       run.tags["code_sha256"])  # fmt: skip
                rows.setdefault(row, []).append(run)
            for (label, _, _), seeds in rows.items():
                seeds.sort(key=lambda r: int(r.tags["seed"]))
                parent = importer.add_run(*_parent(label, seeds))
                added.append((importer, parent))
                done.parents += 1
                for run in seeds:
                    tags = {**run.tags, "mlflow.parentRunId": parent, ORIGIN_TAG: run.run_id}
                    artifacts = {"predictions.jsonl": jsonl.pop(run.path, None) or predictions_jsonl(run.predictions)}
                    if run.record["run_config"]:
                        artifacts["run_config.json"] = json.dumps(run.record["run_config"], indent=2, sort_keys=True)
                    if "episodes" in run.record:
                        artifacts["episodes.json"] = json.dumps(run.record["episodes"], indent=2, sort_keys=True)
                    times = (run.record["start_time"], run.record["end_time"])
                    child = importer.add_run(run.record["name"], tags, run.record["params"], run.histories, times,
                                             run.record["datasets"], artifacts)  # fmt: skip
                    added.append((importer, child))
                    done.added += 1
    except (KeyboardInterrupt, Exception) as error:
        for importer, run_id in reversed(added):
            with contextlib.suppress(Exception):
                importer.delete([run_id])
        if isinstance(error, KeyboardInterrupt):
            raise
        raise BenchmarkError(
            f"importing {root} into {uri} failed ({type(error).__name__}: {error}); the {len(added)} runs it had "
            "added are deleted again"
        ) from error
    return done


def _parent(label: str, seeds: Sequence[PublishedRun]) -> tuple:
    """`Importer.add_run`'s arguments for the parent of one row's imported seeds (one label,
    settings and code): the tags they share (role ``parent``), their settings and seeds, the seed
    summary of every metric logged once (learning curves are the seeds'), their time span and
    the first seed's datasets."""
    from benchmark.seeds import summarise_seeds

    first = seeds[0]
    shared = {k: v for k, v in first.tags.items() if all(s.tags.get(k) == v for s in seeds)}
    tags = {**{k: v for k, v in shared.items() if k not in ("seed", "run_key")}, "role": "parent"}
    params = {**first.record["params"], "seeds": str(tuple(int(s.tags["seed"]) for s in seeds))}
    once = [{k: v for k, v in s.metrics.items() if len(s.record["metrics"][k]) == 1} for s in seeds]
    summaries = summarise_seeds(once)
    now = max(s.record["end_time"] for s in seeds)
    metrics = {k: [(0, now, v)] for key, summary in summaries.items() for k, v in summary.metrics(key).items()}
    times = (min(s.record["start_time"] for s in seeds), now)
    return f"{label}:protocol={first.tags['protocol']}", tags, params, metrics, times, first.record["datasets"]
