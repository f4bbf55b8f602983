"""The feature cache: miss, hit, corruption, interrupted writes, dimension mismatch, CLI."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from benchmark.cli import main
from benchmark.core.cache import FeatureCache
from benchmark.core.encoders import EncoderSettings
from benchmark.core.errors import BenchmarkError

SETTINGS = EncoderSettings()


@pytest.fixture
def cache(tmp_path):
    return FeatureCache(tmp_path / "cache")


@pytest.fixture
def sentences(corpus):
    return [s.tokens for s in corpus.splits["dev"][:30]]


def _entry(cache):
    (entry,) = [p for p in cache.features_dir.iterdir() if p.is_dir()]
    return entry


def test_miss_then_hit_without_encoding(cache, sentences, monkeypatch):
    first = cache.word_features(sentences, SETTINGS)
    assert (cache.misses, cache.hits, cache.encoded_sentences) == (1, 0, 30)
    assert len(first) == 30
    assert first[3].shape == (len(sentences[3]), 384)
    assert first.matrix.dtype == np.float16

    def no_encoding(*args, **kwargs):
        raise AssertionError("the encoder ran on a cache hit")

    monkeypatch.setattr(type(cache.encoder(SETTINGS)), "encode", no_encoding)
    again = FeatureCache(cache.root)
    second = again.word_features(sentences, SETTINGS)
    assert (again.hits, again.encoded_sentences) == (1, 0)
    np.testing.assert_array_equal(second.matrix, first.matrix)


def test_key_separates_data_and_settings(cache, sentences):
    cache.word_features(sentences, SETTINGS)
    cache.word_features(sentences[:10], SETTINGS)
    cache.word_features(sentences, EncoderSettings(pooling="mean"))
    assert len(cache.entries()) == 3


def test_corrupted_entry_is_detected_and_rebuilt(cache, sentences):
    original = np.array(cache.word_features(sentences, SETTINGS).matrix)
    path = _entry(cache) / "features.f16"
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    rebuilt = FeatureCache(cache.root)
    np.testing.assert_array_equal(rebuilt.word_features(sentences, SETTINGS).matrix, original)
    assert rebuilt.misses == 1


def test_interrupted_write_leaves_no_complete_looking_entry(cache, sentences, monkeypatch):
    encoder_type = type(cache.encoder(SETTINGS))
    real = encoder_type.encode

    def killed(self, batch, sink, progress=True):
        sink(0, np.zeros((len(batch[0]), 384), np.float32))
        raise KeyboardInterrupt

    monkeypatch.setattr(encoder_type, "encode", killed)
    with pytest.raises(KeyboardInterrupt):
        cache.word_features(sentences, SETTINGS)
    assert cache.entries() == []
    assert not [p for p in cache.features_dir.iterdir() if p.is_dir()]
    monkeypatch.setattr(encoder_type, "encode", real)
    assert len(cache.word_features(sentences, SETTINGS)) == 30


def test_entry_without_meta_is_a_miss(cache, sentences):
    cache.word_features(sentences, SETTINGS)
    (_entry(cache) / "meta.json").unlink()
    again = FeatureCache(cache.root)
    again.word_features(sentences, SETTINGS)
    assert again.misses == 1


def test_dimension_mismatch_is_a_clear_error(cache, sentences):
    cache.word_features(sentences, SETTINGS)
    meta_path = _entry(cache) / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "dim": 768}))
    with pytest.raises(BenchmarkError, match="have dimension 768 but encoder 'minilm' now produces 384"):
        FeatureCache(cache.root).word_features(sentences, SETTINGS)


def test_features_are_deterministic(cache, sentences, tmp_path):
    first = np.array(cache.word_features(sentences, SETTINGS).matrix)
    other = FeatureCache(tmp_path / "other")
    np.testing.assert_array_equal(other.word_features(sentences, SETTINGS).matrix, first)


def test_cache_cli_lists_and_clears(cache, sentences, capsys):
    cache.word_features(sentences, SETTINGS)
    assert main(["cache", "ls", "--cache-dir", str(cache.root)]) == 0
    out = capsys.readouterr().out
    assert "minilm" in out
    assert "1 entries" in out
    assert main(["cache", "clear", "--cache-dir", str(cache.root)]) == 0
    assert "freed" in capsys.readouterr().out
    assert cache.entries() == []


def _build_and_digest(root: str, sentences: list[list[str]], stage_value: int) -> tuple[str, str, int, object]:
    """In a fresh process: the features of ``sentences`` and a stage-cache value, from ``root``."""
    import hashlib

    cache = FeatureCache(Path(root))
    features = cache.word_features(sentences, EncoderSettings())
    stage = cache.cached_json("race", {"k": 1}, lambda: {"value": stage_value})
    digest = hashlib.sha256(np.asarray(features.matrix).tobytes() + features.offsets.tobytes()).hexdigest()
    return digest, hashlib.sha256(json.dumps(stage).encode()).hexdigest(), cache.encoded_sentences, stage


def _race(barrier, results, key: int, root: str, sentences: list[list[str]]) -> None:
    barrier.wait(timeout=120)
    results[key] = _build_and_digest(root, sentences, 1)


@pytest.mark.slow
def test_two_processes_building_one_entry_at_once_both_read_it_whole(sentences, tmp_path):
    """Workers sharing one cache folder (`--cache-dir` on a shared filesystem): two processes
    ask for the same feature entry and stage entry at the same moment; both get a valid,
    identical entry, and the features are encoded once."""
    rows = [list(s) for s in sentences[:60]]
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier, results = manager.Barrier(2), manager.dict()  # both start building at the same moment
        racers = [context.Process(target=_race, args=(barrier, results, k, str(tmp_path), rows)) for k in (0, 1)]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join(timeout=300)
        assert [racer.exitcode for racer in racers] == [0, 0]
        first, second = results[0], results[1]
    assert first[:2] == second[:2]
    assert sorted([first[2], second[2]]) == [0, len(rows)]  # one built it under the lock, one read it
    assert first[3] == second[3] == {"value": 1}
    entries = FeatureCache(tmp_path).entries()
    assert len(entries) == 1
    assert not list(tmp_path.rglob("*.tmp*"))  # no staging left behind
