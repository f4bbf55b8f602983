"""End to end through the CLI: runs on the embedded data, MLflow records, bad input, statuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from benchmark.cli import main
from benchmark.core.data.fewnerd import load_corpus
from benchmark.core.registry import METHODS
from benchmark.run.driver import run_plans
from benchmark.run.plan import RunRequest, plan_run

REPO = Path(__file__).resolve().parents[1]


def runs(uri, experiment):
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    return client, client.search_runs([found.experiment_id]) if found else []


@pytest.mark.parametrize("command", [[], ["list"], ["run"], ["data"]])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: python -m benchmark" in capsys.readouterr().out


def test_list_shows_methods_protocols_datasets(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in [*METHODS.names(), "weak-typing", "fine/weighted_f1", "embedded", "supervised"]:
        assert name in out
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.startswith(("eigproj", "hier-soft"))}
    assert rows["eigproj"] == "paper"  # each setting set with its provenance
    assert rows["hier-soft:one-hot"] == "paper"


def test_data_prints_embedded_split_sizes(capsys):
    assert main(["data"]) == 0
    out = capsys.readouterr().out
    assert "13,111" in out
    assert "1,958" in out
    assert "3,755" in out
    assert "66 fine types" in out
    assert "person-politician" in out


def test_gazetteer_ner_run_is_logged_with_artifacts(workdir, store, capsys):
    assert main(["run", "--method", "gazetteer", "--protocol", "ner", "--bootstrap", "200"]) == 0
    out = capsys.readouterr().out
    assert "fine/micro_f1" in out
    assert "logged to MLflow" in out
    assert "95% CI" in out
    client, found = runs(store, "embedded/ner")
    parent = next(r for r in found if r.data.tags["role"] == "parent")
    child = next(r for r in found if r.data.tags["role"] == "seed")
    assert parent.info.status == child.info.status == "FINISHED"
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    for tag in ("dataset_sha256", "code_version", "evaluator_version", "version.numpy", "run_key"):
        assert child.data.tags[tag]
    assert child.data.tags["dataset_sha256"].startswith("aedfd0cd")
    assert 0.1 < child.data.metrics["fine/micro_f1"] < 0.6
    assert "fine/micro_f1_mean" in parent.data.metrics
    artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
    expected = {"run_config.json", "predictions.jsonl", "per_type.csv", "confusion_fine.png", "metrics.json"}
    assert expected | {"per_type_f1.png", "f1_by_length.png", "by_length.csv", "p_at_k.png"} <= artifacts
    assert child.data.tags["provenance"] == parent.data.tags["provenance"] == "prior"
    assert child.data.tags["regime"] == "frozen"
    run_config = json.loads(Path(client.download_artifacts(child.info.run_id, "run_config.json")).read_text())
    assert run_config["provenance"] == "prior"
    experiment = client.get_experiment_by_name("embedded/ner")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # opens on the runs table
    assert f"#/experiments/{experiment.experiment_id}/runs?workflowType=machine_learning" in out


def test_a_trained_method_logs_learning_curves_and_datasets_and_shows_progress(workdir, store, official_layout,
                                                                               capsys):  # fmt: skip
    """tagger on a small real slice in the official layout: one curve point per epoch in MLflow,
    each split as a dataset input, one plain progress line per epoch (stderr is not a terminal)."""
    layout = official_layout / "supervised"
    argv = [
        "run",
        "--method",
        "tagger",
        "--protocol",
        "ner",
        "--dataset",
        "supervised",
        "--data-dir",
        str(official_layout),
    ]
    argv += ["--no-verify", "--set", "epochs=3", "--set", "patience=3", "--bootstrap", "0"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert [line.split(":")[0] for line in err.splitlines() if line.startswith("tagger epoch")] == [
        "tagger epoch 1/3", "tagger epoch 2/3", "tagger epoch 3/3"
    ]  # fmt: skip
    assert "\r" not in err
    assert "predicting 200 test sentences: " in err
    client, found = runs(store, "supervised/ner")
    child = next(r for r in found if r.data.tags["role"] == "seed")
    history = {key: client.get_metric_history(child.info.run_id, key) for key in ("train/loss", "dev/micro_f1")}
    assert [m.step for m in history["train/loss"]] == [m.step for m in history["dev/micro_f1"]] == [1, 2, 3]
    assert history["train/loss"][0].value > history["train/loss"][-1].value  # it learns
    best = max(history["dev/micro_f1"], key=lambda m: (m.value, -m.step))
    assert child.data.metrics["best_epoch"] == best.step
    inputs = {_context(i): i.dataset for i in child.inputs.dataset_inputs}
    assert set(inputs) == {"train", "dev", "test"}
    corpus = load_corpus("supervised", layout.parent, verify=False)
    for split, dataset in inputs.items():
        assert dataset.name == "few-nerd/supervised"
        assert dataset.digest == corpus.split_sha256(split)[:32]
        assert json.loads(dataset.source)["uri"] == str(layout / f"{split}.txt")
    assert main([*argv, "--quiet", "--force"]) == 0
    assert capsys.readouterr().err == ""


def _context(dataset_input) -> str:
    return next(t.value for t in dataset_input.tags if t.key == "mlflow.data.context")


def test_a_run_with_ad_hoc_settings_is_custom(workdir, store):
    assert main(["run", "--method", "gazetteer", "--protocol", "ner", "--set", "min_entity_ratio=0.5"]) == 0
    assert main(["run", "--method", "gazetteer", "--protocol", "ner", "--variant", "half"]) == 0
    _, found = runs(store, "embedded/ner")
    provenance = {r.data.tags["label"]: r.data.tags["provenance"] for r in found if r.data.tags["role"] == "seed"}
    assert provenance == {"gazetteer [min_entity_ratio=0.5]": "custom", "gazetteer:half": "prior"}


def test_weak_typing_runs_log_no_coarse_scores_their_gold_coarse_types_make_constant(workdir, store):
    assert main(["run", "--method", "random-within-coarse", "--bootstrap", "0", "--quiet"]) == 0
    _, found = runs(store, "embedded/weak-typing")
    (seed,) = [r for r in found if r.data.tags["role"] == "seed"]
    assert "fine/weighted_f1" in seed.data.metrics
    assert not [k for k in seed.data.metrics if k.startswith("coarse/")]


def _run(request: RunRequest):
    return run_plans([plan_run(request)], echo=lambda _: None)[0]


def _scores(metrics: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if not k.startswith(("time/", "features/"))}


def test_same_seed_twice_gives_identical_metrics_and_a_finished_seed_is_skipped(workdir):
    request = RunRequest(method="random-within-coarse", seeds=(3,), resamples=100)
    first = _run(request).results[0]
    again = _run(request)
    assert again.results[0].skipped
    assert again.parent_id is None
    assert again.results[0].run_id == first.run_id
    forced = _run(replace(request, force=True)).results[0]
    assert not forced.skipped
    assert forced.run_id != first.run_id
    assert _scores(forced.metrics) == _scores(first.metrics)
    other = _run(replace(request, seeds=(4,)))
    assert _scores(other.results[0].metrics) != _scores(first.metrics)


def test_run_all_runs_every_method_protocol_and_variant_then_resumes(workdir, capsys):
    args = ["run", "--method", "random-within-coarse", "gazetteer", "--seeds", "1", "--bootstrap", "0"]
    assert main(args) == 0
    out = capsys.readouterr().out
    for row in ("random-within-coarse  weak-typing", "gazetteer             typing", "gazetteer:half        ner"):
        assert row in out
    assert out.count("1 run, 0 skipped") == 5  # gazetteer: defaults and variant half on ner and typing
    assert main(args) == 0
    assert capsys.readouterr().out.count("0 run, 1 skipped") == 5


def test_comparison_covers_variants():
    from benchmark.run.plan import comparison_requests

    requests = comparison_requests(["label-name"], None, RunRequest(method="all"))
    assert [(r.method, r.protocol, r.variant) for r in requests] == [
        ("label-name", "weak-typing", None),
        ("label-name", "weak-typing", "described"),
        ("label-name", "weak-typing", "readable"),
    ]
    everything = comparison_requests(["all"], "ner", RunRequest(method="all"))
    assert {r.method for r in everything} == {"gazetteer", "tagger", "span-bilstm-attn", "hier-soft", "cofee"}
    # a variant whose settings cannot work under a protocol is not run there
    cofee = {(r.protocol, r.variant) for r in comparison_requests(["cofee"], None, RunRequest(method="all"))}
    assert ("ner", "supervised") in cofee
    assert ("weak-typing", "no-fet") in cofee
    assert ("weak-typing", "supervised") not in cofee
    assert ("weak-typing", "no-pretrain") not in cofee


def test_a_comparison_runs_5_seeds_of_a_frozen_row_and_3_of_a_fine_tuned_one():
    from benchmark.run.plan import plan_comparison

    plans = {(p.label, p.protocol.name): p.seeds for p in plan_comparison(["tagger"], "ner", RunRequest(method="all"))}
    assert plans[("tagger", "ner")] == (1, 2, 3, 4, 5)
    assert plans[("tagger:finetune", "ner")] == (1, 2, 3)
    chosen = plan_comparison(["tagger"], "ner", RunRequest(method="all"), seeds=[7, 8])
    assert {p.seeds for p in chosen} == {(7, 8)}  # --seeds applies to every row
    # a training-free row's seed changes nothing: once; episode rows read INTER, not the embedded split
    episodes = {p.label: p for p in plan_comparison(["protobert", "structshot"], None, RunRequest(method="all"))}
    assert {label: p.seeds for label, p in episodes.items()} == {
        "protobert": (1,), "protobert:meta": (1, 2, 3, 4, 5), "structshot": (1,),
    }  # fmt: skip
    assert {p.source.dataset for p in episodes.values()} == {"inter"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "gazeteer"], "unknown method 'gazeteer' (did you mean 'gazetteer'?); choose one of: gazetteer"),
        (["--method", "gazetteer", "--protocol", "nerd"], "unknown protocol 'nerd'; choose one of: weak-typing"),
        (
            ["--method", "gazetteer", "--protocol", "weak-typing"],
            "does not support protocol 'weak-typing'; it supports",
        ),
        (["--method", "gazetteer", "--dataset", "wiki"], "unknown dataset 'wiki'; choose one of: embedded"),
        (["--method", "gazetteer", "--set", "min_entity_ratio=2"], "min_entity_ratio must lie in [0, 1]"),
        (["--method", "gazetteer", "--set", "colour=red"], "'colour' is not a setting of this method"),
        (["--method", "gazetteer", "--set", "min_entity_ratio"], "expected key=value"),
        (["--method", "gazetteer", "--seeds", "-1"], "--seeds: -1 is not a seed; seeds run from 0 to 2**32 - 1"),
        (["--method", "gazetteer", "--config", "missing.toml"], "missing.toml: cannot read config file"),
        (["--method", "gazetteer", "--dataset", "supervised"], "has no 'train' split"),
        (["--method", "label-name", "--variant", "fancy"], "has no variant 'fancy'; its variants: described, readable"),
        (["--method", "all", "--set", "k=3"], "--variant, --set and --config apply to one method"),
        (["--method", "label-name", "tagger", "--protocol", "ner"], "'label-name' does not support protocol 'ner'"),
        (["--method", "label-name", "--set", "encoder.name=minlm"], "unknown encoder 'minlm' (did you mean 'minilm'?)"),
        (["--method", "label-name", "--set", "encoder=minilm"], "'encoder' is a group of settings: set 'encoder.name'"),
        (["--method", "tagger", "--set", "layer=4"], "--set: 'layer' is now 'encoder.layer'"),
        (["--method", "eigproj", "--set", "tagger_hidden=512"], "--set: 'tagger_hidden' is now 'tagger.hidden'"),
        (["--method", "tagger", "--set", "coarse=true"], "coarse=true predicts coarse types"),
        (["--method", "tagger", "--set", "encoder.name=glove-50d", "--set", "mode=finetune"], "needs a transformer"),
        (["--method", "span-bilstm-attn", "--set", "max_span_length=0"], "max_span_length must be at least 1 token"),
        (["--method", "span-bilstm-attn", "--set", "encoder.name=minilm"], "features=static needs static word vectors"),
        (["--method", "hier-soft", "--set", "beta=1.5"], "beta must lie in [0, 1], got 1.5"),
        (["--method", "hier-soft", "--set", "weights=nowhere.csv"], "'hierarchy', 'confusion' or a CSV file of W"),
        (["--method", "cofee", "--set", "clusters=1"], "clusters (K) must be at least 2, got 1"),
        (["--method", "cofee", "--set", "delta=1"], "delta (the self-picking threshold δ) must lie in (0, 1), got 1"),
        (["--method", "cofee", "--set", "delta=0"], "must lie in (0, 1), got 0"),
        (["--method", "cofee", "--set", "gazetteer.fraction=0"], "gazetteer: fraction=0 keeps no dictionary strings"),
        (
            ["--method", "cofee", "--protocol", "weak-typing", "--variant", "supervised"],
            "setting=supervised fine-tunes on fine labels, which 'weak-typing' does not give",
        ),
    ],
)
def test_bad_input_gives_one_clear_error_and_writes_nothing(args, message, fails_cleanly):
    fails_cleanly(["run", *args], message)


def test_malformed_data_file_names_file_and_line(workdir, capsys):
    layout = workdir / "data" / "supervised"
    layout.mkdir(parents=True)
    for split in ("train", "dev", "test"):
        (layout / f"{split}.txt").write_text("Paris\tlocation-GPE\nis\tO\n\nBad line here\n")
    assert main(["run", "--method", "gazetteer", "--dataset", "supervised", "--data-dir", "data"]) == 2
    assert "checksum mismatch with the official Few-NERD file" in capsys.readouterr().err
    argv = ["run", "--method", "gazetteer", "--dataset", "supervised", "--data-dir", "data", "--no-verify"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "supervised/train.txt:4: expected 'token<TAB>label'" in err
    assert not (workdir / "mlflow.db").exists()


@pytest.mark.parametrize(
    ("error", "status", "code"), [(KeyboardInterrupt, "KILLED", 130), (RuntimeError, "FAILED", None)]
)
def test_interrupted_or_failed_runs_are_marked(error, status, code, workdir, store, monkeypatch):
    cls = METHODS.get("random-within-coarse")

    def broken_fit(self, train, dev, ctx):
        raise error("stop")

    monkeypatch.setattr(cls, "fit", broken_fit)
    if code is None:
        with pytest.raises(error):
            main(["run", "--method", "random-within-coarse"])
    else:
        assert main(["run", "--method", "random-within-coarse"]) == code
    _, found = runs(store, "embedded/weak-typing")
    assert {r.info.status for r in found} == {status}
    assert len(found) == 2  # parent and its one seed


@pytest.mark.slow
def test_two_runs_started_together_on_a_fresh_store_are_both_recorded(workdir, store):
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "benchmark", "run", "--method", "random-within-coarse", "--bootstrap", "50"]
    processes = [
        subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    results = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], results
    _, found = runs(store, "embedded/weak-typing")
    assert len(found) == 4
    assert {r.info.status for r in found} == {"FINISHED"}
