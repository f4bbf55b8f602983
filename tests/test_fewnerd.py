"""Few-NERD loading: the embedded split, checksums, parse errors, official layout, hub schema."""

from __future__ import annotations

import gzip
import shutil

import pytest

from benchmark.core.data import fewnerd
from benchmark.core.data.fewnerd import from_hf, load_corpus, load_official, read_fewnerd_text, to_hf
from benchmark.core.errors import DataError
from benchmark.core.labels import FEWNERD_FINE_TYPES
from benchmark.core.spans import Span, spans_from_labels


def test_embedded_split_sizes_and_types(corpus):
    assert {k: len(v) for k, v in corpus.splits.items()} == {"train": 13111, "dev": 1958, "test": 3755}
    for sentences in corpus.splits.values():
        assert len({span.label for s in sentences for span in s.spans}) == 66
    assert sum(len(s.spans) for split in corpus.splits.values() for s in split) == 48770


def test_embedded_split_rule_is_recomputable_and_leak_free(corpus):
    texts = {name: {" ".join(s.tokens) for s in split} for name, split in corpus.splits.items()}
    assert not texts["train"] & texts["test"]
    assert not texts["train"] & texts["dev"]
    assert fewnerd.embedded_bucket(corpus.splits["test"][0].tokens) == "test"
    assert [s.id for s in corpus.splits["dev"]] == list(range(1958))


def test_content_fingerprint_is_stable(corpus):
    assert corpus.sha256 == "aedfd0cddd9695cf542715b6a337a0d2a6bfa4966088d5954221048c67925d70"


def test_io_spans_merge_adjacent_same_type_and_split_different_types():
    labels = ["O", "person-actor", "person-actor", "person-other", "O", "art-other", "location-other"]
    assert spans_from_labels(7, labels) == (
        Span(7, 1, 3, "person-actor"),
        Span(7, 3, 4, "person-other"),
        Span(7, 5, 6, "art-other"),
        Span(7, 6, 7, "location-other"),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Paris\tlocation-GPE\nis\tO\tx", "data.txt:2: expected 'token<TAB>label' (2 tab-separated columns), got 3"),
        ("Paris location-GPE", "data.txt:1: expected 'token<TAB>label'"),
        ("Paris\tlocation-GPE\n\nis\tO\n\tO", "data.txt:4: empty token"),
        ("Paris\tlocation-city", "data.txt:1: unknown label 'location-city'"),
    ],
)
def test_malformed_lines_name_file_and_line(text, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_fewnerd_text(text, "data.txt")


def test_parser_accepts_final_newline_and_blank_runs():
    sentences = read_fewnerd_text("A\tO\n\n\n\nB\tperson-actor\n", "x")
    assert [s.tokens for s in sentences] == [("A",), ("B",)]
    assert sentences[1].spans == (Span(1, 0, 1, "person-actor"),)


def test_shipped_file_with_wrong_checksum_is_refused(tmp_path, monkeypatch):
    shutil.copytree(fewnerd.EMBEDDED_DIR, tmp_path / "few-nerd")
    path = tmp_path / "few-nerd" / "supervised" / "dev.txt.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()).replace(b"Skyfox", b"Skyfux", 1)))
    monkeypatch.setattr(fewnerd, "EMBEDDED_DIR", tmp_path / "few-nerd")
    with pytest.raises(DataError, match=r"dev.txt.gz: checksum mismatch"):
        load_corpus("embedded")


def _official_layout(tmp_path, with_train: bool):
    root = tmp_path / "fewnerd"
    (root / "inter").mkdir(parents=True)
    for split in ("dev", "test"):
        shutil.copy(fewnerd.EMBEDDED_DIR / "inter" / f"{split}.txt.gz", root / "inter" / f"{split}.txt.gz")
    if with_train:  # the official inter train is not available here: stand in with dev text
        (root / "inter" / "train.txt").write_bytes(gzip.decompress((root / "inter" / "dev.txt.gz").read_bytes()))
    return root


def test_official_layout_is_verified_against_official_blob_ids(tmp_path):
    root = _official_layout(tmp_path, with_train=True)
    with pytest.raises(DataError, match=r"inter/train.txt: checksum mismatch .* --no-verify"):
        load_official("inter", root)
    corpus = load_official("inter", root, verify=False)
    assert {k: len(v) for k, v in corpus.splits.items()} == {"train": 18817, "dev": 18817, "test": 14007}


def test_official_layout_missing_split(tmp_path):
    root = _official_layout(tmp_path, with_train=False)
    with pytest.raises(DataError, match=r"missing split 'train': neither .*inter/train.txt"):
        load_official("inter", root)


def test_shipped_inter_files_load_without_data_dir():
    corpus = load_corpus("inter", splits=("dev", "test"))
    assert {k: len(v) for k, v in corpus.splits.items()} == {"dev": 18817, "test": 14007}
    with pytest.raises(DataError, match=r"has no 'train' split"):
        corpus.split("train")


def test_unknown_dataset_lists_valid_ones():
    with pytest.raises(DataError, match=r"unknown dataset 'supervise'; choose one of: embedded, supervised"):
        load_corpus("supervise")


def test_hub_schema_round_trip(small):
    dataset_dict = to_hf(small)
    assert set(dataset_dict) == {"train", "validation", "test"}
    features = dataset_dict["train"].features
    assert features["fine_ner_tags"].feature.names == ["O", *FEWNERD_FINE_TYPES]
    assert features["ner_tags"].feature.names[:3] == ["O", "art", "building"]
    row = dataset_dict["test"][0]
    sentence = small.splits["test"][0]
    assert row["tokens"] == list(sentence.tokens)
    assert [features["ner_tags"].feature.int2str(t) for t in row["ner_tags"]] == [
        label.split("-")[0] for label in sentence.labels
    ]
    back = from_hf(dataset_dict, "small")
    assert back.sha256 == small.sha256
