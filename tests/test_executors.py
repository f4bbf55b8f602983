"""Executors: bad input fails with one line before anything is logged; the local executor is
today's loop (the Ray executor against a real cluster: tests/test_cluster.py)."""

from __future__ import annotations

import itertools
import sys

import pytest
from mlflow.tracking import MlflowClient

from benchmark.cli import main
from benchmark.run.plan import RunRequest
from benchmark.run.seed import SeedTask
from benchmark.run.tracking import absolute_uri, local_store


def _no_runs(uri: str) -> bool:
    client = MlflowClient(uri)
    return all(not client.search_runs([e.experiment_id]) for e in client.search_experiments())


def test_ray_executor_without_ray_says_how_to_install_it(workdir, store, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    assert main(["run", "--method", "gazetteer", "--executor", "ray", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: --executor ray needs Ray: pip install -e '.[ray]'"
    assert _no_runs(store)


def test_an_unreachable_ray_cluster_fails_before_any_task(workdir, store, free_port, capsys):
    address = f"127.0.0.1:{free_port()}"
    assert main(["run", "--method", "gazetteer", "--executor", "ray", "--ray-address", address]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot reach the Ray cluster at {address}")
    assert len(err.strip().splitlines()) == 1
    assert _no_runs(store)


def test_an_unreachable_tracking_server_fails_before_any_task(workdir, free_port, monkeypatch, capsys):
    uri = f"http://127.0.0.1:{free_port()}"
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
    import benchmark.run.seed as runner

    fit_predict = runner.fit_predict

    def patched(method, protocol, training, test, run_seed, *args, **kwargs):
        if run_seed == seed:
            raise error
        return fit_predict(method, protocol, training, test, run_seed, *args, **kwargs)

    monkeypatch.setattr(runner, "fit_predict", patched)


ARGV = ["run", "--method", "gazetteer", "--protocol", "ner", "--seeds", "1", "2", "3", "--bootstrap", "0", "--quiet"]


def test_a_failing_seed_is_failed_and_the_others_go_on(workdir, store, monkeypatch):
    _failing_on(1, ValueError("broken"), monkeypatch)
    with pytest.raises(ValueError, match="broken"):  # one method: `run` reports the seed's error
        main(ARGV)
    assert _statuses(store) == {"1": "FAILED", "2": "FINISHED", "3": "FINISHED", "parent": "FAILED"}


def test_ctrl_c_kills_the_running_seed_and_the_parent(workdir, store, monkeypatch, capsys):
    _failing_on(2, KeyboardInterrupt(), monkeypatch)
    assert main(ARGV) == 130
    assert _statuses(store) == {"1": "FINISHED", "2": "KILLED", "parent": "KILLED"}  # seed 3 never began: no run


def test_a_seed_run_lasts_as_long_as_its_task_not_its_wait_in_the_queue(workdir, store):
    assert main(ARGV) == 0
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("embedded/ner")
    seeds = sorted(
        client.search_runs([experiment.experiment_id], "tags.role = 'seed'"), key=lambda r: r.data.tags["seed"]
    )
    assert [r.info.run_name for r in seeds] == [f"gazetteer:protocol=ner,seed={k}" for k in (1, 2, 3)]
    for earlier, later in itertools.pairwise(seeds):  # one after another: each began when the last ended
        assert later.info.start_time >= earlier.info.end_time


def test_a_worker_whose_code_differs_from_the_drivers_refuses_its_task(workdir, store, monkeypatch, capsys):
    """The run key is made on the driver; a worker with another checkout must not fill the run."""
    import benchmark.run.driver as driver
    import benchmark.run.seed as seed

    prepare = driver.prepare

    def then_the_code_changes(*args):
        prepared = prepare(*args)
        monkeypatch.setattr(seed, "row_fingerprint", lambda plan: "another checkout")
        return prepared

    monkeypatch.setattr(driver, "prepare", then_the_code_changes)
    assert main(["run", "--method", "gazetteer", "--protocol", "ner", "--bootstrap", "0", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "this worker's code (sha256) differ from the driver's" in err
    assert _statuses(store) == {"1": "FAILED", "parent": "FAILED"}


def _task(regime: str):
    from benchmark.run.plan import plan_run

    settings = ("mode=finetune",) if regime == "finetuned" else ()
    plan = plan_run(RunRequest("tagger", "ner", settings=settings))
    return SeedTask(plan, None, "http://head:5000", "embedded/ner", "parent", {}, {})  # type: ignore[arg-type]


def test_ray_tasks_reserve_what_they_use_and_get_the_drivers_cache_and_credentials():
    from benchmark.run.executors import task_options

    environ = {"MLFLOW_TRACKING_TOKEN": "t", "BENCHMARK_CACHE_DIR": "/shared/cache", "HOME": "/root"}
    tuned = task_options(_task("finetuned"), 2, True, environ)
    assert (tuned["num_cpus"], tuned["num_gpus"], tuned["max_retries"]) == (2, 1, 0)
    assert tuned["runtime_env"]["env_vars"] == {"BENCHMARK_CACHE_DIR": "/shared/cache", "MLFLOW_TRACKING_TOKEN": "t"}
    frozen = task_options(_task("frozen"), 1, True, environ)  # Ray would leave it every GPU of its node
    assert frozen["num_gpus"] == 0
    assert frozen["runtime_env"]["env_vars"]["CUDA_VISIBLE_DEVICES"] == ""
    assert task_options(_task("finetuned"), 1, False, {}) == {"num_cpus": 1, "num_gpus": 0, "max_retries": 0}


def test_the_ray_executor_warns_about_a_cluster_that_cannot_serve_the_tasks(capsys):
    from benchmark.run.executors import _warn_about_cluster

    nodes = [{"Alive": True, "Resources": {"CPU": 2.0}}, {"Alive": True, "Resources": {"CPU": 4.0}}]
    tasks = [_task("finetuned"), _task("frozen")]
    _warn_about_cluster(tasks, nodes, 8, cluster_gpus=False)
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "warning: the cluster has no GPU: 1 fine-tuned task(s) train on CPU (hours each)",
        "warning: no node has 8 CPUs (--cpus-per-task; the largest has 4): the tasks wait until such a node joins",
    ]
    _warn_about_cluster(tasks, nodes, 4, cluster_gpus=True)
    assert capsys.readouterr().err == ""


def test_the_driver_and_the_local_executor_never_import_ray():
    import subprocess

    code = (
        "import sys, benchmark.cli, benchmark.run.driver, benchmark.run.sweep, benchmark.run.executors as e; "
        "e.make_executor('local'); "
        "sys.exit('ray' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
