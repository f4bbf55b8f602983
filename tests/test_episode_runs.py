"""The ``episodes`` protocol end to end: Few-NERD's metric on hand-built episodes, CIs over
episodes, the protocol's checks, and `run --protocol episodes` on the shipped INTER test split."""

from __future__ import annotations

import dataclasses
import json

import mlflow.artifacts
import pytest
import torch
from mlflow.tracking import MlflowClient

from benchmark.cli import main
from benchmark.core.cache import FeatureCache
from benchmark.core.data.fewnerd import load_corpus, make_sentence
from benchmark.core.episodes import QUERY_SHOTS, SETTINGS, Episode, EpisodeSetting, sample_episodes, write_episode_file
from benchmark.core.episodic import metric_prefix
from benchmark.core.errors import DataError, ProtocolViolation
from benchmark.core.labels import FEWNERD
from benchmark.core.method import Context
from benchmark.core.registry import METHODS, PROTOCOLS
from benchmark.core.spans import Span
from benchmark.run.episodes import meta_training, score_episodes
from benchmark.run.published import read_run, write_run
from methods.protobert.method import README_BATCH, MetaSettings, ProtoBERT, ProtoConfig

EPISODES = PROTOCOLS["episodes"]
SETTING = EpisodeSetting(2, 1)


def _sentence(labels: list[str]):
    return make_sentence(0, [f"w{i}" for i in range(len(labels))], labels)


def _view(episodes):
    return EPISODES.episode_view([(SETTING, episodes)], FEWNERD)


