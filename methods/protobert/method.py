"""ProtoBERT, Few-NERD's prototypical network (Ding et al., 2021; its model/proto.py), on frozen features.

In an episode every label of the support set (``O`` and each of the N types) has a prototype,
the mean vector of its support words; each query word takes the label of the nearest prototype
(negative squared Euclidean distance, as Few-NERD's default; ``distance = "dot"`` its ``--dot``),
and runs of one label are its entities (IO, Few-NERD's scheme). Training-free: the encoder is
frozen and never meta-trained, so ``fit`` learns nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, Self

import numpy as np

from benchmark.core.decoding import decode_io
from benchmark.core.encoders import EncoderSettings
from benchmark.core.episodic import EpisodeTask, EpisodeView
from benchmark.core.errors import ConfigError
from benchmark.core.method import Context, Method, Settings, check_is_fitted
from benchmark.core.protocols import View
from benchmark.core.spans import OUTSIDE, Span


@dataclass(frozen=True)
class ProtoConfig:
    """``encoder``: the frozen word features (first sub-word, last layer); ``distance``:
    ``euclidean`` (negative squared Euclidean, Few-NERD's default) or ``dot``."""

    encoder: EncoderSettings = EncoderSettings()
    distance: Literal["euclidean", "dot"] = "euclidean"

    def __post_init__(self) -> None:
        if self.distance not in ("euclidean", "dot"):
            raise ConfigError(f"distance must be euclidean or dot, got {self.distance!r}")


class ProtoBERT(Method):
    """Few-NERD's ProtoBERT, training-free: each query word takes its nearest label prototype."""

    protocols = frozenset({"episodes"})
    Config = ProtoConfig
    defaults = Settings(
        "paper",
        "Few-NERD's model/proto.py: prototypes of O and the N types, negative squared Euclidean distance; "
        "training-free on frozen MiniLM (the paper meta-trains BERT: not done here)",
    )
    variants: ClassVar[dict[str, Settings]] = {}

    def fit(self, train: View, dev: View, ctx: Context) -> Self:
        self.features_ = ctx.features  # the frozen word features of the episodes' sentences, read in predict
        return self

    def predict(self, view: View) -> list[Span]:
        check_is_fitted(self, "features_")
        if not isinstance(view, EpisodeView):
            raise TypeError(f"{type(self).__name__} predicts episodes, got a {type(view).__name__}")
        sentences = view.sentences()
        row = {tokens: i for i, tokens in enumerate(sentences)}
        features = self.features_.word_features(sentences, self.config.encoder)
        spans = []
        for task in view.episodes:
            labels = (OUTSIDE, *task.types)
            index = {label: i for i, label in enumerate(labels)}
            support = np.concatenate([np.asarray(features[row[e.tokens]], dtype=np.float32) for e in task.support])
            tags = np.array([index[label] for e in task.support for label in e.labels])
            for sentence in task.query:
                query = np.asarray(features[row[view.examples[sentence].tokens]], dtype=np.float32)
                probabilities = softmax(self.scores(query, support, tags, len(labels)))
                spans += self.decode(sentence, probabilities, labels, task)
        return spans

    def decode(
        self, sentence: int, probabilities: np.ndarray, labels: tuple[str, ...], task: EpisodeTask
    ) -> list[Span]:
        """Spans of one query sentence from its words' label probabilities: each word's most
        probable label, runs of one label an entity (scored by its mean top probability)."""
        return decode_io(sentence, probabilities, labels)

    def scores(self, query: np.ndarray, support: np.ndarray, tags: np.ndarray, n_labels: int) -> np.ndarray:
        """(query words, labels): minus the squared distance (or the dot product) to each label's
        prototype; a label without support words scores -inf."""
        prototypes = np.zeros((n_labels, support.shape[1]), dtype=np.float32)
        np.add.at(prototypes, tags, support)
        counts = np.bincount(tags, minlength=n_labels)
        prototypes /= np.maximum(counts, 1)[:, None]
        scores = similarity(query, prototypes, self.config.distance)
        scores[:, counts == 0] = -np.inf
        return scores


def similarity(query: np.ndarray, keys: np.ndarray, distance: str) -> np.ndarray:
    """(query rows, key rows): minus the squared Euclidean distance, or the dot product."""
    if distance == "dot":
        return query @ keys.T
    return -(np.square(query).sum(1)[:, None] - 2 * query @ keys.T + np.square(keys).sum(1)[None, :])


def softmax(scores: np.ndarray) -> np.ndarray:
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
