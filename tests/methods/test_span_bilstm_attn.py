"""Span-level BiLSTM-attention: negative sampling, span length choice, the network, settings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.core.encoders import EncoderSettings
from benchmark.core.errors import ConfigError
from benchmark.core.registry import PROTOCOLS
from benchmark.core.spans import candidate_spans
from benchmark.core.training import length_batches
from methods.span_bilstm_attn.method import SpanBiLSTMAttn, SpanConfig, non_entity_spans, sample_negatives
from methods.span_bilstm_attn.model import SpanBiLSTMAttention


def test_the_negative_pool_is_every_short_span_but_the_gold_entities(views):
    train = views("ner")[0]
    pool = non_entity_spans(train, max_length=4)
    gold = {
        (i, s.start, s.end - s.start) for i, e in enumerate(train.examples) for s in e.spans if s.end - s.start <= 4
    }
    every = {tuple(r) for r in candidate_spans([len(e.tokens) for e in train.examples], 4)}
    assert {tuple(r) for r in pool} == every - gold
    assert gold  # the slice has entities to exclude


def test_negatives_meet_each_sentences_quota_without_repeats():
    pool = np.array([(0, s, 1) for s in range(10)] + [(1, 0, 1), (1, 0, 2)] + [(2, s, 1) for s in range(5)])
    quota = np.array([3, 5, 0])
    drawn = sample_negatives(pool, quota, np.random.default_rng(0))
    per_sentence = np.bincount(drawn[:, 0], minlength=3)
    assert per_sentence.tolist() == [3, 2, 0]  # sentence 1 has only two spans to give
    assert len({tuple(r) for r in drawn}) == len(drawn)
    assert {tuple(r) for r in drawn} <= {tuple(r) for r in pool}
    again = sample_negatives(pool, quota, np.random.default_rng(0))
    np.testing.assert_array_equal(drawn, again)


def test_negatives_are_drawn_uniformly_within_a_sentence():
    pool = np.array([(0, s, 1) for s in range(8)])
    rng = np.random.default_rng(1)
    counts = np.zeros(8)
    for _ in range(4000):
        counts[sample_negatives(pool, np.array([2]), rng)[:, 1]] += 1
    np.testing.assert_allclose(counts / 4000, 2 / 8, atol=0.03)


def test_max_span_length_is_chosen_from_the_training_lengths(views, ctx):
    train, dev, _ = views("ner")
    lengths = np.array([s.end - s.start for e in train.examples for s in e.spans])
    method = SpanBiLSTMAttn(SpanConfig(span_coverage=0.9, epochs=1))
    method.fit(train, dev, ctx)
    chosen = method.max_span_length_
    assert (lengths <= chosen).mean() >= 0.9 > (lengths <= chosen - 1).mean()
    assert ctx.metrics["max_span_length"] == chosen


def test_the_attention_reads_the_final_states_of_both_directions():
    torch.manual_seed(0)
    model = SpanBiLSTMAttention(dim=4, hidden=3, n_classes=5, learned_unknown=True, dropout=0.0)
    words = torch.randn(2, 3, 4)
    logits = model(words)
    assert logits.shape == (2, 5)
    outputs, _ = model.lstm(words)
    query = torch.cat([outputs[:, -1, :3], outputs[:, 0, 3:]], dim=-1)  # forward end, backward start
    weights = torch.softmax((outputs * query[:, None]).sum(-1), dim=1)
    expected = model.out((weights[..., None] * outputs).sum(1))
    torch.testing.assert_close(logits, expected)
    unknown = torch.tensor([[False, True, False], [False, False, False]])
    with torch.no_grad():
        model.unknown.fill_(1.0)
    changed = model(words, unknown)
    assert not torch.allclose(changed[0], logits[0])
    assert torch.allclose(changed[1], logits[1])


def test_length_batches_never_mix_lengths_and_cover_every_span():
    lengths = np.array([1, 3, 1, 2, 3, 3, 1])
    batches = list(length_batches(lengths, batch_size=2, rng=np.random.default_rng(0)))
    assert sorted(np.concatenate(batches).tolist()) == list(range(7))
    assert all(len(set(lengths[b])) == 1 and len(b) <= 2 for b in batches)


def test_typing_learns_fine_types_from_glove(small, views, ctx):
    train, dev, test = views("typing")
    method = SpanBiLSTMAttn(SpanConfig(epochs=4)).fit(train, dev, ctx)
    predicted = PROTOCOLS["typing"].validate(method.predict(test), test)
    gold = {(s.sentence_id, s.start, s.end): s.label for x in small.splits["test"] for s in x.spans}
    accuracy = np.mean([gold[(p.sentence_id, p.start, p.end)] == p.label for p in predicted])
    majority = max(np.unique(list(gold.values()), return_counts=True)[1]) / len(gold)
    assert accuracy > majority + 0.05


def test_ner_predicts_non_overlapping_spans_within_the_length_limit(views, ctx):
    train, dev, test = views("ner")
    method = SpanBiLSTMAttn(SpanConfig(epochs=2, max_span_length=3, none_bias=None)).fit(train, dev, ctx)
    predicted = PROTOCOLS["ner"].validate(method.predict(test), test)  # refuses overlaps
    assert predicted
    assert all(p.end - p.start <= 3 for p in predicted)
    assert method.none_bias_ == ctx.metrics["none_bias"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_span_length": 0}, "max_span_length must be at least 1"),
        ({"span_coverage": 0.0}, "span_coverage"),
        ({"negative_rate": 0.0}, "negative_rate must be positive"),
        ({"none_bias": float("inf")}, "none_bias must be a finite number"),
    ],
)
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ConfigError, match=message):
        SpanConfig(**settings)


def test_static_features_need_a_static_encoder():
    with pytest.raises(ConfigError, match="features=static needs static word vectors, but encoder 'minilm'"):
        SpanBiLSTMAttn.check_config(SpanConfig(encoder=EncoderSettings("minilm")), "typing")
    with pytest.raises(ConfigError, match="features=contextual needs a transformer encoder, not 'glove-50d'"):
        SpanBiLSTMAttn.check_config(SpanConfig(features="contextual"), "typing")
    SpanBiLSTMAttn.check_config(SpanConfig(features="contextual", encoder=EncoderSettings("minilm")), "ner")