def test_few_nerds_metric_sums_counts_over_every_query_set_of_every_episode():
    actor, gpe = "person-actor", "location-GPE"
    support = (_sentence([actor, "O", gpe]),)
    a = Episode((actor, gpe), support, (_sentence([actor, actor, "O", "O"]),))  # one gold span
    b = Episode((actor, gpe), support, (_sentence([gpe, "O", actor, "O"]), _sentence(["O", gpe, "O", "O"])))
    view, gold = _view([a, b])
    assert [e.id for e in view.examples] == [0, 1, 2]
    predictions = [Span(0, 0, 2, actor), Span(1, 0, 1, actor), Span(2, 1, 2, gpe)]  # right, wrong type, right
    metrics = score_episodes(view, gold, predictions, FEWNERD, resamples=0)
    prefix = metric_prefix(SETTING)
    # summed: 2 right of 3 predicted and 4 gold (not the mean of episode A's 1.0 and B's 0.5 precision)
    assert metrics[f"{prefix}/fine/micro_precision"] == pytest.approx(2 / 3)
    assert metrics[f"{prefix}/fine/micro_recall"] == pytest.approx(2 / 4)
    assert metrics[f"{prefix}/fine/micro_f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    # Few-NERD's error analysis: no token predicted outside gold; one gold token (B's actor) missed, of 12;
    # of 3 spans with right boundaries one is typed into another coarse type (outer), none within
    assert metrics[f"{prefix}/fewnerd/fp_rate"] == 0
    assert metrics[f"{prefix}/fewnerd/fn_rate"] == pytest.approx(1 / 12)
    assert metrics[f"{prefix}/fewnerd/outer_rate"] == pytest.approx(1 / 3)
    assert metrics[f"{prefix}/fewnerd/within_rate"] == 0
    assert metrics["avg/fine/micro_f1"] == metrics[f"{prefix}/fine/micro_f1"]  # one setting: its own


def test_the_interval_resamples_whole_episodes():
    actor = "person-actor"
    support = (_sentence([actor, "O"]),)
    # every episode holds one right and one missed entity: resampling episodes cannot move the score,
    # resampling their sentences would
    episode = Episode((actor, "location-GPE"), support, (_sentence([actor, "O"]), _sentence(["O", actor])))
    view, gold = _view([episode] * 20)
    predictions = [Span(i, 0, 1, actor) for i in range(0, 40, 2)]
    metrics = score_episodes(view, gold, predictions, FEWNERD, resamples=200)
    key = f"{metric_prefix(SETTING)}/fine/micro_recall"
    assert metrics[key] == metrics[f"{key}_ci_low"] == metrics[f"{key}_ci_high"] == 0.5


def test_a_span_typed_outside_its_episode_is_refused():
    actor, gpe = "person-actor", "location-GPE"
    episode = Episode((actor, gpe), (_sentence([actor, gpe]),), (_sentence([actor, "O"]),))
    view, _ = _view([episode])
    assert EPISODES.validate([Span(0, 0, 1, gpe)], view)
    with pytest.raises(ProtocolViolation, match="outside its episode"):
        EPISODES.validate([Span(0, 0, 1, "art-film")], view)


def test_run_scores_every_setting_on_sampled_or_official_episodes_and_skips_them_after(workdir, store, capsys):
    argv = ["run", "--method", "nnshot", "--protocol", "episodes", "--dataset", "inter", "--episodes", "3", "-q"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Few-NERD's episode metric" in out
    assert all(setting.name in out for setting in SETTINGS)
    client = MlflowClient(store)
    (run,) = client.search_runs([client.get_experiment_by_name("inter/episodes").experiment_id], "tags.role = 'seed'")
    for setting in SETTINGS:
        prefix = metric_prefix(setting)
        assert 0 <= run.data.metrics[f"{prefix}/fine/micro_f1"] <= 1
        assert run.data.metrics[f"{prefix}/fine/micro_f1_ci_low"] <= run.data.metrics[f"{prefix}/fine/micro_f1"]
        assert len(run.data.tags[f"episodes/{prefix}"]) == 64  # the episode set's sha256
    assert run.data.tags["episodes/source"] == "episodes=3,sampler_seed=0"
    record = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/episodes.json")
    assert record["source"] == {"sampled": {"seed": 0, "count": 3}}
    assert record["settings"][metric_prefix(SETTINGS[3])] | {"sha256": ""} == {
        "setting": "10-way-5~10-shot", "episodes": 3, "sha256": "", "sampler_seed": 3, "query_shots": 1,
    }  # fmt: skip
    assert main(argv) == 0
    assert "every seed had finished before" in capsys.readouterr().out
    # the same episodes written as Few-NERD's official files are read instead of sampled, as another run
    test = load_corpus("inter", splits=("test",)).split("test")
    folder = workdir / "episode-data"
    folder.mkdir()
    for i, setting in enumerate(SETTINGS):
        write_episode_file(folder / f"test_{setting.n}_{setting.k}.jsonl", sample_episodes(test, setting, 3, seed=i))
    assert main([*argv[:-3], "--episode-dir", str(folder), "-q"]) == 0
    runs = client.search_runs([run.info.experiment_id], "tags.role = 'seed'")
    assert len(runs) == 2
    official = next(r for r in runs if r.info.run_id != run.info.run_id)
    assert (
        official.data.tags[f"episodes/{metric_prefix(SETTINGS[0])}"]
        == run.data.tags[f"episodes/{metric_prefix(SETTINGS[0])}"]
    )  # the same episodes: the same sha256


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--episodes", "0"], "--episodes: 0 is not a number of episodes"),
        (["--episode-dir", "nowhere"], "no official episode file"),
        (["--method", "protobert", "--protocol", "ner"], "does not support protocol 'ner'"),
    ],
)
def test_bad_episode_requests_get_one_error_and_log_nothing(options, message, fails_cleanly):
    argv = ["run", "--method", "nnshot", "--protocol", "episodes", "--dataset", "inter", *options]
    fails_cleanly(argv, message)


