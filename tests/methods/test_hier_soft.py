"""Hierarchy-aware soft loss: the soft targets, the one-hot ablation, W files, BIO, the model."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from benchmark.core.errors import ConfigError
from benchmark.core.labels import FEWNERD
from benchmark.core.registry import PROTOCOLS
from benchmark.core.spans import bio_tags, spans_from_bio
from methods.hier_soft.method import HierSoft, HierSoftConfig
from methods.hier_soft.model import HierSoftNet
from methods.hier_soft.soft_loss import (
    check_weights,
    confusion_weights,
    hierarchy_weights,
    read_weights,
    soft_cross_entropy,
    soft_targets,
    write_weights,
)

TYPES = ["art-film", "art-music", "art-other", "person-actor", "person-other"]


def test_soft_targets_of_a_known_hierarchy():
    weights = torch.tensor(hierarchy_weights(TYPES, beta=0.5, gamma=0.1))
    targets = soft_targets(weights, torch.tensor([0, 3]))
    # art-film: itself 1, two art siblings 0.5 each, two person types 0.1 each → total 2.2
    torch.testing.assert_close(targets[0], torch.tensor([1, 0.5, 0.5, 0.1, 0.1], dtype=torch.float64) / 2.2)
    # person-actor: itself 1, one person sibling 0.5, three art types 0.1 each → total 1.8
    torch.testing.assert_close(targets[1], torch.tensor([0.1, 0.1, 0.1, 1, 0.5], dtype=torch.float64) / 1.8)
    assert torch.allclose(targets.sum(-1), torch.ones(2, dtype=torch.float64))


def test_the_soft_loss_is_cross_entropy_against_the_normalised_row():
    torch.manual_seed(0)
    logits = torch.randn(4, len(TYPES))
    gold = torch.tensor([0, 1, 3, 4])
    weights = torch.tensor(hierarchy_weights(TYPES, beta=0.3, gamma=0.05), dtype=torch.float32)
    rows = weights[gold] / weights[gold].sum(-1, keepdim=True)
    expected = -(rows * logits.log_softmax(-1)).sum(-1).mean()
    torch.testing.assert_close(soft_cross_entropy(logits, gold, weights), expected)


def test_the_one_hot_ablation_is_plain_cross_entropy():
    torch.manual_seed(1)
    logits = torch.randn(16, len(TYPES), requires_grad=True)
    gold = torch.randint(len(TYPES), (16,))
    one_hot = torch.tensor(hierarchy_weights(TYPES, beta=0.0, gamma=0.0), dtype=torch.float32)
    assert torch.equal(one_hot, torch.eye(len(TYPES)))
    soft = soft_cross_entropy(logits, gold, one_hot)
    plain = F.cross_entropy(logits, gold)
    torch.testing.assert_close(soft, plain)
    (soft_grad,) = torch.autograd.grad(soft, logits)
    (plain_grad,) = torch.autograd.grad(plain, logits)
    torch.testing.assert_close(soft_grad, plain_grad)
    assert HierSoft.variants["one-hot"].overrides == {"beta": 0.0, "gamma": 0.0}


def test_confusion_weights_put_the_dev_error_rates_off_the_diagonal():
    confusion = np.array([[6, 2, 0], [0, 0, 0], [1, 1, 2]])
    weights = confusion_weights(confusion)
    np.testing.assert_allclose(weights, [[1, 0.25, 0], [0, 1, 0], [0.25, 0.25, 1]])
    check_weights(weights, 3)


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (np.eye(4), "must be 5×5"),
        (np.eye(5) - 0.1, "negative weight"),
        (np.eye(5) * np.array([1, 1, 0, 1, 1]), "diagonal of W must be positive"),
        (np.full((5, 5), np.nan), "non-finite"),
    ],
)
def test_invalid_weight_matrices_are_refused(matrix, message):
    with pytest.raises(ConfigError, match=message):
        check_weights(matrix, len(TYPES))


def test_a_weight_file_round_trips_in_any_row_and_column_order(tmp_path):
    weights = hierarchy_weights(TYPES, beta=0.2, gamma=0.05)
    path = tmp_path / "w.csv"
    write_weights(path, weights, TYPES)
    np.testing.assert_allclose(read_weights(path, TYPES), weights)
    shuffled = list(reversed(TYPES))
    np.testing.assert_allclose(read_weights(path, shuffled), hierarchy_weights(shuffled, 0.2, 0.05))


def test_a_bad_weight_file_names_its_line(tmp_path):
    path = tmp_path / "w.csv"
    write_weights(path, hierarchy_weights(TYPES, 0.2, 0.0), TYPES)
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace("0.2", "-0.2", 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=r"w\.csv, line 4: weights must be finite and non-negative"):
        read_weights(path, TYPES)
    path.write_text("type,art-film\nart-film,1\n")
    with pytest.raises(ConfigError, match="line 1: the header must name each of the 5 types"):
        read_weights(path, TYPES)


@pytest.mark.parametrize("setting", [{"beta": 1.5}, {"gamma": -0.1}])
def test_beta_and_gamma_must_lie_in_the_unit_interval(setting):
    with pytest.raises(ConfigError, match="must lie in \\[0, 1\\]"):
        HierSoftConfig(**setting)


def test_a_weight_file_is_checked_before_any_data_is_loaded(tmp_path):
    path = tmp_path / "w.csv"
    write_weights(path, hierarchy_weights(TYPES, 0.1, 0.0), TYPES)  # 5 types, not Few-NERD's 66
    with pytest.raises(ConfigError, match="the header must name each of the 66 types"):
        HierSoft.check_config(HierSoftConfig(weights=str(path)), "ner")
    write_weights(path, hierarchy_weights(FEWNERD.fine_types, 0.1, 0.0), FEWNERD.fine_types)
    HierSoft.check_config(HierSoftConfig(weights=str(path)), "ner")
    with pytest.raises(ConfigError, match="'hierarchy', 'confusion' or a CSV file"):
        HierSoft.check_config(HierSoftConfig(weights=str(tmp_path / "missing.csv")), "ner")


def test_bio_tags_separate_adjacent_entities_and_decode_back():
    tags = bio_tags([6, 2], [(0, 0, 2), (0, 2, 3), (0, 4, 6), (1, 1, 2)])
    assert tags.tolist() == [1, 2, 1, 0, 1, 2, 0, 1]
    assert spans_from_bio(tags[:6].tolist()) == [(0, 2, 0), (2, 3, 0), (4, 6, 0)]
    assert spans_from_bio([2, 2, 0, 2, 1, 2]) == [(0, 2, 0), (3, 4, 0), (4, 6, 0)]  # an I after O opens a span


def test_equal_length_batches_give_the_packed_states():
    torch.manual_seed(0)
    net = HierSoftNet(dim=6, hidden=4, n_types=3, dropout=0.0).eval()
    words = torch.randn(12, 6)
    same = net.states(words, [4, 4, 4])  # one length: run without packing
    mixed = net.states(torch.cat([words, torch.randn(3, 6)]), [4, 4, 4, 3])  # packed
    torch.testing.assert_close(same, mixed[:12])


def test_retargeting_starts_each_fine_type_from_its_coarse_type():
    net = HierSoftNet(dim=6, hidden=4, n_types=2, dropout=0.0)
    coarse = net.type_out.weight.detach().clone()
    net.retarget([0, 0, 1, 1, 1])
    assert net.type_out.out_features == 5
    torch.testing.assert_close(net.type_out.weight[:2], coarse[[0, 0]])
    torch.testing.assert_close(net.type_out.weight[2:], coarse[[1, 1, 1]])


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["typing", "ner"])
def test_hier_soft_learns_on_a_real_slice(protocol, views, small, ctx):
    train, dev, test = views(protocol)
    method = HierSoft(HierSoftConfig(epochs=4, pretrain_epochs=1)).fit(train, dev, ctx)
    predicted = PROTOCOLS[protocol].validate(method.predict(test), test)
    assert ctx.metrics["coarse_epochs"] == 1
    written = read_weights(ctx.artifact_dir / "soft_label_weights.csv", method.types_)
    np.testing.assert_allclose(written, hierarchy_weights(method.types_, 0.1, 0.0))
    gold = {(s.sentence_id, s.start, s.end): s.label for x in small.splits["test"] for s in x.spans}
    if protocol == "typing":
        accuracy = np.mean([gold[(p.sentence_id, p.start, p.end)] == p.label for p in predicted])
        majority = max(np.unique(list(gold.values()), return_counts=True)[1]) / len(gold)
        assert accuracy > majority + 0.05
    else:  # the detection head finds entities: some predicted spans are exact gold spans
        assert sum((p.sentence_id, p.start, p.end) in gold for p in predicted) > 0.1 * len(gold)


@pytest.mark.slow
def test_confusion_weights_come_from_a_first_models_dev_errors(views, ctx):
    train, dev, _ = views("typing")
    method = HierSoft(HierSoftConfig(weights="confusion", epochs=2, pretrain_epochs=1)).fit(train, dev, ctx)
    weights = read_weights(ctx.artifact_dir / "soft_label_weights.csv", method.types_)
    np.testing.assert_allclose(np.diag(weights), 1.0)
    off = weights - np.eye(len(weights))
    assert off.sum() > 0  # the first model made dev errors, and they became weights
    assert (off.sum(axis=1) <= 1 + 1e-6).all()  # each row: shares of one type's dev entities
    assert ctx.metrics["first-fine_epochs"] >= 1


@pytest.mark.slow
def test_finetuning_the_encoder_runs_on_a_tiny_slice(views, ctx):
    train, dev, test = views("ner")
    tiny = [replace(v, examples=v.examples[:16]) for v in (train, dev, test)]
    config = HierSoftConfig(mode="finetune", epochs=1, pretrain_epochs=1, warmup_steps=2)
    method = HierSoft(config).fit(tiny[0], tiny[1], ctx)
    reference = ctx.features.encoder(config.encoder).model.state_dict()  # the pretrained weights
    tuned = method.encoder_model_.state_dict()
    assert any(not torch.allclose(reference[k], tuned[k]) for k in reference)
    PROTOCOLS["ner"].validate(method.predict(tiny[2]), tiny[2])
