"""The comparison grid on a local Ray cluster, logging to an MLflow tracking server backed by
PostgreSQL (the machine's own server binaries, in a temporary folder, on 127.0.0.1)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

if not os.environ.get("CI"):  # CI installs the extra: there a missing Ray fails
    pytest.importorskip("ray", reason="the Ray executor needs: pip install -e '.[ray]'")
import ray
from mlflow.tracking import MlflowClient

from benchmark.cli import main

GRID = ["gazetteer", "random-within-coarse", "label-name"]


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the ``postgres`` user then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="module")
def postgres(free_port):
    bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
    if not bindir or not Path(bindir, "initdb").exists():
        reason = "no PostgreSQL server binaries (Debian: postgresql-15)"
        pytest.fail(reason) if os.environ.get("CI") else pytest.skip(reason)
    # not under pytest's root-only folder: as root, the server runs as `postgres`, who must reach it
    folder = Path(tempfile.mkdtemp(prefix="benchmark-postgres-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    port = free_port()
    data = folder / "data"
    subprocess.run(_as_postgres([f"{bindir}/initdb", "-D", str(data), "-U", "bench", "--auth=trust"]), check=True,
                   capture_output=True)  # fmt: skip
    options = f"-p {port} -h 127.0.0.1 -k {folder}"
    subprocess.run(_as_postgres([f"{bindir}/pg_ctl", "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w",
                                 "start"]), check=True, capture_output=True)  # fmt: skip
    try:
        subprocess.run(_as_postgres([f"{bindir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "bench",
                                     "mlflow"]), check=True, capture_output=True)  # fmt: skip
        yield f"postgresql+psycopg://bench@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run(_as_postgres([f"{bindir}/pg_ctl", "-D", str(data), "-m", "fast", "stop"]), capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def tracking_server(postgres, tmp_path_factory, mlflow_serving):
    folder = tmp_path_factory.mktemp("mlflow-server")
    args = ["server", "--backend-store-uri", postgres, "--artifacts-destination", str(folder / "artifacts")]
    with mlflow_serving(args, folder / "log") as address:
        yield address


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


def _seed_metrics(uri: str) -> dict[tuple[str, str, str], float]:
    client = MlflowClient(uri)
    out = {}
    for experiment in client.search_experiments():
        for run in client.search_runs([experiment.experiment_id], "tags.role = 'seed'"):
            if run.info.status == "FINISHED":
                tags = run.data.tags
                headline = next(
                    k for k in ("fine/micro_f1", "fine/accuracy", "fine/weighted_f1") if k in run.data.metrics
                )
                out[(tags["label"], tags["protocol"], tags["seed"])] = run.data.metrics[headline]
    return out


@pytest.mark.slow
def test_a_grid_on_ray_and_a_tracking_server_matches_a_local_run(tracking_server, ray_cluster, official_layout,
                                                                 tmp_path, monkeypatch, capsys):  # fmt: skip
    """The grid (gazetteer, random-within-coarse, label-name; 2 seeds) on the small real slice."""
    monkeypatch.chdir(tmp_path)
    argv = ["run", "--method", *GRID, "--seeds", "1", "2", *_slice_args(official_layout), "--bootstrap", "0", "--quiet"]
    local = f"sqlite:///{tmp_path / 'local.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", local)
    assert main(argv) == 0
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_server)
    assert main([*argv, "--executor", "ray"]) == 0
    expected = _seed_metrics(local)
    assert len(expected) == 16  # 8 rows (gazetteer and :half on ner and typing, 4 on weak-typing), 2 seeds
    assert _seed_metrics(tracking_server) == expected
    capsys.readouterr()
    assert main([*argv, "--executor", "ray"]) == 0  # a second invocation skips every finished task
    out = capsys.readouterr().out
    summary = [line for line in out.splitlines() if " skipped" in line]
    assert len(summary) == 8
    assert all("0 run, 2 skipped" in line for line in summary)
    for uri, folder in ((local, "from-local"), (tracking_server, "from-server")):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        assert main(["report", "--out", folder, "--trials", "200", "--dataset", "supervised",
                     "--data-dir", str(official_layout), "--no-verify"]) == 0  # fmt: skip
        assert "test gold unavailable" not in capsys.readouterr().err  # runs re-scored, pairs tested
    tables = sorted(p.relative_to(tmp_path / "from-local") for p in (tmp_path / "from-local").rglob("*.csv"))
    assert tables
    # wall time, and which seeds had the machine to themselves
    timing = ["seconds", "timed_seeds", "fit_seconds", "predict_seconds", "sentences_per_second", "other_cores"]
    for table in tables:  # everything but how long the runs took
        local_table, server_table = (pd.read_csv(tmp_path / f / table).drop(columns=timing, errors="ignore")
                                     for f in ("from-local", "from-server"))  # fmt: skip
        pd.testing.assert_frame_equal(local_table, server_table)


def _sweep_table(uri: str) -> tuple[dict[tuple[str, str], float], str]:
    """Each point and seed's dev criterion, and the point the sweep selected."""
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("supervised/ner/sweeps")
    found = client.search_runs([experiment.experiment_id])
    points = {(r.data.tags["point"], r.data.tags["seed"]): r.data.metrics["dev/fine/micro_f1"]
              for r in found if r.data.tags["role"] == "sweep-point" and r.info.status == "FINISHED"}  # fmt: skip
    (parent,) = [r for r in found if r.data.tags["role"] == "sweep"]
    return points, parent.data.tags["selected"]


