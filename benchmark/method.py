"""The `Method` contract: a frozen ``Config`` of hyper-parameters, ``fit`` and ``predict``.

Like a scikit-learn estimator: ``__init__`` only stores the config, ``fit`` returns ``self``
and sets attributes ending in ``_``, ``predict`` before ``fit`` raises `NotFittedError`.
A method never scores itself: it returns `Span`s and the harness evaluates them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

from benchmark.cache import FeatureCache
from benchmark.errors import NotFittedError
from benchmark.protocols import View
from benchmark.spans import Span


@dataclass(frozen=True)
class Context:
    """What a method gets besides data: no tracker and no test gold.

    ``workdir`` is scratch space removed after the run; files a method writes to
    ``artifact_dir`` are logged with its run; ``features`` is the shared word-feature cache;
    numbers put in ``metrics`` (stage times, counts) are logged as ``method/<key>``.
    """

    seed: int
    workdir: Path
    artifact_dir: Path
    features: FeatureCache
    metrics: dict[str, float] = field(default_factory=dict)


class Method(ABC):
    """Base class of every registered method."""

    #: protocols the method supports; the harness refuses the others before loading data
    protocols: ClassVar[frozenset[str]]
    #: the protocol used when ``--protocol`` is not given (None: the first supported one)
    default_protocol: ClassVar[str | None] = None
    #: frozen dataclass of hyper-parameters whose defaults are the paper's
    Config: ClassVar[type]
    #: named setting presets (improvements, ablations) that `run --method all` runs besides
    #: the defaults; chosen alone with ``--variant NAME``
    variants: ClassVar[dict[str, dict[str, Any]]] = {}

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
    def describe(cls) -> str:
        """The first line of the class docstring."""
        return (cls.__doc__ or cls.__name__).strip().splitlines()[0]


def check_is_fitted(method: Method, attribute: str) -> None:
    """Raise `NotFittedError` unless ``fit`` has set ``attribute``."""
    if getattr(method, attribute, None) is None:
        raise NotFittedError(f"{type(method).__name__}.predict was called before fit")
