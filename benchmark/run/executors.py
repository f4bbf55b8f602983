"""Executors: who runs the seed tasks of a `run` or `sweep`. ``local`` (default) runs them one
after another in this process; ``ray`` hands them to a Ray cluster. Both run the same `run_seed`
on the task the driver planned, so a task's metrics do not depend on the executor. Only this
module imports Ray."""

from __future__ import annotations

import os
import re
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from benchmark.core.errors import BenchmarkError
from benchmark.run.seed import SeedResult, SeedTask, run_seed
from benchmark.run.tracking import Tracker, local_store
from benchmark.ui.progress import is_quiet

#: a task's outcome: its result, or the error it raised
Outcome = SeedResult | BaseException

#: the driver's environment a worker needs as well: the cache folder and the tracking server's
#: credentials and TLS settings (the tracking URI itself travels with each task)
FORWARDED_ENV = (
    "BENCHMARK_CACHE_DIR",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_INSECURE_TLS",
    "MLFLOW_TRACKING_SERVER_CERT_PATH",
    "MLFLOW_TRACKING_CLIENT_CERT_PATH",
)


class Executor(Protocol):
    def run(self, tasks: Sequence[SeedTask], echo: Callable[[str], None]) -> list[Outcome]:
        """Run every task; one outcome per task, in order. Ctrl-C ends the runs in progress
        KILLED and propagates (tasks not started have no run)."""


