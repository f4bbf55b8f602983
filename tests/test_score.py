"""`benchmark score` and `export-predictions`: outside predictions scored like any row, their
formats round-tripped, every bad file refused with one line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from benchmark.cli import main
from benchmark.core.registry import PROTOCOLS
from benchmark.run.prediction_files import read_prediction_file, tagged_spans, write_prediction_file
from benchmark.run.published import read_record

RECORD = Path(__file__).parents[1] / "reports" / "runs"
SMALL = ["--dataset", "supervised", "--no-verify"]


def seed_runs(uri: str) -> list:
    client = MlflowClient(uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return [r for r in runs if r.data.tags.get("role") == "seed"]


def _published(protocol: str, method: str, row: str, seed: int) -> dict[str, float]:
    (run,) = [r for r in read_record(RECORD / "embedded" / protocol / method / row) if r.tags["seed"] == str(seed)]
    return run.metrics


@pytest.mark.slow
@pytest.mark.parametrize(
    ("protocol", "method", "row", "label"),
    [("ner", "gazetteer", "default", "gazetteer"), ("ner", "tagger", "default", "tagger"),
     ("typing", "gazetteer", "default", "gazetteer"), ("weak-typing", "eigproj", "default", "eigproj")],
)  # fmt: skip
def test_a_published_run_exported_in_every_format_scores_exactly_as_it_did(
    protocol, method, row, label, workdir, capsys
):
    assert main(["export-predictions", "--protocol", protocol, "--row", label, "--seeds", "1", "--runs", str(RECORD),
                 "--out", "given"]) == 0  # fmt: skip
    files = sorted(Path("given").iterdir())
    assert len(files) == 2  # jsonl and fewnerd (ner) or spans (typing)
    original = _published(protocol, method, row, 1)
    for path in files:
        name = path.name.replace(".", "-")
        assert main(["score", "--protocol", protocol, "--name", name, "--predictions", str(path), "-q",
                     "--bootstrap", "0"]) == 0  # fmt: skip
        (run,) = [r for r in seed_runs(f"sqlite:///{workdir / 'mlflow.db'}") if r.data.tags["label"] == name]
        scored = run.data.metrics
        assert (run.data.tags["provenance"], run.data.tags["regime"]) == ("external", "external")
        # the two-column format carries no scores: every rank-based figure (P@K) may change, nothing else
        scoreless = path.suffix == ".txt"
        compared = [k for k in original if k in scored and not (scoreless and "p_at_" in k)]
        assert len(compared) > 20  # weak-typing logs no coarse scores (constant there)
        assert {k: scored[k] for k in compared} == {k: original[k] for k in compared}, path.name


def _gold_jsonl(small, path: Path, **changes) -> Path:
    """The small test split's gold spans as a jsonl prediction file."""
    lines = [
        {"id": s.id, "tokens": list(s.tokens), "entities": [{"start": x.start, "end": x.end, "label": x.label}
                                                             for x in s.spans]}
        for s in small.splits["test"]
    ]  # fmt: skip
    for sid, change in changes.items():
        change(lines[int(sid.removeprefix("s"))])
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _first_entity(line):
    return line["entities"][0]


@pytest.fixture
def score_small(official_layout):
    def argv(protocol: str, *files: Path, name: str = "mine", extra: tuple[str, ...] = ()) -> list[str]:
        return ["score", "--protocol", protocol, "--name", name, "--predictions", *map(str, files),
                *SMALL, "--data-dir", str(official_layout), "--bootstrap", "0", "-q", *extra]  # fmt: skip

    return argv


def test_several_files_are_the_seeds_of_one_row_and_scoring_them_again_logs_nothing(
    small, score_small, workdir, capsys
):
    perfect = _gold_jsonl(small, workdir / "perfect.jsonl")
    half = _gold_jsonl(small, workdir / "half.jsonl", **{f"s{i}": lambda line: line.update(entities=[])
                                                         for i in range(0, 200, 2)})  # fmt: skip
    assert main(score_small("ner", perfect, half)) == 0
    runs = seed_runs(f"sqlite:///{workdir / 'mlflow.db'}")
    by_seed = {r.data.tags["seed"]: r.data.metrics for r in runs}
    assert by_seed["1"]["fine/micro_f1"] == 1.0
    assert 0 < by_seed["2"]["fine/micro_f1"] < 1.0
    assert math.isclose(by_seed["2"]["fine/micro_precision"], 1.0)
    assert main(score_small("ner", perfect, half)) == 0
    assert len(seed_runs(f"sqlite:///{workdir / 'mlflow.db'}")) == 2


def test_an_external_row_is_reported_compared_and_unranked_and_exported_under_its_name(
    small, score_small, workdir, official_layout, capsys
):
    perfect = _gold_jsonl(small, workdir / "perfect.jsonl")
    dropped = _gold_jsonl(small, workdir / "dropped.jsonl", **{f"s{i}": lambda line: line.update(entities=[])
                                                               for i in range(0, 200, 3)})  # fmt: skip
    assert main(score_small("ner", perfect, dropped, name="sys-a")) == 0
    assert main(score_small("ner", dropped, name="sys-b")) == 0
    argv = ["report", "--out", "out", "--trials", "200", "--data-dir", str(official_layout), "--no-verify"]
    assert main(argv) == 0
    table = pd.read_csv("out/supervised/ner.csv")
    assert set(table["method"]) == {"sys-a", "sys-b"}
    assert set(table["provenance"]) == {"external"}
    assert table["rank"].isna().all()
    text = Path("out/supervised/ner.md").read_text()
    assert "sys-a §" in text
    assert "external: predictions made outside the harness" in text
    pairs = pd.read_csv("out/supervised/ner_pairs.csv")
    assert list(pairs["family"]) == ["apart"]
    assert main(["export", "--out", "record", "--data-dir", str(official_layout)]) == 0
    assert sorted(p.name for p in Path("record/supervised/ner/external").iterdir()) == ["sys-a", "sys-b"]


