"""Progress of long stages, on stderr: tqdm bars on a terminal; elsewhere (CI, log files,
``nohup``) one plain line per stage or epoch with its elapsed time, never carriage returns.

Every method reports through this module: `bar` wraps a loop (encoding, LIME explanations),
`stage` a step without a loop (k-means, re-ranking, a projection fit, prediction: one line when it
ends, on a terminal too), and `Curve` a training stage, one
point per epoch, which also sends the point to the run's log (MLflow, with ``step=epoch``).
`set_quiet` (the CLI's ``--quiet``) silences all of it; errors are printed elsewhere.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
#: where curve points go: ``log(metrics, step)``
MetricLog = Callable[[Mapping[str, float], int], None]

_quiet = False
#: seconds between progress lines of a long loop off a terminal
HEARTBEAT = 60.0


def set_quiet(quiet: bool) -> None:
    """Silence (or restore) every bar and progress line of this process."""
    global _quiet
    _quiet = quiet


def is_quiet() -> bool:
    return _quiet


def _terminal() -> bool:
    """Whether stderr is a terminal wide enough to draw a bar on (a pseudo-terminal may report 0 columns)."""
    try:
        return sys.stderr.isatty() and os.get_terminal_size(sys.stderr.fileno()).columns > 0
    except (OSError, ValueError):
        return False


def _line(text: str) -> None:
    if not _quiet:
        print(text, file=sys.stderr, flush=True)


def _rate(count: int, unit: str, seconds: float) -> str:
    """``12 steps in 3.0 s (4.0 step/s)``: the count in the plural, the rate as tqdm writes it."""
    units = unit if count == 1 else unit[:-1] + "ies" if unit.endswith("y") else unit + "s"
    return f"{count} {units} in {seconds:.1f} s ({count / max(seconds, 1e-9):.1f} {unit}/s)"


class Bar:
    """A progress bar updated by hand (count, rate, ETA): tqdm on a terminal; off one, a line
    every `HEARTBEAT` seconds while it runs and one when it is closed. `bar` wraps a loop in one."""

    def __init__(self, desc: str, total: int | None = None, unit: str = "it") -> None:
        self.desc, self.total, self.unit = desc, total, unit
        self.started = self.last = time.perf_counter()
        self.count = 0
        self._tqdm = None
        if not _quiet and _terminal():
            from tqdm.auto import tqdm

            self._tqdm = tqdm(desc=desc, total=total, unit=unit, dynamic_ncols=True, file=sys.stderr)

    def update(self, step: int = 1) -> None:
        self.count += step
        if self._tqdm is not None:
            self._tqdm.update(step)
        elif time.perf_counter() - self.last >= HEARTBEAT:
            self.last = time.perf_counter()
            _line(f"{self.desc}: {_so_far(self.count, self.total, self.unit, self.last - self.started)}")

    def close(self, stopped: bool = False) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None
            return
        done = _rate(self.count, self.unit, time.perf_counter() - self.started)
        _line(f"{self.desc}: {'stopped after ' if stopped else ''}{done}")

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, kind, error, trace) -> None:
        self.close(stopped=kind is not None)


def bar(
    iterable: Iterable[T], desc: str, total: int | None = None, unit: str = "it", size: Callable[[T], int] | None = None
) -> Iterator[T]:
    """``iterable`` with a `Bar`. ``size(item)`` counts an item (a batch, say) as that many
    ``unit``s. A loop left early says so off a terminal."""
    if _quiet:
        yield from iterable
        return
    progress = Bar(desc, total, unit)
    try:
        for item in iterable:
            yield item
            progress.update(1 if size is None else size(item))
    except GeneratorExit:  # the loop was left early
        progress.close(stopped=True)
        raise
    progress.close()


def _so_far(count: int, total: int | None, unit: str, seconds: float) -> str:
    rate = count / max(seconds, 1e-9)
    if total is None:
        return f"{count} {unit} so far ({rate:.1f} {unit}/s)"
    eta = (total - count) / rate if rate > 0 else float("inf")
    return f"{count}/{total} {unit} ({rate:.1f} {unit}/s, about {eta:.0f} s to go)"


@contextmanager
def stage(desc: str) -> Iterator[None]:
    """A step without a loop: one line with its elapsed time when it ends."""
    started = time.perf_counter()
    yield
    _line(f"{desc}: {time.perf_counter() - started:.1f} s")


class Curve:
    """The learning curve of one training stage. Each `point` (one epoch) goes to ``log`` as
    ``<prefix>train/loss`` and ``<prefix>dev/<headline>`` with ``step`` = the epoch (from 1),
    and to the screen: a bar over epochs with loss and dev score in its postfix on a terminal, a
    line per epoch elsewhere. `close` logs ``<prefix>best_epoch``. The prefix is ``<stage>/``,
    or empty for the stage whose model makes the predictions, so that curves of every method
    overlay under the same names in MLflow's chart view."""

    def __init__(
        self, stage: str, epochs: int, headline: str, log: MetricLog, final: bool = True, unit: str = "epoch"
    ) -> None:
        self.stage, self.epochs, self.headline, self.log, self.unit = stage, epochs, headline, log, unit
        self.prefix = "" if final else f"{stage}/"
        self.started = self.last = time.perf_counter()
        self.done = 0
        self._bar = None
        if not _quiet and _terminal():
            from tqdm.auto import tqdm

            self._bar = tqdm(total=epochs, desc=f"{stage} {unit}s", unit=unit, dynamic_ncols=True, file=sys.stderr)

    def point(self, loss: float | None, dev: float | None) -> None:
        """One finished epoch: its mean training loss and its dev score (either may be None)."""
        self.done += 1
        values = {"train/loss": loss, f"dev/{self.headline}": dev}
        self.log({f"{self.prefix}{k}": float(v) for k, v in values.items() if v is not None}, self.done)
        shown = {"loss": loss, self.headline: dev}
        text = ", ".join(f"{k} {v:.4f}" for k, v in shown.items() if v is not None)
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)
            self._bar.update()
        else:
            now = time.perf_counter()
            _line(f"{self.stage} {self.unit} {self.done}/{self.epochs}: {text} ({now - self.last:.1f} s)")
            self.last = now

    def close(self, best_epoch: int | None = None) -> None:
        """End the stage; ``best_epoch`` (from 1) is the epoch whose weights were kept (None or
        0: none was, e.g. zero epochs)."""
        if best_epoch:
            self.log({f"{self.prefix}best_epoch": float(best_epoch)}, 0)
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        kept = f", kept {self.unit} {best_epoch}" if best_epoch else ""
        if not _terminal():
            _line(f"{self.stage}: {self.done} {self.unit}s in {time.perf_counter() - self.started:.1f} s{kept}")


def ignore(metrics: Mapping[str, float], step: int) -> None:
    """A `MetricLog` that drops everything (a method fitted outside a tracked run)."""