@pytest.mark.slow
def test_a_sweep_on_ray_gives_the_dev_table_of_a_local_sweep(ray_cluster, official_layout, tmp_path, monkeypatch,
                                                           capsys):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    argv = ["sweep", "--method", "gazetteer", "--protocol", "ner", "--grid", "min_entity_ratio=0,0.5",
            "--seeds", "1", "2", *_slice_args(official_layout), "--quiet"]  # fmt: skip
    tables = {}
    for executor in ("local", "ray"):
        uri = f"sqlite:///{tmp_path / executor}.db"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        assert main([*argv, "--executor", executor]) == 0
        out = capsys.readouterr().out
        tables[executor] = [line.split()[:4] for line in out.splitlines() if line.startswith(("0 ", "0.5 "))]
        assert len(tables[executor]) == 2  # the dev table's two points: value, mean ± std, seeds
        points, selected = _sweep_table(uri)
        assert len(points) == 4
        tables[f"{executor} runs"] = (points, selected)
    assert tables["ray"] == tables["local"]
    assert tables["ray runs"] == tables["local runs"]


def _slice_args(folder: Path) -> list[str]:
    return ["--dataset", "supervised", "--data-dir", str(folder), "--no-verify"]


@pytest.mark.slow
def test_a_worker_killed_mid_task_fails_its_run_and_a_rerun_completes_it(tracking_server, ray_cluster, official_layout,
                                                                        monkeypatch):  # fmt: skip
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_server)
    argv = ["run", "--method", "tagger", "--protocol", "ner", "--seeds", "7", *_slice_args(official_layout),
            "--set", "epochs=2", "--bootstrap", "0", "--quiet", "--executor", "ray"]  # fmt: skip
    client = MlflowClient(tracking_server)
    address = ray.get_runtime_context().gcs_address  # the driver is another process, as on a cluster
    command = [sys.executable, "-m", "benchmark", *argv, "--ray-address", address]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    victim, experiment = None, None
    while victim is None and time.monotonic() < deadline and driver.poll() is None:
        experiment = experiment or client.get_experiment_by_name("supervised/ner")
        if experiment is not None:
            found = client.search_runs([experiment.experiment_id], "tags.seed = '7' and attributes.status = 'RUNNING'")
            victim = _worker_pid() if found else None
        time.sleep(0.2)
    if victim is None:
        driver.kill()
        pytest.fail(f"the task never started: {driver.communicate()[1][-2000:]}")
    os.kill(victim, 9)
    _, err = driver.communicate(timeout=300)
    assert driver.returncode == 2  # one clear error line, not a traceback
    assert "its Ray worker died" in err
    runs = client.search_runs([experiment.experiment_id], "tags.seed = '7' and tags.role = 'seed'")
    assert [r.info.status for r in runs] == ["FAILED"]  # never FINISHED: no report counts it
    assert main(argv) == 0  # the same command again redoes the task
    seeds = client.search_runs([experiment.experiment_id], "tags.seed = '7' and tags.role = 'seed'")
    assert sorted(r.info.status for r in seeds) == ["FAILED", "FINISHED"]


def _worker_pid() -> int | None:
    """The process of a Ray worker running a task now (Ray titles it after the task)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"ray::_run_remote" in cmdline.read_bytes():
                return int(cmdline.parent.name)
        except OSError:  # the process ended meanwhile
            continue
    return None
