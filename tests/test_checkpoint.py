"""`checkpoint`: any local token-classification checkpoint scored as a row, on tiny random
checkpoints written here with the offline MiniLM tokenizer (no hub)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_tiny_checkpoint
from mlflow.tracking import MlflowClient

from benchmark.cli import main
from benchmark.core.cache import FeatureCache
from benchmark.core.config import resolve_config
from benchmark.core.errors import BenchmarkError, ConfigError
from benchmark.core.fit import fit_predict
from benchmark.core.labels import FEWNERD_FINE_TYPES
from benchmark.core.registry import PROTOCOLS
from benchmark.core.spans import Span
from benchmark.run.driver import identity_tags
from benchmark.run.plan import RunRequest, comparison_requests, plan_run
from benchmark.run.provenance import code_fingerprint, package_versions, row_fingerprint
from methods.checkpoint.method import (
    Checkpoint,
    CheckpointConfig,
    LabelScheme,
    choose_subwords,
    decode_words,
    inspect_checkpoint,
    map_labels,
)

IO = ["O", *FEWNERD_FINE_TYPES]
BIO = ["O", *(f"{p}-{t}" for t in FEWNERD_FINE_TYPES for p in "BI")]
FOREIGN = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


@pytest.fixture
def one_thread():
    """Torch on one thread, as `BENCHMARK_THREADS=1` asks (a tiny model on two busy cores spends
    its time waiting for the other thread); the thread count is restored afterwards."""
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BENCHMARK_THREADS", "1")
        yield
    torch.set_num_threads(threads)


def _fit_predict(settings: list[str], views, tmp_path: Path) -> tuple[list[Span], dict[str, float]]:
    train, dev, test = views("ner")
    config = resolve_config(Checkpoint.Config, None, settings)
    scratch = Path(tempfile.mkdtemp(dir=tmp_path))
    return fit_predict(Checkpoint(config), PROTOCOLS["ner"], (train, dev), test, 1, FeatureCache(), scratch)


def test_a_tiny_checkpoint_scores_end_to_end_through_run(workdir, store, tiny_checkpoint, one_thread, capsys):
    folder = tiny_checkpoint(IO)
    argv = ["run", "--method", "checkpoint", "--protocol", "ner", "--set", f"model={folder}", "--bootstrap", "0"]
    assert main([*argv, "--cache-dir", str(workdir / "cache"), "--quiet"]) == 0
    assert "fine/micro_f1" in capsys.readouterr().out
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("embedded/ner")
    found = client.search_runs([experiment.experiment_id])
    parent = next(r for r in found if r.data.tags["role"] == "parent")
    seed = next(r for r in found if r.data.tags["role"] == "seed")
    assert parent.info.status == seed.info.status == "FINISHED"
    assert seed.data.tags["method"] == "checkpoint"
    assert seed.data.tags["provenance"] == seed.data.tags["regime"] == parent.data.tags["provenance"] == "external"
    assert seed.data.params["model"] == str(folder)
    assert seed.data.metrics["method/windows"] > 3755  # every test sentence, the long ones in several windows
    assert seed.data.metrics["method/windowed_sentences"] > 0
    assert seed.data.metrics["n_predicted"] > 0
    artifacts = {a.path for a in client.list_artifacts(seed.info.run_id)}
    assert {"predictions.jsonl", "run_config.json", "method"} <= artifacts
    loaded = json.loads(Path(client.download_artifacts(seed.info.run_id, "method/checkpoint.json")).read_text())
    assert loaded["folder"] == str(folder.resolve())
    assert set(loaded["files"]) == {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}
    assert loaded["labels"]["location-GPE"] == "location-GPE"
    assert loaded["scheme"] == "IO"
    assert (loaded["max_length"], loaded["stride"]) == (40, 19)  # the model's limit; half of its 38 word slots


def _widened(folder: Path, out: Path, positions: int = 512) -> Path:
    """The same weights with a longer (all-zero) position table: a model that reads whole sentences."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    narrow = AutoModelForTokenClassification.from_pretrained(folder)
    config = narrow.config
    config.max_position_embeddings = positions
    wide = type(narrow)(config)
    state = {k: v for k, v in narrow.state_dict().items() if "position" not in k}
    wide.load_state_dict(state, strict=False)
    with torch.no_grad():
        wide.bert.embeddings.position_embeddings.weight.zero_()
    wide.save_pretrained(out)
    AutoTokenizer.from_pretrained(folder).save_pretrained(out)
    return out