class LocalExecutor:
    """The tasks one after another in this process; a failing task does not stop the others (its
    run ends FAILED, Ctrl-C ends it KILLED: `Tracker.run` sees to both)."""

    def run(self, tasks: Sequence[SeedTask], echo: Callable[[str], None]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for k, task in enumerate(tasks):
            echo(f"== task {k + 1}/{len(tasks)}: {task.run_config.name}")
            try:
                outcomes.append(run_seed(task, echo))
            except Exception as error:  # the others go on
                outcomes.append(error)
        return outcomes


def _end_task(task: SeedTask, status: str) -> None:
    """Set the task's run to ``status`` if it started and has none (its worker died, or was
    cancelled, leaving it RUNNING)."""
    Tracker(task.experiment, task.tracking_uri).end_task(task.parent_id, task.run_config.key, status)


def _check_listening(address: str) -> None:
    """Fail in seconds when nothing listens at a ``host:port`` (or ``ray://host:port``) Ray
    address; Ray itself would retry for minutes. ``auto`` and ``local`` are Ray's to resolve."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as error:
        raise BenchmarkError(f"cannot reach the Ray cluster at {address}: {error}") from None


def _check_token(ray: object, address: str) -> None:
    """Fail in seconds when the cluster refuses this client's token (Ray's own connection would
    retry for 20 s, printing a warning each second). Ray's one warning line is silenced."""
    from ray._raylet import GcsClient

    saved = os.dup(2)  # the warning comes from Ray's C++ logger, straight to file descriptor 2
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            GcsClient(address=address.removeprefix("ray://"))
    except ray.exceptions.AuthenticationError:  # type: ignore[attr-defined]
        raise BenchmarkError(
            f"the Ray cluster at {address} refuses this client's token: set RAY_AUTH_MODE=token and the "
            "cluster's token (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token) here too"
        ) from None
    except Exception:  # anything else: ray.init reports it
        return
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class RayExecutor:
    """The tasks on a Ray cluster (``address``: a running cluster; None: Ray's own choice —
    ``RAY_ADDRESS``, the cluster `ray start` began on this machine, or a new local one), each
    declaring its CPU threads and, for a fine-tuned regime on a cluster with GPUs, one GPU
    (`task_options`); fine-tuned tasks, the long ones, go first. Prints tasks done / running /
    failed with an ETA while they run. Ctrl-C cancels the outstanding tasks and marks their runs
    KILLED; a task that fails, or whose worker dies, has its run marked FAILED (never FINISHED),
    so the next invocation runs it again."""

    def __init__(self, address: str | None = None, cpus_per_task: int = 1) -> None:
        try:
            import ray
        except ImportError as error:
            raise BenchmarkError("--executor ray needs Ray: pip install -e '.[ray]'") from error
        self.ray, self.address, self.cpus = ray, address, cpus_per_task
        if not ray.is_initialized():
            if address is not None:
                _check_listening(address)
                _check_token(ray, address)
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
                _ray_errors_to_stderr()
            except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as error:
                raise BenchmarkError(
                    f"cannot reach the Ray cluster at {address}: {error} (a cluster with token authentication "
                    "needs RAY_AUTH_MODE=token and its token here too)"
                ) from None

    def run(self, tasks: Sequence[SeedTask], echo: Callable[[str], None]) -> list[Outcome]:
        ray = self.ray
        cluster_gpus = ray.cluster_resources().get("GPU", 0) > 0
        _warn_about_cluster(tasks, ray.nodes(), self.cpus, cluster_gpus)
        remote = ray.remote(_run_remote)
        order = submission_order([task.regime for task in tasks])
        refs = [
            remote.options(**task_options(tasks[k], self.cpus, cluster_gpus, os.environ)).remote(tasks[k], self.cpus)
            for k in order
        ]
        index = dict(zip(refs, order, strict=True))
        outcomes: list[Outcome | None] = [None] * len(tasks)
        pending, started, failed = list(refs), time.perf_counter(), 0
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=30)
                for ref in done:
                    outcomes[index[ref]] = outcome = self._outcome(ref, tasks[index[ref]])
                    failed += isinstance(outcome, BaseException)
                slots = max(1, int(ray.cluster_resources().get("CPU", 1) // self.cpus))
                echo(_progress(outcomes, len(pending), failed, slots, time.perf_counter() - started))
        except (KeyboardInterrupt, SystemExit):
            for ref in pending:
                ray.cancel(ref, force=True)
            for ref in pending:
                _end_task(tasks[index[ref]], "KILLED")
            raise
        return outcomes  # type: ignore[return-value]  # every slot is filled once the loop ends

    def _outcome(self, ref: object, task: SeedTask) -> Outcome:
        """A finished task's result, or its error: the one it raised (its run ended FAILED), or
        a dead worker's (its run, left RUNNING, is marked FAILED here)."""
        ray = self.ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as error:
            return error.cause or error
        except ray.exceptions.RayError as error:  # its worker or node died mid-task
            _end_task(task, "FAILED")
            return BenchmarkError(
                f"{task.run_config.name}: its Ray worker died ({type(error).__name__}); its run is FAILED and "
                "the next invocation runs it again"
            )


def _progress(outcomes: Sequence[Outcome | None], pending: int, failed: int, slots: int, elapsed: float) -> str:
    """Tasks done, failed, running and waiting, and the time to go: the mean task's wall time
    times the tasks left, over the tasks that run at once."""
    walls = [o.wall for o in outcomes if isinstance(o, SeedResult)]
    running = min(pending, slots)
    eta = f"about {statistics.fmean(walls) * pending / slots:.0f} s to go" if walls else "time to go not known yet"
    done = sum(o is not None for o in outcomes) - failed
    waiting = pending - running
    return f"tasks: {done} done, {failed} failed, {running} running, {waiting} waiting; {elapsed:.0f} s elapsed, {eta}"


def _ray_errors_to_stderr() -> None:
    """Ray prints the errors its cluster reports (a worker that died, say) to the driver's stdout,
    coloured, ahead of our results table. Our own error line names the task and its run; Ray's
    text goes to stderr, plain, and not at all under ``--quiet``."""
    worker = sys.modules.get("ray._private.worker")
    original = getattr(worker, "print_to_stdstream", None)
    if original is None or getattr(original, "replaced_by_benchmark", False):
        return

    def to_stderr(data: dict, ignore_prefix: bool) -> None:
        if data.get("pid") != "raylet":
            return original(data, ignore_prefix)
        if not is_quiet():
            for line in data.get("lines", []):
                print(f"ray: {ANSI.sub('', line)}", file=sys.stderr)

    to_stderr.replaced_by_benchmark = True  # type: ignore[attr-defined]
    worker.print_to_stdstream = to_stderr


#: terminal colour codes
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def submission_order(regimes: Sequence[str]) -> list[int]:
    """The order the Ray executor submits tasks in: fine-tuned ones (the long ones) first, the
    runner's order otherwise, so no long task starts last (scripts/cluster_sizing.py simulates it)."""
    return sorted(range(len(regimes)), key=lambda k: regimes[k] != "finetuned")


def task_options(task: SeedTask, cpus: int, cluster_gpus: bool, environ: Mapping[str, str]) -> dict:
    """Ray options of one task: ``cpus`` CPUs; one GPU for a fine-tuned regime when the cluster
    has GPUs, and otherwise none visible (Ray leaves a task that asked for no GPU every GPU of its
    node, and torch would take one); the driver's `FORWARDED_ENV`. Never retried: a rerun of the
    command redoes what failed."""
    gpu = cluster_gpus and task.regime == "finetuned"
    env = {name: environ[name] for name in FORWARDED_ENV if name in environ}
    if cluster_gpus and not gpu:
        env["CUDA_VISIBLE_DEVICES"] = ""
    options: dict = {"num_cpus": cpus, "num_gpus": int(gpu), "max_retries": 0}
    if env:
        options["runtime_env"] = {"env_vars": env}
    return options


def _warn_about_cluster(tasks: Sequence[SeedTask], nodes: list[dict], cpus: int, cluster_gpus: bool) -> None:
    """Warnings, not progress (shown even under --quiet): a tracking store no other node can
    write, fine-tuned tasks without a GPU, tasks no node can hold yet."""
    alive = [node for node in nodes if node["Alive"]]
    warnings = []
    stores = sorted({task.tracking_uri for task in tasks if local_store(task.tracking_uri)})
    if len(alive) > 1 and stores:
        warnings.append(
            f"the tracking store {stores[0]} is a file on this machine; Ray workers on the other "
            f"{len(alive) - 1} node(s) cannot write it (use a tracking server: MLFLOW_TRACKING_URI=http://...)"
        )
    finetuned = sum(task.regime == "finetuned" for task in tasks)
    if finetuned and not cluster_gpus:
        warnings.append(f"the cluster has no GPU: {finetuned} fine-tuned task(s) train on CPU (hours each)")
    largest = max((node["Resources"].get("CPU", 0) for node in alive), default=0)
    if tasks and largest < cpus:
        warnings.append(
            f"no node has {cpus} CPUs (--cpus-per-task; the largest has {largest:g}): the tasks wait until "
            "such a node joins"
        )
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)


def _run_remote(task: SeedTask, threads: int) -> SeedResult:
    """A task on a Ray worker: ``threads`` torch threads, progress lines silenced."""
    import torch

    from benchmark.ui.progress import set_quiet

    torch.set_num_threads(threads)
    set_quiet(True)
    return run_seed(task, lambda _: None)


def make_executor(name: str, address: str | None = None, cpus_per_task: int = 1) -> Executor:
    """The executor ``--executor`` names."""
    if cpus_per_task < 1:
        raise BenchmarkError(f"--cpus-per-task must be at least 1, not {cpus_per_task}")
    if name == "local":
        if address is not None or cpus_per_task != 1:
            raise BenchmarkError("--ray-address and --cpus-per-task need --executor ray")
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(address, cpus_per_task)
    raise BenchmarkError(f"unknown executor {name!r}; choose local or ray")
