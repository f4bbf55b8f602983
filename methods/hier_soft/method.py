"""Hierarchy-aware soft-loss typing (Hagiwara, Tamaki & Yamada): multi-task detection and
fine typing, coarse → fine transfer, soft gold labels from a type-confusion matrix."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal, Self

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import confusion_matrix
from torch import nn

from benchmark.core.cache import WordSource
from benchmark.core.decoding import decode_bio, dev_f1
from benchmark.core.encoders import STATIC_ENCODERS, EncoderSettings, TransformerEncoder
from benchmark.core.errors import ConfigError
from benchmark.core.labels import FEWNERD, coarse_of
from benchmark.core.method import Context, Method, Settings, check_is_fitted
from benchmark.core.protocols import View, coarse_view
from benchmark.core.spans import Span, bio_tags
from benchmark.core.training import EarlyStopping, LossMeter, accelerator_settings, autocast, device, length_batches
from methods.hier_soft.model import HierSoftNet
from methods.hier_soft.soft_loss import (
    confusion_weights,
    hierarchy_weights,
    read_weights,
    soft_cross_entropy,
    write_weights,
)

PREDICT_BATCH = 128  # sentences per forward pass at prediction


@dataclass(frozen=True)
class HierSoftConfig:
    """The slides' model (2-layer BiLSTM of 200 units, a 2-layer ReLU type head, coarse
    pre-training then fine-tuning) and pre-training optimiser (Adam at 1e-3) on the shared
    encoder's word features. ``mode=finetune`` also trains the encoder in the fine stage, at
    ``encoder_lr`` with linear warm-up (our reading of the slides' "BertAdam (lr = 1e-5 with
    2,500 warm-up)": Adam, the rest of the network at ``lr``). β, γ, the per-group rates and the
    early stopping are our choices: the slides give no values."""

    encoder: EncoderSettings = EncoderSettings()
    mode: Literal["frozen", "finetune"] = "frozen"
    hidden: int = 200
    dropout: float = 0.0
    lr: float = 1e-3
    encoder_lr: float = 1e-5  # finetune only
    warmup_steps: int = 2500  # finetune only: linear warm-up of encoder_lr, in steps
    batch_size: int = 32  # sentences per step
    epochs: int = 10  # fine stage, early-stopped on dev
    patience: int = 3
    transfer: Literal["coarse", "none"] = "coarse"  # coarse: pre-train on the 8 coarse types first
    pretrain_epochs: int = 3  # coarse stage, early-stopped on dev coarse F1
    weights: str = "hierarchy"  # hierarchy (β, γ) | confusion (a first model's dev errors) | CSV path
    beta: float = 0.1  # weight of a sibling type (same coarse type)
    gamma: float = 0.0  # weight of a type under another coarse type

    def __post_init__(self) -> None:
        for name in ("beta", "gamma"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ConfigError(f"{name} must lie in [0, 1], got {value}")
        if min(self.hidden, self.batch_size, self.epochs, self.patience, self.pretrain_epochs) < 1:
            raise ConfigError("hidden, batch_size, epochs, patience and pretrain_epochs must be at least 1")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must lie in [0, 1), got {self.dropout}")
        if self.lr <= 0 or self.encoder_lr <= 0 or self.warmup_steps < 0:
            raise ConfigError("lr and encoder_lr must be positive and warmup_steps not negative")


@dataclass(frozen=True)
class Data:
    """A view as arrays: word vectors, flat BIO tags, and its spans ``(sentence, start, end)``
    with their fine and coarse class indices (-1 where the view gives no type)."""

    view: View
    words: WordSource
    tags: np.ndarray
    spans: np.ndarray  # (n, 3), sorted by sentence
    fine: np.ndarray
    coarse: np.ndarray

    def spans_of(self, sentences: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the spans in ``sentences`` and the position of each one's sentence there."""
        lo = np.searchsorted(self.spans[:, 0], sentences, side="left")
        hi = np.searchsorted(self.spans[:, 0], sentences, side="right")
        index = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)] or [np.zeros(0, np.int64)])
        return index.astype(np.int64), np.repeat(np.arange(len(sentences)), hi - lo)


