"""Executors: who runs the seed tasks of a comparison. ``local`` (default) runs them one after
another in this process; ``ray`` hands them to a Ray cluster. Both run the same `run_seed`, so a
task's metrics do not depend on the executor. The runner builds the tasks and never imports Ray."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from benchmark.errors import BenchmarkError
from benchmark.runner import SeedResult, SeedTask, run_seed

#: a task's outcome: its result, or the error it raised
Outcome = SeedResult | BaseException


class Executor(Protocol):
    def run(self, tasks: Sequence[SeedTask], echo: Callable[[str], None]) -> list[Outcome]:
        """Run every task; one outcome per task, in order. Ctrl-C marks the tasks not finished
        KILLED and propagates."""


class LocalExecutor:
    """The tasks one after another in this process; a failing task does not stop the others."""

    def run(self, tasks: Sequence[SeedTask], echo: Callable[[str], None]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for k, task in enumerate(tasks):
            echo(f"== task {k + 1}/{len(tasks)}: {task.run_config.name}")
            try:
                outcomes.append(run_seed(task, echo))
            except (KeyboardInterrupt, SystemExit):
                _kill_scheduled(tasks[k:])
                raise
            except Exception as error:  # the task's run is FAILED (even if it failed before starting); the others go on
                _end_unfinished(task, "FAILED")
                outcomes.append(error)
        return outcomes


def _kill_scheduled(tasks: Sequence[SeedTask]) -> None:
    """Mark the runs of tasks that did not end KILLED."""
    for task in tasks:
        _end_unfinished(task, "KILLED")


def _end_unfinished(task: SeedTask, status: str) -> None:
    """Set the task's run to ``status`` unless it already ended (a worker that died mid-task left
    it RUNNING)."""
    from benchmark.tracking import Tracker

    Tracker(task.experiment, task.tracking_uri).end_unfinished(task.run_id, status)


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


class RayExecutor:
    """The tasks on a Ray cluster (``address``: a running cluster; None: Ray's own choice —
    ``RAY_ADDRESS``, the cluster `ray start` began on this machine, or a new local one), each
    declaring its CPU threads and, for a fine-tuned regime on a cluster with GPUs, one GPU.
    Prints tasks done / running / failed with an ETA while they run. Ctrl-C cancels the
    outstanding tasks and marks their runs KILLED; a task that fails, or whose worker dies, has
    its run marked FAILED (never FINISHED), so the next invocation runs it again."""

    def __init__(self, address: str | None = None, cpus_per_task: int = 1) -> None:
        try:
            import ray
        except ImportError as error:
            raise BenchmarkError("--executor ray needs Ray: pip install -e '.[ray]'") from error
        self.ray, self.address, self.cpus = ray, address, cpus_per_task
        if not ray.is_initialized():
            if address is not None:
                _check_listening(address)
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
            except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as error:
                raise BenchmarkError(
                    f"cannot reach the Ray cluster at {address}: {error} (a cluster with token authentication "
                    "needs RAY_AUTH_MODE=token and its token here too)"
                ) from None

    def run(self, tasks: Sequence[SeedTask], echo: Callable[[str], None]) -> list[Outcome]:
        from benchmark.tracking import local_store

        ray = self.ray
        nodes = sum(node["Alive"] for node in ray.nodes())
        stores = sorted({task.tracking_uri for task in tasks if local_store(task.tracking_uri)})
        if nodes > 1 and stores:  # a warning, not progress: shown even under --quiet
            print(
                f"warning: the tracking store {stores[0]} is a file on this machine; Ray workers on the "
                f"other {nodes - 1} node(s) cannot write it (use a tracking server: MLFLOW_TRACKING_URI=http://...)",
                file=sys.stderr,
            )
        gpus = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
        remote = ray.remote(_run_remote)
        refs = [
            remote.options(
                num_cpus=self.cpus, num_gpus=gpus if task.regime == "finetuned" else 0, max_retries=0
            ).remote(task, self.cpus)
            for task in tasks
        ]
        index = {ref: k for k, ref in enumerate(refs)}
        outcomes: list[Outcome | None] = [None] * len(tasks)
        pending, started, failed = list(refs), time.perf_counter(), 0
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=30)
                for ref in done:
                    try:
                        outcomes[index[ref]] = ray.get(ref)
                    except ray.exceptions.RayTaskError as error:  # the task raised: its run is FAILED
                        outcomes[index[ref]] = error.cause or error
                        _end_unfinished(tasks[index[ref]], "FAILED")  # also when it failed before starting
                        failed += 1
                    except ray.exceptions.RayError as error:  # its worker or node died mid-task
                        task = tasks[index[ref]]
                        _end_unfinished(task, "FAILED")
                        outcomes[index[ref]] = BenchmarkError(
                            f"{task.run_config.name}: its Ray worker died ({type(error).__name__}); the run "
                            f"{task.run_id} is FAILED and the next invocation runs it again"
                        )
                        failed += 1
                finished = len(tasks) - len(pending)
                elapsed = time.perf_counter() - started
                eta = elapsed / finished * len(pending) if finished else float("nan")
                running = min(len(pending), int(ray.cluster_resources().get("CPU", 1) // self.cpus))
                echo(
                    f"tasks: {finished - failed} done, {failed} failed, {running} running, "
                    f"{len(pending) - running} waiting; {elapsed:.0f} s elapsed, about {eta:.0f} s to go"
                )
        except (KeyboardInterrupt, SystemExit):
            for ref in pending:
                ray.cancel(ref, force=True)
            _kill_scheduled([tasks[index[ref]] for ref in pending])
            raise
        return outcomes  # type: ignore[return-value]  # every slot is filled once the loop ends


def _run_remote(task: SeedTask, threads: int) -> SeedResult:
    """A task on a Ray worker: ``threads`` torch threads, progress lines silenced."""
    import torch

    from benchmark.progress import set_quiet

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
