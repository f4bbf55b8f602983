"""Any Hugging Face token-classification checkpoint, scored as a row of the comparison.

It trains nothing: ``fit`` loads the checkpoint named by ``model``, ``predict`` tags each test
sentence with it. The checkpoint's label names are read as Few-NERD's (after their B-/I-/E-/S-/L-/U-
prefix), or through a TOML label map. A sentence longer than the model's limit is cut into
overlapping windows by the tokenizer; each word is read from the window where its first
sub-word lies farthest from a cut.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from benchmark.core.config import read_toml
from benchmark.core.encoders import file_sha256
from benchmark.core.errors import ConfigError
from benchmark.core.labels import FEWNERD_FINE_TYPES
from benchmark.core.method import RANKED, REGIMES, Context, Method, Settings, check_is_fitted
from benchmark.core.protocols import View
from benchmark.core.spans import OUTSIDE, Span
from benchmark.ui.progress import bar

#: the provenance and regime of a checkpoint nobody declared: shown and compared, never ranked
EXTERNAL = "external"
#: a tag prefix: B(egin), I(nside), E(nd), S(ingle), L(ast), U(nit)
PREFIXED = re.compile(r"([BIESLU])-(.+)")
#: the prefixes that begin an entity; the others (and none) continue one of their type
BEGINS = frozenset("BSU")
#: the files of a checkpoint folder whose bytes the run key covers (config, weights, tokenizer)
INPUT_SUFFIXES = (".json", ".safetensors", ".bin", ".txt", ".model")
#: what a checkpoint is downloaded with (only with a network and without HF_HUB_OFFLINE)
DOWNLOADED = ["*.json", "*.safetensors", "pytorch_model*.bin", "*.txt", "*.model"]
WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
#: model types whose position ids start after the padding index (RoBERTa's 514 positions hold 512 tokens)
OFFSET_POSITIONS = frozenset({"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "longformer", "data2vec-text",
                              "mpnet", "luke", "ibert", "roberta-prelayernorm", "xmod"})  # fmt: skip
NEEDS_MODEL = (
    "checkpoint needs a model: --set model=PATH (a folder with config.json, weights and tokenizer files) "
    "or a Hugging Face id already in the local cache"
)


@dataclass(frozen=True)
class CheckpointConfig:
    """``model``: a checkpoint folder or a Hugging Face id (read from the local cache; downloaded
    only with a network and without ``HF_HUB_OFFLINE``). ``labels``: a TOML file mapping the
    checkpoint's label names (without B-/I- prefixes) to Few-NERD fine types or ``O``.
    ``max_length``: sub-words per window, special tokens included (None: the model's limit);
    ``stride``: sub-words two consecutive windows share (None: half a window).
    ``provenance``: ``external`` (default: shown and compared, never ranked) or a declared
    ``paper``, ``prior`` or ``dev``, which needs ``why`` (how the checkpoint was chosen and
    trained) and ``regime`` (``frozen`` or ``finetuned``: the table it is ranked in)."""

    model: str = ""
    labels: str = ""
    batch_size: int = 32  # windows per forward pass
    max_length: int | None = None
    stride: int | None = None
    provenance: str = EXTERNAL
    why: str = ""
    regime: str = EXTERNAL

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.max_length is not None and self.max_length < 8:
            raise ConfigError(f"max_length must be at least 8 sub-words, got {self.max_length}")
        if self.stride is not None and self.stride < 0:
            raise ConfigError(f"stride must be 0 or more sub-words, got {self.stride}")
        if self.provenance == EXTERNAL:
            if self.why or self.regime != EXTERNAL:
                raise ConfigError(
                    "why and regime go with a declared provenance: --set provenance=paper|prior|dev "
                    "--set why=TEXT --set regime=frozen|finetuned"
                )
        elif self.provenance not in RANKED:
            raise ConfigError(
                f"provenance must be {EXTERNAL} (the default) or a declared paper, prior or dev, "
                f"got {self.provenance!r}"
            )
        elif not self.why.strip():
            raise ConfigError(f"provenance={self.provenance} needs why: how the checkpoint was chosen and trained")
        elif self.regime not in REGIMES:
            raise ConfigError(
                f"provenance={self.provenance} needs regime={' or regime='.join(REGIMES)}: the table it is ranked in"
            )


@dataclass(frozen=True)
class LabelScheme:
    """The checkpoint's labels read as Few-NERD's: for each label (by id) its name, its tag
    prefix (``""``: none) and its fine type (None: outside)."""

    names: tuple[str, ...]
    prefixes: tuple[str, ...]
    types: tuple[str | None, ...]

    @property
    def kinds(self) -> tuple[str, ...]:
        """The fine types the checkpoint can predict, sorted."""
        return tuple(sorted({t for t in self.types if t is not None}))

    @property
    def kind_of(self) -> np.ndarray:
        """Each label's index in `kinds` (-1: outside)."""
        index = {kind: k for k, kind in enumerate(self.kinds)}
        return np.array([index.get(t, -1) if t is not None else -1 for t in self.types], dtype=np.int64)

    @property
    def scheme(self) -> str:
        """``BIO`` when some label begins an entity by its prefix, else ``IO``."""
        return "BIO" if any(p in BEGINS for p in self.prefixes) else "IO"

    def mapping(self) -> dict[str, str]:
        return {name: kind or OUTSIDE for name, kind in zip(self.names, self.types, strict=True)}


def read_label_map(path: str, fine_types: Sequence[str] = FEWNERD_FINE_TYPES) -> dict[str, str]:
    """A TOML file of ``"NAME" = "fine-type"`` (or ``"O"``) lines."""
    file = Path(path).expanduser()
    data = read_toml(file, "the label map (labels)")
    allowed = {*fine_types, OUTSIDE}
    for name, target in data.items():
        if not isinstance(target, str) or target not in allowed:
            raise ConfigError(
                f'labels: {file}: "{name}" = {target!r} is not a Few-NERD fine type or "O" (e.g. "person-other")'
            )
    return data


def map_labels(
    names: Sequence[str], fine_types: Sequence[str], label_map: Mapping[str, str], source: str = ""
) -> LabelScheme:
    """Each label name's prefix and fine type: its name without the prefix looked up in
    ``label_map``, else ``O``, a fine type, or a fine type up to case. Every label left over is
    named in one `ConfigError`."""
    fine = set(fine_types)
    by_case: dict[str, list[str]] = {}
    for kind in fine_types:
        by_case.setdefault(kind.lower(), []).append(kind)
    prefixes, types, unmapped = [], [], []
    for name in names:
        found = PREFIXED.fullmatch(name)
        prefix, base = (found[1], found[2]) if found else ("", name)
        if base in label_map:
            target = label_map[base]
            if target != OUTSIDE and target not in fine:
                raise ConfigError(f"labels: {base!r} is mapped to {target!r}, which is not a fine type of this dataset")
        elif base == OUTSIDE or base in fine:
            target = base
        elif len(by_case.get(base.lower(), ())) == 1:
            target = by_case[base.lower()][0]
        else:
            unmapped.append(base)
            target = OUTSIDE
        prefixes.append(prefix)
        types.append(None if target == OUTSIDE else target)
    if unmapped:
        missing = list(dict.fromkeys(unmapped))
        where = f" (not in the label map {source} either)" if source else ""
        raise ConfigError(
            f"the checkpoint's labels {', '.join(missing)} are not Few-NERD's{where}: map each to a fine type or O "
            'in a TOML file (e.g. "PER" = "person-other", "MISC" = "O") and give it with --set labels=FILE'
        )
    return LabelScheme(tuple(names), tuple(prefixes), tuple(types))


def decode_words(
    sentence_id: int, probabilities: np.ndarray, scheme: LabelScheme, covered: np.ndarray | None = None
) -> list[Span]:
    """Spans from one sentence's per-word label probabilities (columns: the checkpoint's labels).
    Each word takes its most probable label; a B- (or S-, U-) label begins an entity, any other
    label of a type continues an entity of that type, else begins one (IO: maximal runs of one
    type); outside labels and words not ``covered`` (no sub-word) end one. A span's score is the
    mean over its words of its type's probability (summed over the labels of that type)."""
    n = len(probabilities)
    if n == 0:
        return []
    kinds, kind_of = scheme.kinds, scheme.kind_of
    best = probabilities.argmax(axis=1)
    by_kind = np.zeros((len(scheme.names), max(len(kinds), 1)), dtype=probabilities.dtype)
    for label, kind in enumerate(kind_of):
        if kind >= 0:
            by_kind[label, kind] = 1.0
    kind_probabilities = probabilities @ by_kind
    spans: list[Span] = []
    start, open_kind = -1, -1
    for i in range(n + 1):
        kind, prefix = -1, ""
        if i < n and (covered is None or covered[i]):
            kind, prefix = int(kind_of[best[i]]), scheme.prefixes[best[i]]
        if start >= 0 and not (kind == open_kind and prefix not in BEGINS):
            score = float(kind_probabilities[start:i, open_kind].mean())
            spans.append(Span(sentence_id, start, i, kinds[open_kind], score))
            start = -1
        if kind >= 0 and start < 0:
            start, open_kind = i, kind
    return spans


def choose_subwords(windows: Sequence[Sequence[int | None]], stride: int) -> dict[int, tuple[int, int]]:
    """Where to read each word of one sentence: ``word → (window, token position)`` of its first
    sub-word, in the window where that sub-word lies farthest from a cut (the sentence's own start
    and end are no cuts; ties: the earlier window). ``windows`` holds each window's word id per
    token (None: a special token), in order, as a fast tokenizer makes them with ``stride``
    sub-words shared by consecutive windows."""
    content = [[j for j, w in enumerate(words) if w is not None] for words in windows]
    step = len(content[0]) - stride if len(windows) > 1 else 0
    first: dict[int, int] = {}  # word → the index of its first sub-word in the whole sentence
    for k, positions in enumerate(content):
        for i, j in enumerate(positions):
            word = windows[k][j]
            assert word is not None
            first[word] = min(first.get(word, k * step + i), k * step + i)
    last = len(windows) - 1
    chosen: dict[int, tuple[int, int]] = {}
    for word, index in first.items():
        best = (-1.0, -1, -1)
        for k, positions in enumerate(content):
            i = index - k * step
            if not 0 <= i < len(positions):
                continue
            if windows[k][positions[i]] != word:
                raise RuntimeError(f"the tokenizer's windows do not overlap by {stride} sub-words (stride)")
            margin = min(i if k > 0 else np.inf, len(positions) - 1 - i if k < last else np.inf)
            if margin > best[0]:
                best = (margin, k, positions[i])
        chosen[word] = (best[1], best[2])
    return chosen


def checkpoint_folder(model: str) -> Path:
    """The local folder of ``model``: a folder, or a Hugging Face id in the local cache (fetched
    from the hub only with a network and without ``HF_HUB_OFFLINE``)."""
    if not model:
        raise ConfigError(NEEDS_MODEL)
    path = Path(model).expanduser()
    if path.is_dir():
        return _checked(path.resolve(), model)
    from huggingface_hub import snapshot_download

    try:
        return _checked(Path(snapshot_download(model, local_files_only=True)), model)
    except ConfigError:
        raise
    except Exception:  # not in the cache, or not an id at all
        pass
    where = "no such folder, and no Hugging Face checkpoint of that id in the local cache"
    if _offline():
        raise ConfigError(f"model {model!r}: {where} (HF_HUB_OFFLINE is set)")
    try:
        return _checked(Path(snapshot_download(model, allow_patterns=DOWNLOADED)), model)
    except ConfigError:
        raise
    except Exception as error:  # offline, unknown id, auth: all end the same way
        raise ConfigError(f"model {model!r}: {where} or on the hub ({type(error).__name__})") from error


def _offline() -> bool:
    from huggingface_hub import constants

    return constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}


