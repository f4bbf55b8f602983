"""Datasets: Few-NERD loading (`fewnerd`) and per-split statistics (`stats`)."""

from benchmark.core.data.fewnerd import DATASETS, SPLITS, Corpus, Sentence, load_corpus

__all__ = ["DATASETS", "SPLITS", "Corpus", "Sentence", "load_corpus"]
