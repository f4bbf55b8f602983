"""Span-level BiLSTM-attention (the "span-level strategy" paper), batched, with span
enumeration for ``ner``."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import ClassVar, Literal, Self

import numpy as np
import torch
from torch import nn

from benchmark.core.decoding import dev_f1
from benchmark.core.encoders import STATIC_ENCODERS, EncoderSettings, StaticEncoder
from benchmark.core.errors import ConfigError
from benchmark.core.method import Context, Method, Settings, check_is_fitted
from benchmark.core.protocols import View
from benchmark.core.spans import OUTSIDE, Span, candidate_spans, greedy_non_overlapping
from benchmark.core.training import EarlyStopping, LossMeter, length_batches
from methods.span_bilstm_attn.model import SpanBiLSTMAttention, WordMatrix

PREDICT_BATCH = 4096  # spans per forward pass at prediction
NONE_BIAS_GRID = np.arange(-2.0, 4.01, 0.5)  # O log-probability offsets tried by none_bias=None


@dataclass(frozen=True)
class SpanConfig:
    """The paper's model and optimiser (GloVe, 200 hidden units, Adam at 1e-3) with batched
    training and early stopping on dev. ``features=contextual`` feeds the shared encoder's
    word features instead of static vectors. The ``ner`` settings (span length, negatives) are
    ours: the paper only types gold spans."""

    features: Literal["static", "contextual"] = "static"
    encoder: EncoderSettings = EncoderSettings(name="glove-50d")  # static: glove-50d; contextual: a transformer
    unknown: Literal["backoff", "learned", "zero"] = "backoff"  # static words not in GloVe
    hidden: int = 200
    lr: float = 1e-3
    dropout: float = 0.0
    batch_size: int = 32  # spans per step; the paper's code sums a whole epoch into one step
    epochs: int = 30
    patience: int = 3
    max_span_length: int | None = None  # ner; None: the shortest covering `span_coverage`
    span_coverage: float = 0.99  # share of training entities the chosen max length covers
    negative_rate: float = 0.35  # ner; non-entity spans sampled per sentence token per epoch
    none_bias: float | None = None  # ner; added to O's log-probability; None: chosen on dev

    def __post_init__(self) -> None:
        if self.max_span_length is not None and self.max_span_length < 1:
            raise ConfigError(f"max_span_length must be at least 1 token, got {self.max_span_length}")
        if not 0 < self.span_coverage <= 1:
            raise ConfigError(f"span_coverage must lie in (0, 1], got {self.span_coverage}")
        if self.negative_rate <= 0:
            raise ConfigError(f"negative_rate must be positive, got {self.negative_rate}")
        if min(self.hidden, self.batch_size, self.epochs, self.patience) < 1:
            raise ConfigError("hidden, batch_size, epochs and patience must be at least 1")
        if self.none_bias is not None and not math.isfinite(self.none_bias):
            raise ConfigError(f"none_bias must be a finite number or none, got {self.none_bias}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must lie in [0, 1), got {self.dropout}")


class SpanBiLSTMAttn(Method):
    """Span-level BiLSTM-attention: each span's words alone → BiLSTM → attention → type.

    ``typing`` is the paper's setting: every gold span gets a fine type. ``ner`` enumerates
    every span up to ``max_span_length`` words, classifies it into the fine types or ``O``
    (trained with sampled non-entity spans) and keeps non-overlapping spans by confidence.
    """

    protocols = frozenset({"typing", "ner"})
    default_protocol = "typing"
    defaults = Settings("paper", "the paper's model and optimiser on GloVe; ner's span limit and negatives a priori")
    variants: ClassVar[dict[str, Settings]] = {
        "contextual-layer4": Settings(
            "dev",
            "MiniLM word features instead of GloVe, their layer (4) picked by a typing dev sweep (see the card)",
            {"features": "contextual", "encoder.name": "minilm", "encoder.layer": 4},
        ),
        "contextual": Settings(
            "oracle",
            "MiniLM layer 3, the layer tagger:layer3-mlp took after its test F1 was seen; kept for reference",
            {"features": "contextual", "encoder.name": "minilm", "encoder.layer": 3},
            chosen=("encoder.layer",),  # the contextual features are the option compared; the layer came from test
        ),
    }
    Config = SpanConfig

    @classmethod
    def check_config(cls, config: SpanConfig, protocol: str) -> None:
        name = config.encoder.name
        if config.features == "static" and name not in STATIC_ENCODERS:
            raise ConfigError(
                f"features=static needs static word vectors, but encoder {name!r} has none; "
                f"use encoder.name={'/'.join(sorted(STATIC_ENCODERS))} or features=contextual"
            )
        if config.features == "contextual" and name in STATIC_ENCODERS:
            raise ConfigError(
                f"features=contextual needs a transformer encoder, not {name!r}; e.g. encoder.name=minilm"
            )

    def fit(self, train: View, dev: View, ctx: Context) -> Self:
        cfg = self.config
        self.check_config(cfg, train.protocol)
        self._features = ctx.features
        self.ner_ = train.protocol == "ner"
        types = sorted({s.label for e in train.examples for s in e.spans})
        self.labels_ = [OUTSIDE, *types] if self.ner_ else types
        self.max_span_length_ = self._max_span_length(train) if self.ner_ else None
        self.none_bias_ = self.config.none_bias or 0.0
        matrix = self._matrix(train)
        gold = _gold_rows(train, {label: i for i, label in enumerate(self.labels_)})
        rng = np.random.default_rng(ctx.seed)
        self.model_ = SpanBiLSTMAttention(
            matrix.vectors.shape[1], cfg.hidden, len(self.labels_), matrix.unknown is not None, cfg.dropout
        )
        optimizer = torch.optim.Adam(self.model_.parameters(), lr=cfg.lr)
        dev_matrix = self._matrix(dev)
        if self.ner_:  # non-entity spans: ⌈negative_rate · n⌉ per sentence of n words, per epoch
            pool = non_entity_spans(train, self.max_span_length_)
            quota = np.ceil(cfg.negative_rate * np.array([len(e.tokens) for e in train.examples])).astype(np.int64)
        stopper = EarlyStopping(cfg.patience, ctx.curve("span-classifier", cfg.epochs, "micro_f1"))
        trained, seconds = 0, 0.0
        for epoch in range(cfg.epochs):
            rows = gold
            if self.ner_:
                negatives = sample_negatives(pool, quota, rng)
                rows = np.concatenate([gold, np.column_stack([negatives, np.zeros(len(negatives), np.int64)])])
            started = time.perf_counter()
            loss = self._train_epoch(matrix, rows, optimizer, rng)
            trained, seconds = trained + len(rows), seconds + time.perf_counter() - started
            if stopper.step(epoch, dev_f1(self._predict(dev, dev_matrix), dev), self.model_, loss):
                break
        stopper.restore(self.model_)
        self.dev_history_ = stopper.history
        ctx.metrics.update(epochs=len(stopper.history), train_spans_per_second=trained / seconds)
        if self.ner_:
            if cfg.none_bias is None:
                self.none_bias_ = self._tune_none_bias(dev, dev_matrix)
            ctx.metrics.update(
                max_span_length=self.max_span_length_, negatives_per_epoch=len(negatives), none_bias=self.none_bias_
            )
        return self

    def _train_epoch(self, matrix: WordMatrix, rows: np.ndarray, optimizer, rng: np.random.Generator) -> float:
        """One pass over training rows ``(sentence, start, length, class)`` in batches of one
        length; returns the mean loss."""
        loss_fn = nn.CrossEntropyLoss()
        self.model_.train()
        meter = LossMeter()
        for batch in length_batches(rows[:, 2], self.config.batch_size, rng):
            words, unknown = matrix.spans(rows[batch, 0], rows[batch, 1], int(rows[batch[0], 2]))
            optimizer.zero_grad()
            loss = loss_fn(self.model_(words, unknown), torch.from_numpy(rows[batch, 3]))
            loss.backward()
            optimizer.step()
            meter.add(loss, len(batch))
        return meter.mean

    def predict(self, view: View) -> list[Span]:
        check_is_fitted(self, "model_")
        return self._predict(view, self._matrix(view))

    def _max_span_length(self, train: View) -> int:
        if self.config.max_span_length is not None:
            return self.config.max_span_length
        lengths = np.array([s.end - s.start for e in train.examples for s in e.spans])
        return int(np.quantile(lengths, self.config.span_coverage, method="inverted_cdf"))

    def _matrix(self, view: View) -> WordMatrix:
        """Word vectors of the view's sentences: static lookups or cached contextual features."""
        settings = self.config.encoder
        sentences = [e.tokens for e in view.examples]
        offsets = np.cumsum([0, *map(len, sentences)])
        if self.config.features == "contextual":
            features = self._features.word_features(sentences, settings)
            return WordMatrix(torch.from_numpy(np.asarray(features.matrix, dtype=np.float32)), offsets, None)
        glove = self._features.encoder(settings)
        assert isinstance(glove, StaticEncoder)
        backoff = self.config.unknown == "backoff"
        ids = np.concatenate([glove.ids(tokens, backoff=backoff) for tokens in sentences])
        vectors = np.zeros((len(ids), glove.dim), dtype=np.float32)
        vectors[ids >= 0] = glove.vectors[ids[ids >= 0]]
        unknown = None if self.config.unknown == "zero" else torch.from_numpy(ids < 0)
        return WordMatrix(torch.from_numpy(vectors), offsets, unknown)

    def _probabilities(self, matrix: WordMatrix, rows: np.ndarray) -> np.ndarray:
        """Class probabilities of spans given as rows ``(sentence, start, length)``."""
        out = np.empty((len(rows), len(self.labels_)), dtype=np.float32)
        self.model_.eval()
        with torch.inference_mode():
            for batch in length_batches(rows[:, 2], PREDICT_BATCH):
                words, unknown = matrix.spans(rows[batch, 0], rows[batch, 1], int(rows[batch[0], 2]))
                out[batch] = self.model_(words, unknown).softmax(-1).numpy()
        return out

    def _predict(self, view: View, matrix: WordMatrix) -> list[Span]:
        if not self.ner_:
            given = [(i, s) for i, e in enumerate(view.examples) for s in e.spans]
            rows = np.array([(i, s.start, s.end - s.start) for i, s in given], dtype=np.int64).reshape(-1, 3)
            probs = self._probabilities(matrix, rows)
            best = probs.argmax(axis=1)
            return [
                s._replace(label=self.labels_[k], score=float(probs[j, k]))
                for j, ((_, s), k) in enumerate(zip(given, best, strict=True))
            ]
        rows = candidate_spans([len(e.tokens) for e in view.examples], self.max_span_length_)
        return self._decode(view, rows, self._probabilities(matrix, rows), self.none_bias_)

    def _decode(self, view: View, rows: np.ndarray, probs: np.ndarray, none_bias: float) -> list[Span]:
        """Candidates whose best class beats ``O`` (its log-probability raised by ``none_bias``),
        then the non-overlapping ones by confidence."""
        logp = np.log(probs + 1e-12)
        logp[:, 0] += none_bias
        best = logp.argmax(axis=1)
        ids = [e.id for e in view.examples]
        return greedy_non_overlapping(
            Span(ids[r[0]], int(r[1]), int(r[1] + r[2]), self.labels_[k], float(probs[j, k]))
            for j, r, k in zip(np.flatnonzero(best != 0), rows[best != 0], best[best != 0], strict=True)
        )

    def _tune_none_bias(self, dev: View, matrix: WordMatrix) -> float:
        """The ``O`` bias in NONE_BIAS_GRID with the best dev F1 (ties: the smaller bias)."""
        rows = candidate_spans([len(e.tokens) for e in dev.examples], self.max_span_length_)
        probs = self._probabilities(matrix, rows)
        scores = [dev_f1(self._decode(dev, rows, probs, b), dev) for b in NONE_BIAS_GRID]
        return float(NONE_BIAS_GRID[int(np.argmax(scores))])


