"""Executors: bad input fails with one line before anything is logged; the local executor is
today's loop (the Ray executor against a real cluster: tests/test_cluster.py)."""

from __future__ import annotations

import socket
import sys

import pytest
from mlflow.tracking import MlflowClient

from benchmark.cli import main
from benchmark.tracking import absolute_uri, local_store


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def _no_runs(uri: str) -> bool:
    client = MlflowClient(uri)
    return all(not client.search_runs([e.experiment_id]) for e in client.search_experiments())


def test_ray_executor_without_ray_says_how_to_install_it(workdir, store, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    assert main(["run", "--method", "gazetteer", "--executor", "ray", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: --executor ray needs Ray: pip install -e '.[ray]'"
    assert _no_runs(store)


def test_an_unreachable_ray_cluster_fails_before_any_task(workdir, store, capsys):
    address = f"127.0.0.1:{_closed_port()}"
    assert main(["run", "--method", "gazetteer", "--executor", "ray", "--ray-address", address]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot reach the Ray cluster at {address}")
    assert len(err.strip().splitlines()) == 1
    assert _no_runs(store)


def test_an_unreachable_tracking_server_fails_before_any_task(workdir, monkeypatch, capsys):
    uri = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    for argv in (["run", "--method", "gazetteer"], ["report"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: the tracking server {uri} (MLFLOW_TRACKING_URI) does not answer")
        assert len(err.strip().splitlines()) == 1
    assert not (workdir / "reports").exists()


def test_executor_options_need_the_ray_executor(workdir, store, capsys):
    assert main(["run", "--method", "gazetteer", "--ray-address", "127.0.0.1:6379"]) == 2
    assert "--ray-address and --cpus-per-task need --executor ray" in capsys.readouterr().err
    assert main(["run", "--method", "gazetteer", "--executor", "ray", "--cpus-per-task", "0"]) == 2
    assert "--cpus-per-task must be at least 1, not 0" in capsys.readouterr().err


def test_workers_get_the_store_as_the_driver_resolves_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert absolute_uri("sqlite:///mlflow.db") == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert absolute_uri("mlruns") == str(tmp_path / "mlruns")
    assert absolute_uri("http://head:5000") == "http://head:5000"
    local = ("sqlite:///x.db", "mlruns", "file:///m")
    assert all(local_store(u) for u in local)
    assert not any(local_store(u) for u in ("http://h:5000", "postgresql://h/db"))


def test_local_tasks_log_parent_and_seed_runs_as_before(workdir, store):
    """The parent carries the seeds and the datasets; each seed run its settings (no seeds
    parameter: settings alone group runs in the report) and the datasets."""
    assert main(["run", "--method", "gazetteer", "--protocol", "ner", "--seeds", "1", "2", "--bootstrap", "0"]) == 0
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("embedded/ner")
    runs = {r.data.tags["role"]: r for r in client.search_runs([experiment.experiment_id], "tags.role = 'parent'")}
    seeds = client.search_runs([experiment.experiment_id], "tags.role = 'seed'")
    assert runs["parent"].data.params["seeds"] == "(1, 2)"
    assert sorted(r.info.status for r in seeds) == ["FINISHED", "FINISHED"]
    assert all("seeds" not in r.data.params and "min_entity_ratio" in r.data.params for r in seeds)
    assert all(len(r.inputs.dataset_inputs) == 3 for r in [runs["parent"], *seeds])


def _statuses(uri: str) -> dict[str, str]:
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("embedded/ner")
    runs = client.search_runs([experiment.experiment_id])
    return {r.data.tags.get("seed", "parent"): r.info.status for r in runs}


def _failing_on(seed: int, error: BaseException, monkeypatch):
    import benchmark.runner as runner

    fit_predict = runner.fit_predict

    def patched(method, protocol, training, test, run_seed, *args):
        if run_seed == seed:
            raise error
        return fit_predict(method, protocol, training, test, run_seed, *args)

    monkeypatch.setattr(runner, "fit_predict", patched)


ARGV = ["run", "--method", "gazetteer", "--protocol", "ner", "--seeds", "1", "2", "3", "--bootstrap", "0", "--quiet"]


def test_a_failing_seed_is_failed_and_the_others_go_on(workdir, store, monkeypatch):
    _failing_on(1, ValueError("broken"), monkeypatch)
    with pytest.raises(ValueError, match="broken"):  # one method: `run` reports the seed's error
        main(ARGV)
    assert _statuses(store) == {"1": "FAILED", "2": "FINISHED", "3": "FINISHED", "parent": "FAILED"}


def test_ctrl_c_kills_the_running_seed_and_those_not_started(workdir, store, monkeypatch, capsys):
    _failing_on(2, KeyboardInterrupt(), monkeypatch)
    assert main(ARGV) == 130
    assert _statuses(store) == {"1": "FINISHED", "2": "KILLED", "3": "KILLED", "parent": "KILLED"}
