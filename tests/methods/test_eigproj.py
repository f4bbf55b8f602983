"""eigproj: the eigenproblem's KKT conditions, LIME keywords, re-ranking, prediction, bad input."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from benchmark.core.config import resolve_config
from benchmark.core.encoders import EncoderSettings
from benchmark.core.errors import BenchmarkError, ConfigError
from benchmark.core.seeding import seed_everything
from methods.eigproj.keywords import explain_sentence, is_keyword_candidate, rerank
from methods.eigproj.method import EigProj, EigProjConfig
from methods.eigproj.projection import constraint_matrix, fit_projection, nearest_class, solve_projection
from methods.tagger.method import TaggerConfig

COARSE_TAGGER = TaggerConfig(coarse=True, epochs=3)


@pytest.fixture
def random_matrices():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8)) @ rng.normal(size=(8, 8))
    h = 0.7 * x + rng.normal(size=(300, 8))
    return x, h


def test_solution_satisfies_the_papers_kkt_conditions(random_matrices):
    x, h = random_matrices
    b = constraint_matrix("sum", x, h, x, epsilon=0.0)
    a = (x - h).T @ (x - h)
    values, vectors = solve_projection(x, h, b, k=3)
    for value, u in zip(values, vectors.T, strict=True):
        np.testing.assert_allclose(a @ u, value * b @ u, atol=1e-8 * np.abs(a).max())  # stationarity
        assert u @ b @ u == pytest.approx(1.0)  # primal feasibility: uᵀ(Σx+Σh)u = 1
    assert np.all(np.diff(values) >= 0)
    rng = np.random.default_rng(1)
    for v in rng.normal(size=(200, 8)):  # the optimum: no feasible direction does better
        assert (v @ a @ v) / (v @ b @ v) >= values[0] - 1e-9


def test_k_cannot_exceed_the_projected_dimension(random_matrices):
    with pytest.raises(ConfigError, match="k=25 must lie between 1 and the projected dimension"):
        EigProjConfig(k=25, pca_dims=20)
    x, h = random_matrices
    with pytest.raises(BenchmarkError, match="only 8 dimensions"):
        solve_projection(x, h, np.eye(8), k=9)


def test_the_coarse_tagger_is_set_through_tagger_and_runs_on_eigprojs_encoder():
    config = resolve_config(EigProjConfig, None, ["tagger.hidden=512", "tagger.epochs=3", "encoder.layer=4"])
    assert config.coarse_tagger == TaggerConfig(
        EncoderSettings(layer=4, pooling="mean"), coarse=True, epochs=3, hidden=512
    )
    assert EigProjConfig().coarse_tagger == TaggerConfig(EncoderSettings(pooling="mean"), coarse=True)


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("tagger.encoder.layer=4", "tagger.encoder.layer: the coarse tagger uses eigproj's encoder; set encoder.layer"),
        ("tagger.coarse=false", "eigproj's tagger learns the coarse types"),
        ("tagger.mode=finetune", "eigproj's coarse tagger trains on frozen features"),
        ("tagger_hidden=512", "'tagger_hidden' is now 'tagger.hidden'"),
        ("tagger_epochs=3", "'tagger_epochs' is now 'tagger.epochs'"),
    ],
)
def test_settings_of_the_tagger_that_eigproj_fixes_are_refused(assignment, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config(EigProjConfig, None, [assignment])


def test_epsilon_is_relative_to_the_constraint_matrix_itself(random_matrices):
    """The paper's "slight noise" on B's diagonal scales with B in the space B is built in, so
    rescaling the vectors (another PCA or kernel space) leaves the regularised problem the same."""
    x, h = random_matrices
    b = constraint_matrix("sum", x, h, x, epsilon=1e-2)
    plain = constraint_matrix("sum", x, h, x, epsilon=0.0)
    np.testing.assert_allclose(b - plain, 1e-2 * np.mean(np.diag(plain)) * np.eye(8))
    np.testing.assert_allclose(constraint_matrix("sum", 10 * x, 10 * h, x, epsilon=1e-2), 100 * b)


def test_singular_constraint_without_epsilon_suggests_epsilon(random_matrices):
    x, h = random_matrices
    x[:, -1] = 0.0
    h[:, -1] = 0.0  # a direction with no variance: Σx + Σh is singular
    with pytest.raises(BenchmarkError, match=r"singular or not positive definite.*--set epsilon=1e-3"):
        solve_projection(x, h, constraint_matrix("sum", x, h, x, epsilon=0.0), k=2)
    values, _ = solve_projection(x, h, constraint_matrix("sum", x, h, x, epsilon=1e-3), k=2)
    assert np.isfinite(values).all()


@pytest.mark.parametrize(
    ("options"),
    [
        {"pca": "separate", "kernel": "linear", "constraint": "sum"},
        {"pca": "joint", "kernel": "linear", "constraint": "keywords"},
        {"pca": "joint", "kernel": "rbf", "constraint": "sum"},
    ],
)
def test_projection_variants_map_into_k_dimensions(random_matrices, options):
    x, h = random_matrices
    classes = np.random.default_rng(2).normal(size=(12, 8))
    projection = fit_projection(
        x, h, classes, dims=6, k=4, epsilon=1e-3, kernel_components=50, gamma=None, seed=0, **options
    )
    assert projection.entities(x[:5]).shape == (5, 4)
    assert projection.keywords(classes).shape == (12, 4)


def test_nearest_class_respects_the_allowed_mask():
    entities = np.array([[0.0, 0.0], [5.0, 5.0]])
    classes = np.array([[0.1, 0.0], [5.0, 5.1], [1.0, 1.0]])
    allowed = np.array([[False, True, True], [True, True, False]])
    best, margin = nearest_class(entities, classes, allowed, "euclidean")
    assert best.tolist() == [2, 1]
    assert margin[0] == pytest.approx(np.hypot(5, 5.1) - np.hypot(1, 1))


def test_keyword_candidates():
    assert is_keyword_candidate("senator")
    assert not is_keyword_candidate("the")
    assert not is_keyword_candidate(",")
    assert not is_keyword_candidate("1998")


def test_lime_finds_the_word_the_classifier_relies_on():
    tokens = ("Yesterday", "the", "senator", "Smith", "spoke", "in", "Boston", "today")
    labels = ["O", "location", "person"]

    def probabilities(batch):
        out = []
        for words in batch:
            person = 0.9 if words[2] == "senator" else 0.2
            out.append(np.tile([0.05, 0.95 - person, person], (len(words), 1)))
        return out

    ranked = explain_sentence(
        tokens, [(3, 4, "person"), (6, 7, "location")], {3, 6}, probabilities, labels,
        num_samples=200, num_features=5, mask="[MASK]", random_state=0,
    )  # fmt: skip
    assert ranked[0][0][0] == 2  # "senator" explains the person
    assert all(position not in {3, 6} for position, _ in ranked[0] + ranked[1])
    assert all(tokens[p].lower() not in {"the", "in"} for p, _ in ranked[0])


def test_rerank_drops_keywords_unrelated_to_the_type():
    sentences = {0: ("senator", "film", "Smith"), 1: ("actor", "weather", "Jones")}
    explained = [
        {"sentence": 0, "start": 2, "end": 3, "coarse": "person", "keywords": [[1, 0.5], [0, 0.3]]},
        {"sentence": 1, "start": 2, "end": 3, "coarse": "person", "keywords": [[0, 0.6], [1, 0.4]]},
        {"sentence": 1, "start": 2, "end": 3, "coarse": "person", "keywords": [[1, 0.4]]},
    ]
    scores = {"senator": 0.9, "film": 0.1, "actor": 0.8, "weather": 0.0}
    choice, table = rerank(explained, sentences.__getitem__, lambda words, _: np.array([scores[w] for w in words]), 0.5)
    assert choice == [0, 0, None]  # "film" and "weather" fall below the median relevance
    assert [w for w, _, _ in table["person"]] == ["senator", "actor"]  # by count, then relevance
    keep_all, _ = rerank(explained, sentences.__getitem__, lambda words, _: np.zeros(len(words)), 0.0)
    assert keep_all == [1, 0, 1]


def test_missing_keywords_for_a_coarse_type_are_reported(ctx, small, caplog):
    from benchmark.core.registry import PROTOCOLS

    view = PROTOCOLS["weak-typing"].train_view(small.splits["train"][:5], "train", small.hierarchy)
    with caplog.at_level(logging.WARNING):
        EigProj()._write_keywords({"person": [("senator", 3, 0.9)]}, view, ctx)
    assert "no keyword survived for coarse type 'art'" in caplog.text
    text = (ctx.artifact_dir / "keywords.md").read_text()
    assert "| person | senator (3) |" in text
    assert "| art | (none) |" in text


@pytest.mark.slow
def test_fit_and_predict_on_real_sentences(small, ctx):
    from benchmark.core.registry import PROTOCOLS

    protocol = PROTOCOLS["weak-typing"]
    train = protocol.train_view(small.splits["train"], "train", small.hierarchy)
    dev = protocol.train_view(small.splits["dev"], "dev", small.hierarchy)
    test = protocol.test_view(small.splits["test"], small.hierarchy)
    seed_everything(1)  # as the harness does before every run
    method = EigProj(EigProjConfig(lime_entities=60, lime_samples=24, tagger=COARSE_TAGGER)).fit(train, dev, ctx)
    assert ctx.metrics["entities_explained"] >= 60
    assert ctx.metrics["entities_with_keyword"] > 20
    assert (ctx.artifact_dir / "keywords.csv").exists()
    predicted = protocol.validate(method.predict(test), test)
    assert len(predicted) == sum(len(e.spans) for e in test.examples)
    assert ctx.features.stage_hits == 0
    assert 0 <= ctx.metrics["explained_gold_share"] < 1  # the tagger's own entities, not (all) gold ones
    seed_everything(1)  # same seed: the same coarse tagger, so the LIME key matches
    EigProj(EigProjConfig(lime_entities=60, lime_samples=24, tagger=COARSE_TAGGER)).fit(train, dev, ctx)
    assert ctx.features.stage_hits == 1  # the LIME explanations come from the stage cache
    seed_everything(1)
    EigProj(EigProjConfig(lime_entities=60, lime_samples=24, tagger=COARSE_TAGGER, explain="gold")).fit(train, dev, ctx)
    assert ctx.metrics["explained_gold_share"] == 1.0