def test_a_malformed_official_file_is_refused_before_anything_is_logged(workdir, fails_cleanly):
    folder = workdir / "episode-data"
    folder.mkdir()
    for setting in SETTINGS:
        (folder / f"test_{setting.n}_{setting.k}.jsonl").write_text('{"support": {}}\n')
    argv = ["run", "--method", "nnshot", "--protocol", "episodes", "--dataset", "inter", "--episode-dir", str(folder)]
    fails_cleanly(argv, "test_5_1.jsonl:1")


@pytest.mark.parametrize(
    ("types", "message"),
    [(["foo-bar", "person-actor"], "are not Few-NERD fine types"), (["person-actor"], "1 types, but the file")],
)
def test_official_files_of_unknown_types_or_another_setting_are_refused(types, message, workdir, fails_cleanly):
    folder = workdir / "episode-data"
    folder.mkdir()
    labelled = {"word": [["a", "b"]], "label": [[types[0], "O"]]}
    line = json.dumps({"support": labelled, "query": labelled, "types": types})
    for setting in SETTINGS:
        (folder / f"test_{setting.n}_{setting.k}.jsonl").write_text(line + "\n")
    argv = ["run", "--method", "nnshot", "--protocol", "episodes", "--dataset", "inter", "--episode-dir", str(folder)]
    fails_cleanly(argv, "test_5_1.jsonl:1: ")
    fails_cleanly(argv, message)


@pytest.mark.parametrize("name", ["nnshot", "structshot"])
def test_a_query_that_repeats_the_support_set_is_tagged_exactly(name, corpus, tmp_path):
    """Every query word's nearest support word is itself: NNShot must return the gold spans."""
    (episode,) = sample_episodes(corpus.split("test"), EpisodeSetting(5, 1), 1, seed=3)
    repeated = dataclasses.replace(episode, query=episode.support)
    view, gold = EPISODES.episode_view([(EpisodeSetting(5, 1), [repeated])], FEWNERD)
    empty = EPISODES.train_view((), "train", FEWNERD)
    method = METHODS.get(name)().fit(empty, empty, Context(1, tmp_path, tmp_path, FeatureCache()))
    found = {(s.sentence_id, s.start, s.end, s.label) for s in EPISODES.validate(method.predict(view), view)}
    assert found == {(s.sentence_id, s.start, s.end, s.label) for sentence in gold for s in sentence.spans}


def test_meta_training_trains_one_map_per_setting_chosen_on_dev_episodes(tmp_path):
    inter = load_corpus("inter", splits=("dev", "test"))
    training = meta_training(inter)
    train = EPISODES.train_view(training.sentences[:800], "train", FEWNERD)
    dev = EPISODES.train_view(inter.split("dev")[:2000], "dev", FEWNERD)
    config = ProtoConfig(meta=MetaSettings(steps=4, check_every=2, dev_episodes=10))
    logged: list[tuple[dict[str, float], int]] = []

    def fit(seed: int) -> ProtoBERT:
        torch.manual_seed(seed)
        ctx = Context(seed, tmp_path, tmp_path, FeatureCache(), log=lambda m, step: logged.append((m, step)))
        method = ProtoBERT(config).fit(train, dev, ctx)
        assert ctx.metrics == {f"{metric_prefix(s)}/train_episodes": 4 * README_BATCH[s.n, s.k] for s in SETTINGS}
        return method

    method = fit(1)
    assert set(method.maps_) == set(SETTINGS)
    for setting in SETTINGS:
        prefix = metric_prefix(setting)
        checks = [step for metrics, step in logged if f"{prefix}/dev/micro_f1" in metrics]
        assert checks == [1, 2]  # a dev check every 2 of the 4 steps
        assert [m[f"{prefix}/best_epoch"] for m, _ in logged if f"{prefix}/best_epoch" in m] in ([1.0], [2.0])
        assert not torch.equal(method.maps_[setting].weight, torch.eye(384))  # the identity it started from moved
    again = fit(1)
    assert all(torch.equal(method.maps_[s].weight, again.maps_[s].weight) for s in SETTINGS)  # seeded
    # the maps change the predictions of test episodes, which stay valid
    (episode,) = sample_episodes(inter.split("test"), SETTINGS[1], 1, seed=0, query_shots=5)
    view, _ = EPISODES.episode_view([(SETTINGS[1], [episode])], FEWNERD)
    trained = EPISODES.validate(method.predict(view), view)
    free = ProtoBERT().fit(train, dev, Context(1, tmp_path, tmp_path, FeatureCache())).predict(view)
    assert trained
    assert [s.score for s in trained] != [s.score for s in free]


