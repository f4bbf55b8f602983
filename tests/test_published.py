"""The published record: export from a store, import into another, report from either, bad records."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from benchmark.cli import main
from benchmark.core.errors import BenchmarkError
from benchmark.report.stats import unshared_seconds
from benchmark.run.cpu import SHARED_ABOVE, measure
from benchmark.run.published import predictions_sha256, read_record, read_run, read_spans, write_run

RUNS = (("gazetteer", "ner", ("1", "2")), ("random-within-coarse", "weak-typing", ("1",)))


def seed_runs(uri: str) -> list:
    client = MlflowClient(uri)
    found = client.search_experiments()
    runs = client.search_runs([e.experiment_id for e in found]) if found else []
    return [r for r in runs if r.data.tags.get("role") == "seed"]


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A store with real runs (gazetteer under ner, 2 seeds; random-within-coarse under
    weak-typing, 1 seed), its record, and the report written from the store."""
    folder = tmp_path_factory.mktemp("published")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'mlflow.db'}")
        for method, protocol, seeds in RUNS:
            argv = ["run", "--method", method, "--protocol", protocol, "--seeds", *seeds, "--bootstrap", "0"]
            assert main([*argv, "--quiet"]) == 0
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        client = MlflowClient(uri)
        run = next(r for r in seed_runs(uri) if r.data.tags["seed"] == "2")
        for step, loss in enumerate([0.9, 0.5, 0.4], start=1):  # a learning curve, and a NaN score
            client.log_metric(run.info.run_id, "train/loss", loss, step=step)
        client.log_metric(run.info.run_id, "clusters/nmi", math.nan)
        assert main(["export", "--out", "record"]) == 0
        assert main(["report", "--out", "from-store", "--trials", "200"]) == 0
    return folder


def _same(a: dict[str, float], b: dict[str, float]) -> bool:
    """Equal metrics, NaN equal to NaN."""
    return a.keys() == b.keys() and all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a)


def _texts(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): p.read_text()
        for p in folder.rglob("*")
        if p.suffix in {".md", ".csv", ".tex", ".html"}
    }


def test_export_writes_a_checked_json_and_parquet_per_run_and_rewrites_nothing_unchanged(
    published, tmp_path, monkeypatch, capsys
):
    record = published / "record"
    files = sorted(p.relative_to(record).as_posix() for p in record.rglob("*") if p.is_file())
    assert files == [
        "embedded/ner/gazetteer/default/seed-1.json", "embedded/ner/gazetteer/default/seed-1.parquet",
        "embedded/ner/gazetteer/default/seed-2.json", "embedded/ner/gazetteer/default/seed-2.parquet",
        "embedded/weak-typing/random-within-coarse/default/seed-1.json",
        "embedded/weak-typing/random-within-coarse/default/seed-1.parquet",
    ]  # fmt: skip
    runs = {run.path.relative_to(record).as_posix(): run for run in read_record(record)}
    run = runs["embedded/ner/gazetteer/default/seed-1.json"]
    assert run.tags["run_key"]
    assert run.tags["code_sha256"]
    assert run.tags["version.torch"]
    assert run.record["run_config"]["seed"] == 1
    assert run.test_input["sentences"] == "3755"
    assert run.metrics["fine/micro_f1"] > 0.2
    assert "time/other_cpu_share" in run.metrics
    assert run.metrics["time/predict_sentences_per_second"] == pytest.approx(3755 / run.metrics["time/predict_seconds"])
    assert run.tags["device"] == "cpu"
    assert len(run.predictions) == run.record["predictions"]["spans"] > 1000
    curved = runs["embedded/ner/gazetteer/default/seed-2.json"]
    assert curved.record["metrics"]["clusters/nmi"][0][2] is None  # NaN as null
    assert [value for _, _, value in curved.record["metrics"]["train/loss"]] == [0.9, 0.5, 0.4]
    stamps = {p: p.stat().st_mtime_ns for p in record.rglob("*")}
    monkeypatch.chdir(published)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{published / 'mlflow.db'}")
    capsys.readouterr()
    assert main(["export", "--out", "record"]) == 0
    assert "0 runs written, 3 unchanged, 0 superseded removed" in capsys.readouterr().out
    assert stamps == {p: p.stat().st_mtime_ns for p in record.rglob("*")}
    assert main(["export", "--out", str(tmp_path / "one"), "--protocol", "weak-typing"]) == 0
    assert [p.name for p in (tmp_path / "one").rglob("*.json")] == ["seed-1.json"]
    assert main(["export", "--out", str(tmp_path / "two"), "--method", "gazetteer"]) == 0
    assert len(list((tmp_path / "two").rglob("*.json"))) == 2
    capsys.readouterr()
    stale = tmp_path / "stale"  # a seed the store's report no longer uses, in a row that is exported
    shutil.copytree(record, stale)
    for suffix in (".json", ".parquet"):
        shutil.copy(stale / f"{SEED_1}{suffix}", stale / f"{SEED_1[:-1]}9{suffix}")
    assert main(["export", "--out", str(stale)]) == 0
    assert "0 runs written, 3 unchanged, 1 superseded removed" in capsys.readouterr().out
    assert sorted(p.name for p in (stale / SEED_1).parent.iterdir()) == [
        "seed-1.json", "seed-1.parquet", "seed-2.json", "seed-2.parquet"
    ]  # fmt: skip