def test_a_declared_provenance_needs_its_reason_and_regime_and_then_ranks(small, score_small, workdir, fails_cleanly):
    perfect = _gold_jsonl(small, workdir / "perfect.jsonl")
    fails_cleanly(score_small("ner", perfect, extra=("--provenance", "dev")), "needs --why")
    fails_cleanly(score_small("ner", perfect, extra=("--provenance", "dev", "--why", "x")), "needs --regime")
    fails_cleanly(score_small("ner", perfect, extra=("--why", "x")), "go with a declared --provenance")
    fails_cleanly(score_small("ner", perfect, name="gazetteer"), "a registered method's name")
    fails_cleanly(score_small("ner", perfect, name="my system"), "--name 'my system'")
    fails_cleanly(score_small("ner", perfect, perfect), "is given twice")


BAD_JSONL = {
    "a token that differs": (
        {"s3": lambda line: line["tokens"].__setitem__(1, "XYZ")}, "sentence 3: token 1 is 'XYZ' where the test"
    ),
    "a label outside the hierarchy": (
        {"s0": lambda line: _first_entity(line).update(label="person-wizard")},
        "label 'person-wizard' is not a Few-NERD fine type",
    ),
    "offsets outside the sentence": (
        {"s0": lambda line: _first_entity(line).update(end=999)}, "lie outside its",
    ),
    "overlapping spans": (
        {"s0": lambda line: line["entities"].append({**_first_entity(line), "label": "person-other",
                                                     "end": _first_entity(line)["end"] + 1})},
        "spans overlap",
    ),
    "a duplicate id": ({"s5": lambda line: line.update(id=4, tokens=None)}, "sentence 4 again (first on line 5)"),
    "an unknown id": ({"s5": lambda line: line.update(id=5000)}, "id 5000 is not a test sentence"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_JSONL))
def test_a_bad_jsonl_file_gets_one_error_naming_file_line_and_sentence(
    case, small, score_small, workdir, fails_cleanly
):
    changes, message = BAD_JSONL[case]
    path = _gold_jsonl(small, workdir / "bad.jsonl", **changes)
    fails_cleanly(score_small("ner", path), message)


def test_missing_extra_empty_and_other_protocol_files_are_refused(small, score_small, workdir, fails_cleanly):
    good = _gold_jsonl(small, workdir / "good.jsonl")
    lines = good.read_text().splitlines()
    (workdir / "short.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    fails_cleanly(
        score_small("ner", workdir / "short.jsonl"), "1 of the 200 test sentences are missing (first: id 199)"
    )
    (workdir / "empty.jsonl").write_text("\n")
    fails_cleanly(score_small("ner", workdir / "empty.jsonl"), "empty file")
    spans = workdir / "spans.jsonl"
    test = small.splits["test"]
    write_prediction_file(spans, "spans", [x for s in test for x in s.spans], test, PROTOCOLS["typing"])
    fails_cleanly(score_small("ner", spans), "is it a file for another protocol?")
    with_extra = _gold_jsonl(small, workdir / "extra.jsonl", s2=lambda line: line["entities"].append(
        {"start": len(line["tokens"]) - 1, "end": len(line["tokens"]), "label": "person-other"}))  # fmt: skip
    fails_cleanly(score_small("typing", with_extra), "is not a gold span; --protocol typing types exactly")
    fails_cleanly(score_small("typing", workdir / "short.jsonl"), "test sentences are missing")
    txt = workdir / "gold.txt"
    write_prediction_file(txt, "fewnerd", [x for s in test for x in s.spans], test, PROTOCOLS["ner"])
    blocks = txt.read_text().split("\n\n")
    (workdir / "more.txt").write_text("\n\n".join([*blocks, blocks[0]]))
    fails_cleanly(score_small("ner", workdir / "more.txt"), "sentence 200 is one more than the 200 test sentences")
    (workdir / "fewer.txt").write_text("\n\n".join(blocks[:-2]))
    fails_cleanly(score_small("ner", workdir / "fewer.txt"), "198 sentences where the test split has 200")
    fails_cleanly(score_small("typing", txt), "a fewnerd file finds its own spans")


def test_weak_typing_labels_must_lie_under_the_given_coarse_type(small, workdir):
    test = small.splits["test"]
    sentence = next(s for s in test if any(x.label.startswith("person-") for x in s.spans))
    wrong = [x._replace(label="location-GPE") if x.label.startswith("person-") and x.sentence_id == sentence.id
             else x for s in test for x in s.spans]  # fmt: skip
    path = workdir / "weak.spans.jsonl"
    write_prediction_file(path, "spans", wrong, test, PROTOCOLS["weak-typing"])
    with pytest.raises(Exception, match="not under the gold span's given coarse type 'person'"):
        read_prediction_file(path, PROTOCOLS["weak-typing"], test, small.hierarchy)
    assert read_prediction_file(path, PROTOCOLS["typing"], test, small.hierarchy) == sorted(wrong)


def test_io_and_bio_tags_give_the_entities_they_mean():
    tags = ["O", "person-actor", "person-actor", "B-person-actor", "I-person-actor", "I-art-film", "art-film", "O"]
    assert [s[1:4] for s in tagged_spans(7, tags)] == [
        (1, 3, "person-actor"), (3, 5, "person-actor"), (5, 7, "art-film")
    ]  # fmt: skip
    assert [s[1:4] for s in tagged_spans(0, ["O", "I-art-film", "O", "art-film"])] == [
        (1, 2, "art-film"),
        (3, 4, "art-film"),
    ]
