"""Plans: a request from the command line, checked completely before anything is loaded or logged.

A `RunPlan` is one row of a comparison (a method with its settings, under a protocol, on a
dataset) for some seeds, and what its predictions are scored on: the test split (`run`) or a dev
criterion (`sweep`). Plans are built once, on the driver; workers run the tasks made from them.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from benchmark.core.cache import FeatureCache
from benchmark.core.config import flat_settings, format_value, resolve_config
from benchmark.core.encoders import check_encoder, encoder_settings, file_sha256
from benchmark.core.episodes import SETTINGS, official_file
from benchmark.core.episodic import EpisodeProtocol
from benchmark.core.errors import BenchmarkError, ConfigError
from benchmark.core.method import CUSTOM, Method, Settings
from benchmark.core.protocols import Protocol
from benchmark.core.registry import METHODS, PROTOCOLS, get_protocol

#: the seeds numpy, torch and Python's random all accept
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class DataSource:
    """Where a plan's corpus comes from."""

    dataset: str = "embedded"
    data_dir: Path | None = None
    from_hub: bool = False
    verify: bool = True

    def options(self) -> list[str]:
        """The command-line options that name this source (none for the embedded default)."""
        words = ["--dataset", self.dataset] if self.dataset != "embedded" else []
        words += ["--data-dir", str(self.data_dir)] if self.data_dir else []
        words += ["--from-hub"] if self.from_hub else []
        return words + (["--no-verify"] if not self.verify else [])

    def resolved(self) -> DataSource:
        """The same source with its folder made absolute (a worker may start elsewhere)."""
        return replace(self, data_dir=self.data_dir and self.data_dir.resolve())


@dataclass(frozen=True)
class EpisodeSource:
    """The test episodes of an ``episodes`` run: ``count`` per setting drawn with Few-NERD's
    sampler and ``seed`` from the test split, or the official episode files in ``folder``
    (``test_<N>_<K>.jsonl``, Few-NERD's ``episode-data/<inter|intra>`` layout; ``digest``: their sha256)."""

    count: int = 1000
    seed: int = 0
    folder: Path | None = None
    digest: str = ""

    @property
    def name(self) -> str:
        """What the run key records of them."""
        if self.folder is not None:
            return f"episodes=files:{self.digest[:16]}"
        return f"episodes={self.count},sampler_seed={self.seed}"

    @classmethod
    def sampled(cls, name: str) -> EpisodeSource | None:
        """The sampled source a run's ``episodes/source`` tag names (None: official files, which
        only their folder gives back)."""
        match = re.fullmatch(r"episodes=(\d+),sampler_seed=(\d+)", name)
        return cls(int(match[1]), int(match[2])) if match else None


@dataclass(frozen=True)
class Scoring:
    """What a plan's seed runs predict and how they are scored: the ``test`` split by the
    evaluator (with ``resamples`` bootstrap resamples for CIs), or ``dev`` for a sweep, where
    ``blind`` scores weak-typing by coarse-blind typing (coarse labels only)."""

    split: Literal["test", "dev"] = "test"
    resamples: int = 1000
    blind: bool = False
    episodes: EpisodeSource | None = None  # the ``episodes`` protocol's test episodes

    @property
    def name(self) -> str:
        """What the run key records: ``test``, ``dev``, ``dev:blind_coarse`` or ``test:episodes=…``."""
        return (
            self.split + (":blind_coarse" if self.blind else "") + (f":{self.episodes.name}" if self.episodes else "")
        )

    @property
    def splits(self) -> tuple[str, ...]:
        """The splits a run reads: a sweep never reads test; episodes read dev (its episodes select
        a meta-trained model) and test (meta-training data is built apart: `run.episodes.meta_training`)."""
        if self.episodes is not None:
            return ("dev", "test")
        return ("train", "dev", "test") if self.split == "test" else ("train", "dev")


