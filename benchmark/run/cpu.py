"""Whether a run had the machine to itself: the machine's busy CPU time beside the process's.

A timing is only comparable when nothing else ran meanwhile. `measure` reads the machine's busy
CPU seconds (all its CPUs, every process) and this process's own (its threads and children)
before and after a block; what the machine spent beyond the process, per second of the block, is
`CpuUse.other_cores`: how many cores other processes kept busy on average. Reports show a run's
seconds only when that is at most `SHARED_ABOVE` cores. On a shared host every other tenant
counts (so does a tracking server or another Ray task on the same node).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psutil

#: the cores other processes may keep busy, on average, before a timing counts as shared (an idle
#: machine's own daemons stay well under it: 0.01 here)
SHARED_ABOVE = 0.1


@dataclass
class CpuUse:
    """CPU seconds over one block: wall clock, this process's, the whole machine's, and its cores."""

    wall: float = 0.0
    process: float = 0.0
    machine: float = 0.0
    cores: int = 1

    @property
    def other_share(self) -> float:
        """The share of the machine's capacity (wall × cores) other processes used."""
        return self.other_cores / self.cores

    @property
    def other_cores(self) -> float:
        """The cores other processes kept busy, on average over the block."""
        return max(self.machine - self.process, 0.0) / self.wall if self.wall > 0 else 0.0

    def metrics(self) -> dict[str, float]:
        """As run metrics (``time/*``)."""
        return {
            "time/process_cpu_seconds": self.process,
            "time/machine_cpu_seconds": self.machine,
            "time/cpu_count": float(self.cores),
            "time/other_cpu_share": self.other_share,
        }  # other cores = share × cpu_count (`other_cores`)


def _machine_busy() -> float:
    times = psutil.cpu_times()  # Linux counts guest time in user time already
    guests = getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
    return sum(times) - times.idle - getattr(times, "iowait", 0.0) - guests


def _process_busy(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system + times.children_user + times.children_system


@contextmanager
def measure() -> Iterator[CpuUse]:
    """Measure the block's CPU use; the `CpuUse` yielded is filled in when the block ends."""
    process, use = psutil.Process(), CpuUse(cores=psutil.cpu_count() or 1)
    wall, own, machine = time.perf_counter(), _process_busy(process), _machine_busy()
    try:
        yield use
    finally:
        use.wall = time.perf_counter() - wall
        use.process = _process_busy(process) - own
        use.machine = _machine_busy() - machine


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the block (or the function it decorates): for a
    report or an import, which hold millions of span tuples. Each of the collector's passes walks
    every live object; they cost more (a fifth of a report's CPU time) than the few reference
    cycles they could free (reference counting frees everything else)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
