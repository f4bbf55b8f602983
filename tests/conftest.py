"""Shared fixtures: the embedded corpus (loaded once) and small real slices of it."""

from __future__ import annotations

import pytest

from benchmark.data.fewnerd import Corpus, load_embedded, make_sentence


@pytest.fixture(scope="session")
def corpus() -> Corpus:
    return load_embedded()


def renumber(sentences) -> tuple:
    return tuple(make_sentence(i, s.tokens, s.labels) for i, s in enumerate(sentences))


@pytest.fixture(scope="session")
def small(corpus: Corpus) -> Corpus:
    """A few hundred real sentences per split, renumbered: 300 train, 100 dev, 200 test."""
    splits = {
        "train": renumber(corpus.splits["train"][:300]),
        "dev": renumber(corpus.splits["dev"][:100]),
        "test": renumber(corpus.splits["test"][:200]),
    }
    return Corpus("small", splits, corpus.hierarchy, corpus.sources)


@pytest.fixture
def store(tmp_path, monkeypatch) -> str:
    """A fresh MLflow SQLite store for one test."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri
