"""Few-NERD: the embedded default benchmark, the official layout, the hub, one corpus form.

Every source ends as a `Corpus` of `Sentence`s (tokens, IO fine labels, spans). ``to_hf`` turns a
corpus into a ``datasets.DatasetDict`` with the hub schema (``tokens``, ``ner_tags``,
``fine_ner_tags`` as ClassLabel); ``from_hf`` reads one back.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from benchmark.core.errors import DataError
from benchmark.core.labels import FEWNERD, LabelHierarchy, coarse_of
from benchmark.core.spans import OUTSIDE, Span, spans_from_labels

if TYPE_CHECKING:
    import datasets

SPLITS = ("train", "dev", "test")
HUB_ID = "DFKI-SLT/few-nerd"
HUB_SPLITS = {"train": "train", "dev": "validation", "test": "test"}
EMBEDDED_DIR = Path(__file__).resolve().parents[3] / "datasets" / "few-nerd"

DATASETS: dict[str, str] = {
    "embedded": "official supervised dev re-split by sentence sha256 (ships in datasets/)",
    "supervised": "official SUPERVISED benchmark (--data-dir DIR or --from-hub)",
    "inter": "official INTER split (dev/test ship in datasets/; train needs --data-dir)",
    "intra": "official INTRA split (--data-dir DIR or --from-hub)",
}

#: sha256 of the uncompressed files shipped in ``datasets/few-nerd`` (verified on every load).
SHIPPED_SHA256 = {
    "supervised/dev.txt": "ab6d28024dae0ef0e129fe25f352e11256ed6bc1586d0dd7a2090b8a0c166753",
    "inter/dev.txt": "468cc0505b0ff2f0c36c3266ff2e8fba6148d0b96c5e487131f310e3a5331043",
    "inter/test.txt": "a4300f52ade591648edcba4a09db0ba6888d4374510f3d5982791fafb40e55bd",
}

#: git blob ids of the official files (``git hash-object FILE``), to verify a user's copy.
OFFICIAL_BLOB_IDS = {
    "supervised/train.txt": "f03e2bc9badf5760cc98f31336650d3afd730bff",
    "supervised/dev.txt": "049098829d8260f41a072d9bebbb71783003465d",
    "supervised/test.txt": "26853c6e54131630d8c105148eb3565b93108eed",
    "inter/train.txt": "5ea05b7e8c7e5cac618dbedcc9fd90b12af484fa",
    "inter/dev.txt": "630b4e73e24a01ad423ca28adc0ca06b8232a35c",
    "inter/test.txt": "3f5dd828f3d6088fb90633be864f83e19214e699",
    "intra/train.txt": "ebf4d268d0f59005f15c774e61cc54e3fd31f56f",
    "intra/dev.txt": "c0d94ec12391abbc296552e1db7f35d228835ea3",
    "intra/test.txt": "ad6bf2bbbfc65276c1fc8490c6ef26387854cf73",
}


@dataclass(frozen=True, slots=True)
class Sentence:
    """One sentence: ``id`` is its index in its split; ``labels`` are IO fine labels."""

    id: int
    tokens: tuple[str, ...]
    labels: tuple[str, ...]
    spans: tuple[Span, ...]


@dataclass(frozen=True)
class Corpus:
    """Named splits of sentences, with the label hierarchy and a content fingerprint."""

    name: str
    splits: Mapping[str, tuple[Sentence, ...]]
    hierarchy: LabelHierarchy
    sources: tuple[str, ...]

    def split(self, name: str) -> tuple[Sentence, ...]:
        if name not in self.splits:
            have = ", ".join(self.splits) or "none"
            raise DataError(
                f"dataset {self.name!r} has no {name!r} split (it has: {have}); "
                "pass --data-dir DIR with the official layout DIR/<benchmark>/{train,dev,test}.txt"
            )
        return self.splits[name]

    @property
    def sha256(self) -> str:
        """Fingerprint of the content (tokens, labels, split membership), whatever the source."""
        return self._digest(sorted(self.splits))

    def split_sha256(self, name: str) -> str:
        """Fingerprint of one split's content (as `sha256`, over that split alone)."""
        return self._digest([name])

    def _digest(self, names: Iterable[str]) -> str:
        digest = hashlib.sha256()
        for name in names:
            digest.update(f"#split {name}\n".encode())
            for sentence in self.splits[name]:
                lines = (f"{t}\t{lab}\n" for t, lab in zip(sentence.tokens, sentence.labels, strict=True))
                digest.update(("".join(lines) + "\n").encode())
        return digest.hexdigest()

    def split_source(self, name: str) -> str:
        """Where a split was read from: a repository path, a file, or ``hub:<id>/<config>``."""
        if len(self.sources) == len(self.splits):
            return self.sources[list(self.splits).index(name)]
        return self.sources[0]


def make_sentence(sentence_id: int, tokens: Iterable[str], labels: Iterable[str]) -> Sentence:
    labels = tuple(labels)
    return Sentence(sentence_id, tuple(tokens), labels, spans_from_labels(sentence_id, labels))


def read_fewnerd_text(text: str, source: str, hierarchy: LabelHierarchy = FEWNERD) -> list[Sentence]:
    """Parse Few-NERD's ``token<TAB>label`` format; errors name ``source`` and the line."""
    valid = set(hierarchy.fine_types) | {OUTSIDE}
    sentences: list[Sentence] = []
    tokens: list[str] = []
    labels: list[str] = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            if tokens:
                sentences.append(make_sentence(len(sentences), tokens, labels))
                tokens, labels = [], []
            continue
        columns = line.split("\t")
        if len(columns) != 2:
            raise DataError(
                f"{source}:{number}: expected 'token<TAB>label' (2 tab-separated columns), "
                f"got {len(columns)} column(s): {line[:60]!r}"
            )
        token, label = columns
        if not token.strip():
            raise DataError(f"{source}:{number}: empty token")
        if label not in valid:
            raise DataError(
                f"{source}:{number}: unknown label {label!r}; expected 'O' or one of the "
                f"{len(hierarchy.fine_types)} Few-NERD fine types such as 'person-politician'"
            )
        tokens.append(token)
        labels.append(label)
    if tokens:
        sentences.append(make_sentence(len(sentences), tokens, labels))
    return sentences


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if path.suffix == ".gz" else raw
    except (OSError, gzip.BadGzipFile, EOFError) as error:
        raise DataError(f"{path}: cannot read ({error})") from error