def test_long_sentences_are_windowed_and_read_as_a_single_window_reads_them(views, tmp_path, one_thread):
    """A context-free model's logits depend on the token alone, so whatever the windows, each word
    must get the label and score the whole sentence gives its first sub-word."""
    narrow = write_tiny_checkpoint(tmp_path / "narrow", IO, context_free=True)
    wide = _widened(narrow, tmp_path / "wide")
    whole, metrics = _fit_predict([f"model={wide}"], views, tmp_path)
    assert metrics["method/windows"] == len(views("ner")[2].examples)  # one window a sentence
    for stride in ("none", "0", "7"):
        windowed, metrics = _fit_predict([f"model={narrow}", f"stride={stride}", "batch_size=16"], views, tmp_path)
        assert metrics["method/windowed_sentences"] > 20
        assert [s[:4] for s in windowed] == [s[:4] for s in whole]
        assert np.allclose([s.score for s in windowed], [s.score for s in whole], atol=1e-5)


def test_each_word_is_read_at_its_first_subword_where_it_lies_farthest_from_a_cut(tiny_checkpoint):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint(IO))
    words = ["Hello", "unbelievablyness", "world", "antidisestablishmentarianism", "a", "b", "c", "Xylophonic", "d"]
    for stride in (0, 1, 2, 3):
        encoded = tokenizer(
            [words], is_split_into_words=True, truncation=True, max_length=8, stride=stride,
            return_overflowing_tokens=True, return_offsets_mapping=True,
        )  # fmt: skip
        windows = [encoded.word_ids(k) for k in range(len(encoded["input_ids"]))]
        assert len(windows) > 3
        chosen = choose_subwords(windows, stride)
        assert sorted(chosen) == list(range(len(words)))
        for word, place in chosen.items():
            # every place of the word's first sub-word (offset 0 in its word), with its distance from a cut
            margins = {}
            for k, ids in enumerate(windows):
                content = [t for t, w in enumerate(ids) if w is not None]
                for i, t in enumerate(content):
                    if ids[t] == word and encoded["offset_mapping"][k][t][0] == 0:
                        left = i if k > 0 else np.inf
                        right = len(content) - 1 - i if k < len(windows) - 1 else np.inf
                        margins[(k, t)] = min(left, right)
            assert margins[place] == max(margins.values())
            assert place == min(p for p, m in margins.items() if m == margins[place])  # ties: the earlier window
    assert choose_subwords([[None, 0, 1, 1, 2, None]], 3) == {0: (0, 1), 1: (0, 2), 2: (0, 4)}
    # two windows sharing 2 sub-words: words 2 and 3 lie in both, each read where it is farther from the cut
    windows = [[None, 0, 1, 1, 2, 3, None], [None, 2, 3, 4, 5, 5, None]]
    assert choose_subwords(windows, 2) == {0: (0, 1), 1: (0, 2), 2: (0, 4), 3: (1, 2), 4: (1, 3), 5: (1, 4)}
    with pytest.raises(RuntimeError, match="do not overlap by 1 sub-words"):
        choose_subwords(windows, 1)


def _scheme(names: list[str]) -> LabelScheme:
    return map_labels(names, FEWNERD_FINE_TYPES, {"PER": "person-other", "LOC": "location-GPE", "MISC": "O"})