@dataclass(frozen=True)
class RunRequest:
    """What the user asked for on the command line."""

    method: str
    protocol: str | None = None
    variant: str | None = None
    source: DataSource = DataSource()
    seeds: tuple[int, ...] = (1,)
    config_file: Path | None = None
    settings: tuple[str, ...] = ()
    resamples: int = 1000
    episodes: EpisodeSource = EpisodeSource()
    cache_dir: Path | None = None
    force: bool = False


@dataclass(frozen=True)
class RunPlan:
    """A checked row: the method, protocol and resolved settings for its seeds, nothing loaded yet."""

    method: str
    variant: str | None
    protocol: Protocol
    config: Any
    provenance: str  # how the settings were chosen: the variant's (or defaults') or `custom`
    label: str  # method[:variant][ [key=value, ...]] — a row of the comparison tables
    command: str  # the command line that repeats it (without --seeds)
    source: DataSource
    seeds: tuple[int, ...]
    scoring: Scoring = Scoring()
    cache_dir: Path | None = None
    force: bool = False

    @property
    def method_cls(self) -> type[Method]:
        return METHODS.get(self.method)

    @property
    def regime(self) -> str:
        return self.method_cls.regime(self.config)


def resolve_method(name: str, protocol: str | None) -> tuple[type[Method], Protocol]:
    """The method class and the protocol to run it under (its first one by default)."""
    method_cls = METHODS.get(name)
    if protocol is None:
        protocol = method_cls.default_protocol or next(p for p in PROTOCOLS if p in method_cls.protocols)
    chosen = get_protocol(protocol)
    if chosen.name not in method_cls.protocols:
        raise BenchmarkError(
            f"method {name!r} does not support protocol {chosen.name!r}; "
            f"it supports: {', '.join(p for p in PROTOCOLS if p in method_cls.protocols)}"
        )
    return method_cls, chosen


def chosen_settings(method_cls: type[Method], variant: str | None, method: str) -> Settings:
    """The variant's settings (or the defaults') with their provenance; unknown names raise."""
    if variant is None:
        return method_cls.defaults
    if variant not in method_cls.variants:
        known = ", ".join(method_cls.variants) or "none"
        raise BenchmarkError(f"method {method!r} has no variant {variant!r}; its variants: {known}")
    return method_cls.variants[variant]


def preset(method_cls: type[Method], variant: str | None) -> tuple[str, dict[str, Any]] | None:
    """A variant's overrides as `resolve_config` takes them (None: the defaults)."""
    return None if variant is None else (variant, method_cls.variants[variant].overrides)


def check_seeds(seeds: Sequence[int]) -> tuple[int, ...]:
    """The seeds, refused when there are none or one is out of the range every RNG accepts."""
    if not seeds:
        raise BenchmarkError("--seeds needs at least one seed")
    for k, seed in enumerate(seeds):
        if seed in seeds[:k]:
            raise BenchmarkError(f"--seeds: {seed} is given twice")
        if not 0 <= seed <= MAX_SEED:
            raise BenchmarkError(f"--seeds: {seed} is not a seed; seeds run from 0 to 2**32 - 1")
    return tuple(seeds)


def check_encoders(config: Any, cache_dir: Path | None) -> None:
    """Refuse an encoder that cannot be loaded here (before any data is read)."""
    for name in dict.fromkeys(s.name for s in encoder_settings(config)):
        check_encoder(name, FeatureCache(cache_dir).root)


def overrides_of(config: Any, base: Any) -> dict[str, Any]:
    """The settings of ``config`` that differ from ``base``'s, nested ones by dotted name."""
    base_values = flat_settings(base)
    return {k: v for k, v in flat_settings(config).items() if v != base_values[k]}


def row_label(method: str, variant: str | None, overrides: dict[str, Any]) -> str:
    """A row's name: ``method[:variant]``, then its ad-hoc settings in brackets."""
    label = method + (f":{variant}" if variant else "")
    return label + (" [" + ", ".join(f"{k}={v}" for k, v in overrides.items()) + "]" if overrides else "")