def test_import_is_idempotent_and_a_following_run_skips_every_published_seed(published, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    capsys.readouterr()
    assert main(["import", str(published / "record")]) == 0
    assert "3 runs imported under 2 parent runs, 0 already" in capsys.readouterr().out
    assert main(["import", str(published / "record")]) == 0
    assert "0 runs imported under 0 parent runs, 3 already" in capsys.readouterr().out
    original = {r.data.tags["run_key"]: r for r in seed_runs(f"sqlite:///{published / 'mlflow.db'}")}
    client = MlflowClient(uri)
    imported = seed_runs(uri)
    assert len(imported) == 3
    for run in imported:
        source = original[run.data.tags["run_key"]]
        assert run.info.status == "FINISHED"
        assert run.info.run_name == source.info.run_name
        assert (run.info.start_time, run.info.end_time) == (source.info.start_time, source.info.end_time)
        assert run.data.params == source.data.params
        assert _same(run.data.metrics, source.data.metrics)
        assert run.data.tags["published_run_id"] == source.info.run_id
        assert {t.value for d in run.inputs.dataset_inputs for t in d.tags if t.key == "mlflow.data.context"} == {
            "train", "dev", "test"
        }  # fmt: skip
        parent = client.get_run(run.data.tags["mlflow.parentRunId"])
        assert parent.data.tags["role"] == "parent"
        assert parent.data.tags["label"] == run.data.tags["label"]
        assert parent.data.params["seeds"] in ("(1, 2)", "(1,)")
        assert "time/fit_seconds_mean" in parent.data.metrics
        artifacts = {f.path for f in client.list_artifacts(run.info.run_id)}
        assert {"predictions.jsonl", "run_config.json"} <= artifacts
    curved = next(r for r in imported if "train/loss" in r.data.metrics)
    history = client.get_metric_history(curved.info.run_id, "train/loss")
    assert [(m.step, m.value) for m in history] == [(1, 0.9), (2, 0.5), (3, 0.4)]
    assert math.isnan(curved.data.metrics["clusters/nmi"])
    capsys.readouterr()
    assert main(["run", "--method", "gazetteer", "--protocol", "ner", "--seeds", "1", "2", "--bootstrap", "0"]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("(same settings, data and code): skipped") == 2, captured.err
    assert len(seed_runs(uri)) == 3


def test_report_is_the_same_from_the_store_the_record_and_an_imported_store(published, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert main(["report", "--runs", str(published / "record"), "--out", "from-record", "--trials", "200"]) == 0
    assert main(["import", str(published / "record")]) == 0
    assert main(["report", "--out", "from-import", "--trials", "200"]) == 0
    expected = _texts(published / "from-store")
    assert len(expected) >= 8
    assert _texts(tmp_path / "from-record") == expected
    assert _texts(tmp_path / "from-import") == expected
    shutil.copytree(published / "record", tmp_path / "record")
    capsys.readouterr()
    assert main(["export", "--out", "record"]) == 0  # the imported store gives the record it came from
    assert "0 runs written, 3 unchanged" in capsys.readouterr().out


def _rewrite_json(path: Path, change) -> None:
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))


def _rewrite_parquet(path: Path, change) -> None:
    frame = pd.read_parquet(path)
    change(frame)
    frame.to_parquet(path, index=False)


SEED_1 = "embedded/ner/gazetteer/default/seed-1"
BAD_RECORDS = {
    "missing predictions": (lambda r: Path(r, f"{SEED_1}.parquet").unlink(), "seed-1.parquet: missing"),
    "truncated predictions": (
        lambda r: Path(r, f"{SEED_1}.parquet").write_bytes(Path(r, f"{SEED_1}.parquet").read_bytes()[:500]),
        "seed-1.parquet: not readable predictions",
    ),
    "corrupt run file": (lambda r: Path(r, f"{SEED_1}.json").write_text("{oops"), "seed-1.json: not a readable"),
    "unknown format": (
        lambda r: _rewrite_json(Path(r, f"{SEED_1}.json"), lambda d: d.update(format=9)),
        "seed-1.json: record format 9; this harness reads formats 1 and 2",
    ),
    "relabelled span": (
        lambda r: _rewrite_parquet(Path(r, f"{SEED_1}.parquet"), lambda f: f.__setitem__("label", "person-other")),
        "seed-1.parquet: its bytes do not match the sha256",
    ),
    "fewer test sentences": (
        lambda r: _rewrite_json(Path(r, f"{SEED_1}.json"), lambda d: d["datasets"][2]["tags"].update(sentences="10")),
        "10 test sentences",  # import: its spans lie outside them; report: the test split has 3755
    ),
    "other data": (
        lambda r: _rewrite_json(Path(r, f"{SEED_1}.json"), lambda d: d["tags"].update(dataset_sha256="0" * 64)),
        "seed-1.json: ran on embedded data 000000000000",
    ),
    "format 2 without the file's sha256": (
        lambda r: _rewrite_json(Path(r, f"{SEED_1}.json"), lambda d: d["predictions"].pop("file_sha256")),
        "seed-1.json: its predictions lack file_sha256",
    ),
    "incomplete run file": (
        lambda r: _rewrite_json(Path(r, f"{SEED_1}.json"), lambda d: d["tags"].pop("run_key")),
        "seed-1.json: its tags lack run_key",
    ),
    "malformed metrics": (
        lambda r: _rewrite_json(Path(r, f"{SEED_1}.json"), lambda d: d.update(metrics={"x": 1})),
        "seed-1.json: metrics is not an object of [step, timestamp, value] lists",
    ),
    "span past a sentence's end": (
        lambda r: _rewrite_consistently(Path(r, f"{SEED_1}.parquet"), lambda f: f.__setitem__("end", 999)),
        "lies outside embedded's test sentences",
    ),
    "stray predictions": (
        lambda r: shutil.copy(Path(r, f"{SEED_1}.parquet"), Path(r, f"{SEED_1}-copy.parquet")),
        "seed-1-copy.parquet: predictions with no run file",
    ),
}


@pytest.mark.parametrize("case", BAD_RECORDS)
def test_a_bad_record_gives_one_error_naming_the_file_and_imports_nothing(
    case, published, tmp_path, monkeypatch, capsys
):
    record = tmp_path / "record"
    shutil.copytree(published / "record", record)
    change, message = BAD_RECORDS[case]
    change(record)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    capsys.readouterr()
    for argv in (["import", str(record)], ["report", "--runs", str(record), "--out", "out"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: "), err
        assert err.count("\n") == 1, err
        assert message in err, err
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "mlflow.db").exists()  # checking created no store


def _rewrite_consistently(table: Path, change) -> None:
    """Change a run's predictions and the sha256s its run file records: a record valid on its own."""
    _rewrite_parquet(table, change)
    sha, file_sha = predictions_sha256(read_spans(table)), hashlib.sha256(table.read_bytes()).hexdigest()
    _rewrite_json(table.with_suffix(".json"), lambda d: d["predictions"].update(sha256=sha, file_sha256=file_sha))


def test_a_format_1_run_file_is_read_and_its_predictions_checked_by_their_spans_digest(published, tmp_path):
    """Format 1 recorded only the spans' sha256: its runs still read, and edited spans are still refused."""
    record = tmp_path / "record"
    shutil.copytree(published / "record", record)
    path = record / f"{SEED_1}.json"
    _rewrite_json(path, lambda d: (d.update(format=1), d["predictions"].pop("file_sha256")))
    _rewrite_parquet(path.with_suffix(".parquet"), lambda f: None)  # other bytes, the same spans
    assert len(read_run(path).predictions) == json.loads(path.read_text())["predictions"]["spans"]
    _rewrite_parquet(path.with_suffix(".parquet"), lambda f: f.__setitem__("label", "person-other"))
    with pytest.raises(BenchmarkError, match=r"seed-1\.parquet: its spans do not match the sha256"):
        read_run(path)


def test_export_rewrites_a_damaged_predictions_file_and_leaves_an_intact_one(published, tmp_path):
    record = tmp_path / "record"
    shutil.copytree(published / "record", record)
    path = record / f"{SEED_1}.json"
    run = read_run(path)
    fields = {k: v for k, v in run.record.items() if k != "predictions"} | {"metrics": run.histories}
    assert not write_run(path, fields, run.predictions)  # the same spans: nothing written
    table = path.with_suffix(".parquet")
    for damage in (
        lambda: _rewrite_parquet(table, lambda f: f.__setitem__("label", "person-other")),
        lambda: table.write_bytes(table.read_bytes()[:500]),
    ):
        damage()
        assert write_run(path, fields, run.predictions)  # the file no longer holds them: written again
        assert read_run(path).predictions == run.predictions  # its bytes are the ones its run file names


def test_importing_over_a_different_run_under_the_same_key_is_refused(published, tmp_path, monkeypatch, capsys):
    """A store whose run has the key of a published one but other predictions (here: the record,
    edited consistently, imported first) refuses the record whole."""
    edited = tmp_path / "edited"
    shutil.copytree(published / "record", edited)
    path = edited / f"{SEED_1}.json"
    _rewrite_consistently(path.with_suffix(".parquet"), lambda f: f.__setitem__("label", "person-other"))
    _rewrite_json(path, lambda d: d.update(run_id="0" * 32))
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert main(["import", str(edited)]) == 0
    capsys.readouterr()
    assert main(["import", str(published / "record")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert err.count("\n") == 1
    assert "seed-1.json: the store" in err
    assert "already holds a different run under the same key" in err
    assert len(seed_runs(uri)) == 3  # the record's other two runs were not imported either


def test_a_timing_counts_only_when_no_other_process_shared_the_machine():
    with measure() as alone:
        time.sleep(0.5)
    if alone.other_cores > SHARED_ABOVE:
        pytest.skip(f"other processes keep {alone.other_cores:.1f} cores busy: nothing to measure against")
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # the spinner is up
        with measure() as shared:
            time.sleep(1.0)
    finally:
        spinner.kill()
        spinner.wait()
    assert shared.other_cores > 0.5  # one busy core (SHARED_ABOVE: 0.1)
    assert alone.other_cores < shared.other_cores
    assert alone.process < 0.2
    assert shared.process < 0.2
    runs = pd.DataFrame({
        "metrics.time/fit_seconds": [10.0, 20.0, 99.0], "metrics.time/predict_seconds": [1.0, 1.0, 1.0],
        "metrics.time/other_cpu_share": [0.0, SHARED_ABOVE / 2, 0.5], "metrics.time/cpu_count": [2.0, 2.0, 2.0],
    })  # fmt: skip
    assert unshared_seconds(runs) == (16.0, 2)
    seconds, timed = unshared_seconds(runs.drop(columns="metrics.time/other_cpu_share"))
    assert pd.isna(seconds)
    assert timed == 0
