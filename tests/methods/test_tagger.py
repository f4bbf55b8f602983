"""The BERT-Tagger reference: frozen and fine-tuned modes, coarse mode, typing by vote."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.errors import ConfigError
from benchmark.protocols import PROTOCOLS
from benchmark.training import vote_in_span
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
def test_finetune_mode_trains_the_encoder(small, ctx):
    train, dev = _views(small, "typing", n_train=40)
    tagger = Tagger(TaggerConfig(mode="finetune", epochs=1, batch_size=8)).fit(train, dev, ctx)
    reference = ctx.features.encoder(tagger.settings_).model.state_dict()  # the pretrained weights
    tuned = tagger.model_.state_dict()
    assert any(not np.allclose(reference[k].numpy(), tuned[k].numpy()) for k in reference)
    test = PROTOCOLS["typing"].test_view(small.splits["test"][:20], small.hierarchy)
    predicted = PROTOCOLS["typing"].validate(tagger.predict(test), test)
    assert len(predicted) == sum(len(e.spans) for e in test.examples)