def _checked(folder: Path, model: str) -> Path:
    if not (folder / "config.json").is_file():
        raise ConfigError(f"model {model!r}: {folder} has no config.json (not a Hugging Face checkpoint folder)")
    if not any((folder / w).is_file() for w in WEIGHTS) and not any(folder.glob("*.safetensors")):
        raise ConfigError(f"model {model!r}: {folder} has no PyTorch weights (expected one of: {', '.join(WEIGHTS)})")
    return folder


def checkpoint_files(folder: Path) -> list[Path]:
    """The files of a checkpoint folder that loading it may read (`INPUT_SUFFIXES`), by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in INPUT_SUFFIXES and p.name[0] != ".")


def _one_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


@dataclass
class Inspected:
    """What `check_config` and `fit` read from a checkpoint (no weights)."""

    folder: Path
    scheme: LabelScheme
    tokenizer: Any
    max_length: int
    stride: int


def inspect_checkpoint(config: CheckpointConfig, fine_types: Sequence[str] = FEWNERD_FINE_TYPES) -> Inspected:
    """The checkpoint's folder, label scheme, tokenizer and windows, refused with one
    `ConfigError` when they cannot serve."""
    folder = checkpoint_folder(config.model)
    from transformers import AutoConfig, AutoTokenizer

    _quiet_transformers()
    name = f"model {config.model!r}"
    try:
        model_config = AutoConfig.from_pretrained(folder, local_files_only=True)
    except Exception as error:
        raise ConfigError(f"{name}: {folder}/config.json cannot be read ({_one_line(error)})") from error
    architectures = getattr(model_config, "architectures", None) or []
    if architectures and not any(a.endswith("ForTokenClassification") for a in architectures):
        raise ConfigError(f"{name} is a {', '.join(architectures)}, not a token-classification checkpoint")
    label_map = read_label_map(config.labels, fine_types) if config.labels else {}
    names = [str(model_config.id2label.get(i, f"LABEL_{i}")) for i in range(model_config.num_labels)]
    scheme = map_labels(names, fine_types, label_map, config.labels)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except Exception as error:
        raise ConfigError(f"{name}: its tokenizer cannot be loaded from {folder} ({_one_line(error)})") from error
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(f"{name} has no fast tokenizer (tokenizer.json): word_ids() is needed")
    positions = getattr(model_config, "max_position_embeddings", None)
    if isinstance(positions, int) and model_config.model_type in OFFSET_POSITIONS:
        positions -= (model_config.pad_token_id or 0) + 1  # positions start after the padding index
    limits = [positions, tokenizer.model_max_length]
    limit = min((int(v) for v in limits if isinstance(v, int) and 0 < v < 100_000), default=512)
    if config.max_length is not None and config.max_length > limit:
        raise ConfigError(f"max_length {config.max_length} exceeds the model's limit of {limit} sub-words")
    max_length = config.max_length or limit
    window = max_length - tokenizer.num_special_tokens_to_add(pair=False)
    if window < 2:
        raise ConfigError(f"max_length {max_length} leaves {window} sub-words for words in a window")
    stride = window // 2 if config.stride is None else config.stride
    if stride >= window:
        raise ConfigError(f"stride {stride} must be below the {window} sub-words a window holds")
    return Inspected(folder, scheme, tokenizer, max_length, stride)


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


class Checkpoint(Method):
    """A Hugging Face token-classification checkpoint's predictions (--set model=PATH); trains nothing.

    ``fit`` loads the checkpoint (train and dev are not read); ``predict`` runs it over every
    sentence, in windows of the model's limit when one is too long, batched, under ``no_grad`` on
    the GPU when there is one, and decodes its labels (IO or BIO) into spans. The row is
    ``external`` (shown, compared, never ranked) unless the settings declare its provenance.
    """

    protocols = frozenset({"ner"})
    default_protocol = "ner"
    defaults = Settings(
        "prior",
        "nothing to choose: the checkpoint is the user's, and so is the row's provenance (the settings provenance, "
        "why and regime; external and unranked unless declared)",
    )
    Config = CheckpointConfig
    #: the row's provenance is the one its settings declare (``provenance``; `external` unless
    #: declared), not the defaults' nor `custom` (read by `benchmark.run.plan.resolve_settings`)
    declares_provenance: ClassVar[bool] = True
    #: `run --method all` leaves it out: without ``model`` it has nothing to run
    in_comparison: ClassVar[bool] = False
    #: it predicts with one given model: a second seed would repeat its predictions, so `run`
    #: refuses more than one (read by `benchmark.run.plan.plan_run`)
    one_model: ClassVar[bool] = True

    @classmethod
    def regime(cls, config: CheckpointConfig) -> str:  # type: ignore[override]
        """The declared one (``frozen`` or ``finetuned``), else `external`."""
        return config.regime

    @classmethod
    def check_config(cls, config: CheckpointConfig, protocol: str) -> None:
        inspect_checkpoint(config)

    @classmethod
    def input_files(cls, config: CheckpointConfig) -> list[Path]:
        """The files whose bytes a run's key covers (`benchmark.run.provenance.row_fingerprint`):
        the checkpoint's config, weights and tokenizer files, and the label map."""
        files = checkpoint_files(checkpoint_folder(config.model))
        return files + ([Path(config.labels).expanduser()] if config.labels else [])

    def fit(self, train: View, dev: View, ctx: Context) -> Self:
        import torch
        from transformers import AutoModelForTokenClassification

        from benchmark.core.training import device

        inspected = inspect_checkpoint(self.config, train.hierarchy.fine_types)
        model, info = AutoModelForTokenClassification.from_pretrained(
            inspected.folder, local_files_only=True, output_loading_info=True, dtype=torch.float32
        )
        missing = sorted(info.get("missing_keys", ()))
        if missing:
            raise ConfigError(
                f"model {self.config.model!r}: its weights lack {', '.join(missing[:4])}: not a trained "
                "token-classification checkpoint"
            )
        threads = os.environ.get("BENCHMARK_THREADS")
        if threads:
            torch.set_num_threads(int(threads))
        self.model_ = model.to(device()).eval()
        self.tokenizer_, self.max_length_, self.stride_ = inspected.tokenizer, inspected.max_length, inspected.stride
        self.metrics_ = ctx.metrics  # predict adds its window counts
        scheme = inspected.scheme
        ctx.metrics.update(
            labels=len(scheme.names), max_length=self.max_length_, stride=self.stride_, cuda=float(device() == "cuda")
        )
        record = {
            "model": self.config.model,
            "folder": str(inspected.folder),
            "files": {p.name: file_sha256(p) for p in checkpoint_files(inspected.folder)},
            "label_map": {"file": self.config.labels, "sha256": file_sha256(Path(self.config.labels).expanduser())}
            if self.config.labels
            else None,
            "labels": scheme.mapping(),
            "scheme": scheme.scheme,
            "max_length": self.max_length_,
            "stride": self.stride_,
            "device": device(),
        }
        (ctx.artifact_dir / "checkpoint.json").write_text(json.dumps(record, indent=1) + "\n")
        self.scheme_ = scheme
        return self

    def predict(self, view: View) -> list[Span]:
        check_is_fitted(self, "scheme_")
        import torch

        sentences = [list(e.tokens) for e in view.examples]
        tagged = [k for k, words in enumerate(sentences) if words]
        encoded = self.tokenizer_(
            [sentences[k] for k in tagged],
            is_split_into_words=True,
            truncation=True,
            max_length=self.max_length_,
            stride=self.stride_,
            return_overflowing_tokens=True,
        )
        owner = [tagged[s] for s in encoded["overflow_to_sample_mapping"]]
        windows_of: dict[int, list[int]] = {}
        for w, k in enumerate(owner):
            windows_of.setdefault(k, []).append(w)
        reads: list[list[tuple[int, int]]] = [[] for _ in owner]  # per window: (token position, word)
        for windows in windows_of.values():
            chosen = choose_subwords([encoded.word_ids(w) for w in windows], self.stride_)
            for word, (window, position) in chosen.items():
                reads[windows[window]].append((position, word))
        labels = len(self.scheme_.names)
        probabilities = [np.zeros((len(words), labels), dtype=np.float32) for words in sentences]
        covered = [np.zeros(len(words), dtype=bool) for words in sentences]
        names = [n for n in self.tokenizer_.model_input_names if n in encoded]
        pad = dict.fromkeys(names, 0) | {"input_ids": self.tokenizer_.pad_token_id or 0}
        order = sorted(range(len(owner)), key=lambda w: -len(encoded["input_ids"][w]))
        batches = [order[a : a + self.config.batch_size] for a in range(0, len(order), self.config.batch_size)]
        where = next(self.model_.parameters()).device
        with torch.no_grad():
            for batch in bar(batches, "checkpoint: tagging windows", len(order), "window", size=len):
                width = max(len(encoded["input_ids"][w]) for w in batch)
                inputs = {
                    n: torch.tensor([encoded[n][w] + [pad[n]] * (width - len(encoded[n][w])) for w in batch])
                    for n in names
                }
                logits = self.model_(**{n: t.to(where) for n, t in inputs.items()}).logits
                rows = [(r, position) for r, w in enumerate(batch) for position, _ in reads[w]]
                if not rows:
                    continue
                index = torch.tensor(rows, device=where)
                read = logits[index[:, 0], index[:, 1]].float().softmax(-1).cpu().numpy()
                n = 0
                for w in batch:
                    k = owner[w]
                    for _, word in reads[w]:
                        probabilities[k][word] = read[n]
                        covered[k][word] = True
                        n += 1
        self.metrics_.update(
            windows=len(owner),
            windowed_sentences=sum(len(w) > 1 for w in windows_of.values()),
            words_without_subwords=sum(int((~c).sum()) for c in covered),
        )
        return [
            span
            for example, p, c in zip(view.examples, probabilities, covered, strict=True)
            for span in decode_words(example.id, p, self.scheme_, c)
        ]