def command_line(
    verb: str, method: str, protocol: str, variant: str | None, source: DataSource, options: Sequence[str] = ()
) -> str:
    """``python -m benchmark <verb> --method … --protocol …`` with the variant, the data source and
    ``options`` (one place builds every command the harness prints or records)."""
    words = ["python", "-m", "benchmark", verb, "--method", method, "--protocol", protocol]
    words += ["--variant", variant] if variant else []
    return shlex.join([*words, *source.options(), *options])


def set_options(overrides: dict[str, Any]) -> list[str]:
    return [word for key, value in overrides.items() for word in ("--set", f"{key}={format_value(value)}")]


def resolve_settings(
    method: str, variant: str | None, file: Path | None = None, assignments: Sequence[str] = ()
) -> tuple[Any, dict[str, Any], str]:
    """The config, its overrides of the variant (or defaults) and its provenance: the variant's,
    or `custom` when ``--set``/``--config`` changed anything; for a method whose class sets
    ``declares_provenance = True`` (one that predicts with what the user brings, as `checkpoint`),
    the ``provenance`` its settings declare."""
    method_cls = METHODS.get(method)
    chosen = chosen_settings(method_cls, variant, method)
    base = preset(method_cls, variant)
    config = resolve_config(method_cls.Config, file, list(assignments), base)
    overrides = overrides_of(config, resolve_config(method_cls.Config, preset=base))
    if getattr(method_cls, "declares_provenance", False):
        return config, overrides, config.provenance
    return config, overrides, CUSTOM if overrides else chosen.provenance


def episode_source(source: EpisodeSource, protocol: Protocol) -> EpisodeSource | None:
    """The episodes an ``episodes`` run is scored on (None for another protocol), checked: a
    folder of official files gets its digest, and a count or seed out of range one error."""
    if not isinstance(protocol, EpisodeProtocol):
        return None
    if source.count < 1:
        raise BenchmarkError(f"--episodes: {source.count} is not a number of episodes (1 or more)")
    if not 0 <= source.seed <= MAX_SEED:
        raise BenchmarkError(f"--episode-seed: {source.seed} is not a seed; seeds run from 0 to 2**32 - 1")
    if source.folder is None:
        return source
    files = [official_file(source.folder, s) for s in SETTINGS]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise BenchmarkError(f"--episode-dir: no official episode file {', '.join(missing)} (Few-NERD's "
                             "episode-data/<inter|intra>/test_<N>_<K>.jsonl)")  # fmt: skip
    digest = hashlib.sha256(b"".join(file_sha256(f).encode() for f in files)).hexdigest()
    return replace(source, folder=source.folder.resolve(), digest=digest)


def episode_options(source: EpisodeSource | None) -> list[str]:
    """The command-line options that name an episode source (none for the default)."""
    if source is None:
        return []
    if source.folder is not None:
        return ["--episode-dir", str(source.folder)]
    default = EpisodeSource()
    words = ["--episodes", str(source.count)] if source.count != default.count else []
    return words + (["--episode-seed", str(source.seed)] if source.seed != default.seed else [])


