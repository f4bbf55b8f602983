"""ProtoBERT, Few-NERD's prototypical network (Ding et al., 2021; its model/proto.py), on frozen features.

In an episode every label of the support set (``O`` and each of the N types) has a prototype,
the mean vector of its support words; each query word takes the label of the nearest prototype
(negative squared Euclidean distance, as Few-NERD's default; ``distance = "dot"`` its ``--dot``),
and runs of one label are its entities (IO, Few-NERD's scheme).

By default training-free (``meta.steps = 0``): the vectors are the frozen encoder's. Variant
``meta`` meta-trains as Few-NERD does — episodes of the training types, the cross-entropy of each
query word over the episode's labels, AdamW with linear warm-up and decay, the dev check with the
best F1 kept, one model per setting — but what trains is a linear map on the frozen vectors, not
the encoder (`MetaSettings`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import ClassVar, Literal, Self

import numpy as np
import torch
from torch import nn

from benchmark.core.cache import WordFeatures
from benchmark.core.data.fewnerd import Sentence, make_sentence
from benchmark.core.decoding import decode_io, dev_f1
from benchmark.core.encoders import EncoderSettings
from benchmark.core.episodes import QUERY_SHOTS, SETTINGS, Episode, EpisodeSetting, sample_episodes
from benchmark.core.episodic import EpisodeTask, EpisodeView, metric_prefix
from benchmark.core.errors import ConfigError, DataError
from benchmark.core.method import Context, Method, Settings, check_is_fitted
from benchmark.core.protocols import Example, View
from benchmark.core.spans import OUTSIDE, Span
from benchmark.core.training import EarlyStopping, LossMeter, grouped_adamw

#: episodes per step in Few-NERD's README recipes (``--batch_size``), by (N, K)
README_BATCH = {(5, 1): 8, (5, 5): 1, (10, 1): 4, (10, 5): 1}


@dataclass(frozen=True)
class MetaSettings:
    """Episodic meta-training of a linear map (initialised to the identity) on the frozen word
    vectors, one per setting; ``steps = 0``: none (training-free).

    Few-NERD's ``train_demo.py`` names: ``steps`` its ``--train_iter`` (10,000 in the README
    recipes), ``batch`` its ``--batch_size`` (None: the recipe's of each setting, `README_BATCH`),
    ``lr`` (1e-4), ``weight_decay`` (0.01, none on the bias) and ``warmup`` (a tenth of the steps,
    then linear decay to 0) its AdamW schedule, ``dropout`` its ``nn.Dropout()`` on the vectors the
    distances use (0.5), ``check_every`` its ``--val_step`` (1,000 in the recipes). ``dev_episodes``:
    the episodes of each dev check, one fixed set per setting (Few-NERD draws ``--val_iter`` = 500
    batches of ``--batch_size`` episodes online at each check)."""

    steps: int = 0
    batch: int | None = None
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup: float = 0.1
    dropout: float = 0.5
    check_every: int = 1000
    dev_episodes: int = 500

    def __post_init__(self) -> None:
        if (
            self.steps < 0
            or self.check_every < 1
            or self.dev_episodes < 1
            or (self.batch is not None and self.batch < 1)
        ):
            raise ConfigError(
                "meta: steps must be 0 or more, check_every, dev_episodes and batch 1 or more (got "
                f"steps={self.steps}, check_every={self.check_every}, dev_episodes={self.dev_episodes}, "
                f"batch={self.batch})"
            )
        if not (self.lr > 0 and self.weight_decay >= 0 and 0 <= self.warmup < 1 and 0 <= self.dropout < 1):
            raise ConfigError("meta: lr must be positive, weight_decay ≥ 0, warmup and dropout in [0, 1)")


@dataclass(frozen=True)
class ProtoConfig:
    """``encoder``: the frozen word features (first sub-word, last layer); ``distance``:
    ``euclidean`` (negative squared Euclidean, Few-NERD's default) or ``dot``; ``meta``: meta-training."""

    encoder: EncoderSettings = EncoderSettings()
    distance: Literal["euclidean", "dot"] = "euclidean"
    meta: MetaSettings = field(default_factory=MetaSettings)

    def __post_init__(self) -> None:
        if self.distance not in ("euclidean", "dot"):
            raise ConfigError(f"distance must be euclidean or dot, got {self.distance!r}")


class ProtoBERT(Method):
    """Few-NERD's ProtoBERT: each query word takes its nearest label prototype."""

    protocols = frozenset({"episodes"})
    Config = ProtoConfig
    defaults = Settings(
        "paper",
        "Few-NERD's model/proto.py: prototypes of O and the N types, negative squared Euclidean distance; "
        "training-free on frozen MiniLM (the paper meta-trains BERT: variant meta trains a linear map instead)",
    )
    variants: ClassVar[dict[str, Settings]] = {
        "meta": Settings(
            "paper",
            "Few-NERD's README recipe (10,000 steps, its batch sizes, lr 1e-4, a dev check every 1,000 steps "
            "on 500 episodes, the best kept), meta-training a linear map on the frozen features",
            {"meta.steps": 10_000},
        )
    }

    @classmethod
    def seeded(cls, config: ProtoConfig) -> bool:
        """Whether the seed changes the predictions: only where it meta-trains (read by
        `benchmark.run.plan.plan_comparison`, which runs a training-free row once)."""
        return config.meta.steps > 0

    def fit(self, train: View, dev: View, ctx: Context) -> Self:
        self.features_ = ctx.features  # the frozen word features of the episodes' sentences, read in predict
        self.maps_: dict[EpisodeSetting, nn.Linear] = {}
        if self.config.meta.steps:
            self.maps_ = self.meta_train(train, dev, ctx)
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
            support = [(features[row[e.tokens]], e.labels) for e in task.support]
            query = [(i, features[row[view.examples[i].tokens]]) for i in task.query]
            spans += self.episode_spans(task, support, query, self.maps_.get(task.setting))
        return spans

    def episode_spans(
        self,
        task: EpisodeTask,
        support: Sequence[tuple[np.ndarray, Sequence[str]]],
        query: Sequence[tuple[int, np.ndarray]],
        layer: nn.Linear | None,
    ) -> list[Span]:
        """Spans of an episode's query sentences (``(sentence id, word vectors)``) from its support
        sentences (``(word vectors, labels)``), through a meta-trained ``layer`` if any."""
        labels = (OUTSIDE, *task.types)
        index = {label: i for i, label in enumerate(labels)}
        with torch.no_grad():
            keys = self.project(np.concatenate([v for v, _ in support]), layer)
            tags = torch.tensor([index[label] for _, row in support for label in row])
            queries = self.project(np.concatenate([v for _, v in query]), layer)
            probabilities = torch.softmax(self.scores(queries, keys, tags, len(labels)), dim=1).numpy()
        bounds = np.cumsum([0, *(len(v) for _, v in query)])
        return [
            span
            for (sentence, _), a, b in zip(query, bounds[:-1], bounds[1:], strict=True)
            for span in self.decode(sentence, probabilities[a:b], labels, task)
        ]

    @staticmethod
    def project(vectors: np.ndarray, layer: nn.Linear | None) -> torch.Tensor:
        tensor = torch.from_numpy(np.asarray(vectors, dtype=np.float32))
        return tensor if layer is None else layer(tensor)

    def decode(
        self, sentence: int, probabilities: np.ndarray, labels: tuple[str, ...], task: EpisodeTask
    ) -> list[Span]:
        """Spans of one query sentence from its words' label probabilities: each word's most
        probable label, runs of one label an entity (scored by its mean top probability)."""
        return decode_io(sentence, probabilities, labels)

    def scores(self, query: torch.Tensor, support: torch.Tensor, tags: torch.Tensor, n_labels: int) -> torch.Tensor:
        """(query words, labels): minus the squared distance (or the dot product) to each label's
        prototype; a label without support words scores -inf."""
        counts = torch.bincount(tags, minlength=n_labels)
        prototypes = torch.zeros(n_labels, support.shape[1]).index_add(0, tags, support)
        prototypes = prototypes / counts.clamp(min=1)[:, None]
        return similarity(query, prototypes, self.config.distance).masked_fill(counts[None, :] == 0, -torch.inf)

    # --- meta-training -------------------------------------------------------------------------

    def meta_train(self, train: View, dev: View, ctx: Context) -> dict[EpisodeSetting, nn.Linear]:
        """One linear map per setting, trained on episodes of ``train`` and chosen on episodes of ``dev``."""
        if not train.examples or not dev.examples:
            raise DataError(f"{type(self).__name__}: meta-training needs a training and a dev split")
        train_sentences = [make_sentence(i, e.tokens, e.labels or ()) for i, e in enumerate(train.examples)]
        dev_sentences = [make_sentence(i, e.tokens, e.labels or ()) for i, e in enumerate(dev.examples)]
        meta, encoder = self.config.meta, self.config.encoder
        checks = dict.fromkeys(SETTINGS)
        for i, setting in enumerate(SETTINGS):  # Few-NERD's dev episodes: one fixed set per setting
            checks[setting] = sample_episodes(
                dev_sentences, setting, meta.dev_episodes, seed=i, query_shots=query(setting)
            )
        dev_tokens = tuple(dict.fromkeys(s.tokens for eps in checks.values() for e in eps for s in e.support + e.query))
        dev_features = ctx.features.word_features(dev_tokens, encoder)
        dev_row = {tokens: i for i, tokens in enumerate(dev_tokens)}
        train_features = ctx.features.word_features([s.tokens for s in train_sentences], encoder)
        maps, threads = {}, torch.get_num_threads()
        torch.set_num_threads(1)  # a step is many tiny products: threads only contend (8 times slower on 2 busy cores)
        try:
            for i, setting in enumerate(SETTINGS):
                development = (checks[setting], dev_features, dev_row, dev)
                maps[setting] = self._train_map(
                    setting, train_sentences, train_features, development, ctx, ctx.seed * 10 + i
                )
        finally:
            torch.set_num_threads(threads)
        return maps

    def _train_map(
        self,
        setting: EpisodeSetting,
        sentences: Sequence[Sentence],
        features: WordFeatures,
        development: tuple[Sequence[Episode], WordFeatures, dict[tuple[str, ...], int], View],
        ctx: Context,
        seed: int,
    ) -> nn.Linear:
        """The setting's map: ``meta.steps`` steps on episodes sampled from ``sentences`` (fresh
        ones for every check), the state of the best dev check kept (``development``: the dev
        episodes, their word vectors, each sentence's row, the dev view)."""
        meta = self.config.meta
        batch = meta.batch or README_BATCH.get((setting.n, setting.k), 1)
        layer = nn.Linear(features.dim, features.dim)
        with torch.no_grad():
            layer.weight.copy_(torch.eye(features.dim))
            layer.bias.zero_()
        dropout = nn.Dropout(meta.dropout)
        optimizer = grouped_adamw([layer], meta.lr, meta.weight_decay)
        warmup = int(meta.warmup * meta.steps)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda step: (
                step / max(warmup, 1) if step < warmup else max(meta.steps - step, 0) / max(meta.steps - warmup, 1)
            ),
        )
        checks = -(-meta.steps // meta.check_every)
        stopper = EarlyStopping(
            checks, ctx.curve(metric_prefix(setting), checks, "micro_f1", final=False, unit="check")
        )
        for check in range(checks):
            steps = min(meta.check_every, meta.steps - check * meta.check_every)
            episodes = sample_episodes(
                sentences, setting, steps * batch, seed=seed * 100_000 + check, query_shots=query(setting)
            )
            meter = LossMeter()
            layer.train()
            for start in range(0, len(episodes), batch):
                loss = self._episodes_loss(episodes[start : start + batch], features, layer, dropout)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                meter.add(loss, 1)
            layer.eval()
            stopper.step(check, self._dev_score(setting, *development, layer), layer, meter.mean)
        stopper.restore(layer)
        ctx.metrics[f"{metric_prefix(setting)}/train_episodes"] = meta.steps * batch
        return layer.requires_grad_(False)

    def _episodes_loss(
        self, episodes: Sequence[Episode], features: WordFeatures, layer: nn.Linear, dropout: nn.Dropout
    ) -> torch.Tensor:
        """Few-NERD's loss: the cross-entropy of every query word of the batch over its episode's labels."""
        logits, targets = [], []
        for episode in episodes:
            index = {label: i for i, label in enumerate((OUTSIDE, *episode.types))}
            keys = dropout(self.project(np.concatenate([features[s.id] for s in episode.support]), layer))
            queries = dropout(self.project(np.concatenate([features[s.id] for s in episode.query]), layer))
            tags = torch.tensor([index[label] for s in episode.support for label in s.labels])
            logits.append(self.scores(queries, keys, tags, len(index)))
            targets.append(torch.tensor([index[label] for s in episode.query for label in s.labels]))
        return nn.functional.cross_entropy(torch.cat(logits), torch.cat(targets))

    def _dev_score(
        self,
        setting: EpisodeSetting,
        episodes: Sequence[Episode],
        features: WordFeatures,
        row: dict[tuple[str, ...], int],
        dev: View,
        layer: nn.Linear,
    ) -> float:
        """Few-NERD's micro F1 over the query sets of the dev episodes."""
        found, examples = [], []
        for episode in episodes:
            task = EpisodeTask(setting, episode.types, (), ())
            query = []
            for s in episode.query:
                number = len(examples)
                examples.append(
                    Example(number, s.tokens, s.labels, tuple(x._replace(sentence_id=number) for x in s.spans))
                )
                query.append((number, features[row[s.tokens]]))
            support = [(features[row[s.tokens]], s.labels) for s in episode.support]
            found += self.episode_spans(task, support, query, layer)
        return dev_f1(found, replace(dev, examples=tuple(examples)))


def query(setting: EpisodeSetting) -> int:
    """The query shots of a setting's episodes (Few-NERD's README recipes, `QUERY_SHOTS`)."""
    return QUERY_SHOTS.get((setting.n, setting.k), setting.k)


def similarity(query: torch.Tensor, keys: torch.Tensor, distance: str) -> torch.Tensor:
    """(query rows, key rows): minus the squared Euclidean distance, or the dot product."""
    if distance == "dot":
        return query @ keys.T
    return -(query.square().sum(1)[:, None] - 2 * query @ keys.T + keys.square().sum(1)[None, :])