def _decode(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text ({error})") from error


def git_blob_id(raw: bytes) -> str:
    """What ``git hash-object`` prints for a file with these bytes."""
    return hashlib.sha1(b"blob %d\0" % len(raw) + raw).hexdigest()


def read_shipped(relative: str) -> list[Sentence]:
    """A file shipped in ``datasets/few-nerd``, checked against its recorded sha256."""
    path = EMBEDDED_DIR / f"{relative}.gz"
    if not path.exists():
        raise DataError(f"{path}: shipped data file not found; run from a checkout installed with 'pip install -e .'")
    raw = _read_bytes(path)
    actual = hashlib.sha256(raw).hexdigest()
    if actual != SHIPPED_SHA256[relative]:
        raise DataError(
            f"{path}: checksum mismatch (sha256 of the uncompressed file is {actual}, "
            f"expected {SHIPPED_SHA256[relative]}); restore it with 'git checkout -- {path}'"
        )
    return read_fewnerd_text(_decode(raw, path), str(path))


def embedded_bucket(tokens: Iterable[str]) -> str:
    """DESIGN §1's split rule: sha256 of the space-joined tokens, modulo 10."""
    bucket = int(hashlib.sha256(" ".join(tokens).encode("utf-8")).hexdigest(), 16) % 10
    return "train" if bucket <= 6 else "dev" if bucket == 7 else "test"


def load_embedded() -> Corpus:
    """The default benchmark: official supervised dev, re-split 7:1:2 by sentence sha256."""
    parts: dict[str, list[Sentence]] = {name: [] for name in SPLITS}
    for sentence in read_shipped("supervised/dev.txt"):
        part = parts[embedded_bucket(sentence.tokens)]
        part.append(make_sentence(len(part), sentence.tokens, sentence.labels))
    splits = {name: tuple(sentences) for name, sentences in parts.items()}
    return Corpus("embedded", splits, FEWNERD, ("datasets/few-nerd/supervised/dev.txt.gz",))


def load_official(
    benchmark: str,
    data_dir: Path | None,
    splits: Iterable[str] = SPLITS,
    verify: bool = True,
) -> Corpus:
    """An official benchmark (``supervised``, ``inter``, ``intra``) from ``data_dir``.

    Without ``data_dir``, the splits shipped in ``datasets/few-nerd`` are used. Files may be
    plain or ``.gz``; with ``verify`` each must equal the official file (git blob id).
    """
    loaded: dict[str, tuple[Sentence, ...]] = {}
    sources: list[str] = []
    for split in splits:
        relative = f"{benchmark}/{split}.txt"
        if data_dir is None:
            if relative not in SHIPPED_SHA256:
                continue
            loaded[split] = tuple(read_shipped(relative))
            sources.append(f"datasets/few-nerd/{relative}.gz")
            continue
        candidates = [data_dir / relative, data_dir / f"{relative}.gz"]
        path = next((p for p in candidates if p.exists()), None)
        if path is None:
            raise DataError(f"missing split {split!r}: neither {candidates[0]} nor {candidates[1]} exists")
        raw = _read_bytes(path)
        if verify and git_blob_id(raw) != OFFICIAL_BLOB_IDS[relative]:
            raise DataError(
                f"{path}: checksum mismatch with the official Few-NERD file (git blob id "
                f"{git_blob_id(raw)}, expected {OFFICIAL_BLOB_IDS[relative]}); "
                "pass --no-verify to use modified data"
            )
        loaded[split] = tuple(read_fewnerd_text(_decode(raw, path), str(path)))
        sources.append(str(path))
    return Corpus(benchmark, loaded, FEWNERD, tuple(sources))


def load_corpus(
    name: str = "embedded",
    data_dir: Path | None = None,
    from_hub: bool = False,
    verify: bool = True,
    splits: Iterable[str] = SPLITS,
) -> Corpus:
    """Load a dataset by name (see `DATASETS`); the one entry point the CLI uses."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    if name == "embedded":
        if data_dir is not None or from_hub:
            raise DataError("the embedded dataset ships with the repo: drop --data-dir/--from-hub")
        return load_embedded()
    if from_hub:
        return load_hub(name)
    return load_official(name, data_dir, splits, verify)


def load_hub(benchmark: str) -> Corpus:  # pragma: no cover - needs a network
    """An official benchmark from the Hugging Face hub (``DFKI-SLT/few-nerd``)."""
    import datasets

    try:
        dataset_dict = datasets.load_dataset(HUB_ID, benchmark)
    except Exception as error:  # the hub raises many types (network, auth, missing config)
        raise DataError(f"cannot load {HUB_ID}/{benchmark} from the hub: {error}") from error
    return from_hf(dataset_dict, benchmark)


def hf_features() -> datasets.Features:
    """The hub's schema: ``id``, ``tokens``, ``ner_tags`` (coarse), ``fine_ner_tags`` (fine)."""
    import datasets

    coarse = datasets.ClassLabel(names=[OUTSIDE, *FEWNERD.coarse_types])
    fine = datasets.ClassLabel(names=[OUTSIDE, *FEWNERD.fine_types])
    return datasets.Features(
        {
            "id": datasets.Value("string"),
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(coarse),
            "fine_ner_tags": datasets.Sequence(fine),
        }
    )


def to_hf(corpus: Corpus) -> datasets.DatasetDict:
    """The corpus as a ``DatasetDict`` with the hub schema and split names."""
    import datasets

    features = hf_features()
    coarse_ids = features["ner_tags"].feature.str2int
    fine_ids = features["fine_ner_tags"].feature.str2int
    parts = {}
    for split, sentences in corpus.splits.items():
        columns = {
            "id": [str(s.id) for s in sentences],
            "tokens": [list(s.tokens) for s in sentences],
            "ner_tags": [[coarse_ids(coarse_of(x)) for x in s.labels] for s in sentences],
            "fine_ner_tags": [[fine_ids(x) for x in s.labels] for s in sentences],
        }
        parts[HUB_SPLITS[split]] = datasets.Dataset.from_dict(columns, features=features)
    return datasets.DatasetDict(parts)


def from_hf(dataset_dict: datasets.DatasetDict, name: str) -> Corpus:
    """A corpus from a ``DatasetDict`` with the hub schema."""
    splits: dict[str, tuple[Sentence, ...]] = {}
    for split, hub_split in HUB_SPLITS.items():
        if hub_split not in dataset_dict:
            continue
        part = dataset_dict[hub_split]
        names = part.features["fine_ner_tags"].feature.names
        splits[split] = tuple(
            make_sentence(i, row["tokens"], (names[t] for t in row["fine_ner_tags"])) for i, row in enumerate(part)
        )
    return Corpus(name, splits, FEWNERD, (f"hub:{HUB_ID}/{name}",))