def plan_run(request: RunRequest) -> RunPlan:
    """Check a request completely (method, protocol, variant, settings, encoder, seeds)."""
    method_cls, protocol = resolve_method(request.method, request.protocol)
    config, overrides, provenance = resolve_settings(
        request.method, request.variant, request.config_file, request.settings
    )
    method_cls.check_config(config, protocol.name)
    check_encoders(config, request.cache_dir)
    episodes = episode_source(request.episodes, protocol)
    if getattr(method_cls, "one_model", False) and len(request.seeds) > 1:
        raise BenchmarkError(
            f"--seeds: {request.method} predicts with one given model, so its seeds would repeat the same "
            "predictions; run one seed, or score several independently trained models as the seeds of one row "
            "with `benchmark score`"
        )
    return RunPlan(
        method=request.method,
        variant=request.variant,
        protocol=protocol,
        config=config,
        provenance=provenance,
        label=row_label(request.method, request.variant, overrides),
        command=command_line(
            "run",
            request.method,
            protocol.name,
            request.variant,
            request.source,
            [*set_options(overrides), *episode_options(episodes)],
        ),
        source=request.source,
        seeds=check_seeds(request.seeds),
        scoring=Scoring("test", request.resamples, episodes=episodes),
        cache_dir=request.cache_dir,
        force=request.force,
    )


#: the dataset a comparison's episode rows read: Few-NERD's INTER split (dev and test ship)
EPISODES_DATASET = "inter"
#: a comparison's seeds per encoder regime (`run --method all` without --seeds): 5 seeds measure a
#: frozen row's spread; a fine-tuned seed costs tens of minutes on 2 cores (the reports' Seed runs), so 3
COMPARISON_SEEDS = {"frozen": (1, 2, 3, 4, 5), "finetuned": (1, 2, 3)}


def plan_comparison(
    methods: Sequence[str], protocol: str | None, template: RunRequest, seeds: Sequence[int] | None = None
) -> list[RunPlan]:
    """The checked rows of `comparison_requests`, each with ``seeds``, or by default its regime's
    `COMPARISON_SEEDS` (one seed where the method says its seed changes nothing: ``seeded``)."""
    plans = [plan_run(replace(r, seeds=tuple(seeds or (1,)))) for r in comparison_requests(methods, protocol, template)]
    return plans if seeds else [replace(plan, seeds=_comparison_seeds(plan)) for plan in plans]


def _comparison_seeds(plan: RunPlan) -> tuple[int, ...]:
    seeded = getattr(plan.method_cls, "seeded", None)
    return COMPARISON_SEEDS[plan.regime] if seeded is None or seeded(plan.config) else (1,)


def comparison_requests(methods: Sequence[str], protocol: str | None, template: RunRequest) -> list[RunRequest]:
    """Every named method (``all``: every registered one whose class does not set
    ``in_comparison = False``, as `checkpoint`, which needs a model) with its defaults and each of
    its variants that applies, on ``protocol`` or, if None, on every protocol it supports. Rows on
    ``episodes`` read ``inter`` where the template names the embedded default (its test types are
    unseen in training; the embedded split's are not)."""
    if list(methods) == ["all"]:
        names = [name for name in METHODS.names() if getattr(METHODS.get(name), "in_comparison", True)]
    else:
        names = [METHODS.check(m) for m in methods]
    if protocol is not None:
        get_protocol(protocol)
    requests = []
    for name in names:
        method_cls = METHODS.get(name)
        chosen = [p for p in PROTOCOLS if p in method_cls.protocols and protocol in (None, p)]
        if not chosen and list(methods) != ["all"]:
            resolve_method(name, protocol)  # raises: the named method cannot run that protocol
        for p in chosen:
            source = template.source
            if isinstance(PROTOCOLS[p], EpisodeProtocol) and source.dataset == DataSource().dataset:
                source = replace(source, dataset=EPISODES_DATASET)
            for variant in (None, *method_cls.variants):
                if variant is None or _variant_applies(method_cls, variant, p):
                    requests.append(replace(template, method=name, protocol=p, variant=variant, source=source))
    return requests


def _variant_applies(method_cls: type[Method], variant: str, protocol: str) -> bool:
    """Whether the variant's settings pass the method's check for ``protocol`` (a supervised
    variant, say, does not apply to a protocol without fine labels)."""
    config = resolve_config(method_cls.Config, preset=preset(method_cls, variant))
    try:
        method_cls.check_config(config, protocol)
    except ConfigError:
        return False
    return True
