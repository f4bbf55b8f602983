"""Name → object registries, resolved lazily from ``"module:attribute"`` strings."""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from benchmark.errors import BenchmarkError


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
    },
)