def test_meta_training_without_training_types_is_refused(tmp_path):
    dev = load_corpus("inter", splits=("dev", "test")).split("dev")
    view = EPISODES.train_view(dev[:100], "dev", FEWNERD)
    empty = EPISODES.train_view((), "train", FEWNERD)
    with pytest.raises(DataError, match="meta-training needs a training and a dev split"):
        ProtoBERT(ProtoConfig(meta=MetaSettings(steps=2))).fit(
            empty, view, Context(1, tmp_path, tmp_path, FeatureCache())
        )


def test_episode_runs_round_trip_through_the_published_record(workdir, store, capsys, monkeypatch):
    for method in ("nnshot", "protobert"):
        argv = ["run", "--method", method, "--protocol", "episodes", "--dataset", "inter", "--episodes", "4", "-q"]
        assert main(argv) == 0
    record, first, second = workdir / "record", workdir / "first", workdir / "second"
    assert main(["export", "--out", str(record)]) == 0
    files = sorted(record.rglob("*.json"))
    assert [f.parent.parent.name for f in files] == ["nnshot", "protobert"]
    written = json.loads(files[0].read_text())
    queries = written["episodes"]["query_sentences"]
    assert queries == len(EPISODES.episode_view(_episodes(4), FEWNERD)[1])  # the query sentences of its episodes
    assert written["episodes"]["meta_training"]["sentences"] == 10_699
    assert main(["report", "--runs", str(record), "--out", str(first)]) == 0
    table = (first / "inter" / "episodes.md").read_text()
    assert "resamples of its episodes" in table
    assert "| 1 " in table  # both rows are training-free: one seed each, ranked
    # each row's command repeats it on the episodes it was scored on
    assert "run --method nnshot --protocol episodes --dataset inter --episodes 4 --seeds 1" in table
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{workdir / 'imported.db'}")
    assert main(["import", str(record)]) == 0
    assert main(["report", "--out", str(second)]) == 0
    for name in ("episodes.md", "episodes.csv", "episodes_pairs.csv"):
        assert (first / "inter" / name).read_text() == (second / "inter" / name).read_text()
    capsys.readouterr()
    # a record whose run names other query sentences than its episodes hold, or types a span outside
    # its episode, is refused, naming the file
    written["episodes"]["query_sentences"] = queries + 1
    files[0].write_text(json.dumps(written))
    assert main(["report", "--runs", str(record), "--out", str(workdir / "third")]) == 2
    assert f"{files[0]}: names {queries + 1} query sentences" in capsys.readouterr().err
    written["episodes"]["query_sentences"] = queries
    files[0].write_text(json.dumps(written))
    run = read_run(files[0])
    (first_span, *rest) = run.predictions
    stray = [first_span._replace(label="person-artist/author"), *rest]  # a training type: in no test episode
    write_run(files[0], {k: v for k, v in run.record.items() if k != "predictions"} | {"metrics": run.histories}, stray)
    assert main(["report", "--runs", str(record), "--out", str(workdir / "third")]) == 2
    assert f"{files[0]}: episodes: prediction" in capsys.readouterr().err


def _episodes(count: int):
    test = load_corpus("inter", splits=("test",)).split("test")
    return [
        (s, sample_episodes(test, s, count, seed=i, query_shots=QUERY_SHOTS[s.n, s.k])) for i, s in enumerate(SETTINGS)
    ]
