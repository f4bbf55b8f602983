"""N-way K~2K-shot episodes: the sampler's guarantees on the shipped INTER test split, its
distribution against Few-NERD's, determinism, errors, and the official episode-file layout."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from collections.abc import Sequence

import pytest

from benchmark.core.data.fewnerd import Sentence, load_corpus, make_sentence
from benchmark.core.episodes import (
    SETTINGS,
    Episode,
    EpisodeSetting,
    episode_types,
    episodes_sha256,
    meta_training_split,
    read_episode_file,
    sample_episodes,
    write_episode_file,
)
from benchmark.core.errors import BenchmarkError, DataError
from benchmark.core.spans import OUTSIDE


@pytest.fixture(scope="module")
def split() -> tuple[Sentence, ...]:
    """The official INTER test split, shipped in datasets/ (INTER ships no train split)."""
    return load_corpus("inter", splits=("test",)).split("test")


def _instances(sentences: Sequence[Sentence]) -> Counter[str]:
    return Counter(span.label for s in sentences for span in s.spans)


def _check(episode: Episode, split: Sequence[Sentence], setting: EpisodeSetting, q: int) -> None:
    """Everything Few-NERD's sampler guarantees, and the greedy rule replayed in draw order."""
    types = episode.types
    assert len(types) == setting.n == len(set(types))
    assert set(types) <= set(episode_types(split))
    for sentences, shots in ((episode.support, setting.k), (episode.query, q)):
        ids = [s.id for s in sentences]
        assert len(ids) == len(set(ids))
        counts = _instances(sentences)
        assert set(counts) == set(types)
        assert all(shots <= counts[t] <= 2 * shots for t in types), counts
        running: Counter[str] = Counter()
        for number, sentence in enumerate(sentences):
            assert sentence.spans, "every sentence holds an entity"
            assert set(sentence.labels) <= {*types, OUTSIDE}
            original = split[sentence.id]  # untouched: sentences with other types are never drawn
            assert (sentence.tokens, sentence.labels) == (original.tokens, original.labels)
            own = _instances([sentence])
            assert all(running[t] + c <= 2 * shots for t, c in own.items())  # the 2K cap
            assert any(running[t] < shots for t in own)  # it helps a type still below K
            assert number == 0 or any(running[t] < shots for t in types)  # not finished before it
            running += own
    assert not {s.id for s in episode.support} & {s.id for s in episode.query}


def test_the_shipped_inter_test_split_has_17_types(split):
    assert len(split) == 14007
    assert len(episode_types(split)) == 17


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sampled_episodes_keep_few_nerds_guarantees(split, setting, seed):
    for episode in sample_episodes(split, setting, 25, seed):
        _check(episode, split, setting, setting.k)


def test_query_shots_set_the_query_sets_size(split):
    setting = EpisodeSetting(5, 1)
    for episode in sample_episodes(split, setting, 25, 3, query_shots=3):
        _check(episode, split, setting, 3)


def test_settings_names_and_parsing():
    assert [s.name for s in SETTINGS] == ["5-way-1~2-shot", "5-way-5~10-shot", "10-way-1~2-shot", "10-way-5~10-shot"]
    assert all(EpisodeSetting.parse(s.name) == s == EpisodeSetting.parse(f"{s.n}-{s.k}") for s in SETTINGS)
    for bad in ("5-way-1~3-shot", "5-way", "five-one", "5-0", ""):
        with pytest.raises(BenchmarkError, match="episode setting"):
            EpisodeSetting.parse(bad)


def _toy(rows: Sequence[Sequence[str]]) -> tuple[Sentence, ...]:
    return tuple(make_sentence(i, [f"w{j}" for j in range(len(row))], row) for i, row in enumerate(rows))