def test_io_and_bio_labels_decode_into_spans_scored_by_their_types_probability():
    io = _scheme(["O", "person-other", "location-GPE"])
    probabilities = np.array([
        [0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.6, 0.3], [0.3, 0.2, 0.5], [0.9, 0.05, 0.05], [0.1, 0.1, 0.8],
    ])  # fmt: skip
    spans = decode_words(7, probabilities, io)
    assert [s[:4] for s in spans] == [(7, 1, 3, "person-other"), (7, 3, 4, "location-GPE"), (7, 5, 6, "location-GPE")]
    assert [round(s.score, 6) for s in spans] == [0.65, 0.5, 0.8]
    assert io.scheme == "IO"
    # BIO: B- begins, I- continues its own type, else begins one; MISC is mapped to O
    bio = _scheme(["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-MISC", "I-MISC"])
    tags = ["B-PER", "I-PER", "B-PER", "I-LOC", "I-LOC", "O", "I-PER", "B-MISC", "B-LOC"]
    probabilities = np.full((len(tags), 7), 0.05)
    for word, tag in enumerate(tags):
        probabilities[word, bio.names.index(tag)] = 0.7
    spans = decode_words(0, probabilities, bio)
    assert [s[1:4] for s in spans] == [
        (0, 2, "person-other"), (2, 3, "person-other"), (3, 5, "location-GPE"), (6, 7, "person-other"),
        (8, 9, "location-GPE"),
    ]  # fmt: skip
    assert spans[0].score == pytest.approx(0.75)  # B-PER and I-PER both count for person-other
    assert bio.scheme == "BIO"
    assert bio.mapping()["B-MISC"] == "O"
    # a word without a sub-word ends the entity around it
    covered = np.array([True, False, True, True, True, True, True, True, True])
    assert [s[1:3] for s in decode_words(0, probabilities, bio, covered)][:2] == [(0, 1), (2, 3)]
    assert decode_words(0, np.zeros((0, 7)), bio) == []


def test_labels_are_read_after_their_prefix_up_to_case_and_the_rest_are_named_in_one_error():
    scheme = map_labels(["O", "S-person-politician", "E-location-gpe", "U-art-film"], FEWNERD_FINE_TYPES, {})
    assert scheme.types == (None, "person-politician", "location-GPE", "art-film")
    assert scheme.prefixes == ("", "S", "E", "U")
    with pytest.raises(ConfigError) as error:
        map_labels(FOREIGN, FEWNERD_FINE_TYPES, {"MISC": "O"}, "map.toml")
    assert "labels PER, LOC are not Few-NERD's (not in the label map map.toml either)" in str(error.value)
    assert "--set labels=FILE" in str(error.value)


def test_a_checkpoint_whose_labels_cannot_be_mapped_fails_cleanly_and_a_label_map_fixes_it(
    fails_cleanly, workdir, views, tmp_path, one_thread
):
    folder = write_tiny_checkpoint(tmp_path / "conll", FOREIGN)
    fails_cleanly(
        ["run", "--method", "checkpoint", "--set", f"model={folder}"],
        "the checkpoint's labels PER, LOC, MISC are not Few-NERD's: map each to a fine type or O in a TOML file",
    )
    labels = workdir / "conll.toml"
    labels.write_text('PER = "person-other"\nLOC = "location-GPE"\nMISC = "organization"\n')
    fails_cleanly(
        ["run", "--method", "checkpoint", "--set", f"model={folder}", "--set", f"labels={labels}"],
        '"MISC" = \'organization\' is not a Few-NERD fine type or "O"',
    )
    labels.write_text('PER = "person-other"\nLOC = "location-GPE"\nMISC = "O"\n')
    predictions, _ = _fit_predict([f"model={folder}", f"labels={labels}"], views, tmp_path)
    assert {s.label for s in predictions} == {"person-other", "location-GPE"}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ([], "checkpoint needs a model: --set model=PATH"),
        (["model=./no/such/folder"], "model './no/such/folder': no such folder, and no Hugging Face checkpoint"),
        (["model=MODEL", "provenance=prior"], "provenance=prior needs why"),
        (["model=MODEL", "provenance=prior", "why=ours"], "needs regime=frozen or regime=finetuned"),
        (["model=MODEL", "regime=frozen"], "why and regime go with a declared provenance"),
        (["model=MODEL", "provenance=oracle"], "provenance must be external (the default) or a declared paper"),
        (["model=MODEL", "stride=38"], "stride 38 must be below the 38 sub-words a window holds"),
        (["model=MODEL", "max_length=64"], "max_length 64 exceeds the model's limit of 40 sub-words"),
        (["model=MODEL", "labels=missing.toml"], "missing.toml: cannot read the label map"),
    ],
)
def test_bad_settings_give_one_clear_error_and_write_nothing(settings, message, fails_cleanly, tiny_checkpoint,
                                                              monkeypatch):  # fmt: skip
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = str(tiny_checkpoint(IO))
    words = [w for s in settings for w in ("--set", s.replace("MODEL", folder))]
    fails_cleanly(["run", "--method", "checkpoint", *words], message)


