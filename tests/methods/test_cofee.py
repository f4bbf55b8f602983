"""CoFEE: gazetteer matching, self-picking, the variance-weighted loss, and the stages on real data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from benchmark.core.config import resolve_config
from benchmark.core.errors import ConfigError
from benchmark.core.labels import FEWNERD, coarse_of
from benchmark.core.protocols import Example, View, coarse_view
from benchmark.core.registry import PROTOCOLS
from benchmark.core.spans import Span
from benchmark.evaluate import evaluate_split
from methods.cofee.method import Cofee, CofeeConfig
from methods.cofee.model import (
    cluster_variances,
    pick_spans,
    pool_spans,
    variance_weighted_loss,
    variance_weights,
)
from methods.gazetteer.method import Gazetteer, GazetteerConfig


def _view(sentences: list[tuple[str, ...]], spans: list[list[tuple[int, int, str]]]) -> View:
    examples = []
    for i, (tokens, typed) in enumerate(zip(sentences, spans, strict=True)):
        labels = ["O"] * len(tokens)
        for start, end, label in typed:
            labels[start:end] = [label] * (end - start)
        examples.append(Example(i, tokens, tuple(labels), tuple(Span(i, a, b, c) for a, b, c in typed)))
    return View("ner", "train", tuple(examples), FEWNERD)


def test_gazetteer_matching_labels_text_by_longest_dictionary_match(ctx):
    train = _view(
        [("New", "York", "City", "is", "big"), ("York", "fell"), ("Obama", "visited", "New", "York", "City")],
        [[(0, 3, "location-GPE")], [(0, 1, "person-other")], [(0, 1, "person-politician")]],
    )
    gazetteer = Gazetteer().fit(coarse_view(train), coarse_view(train), ctx)
    found = list(gazetteer.tag(7, ("Obama", "met", "York", "in", "New", "York", "City")))
    assert [(s.start, s.end, s.label) for s in found] == [(0, 1, "person"), (2, 3, "person"), (4, 7, "location")]
    assert all(s.sentence_id == 7 for s in found)


def test_the_fine_and_the_coarse_dictionary_hold_the_same_strings(views, ctx):
    train, dev, _ = views("ner")
    fine = Gazetteer(GazetteerConfig(fraction=0.3)).fit(train, dev, ctx)
    coarse = Gazetteer(GazetteerConfig(fraction=0.3)).fit(coarse_view(train), coarse_view(dev), ctx)
    assert set(fine.entries_) == set(coarse.entries_)
    assert 0.2 < len(fine.entries_) / len({e.tokens[s.start : s.end] for e in train.examples for s in e.spans}) < 0.4
    assert {coarse_of(fine.entries_[k][0]) for k in fine.entries_} >= {coarse.entries_[k][0] for k in coarse.entries_}


def test_self_picking_keeps_spans_whose_start_and_end_pass_delta():
    # columns: O, B-0, I-0, B-1, I-1 for five words
    p = np.array(
        [
            [0.70, 0.25, 0.00, 0.05, 0.00],  # B-0 at 0.25: a start for type 0
            [0.80, 0.00, 0.15, 0.00, 0.05],  # I-0 at 0.15: the span runs on
            [0.95, 0.00, 0.05, 0.00, 0.00],  # I-0 below δ: it ends
            [0.10, 0.02, 0.00, 0.85, 0.03],  # B-1, confident
            [0.60, 0.00, 0.00, 0.00, 0.40],  # I-1 continues
        ]
    )
    assert pick_spans(p, 0.1) == [(0, 2, 0), (3, 5, 1)]
    assert pick_spans(p, 0.2) == [(0, 1, 0), (3, 5, 1)]  # I-0 at 0.15 no longer extends the span
    assert pick_spans(p, 0.5) == [(3, 4, 1)]  # argmax-level threshold: only the sure start, alone
    assert pick_spans(p, 0.99) == []


def test_self_picking_resolves_overlaps_by_the_weaker_end():
    p = np.array(
        [
            [0.20, 0.50, 0.00, 0.30, 0.00],  # B-0 0.5 and B-1 0.3 both start here
            [0.30, 0.00, 0.20, 0.00, 0.50],  # type 0 ends at 0.2, type 1 at 0.5
        ]
    )
    # type 0: min(0.5, 0.2) = 0.2; type 1: min(0.3, 0.5) = 0.3 → type 1 wins the overlap
    assert pick_spans(p, 0.1) == [(0, 2, 1)]


def test_cluster_variances_and_weights_on_a_known_example():
    vectors = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 0.0], [10.0, 4.0], [10.0, 2.0]])
    assignment = np.array([0, 0, 1, 1, 1])
    centres = np.array([[1.0, 0.0], [10.0, 2.0]])
    variances = cluster_variances(vectors, assignment, centres)
    np.testing.assert_allclose(variances, [2.0, 8.0])  # 1 + 1 and 4 + 4 + 0
    alpha = variance_weights(variances)
    e1, e2 = math.exp(1 / 2), math.exp(1 / 8)
    np.testing.assert_allclose(alpha, [e1 / (e1 + e2), e2 / (e1 + e2)])
    # the compact cluster is trusted more; a zero-variance cluster gets no weight, not all of it
    assert alpha[0] > alpha[1]
    np.testing.assert_allclose(variance_weights(np.array([0.0, 2.0, 8.0])), [0.0, *alpha])


def test_the_variance_weighted_loss_on_a_tiny_known_example():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]], requires_grad=True)
    pseudo = torch.tensor([0, 1, 0])
    alpha = torch.tensor([0.7, 0.3])
    # -1/M Σ α_y log softmax: log-probabilities by hand
    lp = [2 - math.log(math.exp(2) + 1), 1 - math.log(1 + math.e), -math.log(2)]
    expected = -(0.7 * lp[0] + 0.3 * lp[1] + 0.7 * lp[2]) / 3
    loss = variance_weighted_loss(logits, pseudo, alpha)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # uniform α = 1 is the plain cross-entropy of Eq. 7
    torch.testing.assert_close(variance_weighted_loss(logits, pseudo, torch.ones(2)), F.cross_entropy(logits, pseudo))


def test_sum_pooling_spans_of_a_word_matrix():
    h = torch.arange(12.0).reshape(6, 2).requires_grad_()
    pooled = pool_spans(h, np.array([0, 3]), np.array([2, 6]))
    torch.testing.assert_close(pooled, torch.tensor([[2.0, 4.0], [24.0, 27.0]]))
    pooled.sum().backward()
    torch.testing.assert_close(h.grad, torch.tensor([[1.0, 1], [1, 1], [0, 0], [1, 1], [1, 1], [1, 1]]))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ("clusters=1", "clusters (K) must be at least 2"),
        ("delta=0.0", "must lie in (0, 1)"),
        ("delta=1.0", "must lie in (0, 1)"),
        ("gazetteer.fraction=0.0", "gazetteer: fraction=0 keeps no dictionary strings"),
        ("gazetteer.fraction=1.5", "gazetteer: fraction must lie in (0, 1]"),
        ("gazetteer_fraction=0.5", "'gazetteer_fraction' is now 'gazetteer.fraction'"),
    ],
)
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_config(CofeeConfig, None, [settings])


def test_nee_draws_its_dictionary_with_the_gazetteer_settings():
    assert CofeeConfig().gazetteer == GazetteerConfig(fraction=0.5)
    assert resolve_config(CofeeConfig, None, ["gazetteer.lowercase=true"]).gazetteer.lowercase


def test_settings_that_cannot_work_under_a_protocol_are_refused():
    with pytest.raises(ConfigError, match="does not give"):
        Cofee.check_config(CofeeConfig(setting="supervised"), "weak-typing")
    with pytest.raises(ConfigError, match="use setting=supervised"):
        Cofee.check_config(CofeeConfig(pretrain=False), "ner")


# a small network that learns on 300 sentences in seconds (a full dictionary: the slice is small)
QUICK = {
    "hidden": 128,
    "batch_size": 4,
    "lr": 3e-3,
    "esi_epochs": 1,
    "nee_epochs": 4,
    "patience": 4,
    "fet_epochs": 2,
    "clusters": 16,
    "gazetteer": GazetteerConfig(fraction=1.0),
}


def test_weak_ner_learns_coarse_types_from_the_gazetteer_and_clusters_its_entities(small, views, ctx):
    train, dev, test = views("ner")
    method = Cofee(CofeeConfig(**QUICK)).fit(train, dev, ctx)
    predictions = PROTOCOLS["ner"].validate(method.predict(test), test)
    scores = evaluate_split(small.splits["test"], predictions, small.hierarchy, "spans", resamples=0).metrics
    assert scores["coarse/micro_f1"] > 0.15  # found typed entities without a human label
    assert all(p.cluster is not None and 0 <= p.cluster < 16 for p in predictions)
    assert scores["clusters/n_matched"] > 50
    assert scores["clusters/nmi"] > 0.1
    assert ctx.metrics["nee_matched_entities"] > 0
    assert ctx.metrics["entities_clustered"] > 0
    assert (ctx.artifact_dir / "clusters.csv").exists()
    # pre-training read spans drawn from coarse labels: those of the weak-typing view
    weak = PROTOCOLS["weak-typing"].train_view(small.splits["train"], "train", small.hierarchy)
    assert ctx.metrics["coarse_training_spans"] == sum(len(e.spans) for e in weak.examples)


def test_weak_typing_maps_clusters_to_fine_types_under_the_given_coarse_type(small, views, ctx):
    _, _, test = views("weak-typing")
    method = Cofee(CofeeConfig(**QUICK)).fit(*views("weak-typing")[:2], ctx)
    predictions = PROTOCOLS["weak-typing"].validate(method.predict(test), test)  # fine type under the given coarse
    scores = evaluate_split(small.splits["test"], predictions, small.hierarchy, "typing", resamples=0).metrics
    assert scores["fine/accuracy"] > 0.1
    assert 0 < scores["clusters/nmi"] <= 1


def test_supervised_fine_tuning_starts_from_the_pre_trained_layer(views, ctx):
    train, dev, test = views("ner")
    torch.manual_seed(0)
    pre = Cofee(CofeeConfig(**QUICK, setting="supervised", epochs=1)).fit(train, dev, ctx)
    assert set(pre.net_.heads) == {"esi", "nee", "clusters", "fine"}
    torch.manual_seed(0)
    bare = Cofee(CofeeConfig(**QUICK, setting="supervised", pretrain=False, epochs=1)).fit(train, dev, ctx)
    assert set(bare.net_.heads) == {"fine"}
    assert not torch.equal(pre.net_.shared[1].weight, bare.net_.shared[1].weight)
    predictions = PROTOCOLS["ner"].validate(pre.predict(test), test)
    assert all(p.cluster is None for p in predictions)