def test_the_distribution_is_few_nerds():
    """Few-NERD accepts a uniform draw among the acceptable sentences. With one A+B sentence, 9
    A-only and 1 B-only, 2-way 1~2-shot supports hold the A+B sentence with probability
    1/11 (drawn first) + 9/11·1/2 (after an A-only: it or the B-only) + 1/11·1/10 = 56/110;
    drawing a needed type first and then a sentence of it would give 0.3 + 0.7·… ≠ 0.509."""
    a, b = "art-music", "person-actor"
    sentences = _toy([[a, OUTSIDE, b]] + [[a, OUTSIDE]] * 9 + [[b]] + [[OUTSIDE]] * 5)
    episodes = sample_episodes(sentences, EpisodeSetting(2, 1), 4000, 0)
    with_both = sum(any(s.id == 0 for s in e.support) for e in episodes) / len(episodes)
    assert with_both == pytest.approx(56 / 110, abs=0.04)  # 5 standard deviations
    alone = sum(len(e.support) == 1 for e in episodes) / len(episodes)
    assert alone == pytest.approx(1 / 11, abs=0.025)
    assert Counter(e.types for e in episodes)[(a, b)] == pytest.approx(2000, abs=200)


def test_the_same_seed_gives_the_same_episodes_and_another_seed_others(split):
    setting = EpisodeSetting(5, 5)
    first = sample_episodes(split, setting, 10, 7)
    assert first == sample_episodes(split, setting, 10, 7)
    assert episodes_sha256(first) == episodes_sha256(sample_episodes(split, setting, 10, 7))
    assert sample_episodes(split, setting, 4, 7) == first[:4]  # a longer run extends a shorter one
    other = sample_episodes(split, setting, 10, 8)
    assert other != first
    assert episodes_sha256(other) != episodes_sha256(first)


def test_more_ways_than_types_is_refused(split):
    with pytest.raises(
        BenchmarkError, match=r"asking for 18-way episodes, but this split \(14007 sentences\) has only 17"
    ):
        sample_episodes(split, EpisodeSetting(18, 1), 1, 0)


def test_an_unsatisfiable_k_is_refused_not_looped_on(split):
    with pytest.raises(BenchmarkError, match=r"could not draw a 5-way 1000~2000-shot episode"):
        sample_episodes(split, EpisodeSetting(5, 1000), 1, 0)
    # enough instances of A, but each sentence holds 3 (over 2K): Few-NERD would loop forever
    a, b = "art-music", "person-actor"
    with pytest.raises(BenchmarkError, match=r"could not draw a 2-way 1~2-shot episode"):
        sample_episodes(_toy([[a, OUTSIDE, a, OUTSIDE, a], [b], [b]] * 3), EpisodeSetting(2, 1), 1, 0)
    with pytest.raises(BenchmarkError, match=r"could not draw a 5-way 1~2-shot episode"):
        sample_episodes(split, EpisodeSetting(5, 1), 1, 0, max_draws=1)  # a try needs two draws at least


def _line(support=None, query=None, types=None, **extra) -> str:
    record = {
        "support": {"word": [["Paris", "votes"]], "label": [["event-election", "O"]]} if support is None else support,
        "query": {"word": [["the", "vote"]], "label": [["O", "event-election"]]} if query is None else query,
        "types": ["event-election"] if types is None else types,
        **extra,
    }
    return json.dumps(record)


MALFORMED = {
    "not JSON": ('{"support": ', "not valid JSON"),
    "not an object": ("[1, 2]", "expected an object with keys 'support', 'query', 'types', got list"),
    "an unknown field": (_line(extra=1), "got ['extra', 'query', 'support', 'types']"),
    "a missing field": ('{"support": {}, "types": ["x"]}', "got ['support', 'types']"),
    "a set's unknown layout": (_line(support={"words": [["a"]], "labels": [["O"]]}), "'support' must be an object"),
    "a label outside types": (
        _line(query={"word": [["a", "b"]], "label": [["O", "person-actor"]]}),
        "query sentence 0 has label 'person-actor', which is neither 'O' nor one of 'types'",
    ),
    "a BIO label": (
        _line(support={"word": [["a"]], "label": [["B-event-election"]]}),
        "label 'B-event-election'",
    ),
    "words and labels of different lengths": (
        _line(support={"word": [["a", "b", "c"]], "label": [["O", "event-election"]]}),
        "support sentence 0 has 3 words but 2 labels",
    ),
    "more word lists than label lists": (
        _line(query={"word": [["a"], ["b"]], "label": [["event-election"]]}),
        "query has 2 word lists but 1 label lists",
    ),
    "an empty support set": (_line(support={"word": [], "label": []}), "empty support set"),
    "an empty query set": (_line(query={"word": [], "label": []}), "empty query set"),
    "an empty sentence": (_line(query={"word": [[]], "label": [[]]}), "query sentence 0 has no words"),
    "words not strings": (_line(support={"word": [[1]], "label": [["O"]]}), "support.word must be a list"),
    "repeated types": (_line(types=["event-election", "event-election"]), "'types' repeats a type"),
    "empty types": (_line(types=[]), "'types' must be a non-empty list"),
}


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_a_malformed_episode_line_is_named_by_file_and_line(tmp_path, case):
    line, message = MALFORMED[case]
    path = tmp_path / "test_5_1.jsonl"
    path.write_text(_line() + "\n\n" + line + "\n")
    with pytest.raises(DataError, match=re.escape(f"{path}:3: ") + ".*" + re.escape(message)):
        read_episode_file(path)


