"""What can be named on the command line: methods (resolved lazily from ``"module:attribute"``
strings) and protocols. No method or fit imports this module, so adding an entry changes no
run's code fingerprint (a run's fingerprint covers its own protocol's definition)."""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from benchmark.core.episodic import EPISODE_MAIN_METRICS, EpisodeProtocol
from benchmark.core.errors import BenchmarkError
from benchmark.core.protocols import Protocol


class Registry:
    """Maps names to import paths; nothing is imported until a name is asked for."""

    def __init__(self, kind: str, entries: dict[str, str]) -> None:
        self.kind = kind
        self._entries = dict(entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def names(self) -> list[str]:
        return list(self._entries)

    def check(self, name: str) -> str:
        """Return ``name`` if registered, else raise with "did you mean" and the valid names."""
        if name not in self._entries:
            close = difflib.get_close_matches(name, self._entries, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise BenchmarkError(f"unknown {self.kind} {name!r}{hint}; choose one of: {', '.join(self._entries)}")
        return name

    def get(self, name: str) -> Any:
        module, _, attribute = self._entries[self.check(name)].partition(":")
        return getattr(importlib.import_module(module), attribute)


METHODS = Registry(
    "method",
    {
        "gazetteer": "methods.gazetteer.method:Gazetteer",
        "random-within-coarse": "methods.random_within_coarse.method:RandomWithinCoarse",
        "tagger": "methods.tagger.method:Tagger",
        "label-name": "methods.label_name.method:LabelName",
        "eigproj": "methods.eigproj.method:EigProj",
        "span-bilstm-attn": "methods.span_bilstm_attn.method:SpanBiLSTMAttn",
        "hier-soft": "methods.hier_soft.method:HierSoft",
        "cofee": "methods.cofee.method:Cofee",
        "checkpoint": "methods.checkpoint.method:Checkpoint",
        "protobert": "methods.protobert.method:ProtoBERT",
        "nnshot": "methods.nnshot.method:NNShot",
        "structshot": "methods.structshot.method:StructShot",
    },
)

PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(
            "weak-typing",
            train_level="coarse",
            test_spans="coarse",
            headline="fine/weighted_f1",
            summary="train on coarse labels only; type gold spans (gold coarse given) into fine types",
            main_metrics=(
                "fine/weighted_f1",
                "fine/weighted_precision",
                "fine/weighted_recall",
                "fine/accuracy",
                "fine/macro_f1",
                "fine/p_at_100",
            ),
        ),
        Protocol(
            "typing",
            train_level="fine",
            test_spans="untyped",
            headline="fine/accuracy",
            summary="train on fine labels; type gold spans into fine types",
            main_metrics=("fine/accuracy", "fine/macro_f1", "fine/weighted_f1", "coarse/accuracy"),
        ),
        Protocol(
            "ner",
            train_level="fine",
            test_spans="none",
            headline="fine/micro_f1",
            summary="train on fine labels; find and type entities in raw tokens (strict span F1)",
            main_metrics=(
                "fine/micro_f1",
                "fine/micro_precision",
                "fine/micro_recall",
                "coarse/micro_f1",
                "detection/f1",
                "fine/macro_f1",
            ),
        ),
        EpisodeProtocol(
            "episodes",
            train_level="fine",
            test_spans="none",
            headline=EPISODE_MAIN_METRICS[0],
            summary="Few-NERD's N-way K~2K-shot episodes: type entities of an episode's N unseen fine types in its "
            "query sentences, given its support set (micro P/R/F1 summed over every query set)",
            main_metrics=EPISODE_MAIN_METRICS,
        ),
    )
}


def get_protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise BenchmarkError(f"unknown protocol {name!r}; choose one of: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]
