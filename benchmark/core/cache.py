"""The feature cache: word features computed once per (encoder + weights, data, settings).

An entry is a folder ``features/<key>/`` with ``features.f16`` (float16 memmap, one row per
word), ``offsets.npy`` (sentence start rows) and ``meta.json`` (key fields, shape, sha256 of the
two data files). It is written in a temporary folder and renamed into place, so a killed run
leaves no entry that looks complete; an entry whose files do not match its ``meta.json`` is
deleted and rebuilt.

`WordSource` hands a training loop the word vectors of a batch of sentences: rows of a cache
entry, or a live pass of an encoder being fine-tuned.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from filelock import FileLock

from benchmark.core.encoders import (
    EncoderSettings,
    TransformerEncoder,
    WordEncoder,
    default_cache_dir,
    file_sha256,
    load_encoder,
)
from benchmark.core.errors import BenchmarkError

if TYPE_CHECKING:
    import torch
    from torch import nn

FORMAT_VERSION = 1


@dataclass(frozen=True)
class WordFeatures:
    """Word vectors of a list of sentences: ``features[i]`` is (words of sentence i, dim)."""

    matrix: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self.matrix[self.offsets[i] : self.offsets[i + 1]]

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    @classmethod
    def from_arrays(cls, arrays: Sequence[np.ndarray], dim: int) -> WordFeatures:
        offsets = np.cumsum([0, *(len(a) for a in arrays)]).astype(np.int64)
        matrix = np.concatenate(arrays) if arrays else np.zeros((0, dim), np.float32)
        return cls(matrix.reshape(-1, dim), offsets)


def word_rows(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Rows of a flat word matrix holding sentences that start at ``starts`` with ``lengths``
    words, one sentence after another (gathering a batch of sentences from cached features)."""
    ends = np.cumsum(lengths)
    return np.arange(ends[-1] if len(ends) else 0) - np.repeat(ends - lengths, lengths) + np.repeat(starts, lengths)


class WordSource:
    """Word vectors of a list of sentences, a batch of sentences at a time: rows of the shared
    feature cache (frozen encoder) or a live pass of a trainable encoder (fine-tuning)."""

    def __init__(
        self,
        sentences: Sequence[Sequence[str]],
        cached: np.ndarray | None = None,
        offsets: np.ndarray | None = None,
        encoder: TransformerEncoder | None = None,
        model: nn.Module | None = None,
    ) -> None:
        import torch

        self.counts = np.array([len(s) for s in sentences])
        self.offsets = np.cumsum([0, *self.counts]) if offsets is None else offsets
        self.cached = None if cached is None else torch.from_numpy(np.asarray(cached, dtype=np.float32))
        self.encoder, self.model = encoder, model
        self.units = encoder.units(sentences) if encoder is not None else None

    def __len__(self) -> int:
        return len(self.counts)

    def rows(self, sentences: Sequence[int]) -> np.ndarray:
        """The flat word rows of ``sentences`` (in order) in the view's word numbering."""
        return word_rows(self.offsets[sentences], self.counts[sentences])

    def __call__(self, sentences: Sequence[int]) -> tuple[torch.Tensor, list[int]]:
        import torch

        counts = self.counts[sentences].tolist()
        if self.cached is not None:
            return self.cached[torch.from_numpy(self.rows(sentences))], counts
        assert self.encoder is not None
        assert self.units is not None
        batch = self.encoder.batch([self.units[i] for i in sentences], counts)
        return self.encoder.forward(self.model, batch), counts


def data_fingerprint(sentences: Sequence[Sequence[str]]) -> str:
    """sha256 of the token sequences (features do not depend on labels)."""
    digest = hashlib.sha256()
    for tokens in sentences:
        digest.update("\x1f".join(tokens).encode("utf-8") + b"\x1e")
    return digest.hexdigest()


