"""The BERT-Tagger reference: frozen and fine-tuned modes, coarse mode, typing by vote."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from benchmark.core.decoding import vote_in_span
from benchmark.core.encoders import EncoderSettings
from benchmark.core.errors import ConfigError
from benchmark.core.registry import PROTOCOLS
from benchmark.core.training import bucketed_batches
from methods.tagger.method import Tagger, TaggerConfig


def _views(corpus, protocol, n_train=300):
    p = PROTOCOLS[protocol]
    return (
        p.train_view(corpus.splits["train"][:n_train], "train", corpus.hierarchy),
        p.train_view(corpus.splits["dev"][:100], "dev", corpus.hierarchy),
    )


def test_frozen_tagger_learns_entities_from_cached_features(small, ctx):
    train, dev = _views(small, "ner")
    tagger = Tagger(TaggerConfig(epochs=5)).fit(train, dev, ctx)
    assert tagger.labels_[0] == "O"
    assert len(tagger.dev_history_) >= 1
    test = PROTOCOLS["ner"].test_view(small.splits["test"], small.hierarchy)
    predicted = PROTOCOLS["ner"].validate(tagger.predict(test), test)
    gold = {(s.sentence_id, s.start, s.end) for x in small.splits["test"] for s in x.spans}
    found = sum((p.sentence_id, p.start, p.end) in gold for p in predicted)
    assert found > 0.2 * len(gold)  # spans are found after 300 training sentences
    assert all(0 < p.score <= 1 for p in predicted)


def test_coarse_mode_learns_coarse_types_from_a_weak_typing_view(small, ctx):
    train, dev = _views(small, "weak-typing")
    tagger = Tagger(TaggerConfig(coarse=True, epochs=2)).fit(train, dev, ctx)
    assert tagger.labels_ == ["O", *small.hierarchy.coarse_types]
    probabilities = tagger.word_probabilities([("Barack", "Obama", "visited", "Paris", ".")], cached=False)
    assert probabilities[0].shape == (5, 9)
    np.testing.assert_allclose(probabilities[0].sum(axis=1), 1, rtol=1e-5)


def test_coarse_flag_is_refused_where_fine_types_are_scored():
    with pytest.raises(ConfigError, match="coarse=true predicts coarse types"):
        Tagger.check_config(TaggerConfig(coarse=True), "ner")


def test_typing_takes_the_majority_of_non_o_words():
    labels = ["O", "art-film", "person-actor"]
    probabilities = np.array([[0.9, 0.06, 0.04], [0.2, 0.1, 0.7], [0.1, 0.2, 0.7], [0.1, 0.8, 0.1]])
    assert vote_in_span(probabilities, labels) == ("person-actor", pytest.approx((0.04 + 0.7 + 0.7 + 0.1) / 4))
    tie = np.array([[0.1, 0.5, 0.4], [0.1, 0.3, 0.6]])
    assert vote_in_span(tie, labels)[0] == "person-actor"  # one vote each; more probability mass


@pytest.mark.slow
def test_finetune_mode_trains_the_encoder_for_the_recipes_steps_and_keeps_the_best_check(small, ctx):
    train, dev = _views(small, "typing", n_train=40)
    points = []
    ctx = replace(ctx, log=lambda metrics, step: points.extend((k, step) for k in metrics))
    config = TaggerConfig(EncoderSettings(window=32), mode="finetune", batch_size=8, passes=1.5, evaluations=3)
    tagger = Tagger(config).fit(train, dev, ctx)
    reference = ctx.features.encoder(config.encoder).model.state_dict()  # the pretrained weights
    tuned = tagger.model_.state_dict()
    assert any(not np.allclose(reference[k].numpy(), tuned[k].numpy()) for k in reference)
    assert ctx.metrics["steps"] == 8  # ⌈1.5 passes × 5 batches of 8⌉
    assert ctx.metrics["cuda"] == ctx.metrics["tf32"] == 0.0
    assert len(tagger.dev_history_) == 3  # dev checked 3 times, evenly
    assert [s for k, s in points if k == "train/loss"] == [1, 2, 3]
    assert tagger.encoder_.window == 30  # 32 sub-words per window, special tokens included
    test = PROTOCOLS["typing"].test_view(small.splits["test"][:20], small.hierarchy)
    predicted = PROTOCOLS["typing"].validate(tagger.predict(test), test)
    assert len(predicted) == sum(len(e.spans) for e in test.examples)


def test_bucketed_batches_cover_every_sentence_once_with_little_padding():
    rng = np.random.default_rng(0)
    sizes = rng.integers(5, 120, size=1000)
    batches = bucketed_batches(sizes, 16, np.random.default_rng(1))
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    padded = sum(len(b) * sizes[b].max() for b in batches)
    shuffled = sum(len(b) * sizes[b].max() for b in np.array_split(rng.permutation(1000), 63))
    assert padded < 0.75 * shuffled  # far less padding than random batches


@pytest.mark.parametrize(("assignment", "message"), [("lr=0", "lr must be positive"), ("passes=0", "passes")])
def test_bad_finetune_settings_are_refused(assignment, message):
    from benchmark.core.config import resolve_config

    with pytest.raises(ConfigError, match=message):
        resolve_config(TaggerConfig, None, [assignment])