def test_the_row_is_external_unless_declared_and_never_in_a_whole_comparison(tiny_checkpoint):
    folder = tiny_checkpoint(BIO)
    plan = plan_run(RunRequest("checkpoint", settings=(f"model={folder}",)))
    assert (plan.provenance, plan.regime, plan.protocol.name) == ("external", "external", "ner")
    assert plan.label == f"checkpoint [model={folder}]"
    declared = (f"model={folder}", "provenance=prior", "why='trained on our train split'", "regime=finetuned")
    plan = plan_run(RunRequest("checkpoint", settings=declared))
    assert (plan.provenance, plan.regime) == ("prior", "finetuned")
    assert "checkpoint" not in {r.method for r in comparison_requests(["all"], None, RunRequest(method="all"))}


def test_the_run_key_changes_when_the_checkpoints_files_do(tmp_path, small):
    folder = write_tiny_checkpoint(tmp_path / "model", IO)
    labels = tmp_path / "labels.toml"
    labels.write_text('"person-other" = "person-other"\n')
    plan = plan_run(RunRequest("checkpoint", settings=(f"model={folder}", f"labels={labels}")))
    before = row_fingerprint(plan)
    assert before != code_fingerprint(plan.method_cls.__module__, plan.protocol)
    assert identity_tags(plan, small, package_versions())["code_sha256"] == before  # what the run key holds
    write_tiny_checkpoint(folder, IO, seed=1)  # retrained in place: same path, same settings
    retrained = row_fingerprint(plan)
    assert retrained != before
    labels.write_text('"person-other" = "person-politician"\n')
    assert row_fingerprint(plan) != retrained
    # a method without the hook keeps exactly its code fingerprint
    gazetteer = plan_run(RunRequest("gazetteer", "ner"))
    assert row_fingerprint(gazetteer) == code_fingerprint(gazetteer.method_cls.__module__, gazetteer.protocol)


def test_a_checkpoint_runs_one_seed_and_a_roberta_like_model_keeps_to_its_positions(tiny_checkpoint, tmp_path):
    folder = tiny_checkpoint(["O", *FEWNERD_FINE_TYPES])
    with pytest.raises(BenchmarkError, match="would repeat the same predictions"):
        plan_run(RunRequest("checkpoint", "ner", seeds=(1, 2), settings=(f"model={folder}",)))
    roberta = tmp_path / "roberta"
    shutil.copytree(folder, roberta)
    config = json.loads((roberta / "config.json").read_text())
    config.update(model_type="roberta", architectures=["RobertaForTokenClassification"], pad_token_id=1)
    config["max_position_embeddings"] = 42  # positions 2 … 41: 40 tokens
    (roberta / "config.json").write_text(json.dumps(config))
    assert inspect_checkpoint(CheckpointConfig(model=str(roberta))).max_length == 40
    assert inspect_checkpoint(CheckpointConfig(model=str(folder))).max_length == 40  # BERT: all 40 positions