class HierSoft(Method):
    """Hierarchy-aware soft loss: BiLSTM → BIO detection + ReLU feed-forward fine typing.

    ``ner`` types the spans the detection head finds; ``typing`` types the gold spans (the
    detection head still trains, as the second task). The default pre-trains on coarse types
    and fine-tunes on fine types ("Fine-tuned" in the slides); variant ``direct`` trains on fine
    types only; variant ``one-hot`` drops the soft loss (β = γ = 0: plain cross-entropy).
    Multi-label output, which the slides use for YAGO paths, is out of scope: every Few-NERD
    entity has exactly one coarse-fine path.
    """

    protocols = frozenset({"ner", "typing"})
    default_protocol = "ner"
    defaults = Settings("paper", "the slides' model, optimiser and coarse → fine transfer; β, γ, stopping a priori")
    variants: ClassVar[dict[str, Settings]] = {
        "direct": Settings("paper", "the slides' Direct row: no coarse pre-training", {"transfer": "none"}),
        "one-hot": Settings("paper", "the slides' w/o soft loss ablation", {"beta": 0.0, "gamma": 0.0}),
        "finetune": Settings(
            "paper",
            "the slides' Fine-tuned row with its encoder trained: the fine stage updates the encoder at 1e-5 with "
            "2,500 linear warm-up steps (their BertAdam), coarse → fine transfer and soft loss as the default",
            {"mode": "finetune"},
        ),
    }
    Config = HierSoftConfig

    @classmethod
    def check_config(cls, config: HierSoftConfig, protocol: str) -> None:
        if config.encoder.name in STATIC_ENCODERS and config.mode == "finetune":
            raise ConfigError(f"mode=finetune needs a transformer encoder, not {config.encoder.name!r}")
        if config.weights not in ("hierarchy", "confusion"):
            path = Path(config.weights)
            if not path.is_file():
                raise ConfigError(
                    f"weights must be 'hierarchy', 'confusion' or a CSV file of W; {config.weights!r} is neither"
                )
            read_weights(path, FEWNERD.fine_types)

    def fit(self, train: View, dev: View, ctx: Context) -> Self:
        cfg = self.config
        self.check_config(cfg, train.protocol)
        self._features = ctx.features
        self.ner_ = train.protocol == "ner"
        self.types_ = list(train.hierarchy.fine_types)
        self.coarse_types_ = sorted({coarse_of(t) for t in self.types_})
        self.encoder_model_: nn.Module | None = None
        rng = np.random.default_rng(ctx.seed)
        ctx.metrics.update(accelerator_settings(tf32=False))  # bf16 autocast trains on CUDA in either mode
        data, dev_data = self._data(train), self._data(dev)
        if cfg.weights == "confusion":  # a first, one-hot model's dev errors define W
            first = self._train(data, dev_data, np.eye(len(self.types_)), rng, ctx, "first-")
            gold, predicted = dev_data.fine, self._type_ids(first, dev_data)
            weights = confusion_weights(confusion_matrix(gold, predicted, labels=range(len(self.types_))))
            self.encoder_model_ = None
        elif cfg.weights == "hierarchy":
            weights = hierarchy_weights(self.types_, cfg.beta, cfg.gamma)
        else:
            weights = read_weights(Path(cfg.weights), self.types_)
        write_weights(ctx.artifact_dir / "soft_label_weights.csv", weights, self.types_)
        self.net_ = self._train(data, dev_data, weights, rng, ctx, "")
        return self

    def _train(
        self, data: Data, dev: Data, weights: np.ndarray, rng: np.random.Generator, ctx: Context, prefix: str
    ) -> HierSoftNet:
        """The coarse stage (if any), then the fine stage; returns the best network on dev.
        ``prefix`` names the stages of a first, one-hot model (``weights=confusion``)."""
        cfg = self.config
        net = HierSoftNet(data.words.cached.shape[1], cfg.hidden, len(self.types_), cfg.dropout).to(device())
        if cfg.transfer == "coarse":
            net.type_out = nn.Linear(cfg.hidden, len(self.coarse_types_)).to(device())
            eye = np.eye(len(self.coarse_types_))
            self._stage(net, data, dev, "coarse", eye, cfg.pretrain_epochs, rng, ctx, f"{prefix}coarse")
            net.retarget([self.coarse_types_.index(coarse_of(t)) for t in self.types_])
        if cfg.mode == "finetune":
            encoder = self._features.encoder(cfg.encoder)
            if not isinstance(encoder, TransformerEncoder):
                raise ConfigError(f"mode=finetune needs a transformer encoder, not {cfg.encoder.name!r}")
            from transformers import AutoModel

            self.encoder_model_ = AutoModel.from_pretrained(encoder.path).to(device())
            data, dev = self._data(data.view, live=True), self._data(dev.view, live=True)
        self._stage(net, data, dev, "fine", weights, cfg.epochs, rng, ctx, f"{prefix}fine")
        return net

    def _stage(
        self,
        net: HierSoftNet,
        data: Data,
        dev: Data,
        level: Literal["coarse", "fine"],
        weights: np.ndarray,
        epochs: int,
        rng: np.random.Generator,
        ctx: Context,
        name: str,
    ) -> None:
        """Train both heads on ``level`` types with soft targets under ``weights``; keep the
        epoch with the best dev score (span F1 for ``ner``, accuracy for ``typing``); the stage
        ``name``'s curve is the run's own (unprefixed) when it trains the final network."""
        cfg = self.config
        classes, labels = (data.coarse, self.coarse_types_) if level == "coarse" else (data.fine, self.types_)
        dev_view = coarse_view(dev.view) if level == "coarse" else dev.view
        w = torch.as_tensor(weights, dtype=torch.float32, device=device())
        modules = nn.ModuleDict({"net": net} | ({"encoder": self.encoder_model_} if self._live(data) else {}))
        groups = [{"params": list(net.parameters()), "lr": cfg.lr}]
        schedules = [lambda step: 1.0]
        if self._live(data):
            groups.append({"params": list(self.encoder_model_.parameters()), "lr": cfg.encoder_lr})
            schedules.append(lambda step: min(1.0, (step + 1) / max(cfg.warmup_steps, 1)))
        optimizer = torch.optim.Adam(groups)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedules)
        headline = "coarse_micro_f1" if level == "coarse" else "micro_f1"
        stopper = EarlyStopping(cfg.patience, ctx.curve(name, epochs, headline, final=name == "fine"))
        started, sentences = time.perf_counter(), 0
        for epoch in range(epochs):
            modules.train()
            meter = LossMeter()
            for batch in length_batches(data.words.counts, cfg.batch_size, rng):
                with autocast():  # bf16 on CUDA only
                    words, counts = data.words(batch)
                    states = net.states(words.to(device()), counts)
                    tags = torch.from_numpy(data.tags[data.words.rows(batch)]).to(device())
                    loss = F.cross_entropy(net.detect(states), tags)
                    index, position = data.spans_of(batch)
                    if len(index):
                        first, last = self._endpoints(data.spans[index], position, counts)
                        gold = torch.from_numpy(classes[index]).to(device())
                        loss = loss + soft_cross_entropy(net.type_logits(states, first, last), gold, w)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                scheduler.step()
                sentences += len(batch)
                meter.add(loss, len(batch))
            if stopper.step(epoch, dev_f1(self._predict_with(net, dev, labels), dev_view), modules, meter.mean):
                break
        stopper.restore(modules)
        seconds = time.perf_counter() - started
        ctx.metrics.update(
            {
                f"{name}_epochs": len(stopper.history),
                f"{name}_best_dev": stopper.best_score,
                f"{name}_seconds": seconds,
                f"{name}_train_sentences_per_second": sentences / seconds,
            }
        )

    def _live(self, data: Data) -> bool:
        return data.words.cached is None

    @staticmethod
    def _endpoints(spans: np.ndarray, position: np.ndarray, counts: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat batch rows of each span's first and last word."""
        base = np.cumsum([0, *counts])[position]
        return torch.from_numpy(base + spans[:, 1]), torch.from_numpy(base + spans[:, 2] - 1)

    def _data(self, view: View, live: bool = False) -> Data:
        """``view`` as arrays; its word vectors come from the feature cache or, with ``live``,
        from a pass of the encoder being fine-tuned."""
        sentences = [e.tokens for e in view.examples]
        if live:
            words = WordSource(
                sentences, encoder=self._features.encoder(self.config.encoder), model=self.encoder_model_
            )
        else:
            features = self._features.word_features(sentences, self.config.encoder)
            words = WordSource(sentences, features.matrix, features.offsets)
        spans = [(i, s.start, s.end, s.label) for i, e in enumerate(view.examples) for s in e.spans]
        fine_index = {t: k for k, t in enumerate(self.types_)}
        coarse_index = {t: k for k, t in enumerate(self.coarse_types_)}
        return Data(
            view=view,
            words=words,
            tags=bio_tags([len(s) for s in sentences], [s[:3] for s in spans]),
            spans=np.array([s[:3] for s in spans], dtype=np.int64).reshape(-1, 3),
            fine=np.array([fine_index.get(s[3], -1) for s in spans], dtype=np.int64),
            coarse=np.array([coarse_index.get(coarse_of(s[3] or ""), -1) for s in spans], dtype=np.int64),
        )

    def _forward(self, net: HierSoftNet, data: Data, detect: bool) -> list[tuple[np.ndarray, ...]]:
        """Per batch: its spans ``(sentence, start, end)`` (detected, or the view's own), their
        type probabilities, their detection confidence and their index among the view's spans
        (-1 for detected spans)."""
        modules = [net] + ([self.encoder_model_] if self._live(data) else [])
        for module in modules:
            module.eval()
        out = []
        with torch.inference_mode():
            for batch in length_batches(data.words.counts, PREDICT_BATCH):
                words, counts = data.words(batch)
                states = net.states(words.to(device()), counts)
                if detect:
                    tag_probs = net.detect(states).softmax(-1).cpu().numpy()
                    bounds = np.cumsum([0, *counts])
                    found = [
                        (k, a, b, score)
                        for k in range(len(batch))
                        for a, b, _, score in decode_bio(tag_probs[bounds[k] : bounds[k + 1]])
                    ]
                    table = np.array([f[:3] for f in found], dtype=np.int64).reshape(-1, 3)
                    position, spans = table[:, 0], table.copy()
                    spans[:, 0] = batch[position]
                    confidence = np.array([f[3] for f in found], dtype=np.float64)
                    index = np.full(len(spans), -1)
                else:
                    index, position = data.spans_of(batch)
                    spans, confidence = data.spans[index], np.ones(len(index))
                if not len(spans):
                    continue
                first, last = self._endpoints(spans, position, counts)
                probs = net.type_logits(states, first.to(states.device), last.to(states.device)).softmax(-1)
                out.append((spans, probs.cpu().numpy(), confidence, index))
        return out

    def _predict_with(self, net: HierSoftNet, data: Data, labels: Sequence[str]) -> list[Span]:
        ids = [e.id for e in data.view.examples]
        return [
            Span(ids[s[0]], int(s[1]), int(s[2]), labels[int(k)], float(p[k] * c))
            for spans, probs, confidence, _ in self._forward(net, data, detect=self.ner_)
            for s, p, c, k in zip(spans, probs, confidence, probs.argmax(-1), strict=True)
        ]

    def _type_ids(self, net: HierSoftNet, data: Data) -> np.ndarray:
        """Predicted class of each of the view's own spans, in the view's span order."""
        predicted = np.zeros(len(data.spans), dtype=np.int64)
        for _, probs, _, index in self._forward(net, data, detect=False):
            predicted[index] = probs.argmax(-1)
        return predicted

    def predict(self, view: View) -> list[Span]:
        check_is_fitted(self, "net_")
        data = self._data(view, live=self.encoder_model_ is not None)
        return self._predict_with(self.net_, data, self.types_)