class FeatureCache:
    """Word features on disk, shared by every method and run; counts hits and encoder passes."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.hits = 0
        self.misses = 0
        self.encoded_sentences = 0
        self.stage_hits = 0
        self.stage_misses = 0

    @property
    def features_dir(self) -> Path:
        return self.root / "features"

    def encoder(self, settings: EncoderSettings) -> WordEncoder:
        return load_encoder(settings, self.root)

    def key_fields(self, encoder: WordEncoder, settings: EncoderSettings, sentences) -> dict:
        return {
            "format": FORMAT_VERSION,
            "encoder": encoder.name,
            "weights_sha256": encoder.fingerprint,
            "data_sha256": data_fingerprint(sentences),
            "layer": None if encoder.static else settings.layer,
            "pooling": None if encoder.static else settings.pooling,
            "window": None if encoder.static else settings.window,
        }

    def word_features(self, sentences: Sequence[Sequence[str]], settings: EncoderSettings) -> WordFeatures:
        """Features for ``sentences``: from the cache, or encoded once and stored."""
        encoder = self.encoder(settings)
        fields = self.key_fields(encoder, settings, sentences)
        key = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:24]
        entry = self.features_dir / key
        self.features_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{entry}.lock"):
            loaded = self._load(entry, encoder.dim)
            if loaded is not None:
                self.hits += 1
                return loaded
            self.misses += 1
            self._build(entry, fields, encoder, sentences)
            self.encoded_sentences += len(sentences)
            loaded = self._load(entry, encoder.dim)
        if loaded is None:
            raise RuntimeError(f"feature cache entry {entry} failed its check right after being written")
        return loaded

    def _load(self, entry: Path, dim: int) -> WordFeatures | None:
        """The entry if complete and intact; a damaged one is removed (and ``None`` returned)."""
        meta_path = entry / "meta.json"
        if not meta_path.exists():
            shutil.rmtree(entry, ignore_errors=True)
            return None
        try:
            meta = json.loads(meta_path.read_text())
            if meta["dim"] != dim:
                raise BenchmarkError(
                    f"cached features in {entry} have dimension {meta['dim']} but encoder {meta['encoder']!r} "
                    f"now produces {dim}; clear them with: python -m benchmark cache clear"
                )
            for name in ("features.f16", "offsets.npy"):
                if file_sha256(entry / name) != meta["sha256"][name]:
                    raise ValueError(f"{name} checksum mismatch")
            offsets = np.load(entry / "offsets.npy")
            if meta["words"] == 0:
                return WordFeatures(np.zeros((0, dim), np.float16), offsets)
            matrix = np.memmap(entry / "features.f16", dtype=np.float16, mode="r", shape=(meta["words"], dim))
        except (OSError, ValueError, KeyError, json.JSONDecodeError):
            shutil.rmtree(entry, ignore_errors=True)
            return None
        return WordFeatures(matrix, offsets)

    def _build(self, entry: Path, fields: dict, encoder: WordEncoder, sentences: Sequence[Sequence[str]]) -> None:
        staging = entry.with_name(f"{entry.name}.tmp-{_writer()}")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        try:
            offsets = np.cumsum([0, *(len(s) for s in sentences)]).astype(np.int64)
            words = int(offsets[-1])
            matrix = np.memmap(
                staging / "features.f16", dtype=np.float16, mode="w+", shape=(max(words, 1), encoder.dim)
            )

            def store(i: int, vectors: np.ndarray) -> None:
                matrix[offsets[i] : offsets[i + 1]] = vectors

            started = time.perf_counter()
            encoder.encode(sentences, store)
            matrix.flush()
            if words == 0:
                (staging / "features.f16").write_bytes(b"")
            np.save(staging / "offsets.npy", offsets)
            meta = {
                **fields,
                "dim": encoder.dim,
                "sentences": len(sentences),
                "words": words,
                "seconds": round(time.perf_counter() - started, 2),
                "created": time.strftime("%Y-%m-%d %H:%M:%S"),
                "sha256": {n: file_sha256(staging / n) for n in ("features.f16", "offsets.npy")},
            }
            (staging / "meta.json").write_text(json.dumps(meta, indent=2))
            shutil.rmtree(entry, ignore_errors=True)
            staging.rename(entry)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def cached_json(self, namespace: str, fields: dict, compute: Callable[[], Any]) -> Any:
        """A JSON-serialisable intermediate result, computed once per ``fields`` and stored."""
        key = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:24]
        path = self.root / "stages" / namespace / f"{key}.json"
        if path.exists():
            try:
                stored = json.loads(path.read_text())
                if stored["fields"] == json.loads(json.dumps(fields)):
                    self.stage_hits += 1
                    return stored["value"]
            except (OSError, ValueError, KeyError):
                pass  # damaged: recompute below
        self.stage_misses += 1
        value = compute()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{_writer()}.tmp")
        tmp.write_text(json.dumps({"fields": fields, "value": value}))
        tmp.replace(path)
        return value

    def entries(self) -> list[dict]:
        """Metadata of every complete entry, with its folder and size on disk."""
        out = []
        for meta_path in sorted(self.features_dir.glob("*/meta.json")):
            meta = json.loads(meta_path.read_text())
            size = sum(f.stat().st_size for f in meta_path.parent.iterdir())
            out.append({"key": meta_path.parent.name, **meta, "bytes": size})
        return out

    def clear(self, models: bool = False) -> int:
        """Delete all feature entries (and unpacked models with ``models``); return bytes freed."""
        targets = [self.features_dir, self.root / "stages"] + ([self.root / "models"] if models else [])
        freed = 0
        for target in targets:
            if target.exists():
                freed += sum(f.stat().st_size for f in target.rglob("*") if f.is_file())
                shutil.rmtree(target)
        return freed


def _writer() -> str:
    """This process's name for its staging files: unique across the nodes sharing a cache folder."""
    return f"{socket.gethostname()}-{os.getpid()}"