def test_unreadable_or_empty_episode_files_are_refused(tmp_path):
    broken = tmp_path / "test_5_1.jsonl.gz"
    broken.write_bytes(b"not gzip")
    with pytest.raises(DataError, match=re.escape(f"{broken}: cannot read")):
        read_episode_file(broken)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DataError, match=re.escape(f"{empty}: no episodes")):
        read_episode_file(empty)


def test_a_valid_line_reads_with_running_ids(tmp_path):
    path = tmp_path / "dev_5_1.jsonl"
    path.write_text(_line() + "\n" + _line() + "\n")
    first, second = read_episode_file(path)
    assert first.types == ("event-election",)
    assert [s.id for s in (*first.support, *first.query, *second.support, *second.query)] == [0, 1, 2, 3]
    assert first.support[0].spans[0].label == "event-election"
    assert first.query[0].spans[0][:3] == (1, 1, 2)


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_sampled_episodes_round_trip_through_the_official_layout(split, tmp_path, suffix):
    episodes = tuple(e for setting in SETTINGS for e in sample_episodes(split, setting, 5, 11))
    path = tmp_path / f"test{suffix}"
    write_episode_file(path, episodes)
    text = (gzip.decompress(path.read_bytes()) if suffix.endswith(".gz") else path.read_bytes()).decode()
    lines = text.splitlines()
    assert len(lines) == len(episodes)
    assert all(set(json.loads(line)) == {"support", "query", "types"} for line in lines)
    back = read_episode_file(path)
    assert episodes_sha256(back) == episodes_sha256(episodes)

    def content(e: Episode) -> tuple:  # ids are not in the file: a read episode numbers its sentences
        return e.types, [(s.tokens, s.labels, [x[1:] for x in s.spans]) for s in (*e.support, *e.query)]

    assert [content(e) for e in back] == [content(e) for e in episodes]
    ids = [s.id for e in back for s in (*e.support, *e.query)]
    assert ids == list(range(len(ids)))


def test_meta_training_data_shares_no_sentence_and_no_type_with_inter_dev_and_test(corpus):
    inter = load_corpus("inter", splits=("dev", "test"))
    held_out = inter.split("dev") + inter.split("test")
    sentences, types = meta_training_split(corpus.split("train"), held_out)
    unseen = set(episode_types(held_out))
    assert len(unseen) == 30
    assert len(types) == 36
    assert not unseen & set(types)
    assert {label for s in sentences for label in s.labels} == {*types, OUTSIDE}
    held_tokens = {s.tokens for s in held_out}
    kept = [s for s in corpus.split("train") if s.tokens not in held_tokens]
    assert len(sentences) == len(kept) == 10_699 < len(corpus.split("train"))  # INTER took 2,412 of 13,111
    assert [s.tokens for s in sentences] == [s.tokens for s in kept]
    assert [s.id for s in sentences] == list(range(10_699))
    assert sum(len(s.spans) for s in sentences) < sum(len(s.spans) for s in kept)  # the 30 types read O
    # data already disjoint (Few-NERD's own inter/train) passes unchanged; a split of held-out types gives nothing
    assert meta_training_split(sentences, held_out) == (sentences, types)
    assert meta_training_split(inter.split("dev"), held_out) == ((), ())
