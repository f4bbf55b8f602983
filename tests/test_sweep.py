"""`benchmark sweep`: dev-only selection, its MLflow record, coarse-blind weak-typing scoring, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from benchmark.cli import main
from benchmark.core.data.fewnerd import Corpus
from benchmark.core.errors import DataError
from benchmark.core.labels import coarse_of
from benchmark.core.registry import PROTOCOLS
from benchmark.run.seed import BLIND, blind_score, dev_scoring
from benchmark.run.sweep import parse_grid


@pytest.fixture
def no_test_split(monkeypatch):
    """The test split raises if anything asks for it: a sweep must never touch it."""
    split = Corpus.split

    def guarded(self, name):
        if name == "test":
            raise DataError("a sweep asked for the test split")
        return split(self, name)

    monkeypatch.setattr(Corpus, "split", guarded)


def test_sweep_scores_dev_only_logs_parent_and_children_and_resumes(workdir, store, no_test_split, capsys):
    args = ["sweep", "--method", "gazetteer", "--protocol", "ner", "--grid", "min_entity_ratio=0,0.5"]
    assert main([*args, "--seeds", "1", "2"]) == 0
    out = capsys.readouterr().out
    assert "scored on dev only (fine/micro_f1)" in out
    assert "selected: min_entity_ratio=" in out
    assert "provenance: dev" in out
    assert "try it:   python -m benchmark run --method gazetteer --protocol ner --set min_entity_ratio=" in out
    assert "rank it:  declare it in the method's `variants` as Settings('dev', why, {'min_entity_ratio':" in out
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("embedded/ner/sweeps")
    found = client.search_runs([experiment.experiment_id])
    parents = [r for r in found if r.data.tags["role"] == "sweep"]
    children = [r for r in found if r.data.tags["role"] == "sweep-point"]
    assert len(parents) == 1
    assert len(children) == 4  # 2 points x 2 seeds
    assert all(r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for r in children)
    assert all(r.info.status == "FINISHED" for r in found)
    for run in children:
        assert run.data.params["min_entity_ratio"] in ("0.0", "0.5")
        scores = [k for k in run.data.metrics if not k.startswith(("time/", "features/", "method/"))]
        assert scores
        assert all(k.startswith("dev/") for k in scores)  # nothing scored on test
        assert 0.05 < run.data.metrics["dev/fine/micro_f1"] < 0.6
    points = client.download_artifacts(parents[0].info.run_id, "points.json")
    assert sorted(len(p["runs"]) for p in json.loads(Path(points).read_text())) == [2, 2]
    assert parents[0].data.tags["selected"] in ('{"min_entity_ratio": 0.0}', '{"min_entity_ratio": 0.5}')
    assert client.get_experiment_by_name("embedded/ner") is None  # no `run` records either

    assert main([*args, "--seeds", "1", "2"]) == 0  # everything finished before: nothing refitted
    assert capsys.readouterr().err.count("finished before") == 4


def test_weak_typing_sweep_withholds_the_coarse_type_and_scores_coarse_labels_only(small):
    protocol = PROTOCOLS["weak-typing"]
    dev = small.splits["dev"]
    dev_view = protocol.train_view(dev, "dev", small.hierarchy)  # coarse labels only
    view, gold = dev_scoring(protocol, True, dev, dev_view, small.hierarchy)
    spans = [s for e in view.examples for s in e.spans]
    assert spans
    assert all(s.label is None for s in spans)
    assert all(e.labels is None for e in view.examples)
    assert {s.label for s in gold} <= set(small.hierarchy.coarse_types)  # gold: coarse types, no fine label
    right = [s._replace(label=small.hierarchy.fines_of(g.label)[-1]) for s, g in zip(spans, gold, strict=True)]
    assert blind_score(right, gold, [len(s.tokens) for s in dev], small.hierarchy)[f"{BLIND}/accuracy"] == 1.0
    other = {c: next(f for f in small.hierarchy.fine_types if coarse_of(f) != c) for c in small.hierarchy.coarse_types}
    wrong = [s._replace(label=other[g.label]) for s, g in zip(spans, gold, strict=True)]
    assert blind_score(wrong, gold, [len(s.tokens) for s in dev], small.hierarchy)[f"{BLIND}/accuracy"] == 0.0


def test_grid_from_options_and_file(tmp_path):
    grid_file = tmp_path / "grid.toml"
    grid_file.write_text('k = [5, 10]\nlabel_names = ["raw", "readable"]\n[tagger]\nhidden = [0, 512]\n')
    assert parse_grid(["encoder.layer=2,3", "pca=joint"], grid_file) == {
        "k": [5, 10],
        "label_names": ["raw", "readable"],
        "tagger.hidden": [0, 512],
        "encoder.layer": [2, 3],
        "pca": ["joint"],
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "tagger", "--protocol", "ner", "--grid", "layr=2,3"], "--grid: 'layr' is not a setting"),
        (["--method", "tagger", "--protocol", "ner", "--grid", "layer=-1,3"], "--grid: 'layer' is now 'encoder.layer'"),
        (
            ["--method", "tagger", "--protocol", "ner", "--grid", "encoder.layer=2,x"],
            "--grid: encoder.layer: expected int, got 'x'",
        ),
        (["--method", "tagger", "--protocol", "ner"], "the grid is empty"),
        (["--method", "tagger", "--protocol", "ner", "--grid", "encoder.layer="], "expected key=value1,value2"),
        (
            ["--method", "tagger", "--protocol", "ner", "--grid", "encoder.layer=2,2"],
            "--grid encoder.layer: a value is repeated",
        ),
        (
            ["--method", "tagger", "--protocol", "ner", "--grid", "encoder.layer=2", "--grid", "encoder.layer=3"],
            "given twice",
        ),
        (
            ["--method", "tagger", "--protocol", "ner", "--grid", "encoder.layer=2", "--metric", "errors/span_fp"],
            "--metric 'errors/span_fp' is not produced",
        ),
        (
            ["--method", "tagger", "--protocol", "ner", "--grid", "encoder.layer=2,3", "--oracle"],
            "--oracle is not needed under 'ner': its dev split already carries the fine labels",
        ),
        (
            ["--method", "label-name", "--grid", "label_names=raw,readable", "--metric", "fine/weighted_f1"],
            "--metric 'fine/weighted_f1' is not produced by coarse-blind dev scoring",
        ),
        (
            ["--method", "tagger", "--protocol", "ner", "--grid", "encoder.layer=2", "--metric", "f1"],
            "--metric 'f1' is not",
        ),
        (["--method", "gazetteer", "--protocol", "weak-typing", "--grid", "fraction=1"], "does not support protocol"),
        (["--method", "tagger", "--grid", "coarse=true"], "coarse=true predicts coarse types"),
    ],
)
def test_bad_sweep_input_gives_one_clear_error_and_logs_nothing(args, message, fails_cleanly):
    fails_cleanly(["sweep", *args], message)


@pytest.mark.parametrize(
    ("method", "variant", "grid", "provenance"),
    [
        ("span-bilstm-attn", "contextual", "encoder.layer=3,4", "dev"),  # re-derives the layer the oracle variant took
        ("eigproj", "test-picked", "k=10,20", "oracle"),  # its pca, similarity and label texts stay test-picked
        ("eigproj", None, "k=10,20", "dev"),
        ("tagger", "layer3-mlp", "encoder.layer=3,4", "oracle"),  # its hidden size stays test-picked
        ("tagger", "layer3-mlp", "encoder.layer=3,4 hidden=0,512", "dev"),
    ],
)
def test_a_sweep_from_an_oracle_base_is_dev_only_if_it_redoes_what_was_chosen_on_test(
    method, variant, grid, provenance
):
    from benchmark.run.sweep import SweepRequest, plan_sweep

    request = SweepRequest(method, grid=tuple(grid.split()), variant=variant)
    assert plan_sweep(request).provenance == provenance