def _gold_rows(view: View, index: dict[str, int]) -> np.ndarray:
    """Training rows ``(sentence, start, length, class)`` of the view's gold entities."""
    rows = [(i, s.start, s.end - s.start, index[s.label]) for i, e in enumerate(view.examples) for s in e.spans]
    return np.array(rows, dtype=np.int64).reshape(-1, 4)


def non_entity_spans(view: View, max_length: int) -> np.ndarray:
    """Every span of at most ``max_length`` words that is not a gold entity, as rows
    ``(sentence, start, length)`` (the pool negatives are drawn from)."""
    rows = candidate_spans([len(e.tokens) for e in view.examples], max_length)
    gold = _gold_rows(view, defaultdict(int))[:, :3]
    width = max(len(e.tokens) for e in view.examples) + 1

    def key(r: np.ndarray) -> np.ndarray:
        return (r[:, 0] * width + r[:, 1]) * width + r[:, 2]

    return rows[~np.isin(key(rows), key(gold))]


def sample_negatives(pool: np.ndarray, quota: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``quota[i]`` rows of sentence ``i`` drawn uniformly without replacement from ``pool``
    (rows ``(sentence, start, length)``; all of a sentence's rows where it has fewer)."""
    order = np.lexsort((rng.random(len(pool)), pool[:, 0]))
    sentence = pool[order, 0]
    rank = np.arange(len(order)) - np.searchsorted(sentence, sentence)
    return pool[np.sort(order[rank < quota[sentence]])]
