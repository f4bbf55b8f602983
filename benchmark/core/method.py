"""The `Method` contract: a frozen ``Config`` of hyper-parameters, ``fit`` and ``predict``.

Like a scikit-learn estimator: ``__init__`` only stores the config, ``fit`` returns ``self``
and sets attributes ending in ``_``, ``predict`` before ``fit`` raises `NotFittedError`.
A method never scores itself: it returns `Span`s and the harness evaluates them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

from benchmark.core.cache import FeatureCache
from benchmark.core.errors import NotFittedError
from benchmark.core.protocols import View
from benchmark.core.spans import Span
from benchmark.ui.progress import Curve, MetricLog, ignore

#: how a set of settings was chosen (DESIGN §7): ``paper`` — the paper's stated setting or our
#: documented reading of it; ``prior`` — fixed before any result was seen; ``dev`` — picked by a
#: recorded ``benchmark sweep`` on dev with only the labels the protocol allows; ``oracle`` — picked
#: with information the protocol forbids (fine labels under weak-typing, anything from test).
Provenance = Literal["paper", "prior", "dev", "oracle"]
PROVENANCES: tuple[str, ...] = ("paper", "prior", "dev", "oracle")
#: a run with ad-hoc ``--set``/``--config`` overrides: chosen by hand, by nobody knows what
CUSTOM = "custom"
#: the provenances whose rows reports rank; the others are shown, marked and unranked
RANKED: frozenset[str] = frozenset({"paper", "prior", "dev"})
#: the encoder regime of a run: ``frozen`` — the encoder's weights never change (cached features,
#: or no encoder at all); ``finetuned`` — they train with the method. Reports rank each apart.
Regime = Literal["frozen", "finetuned"]
REGIMES: tuple[str, ...] = ("frozen", "finetuned")
#: how reports mark the unranked rows
MARKS = {"oracle": "†", CUSTOM: "‡"}
MARKS_SENTENCE = (
    "Rows marked † (oracle: settings chosen with information the protocol forbids, e.g. test or fine labels) "
    "or ‡ (custom: ad-hoc --set settings) are listed below the ranked rows and never ranked."
)


@dataclass(frozen=True)
class Settings:
    """A named set of setting overrides (empty: the method's defaults) and how it was chosen.

    ``why`` says it in one line: the paper's section, the prior, the sweep (its command is in the
    method's card) or the forbidden information that was used. ``chosen`` names the settings the
    provenance is about (default: the overridden ones); a dev sweep over all of them re-derives
    an `oracle` set honestly.
    """

    provenance: Provenance
    why: str
    overrides: dict[str, Any] = field(default_factory=dict)
    chosen: tuple[str, ...] = ()

    @property
    def decided(self) -> frozenset[str]:
        """The settings whose choice the provenance describes."""
        return frozenset(self.chosen or self.overrides)

    def __post_init__(self) -> None:
        if self.provenance not in PROVENANCES:
            raise ValueError(f"provenance must be one of {', '.join(PROVENANCES)}, got {self.provenance!r}")


@dataclass(frozen=True)
class Context:
    """What a method gets besides data: no tracker and no test gold.

    ``workdir`` is scratch space removed after the run; files a method writes to
    ``artifact_dir`` are logged with its run; ``features`` is the shared word-feature cache;
    numbers put in ``metrics`` (stage times, counts) are logged as ``method/<key>``; ``log``
    receives learning-curve points as they happen (see `curve`).
    """

    seed: int
    workdir: Path
    artifact_dir: Path
    features: FeatureCache
    metrics: dict[str, float] = field(default_factory=dict)
    log: MetricLog = ignore

    def curve(self, stage: str, epochs: int, headline: str, final: bool = True, unit: str = "epoch") -> Curve:
        """The learning curve of a training stage of at most ``epochs`` points (epochs, or dev
        ``check``s of a fine-tuning run) whose dev score is ``headline`` (e.g. ``micro_f1``);
        ``final``: the stage whose model makes the predictions."""
        return Curve(stage, epochs, headline, self.log, final, unit)


class Method(ABC):
    """Base class of every registered method."""

    #: protocols the method supports; the harness refuses the others before loading data
    protocols: ClassVar[frozenset[str]]
    #: the protocol used when ``--protocol`` is not given (None: the first supported one)
    default_protocol: ClassVar[str | None] = None
    #: frozen dataclass of hyper-parameters whose defaults are the paper's
    Config: ClassVar[type]
    #: how the ``Config`` defaults were chosen (every method declares it)
    defaults: ClassVar[Settings]
    #: named setting presets (improvements, ablations) that `run --method all` runs besides
    #: the defaults, each with its provenance; chosen alone with ``--variant NAME``
    variants: ClassVar[dict[str, Settings]] = {}

    def __init__(self, config: Any = None) -> None:
        self.config = self.Config() if config is None else config

    @abstractmethod
    def fit(self, train: View, dev: View, ctx: Context) -> Self:
        """Learn from the training view (``dev`` is for model selection); return ``self``."""

    @abstractmethod
    def predict(self, view: View) -> list[Span]:
        """Spans for a test view, as its protocol requires."""

    @classmethod
    def check_config(cls, config: Any, protocol: str) -> None:
        """Refuse settings that cannot work under ``protocol`` (called before data is loaded)."""
        return None

    @classmethod
    def regime(cls, config: Any) -> Regime:
        """Whether ``config`` trains the encoder's weights (default: a ``mode`` setting of
        ``finetune`` does; a method without one never does)."""
        return "finetuned" if getattr(config, "mode", "frozen") == "finetune" else "frozen"

    @classmethod
    def describe(cls) -> str:
        """The first line of the class docstring."""
        return (cls.__doc__ or cls.__name__).strip().splitlines()[0]


def check_is_fitted(method: Method, attribute: str) -> None:
    """Raise `NotFittedError` unless ``fit`` has set ``attribute``."""
    if getattr(method, attribute, None) is None:
        raise NotFittedError(f"{type(method).__name__}.predict was called before fit")
