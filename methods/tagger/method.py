"""The Few-NERD paper's BERT-Tagger: token classification over IO labels on an encoder."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal, Self

import numpy as np
import torch
from torch import nn

from benchmark.core.cache import word_rows
from benchmark.core.decoding import decode_io, dev_f1, vote_in_span
from benchmark.core.encoders import STATIC_ENCODERS, EncoderSettings, TransformerEncoder, unit_size
from benchmark.core.errors import ConfigError
from benchmark.core.labels import coarse_of
from benchmark.core.method import Context, Method, Settings, check_is_fitted
from benchmark.core.protocols import View
from benchmark.core.spans import OUTSIDE, Span
from benchmark.core.training import (
    EarlyStopping,
    LossMeter,
    accelerator_settings,
    autocast,
    bucketed_batches,
    device,
    grouped_adamw,
)
from benchmark.ui.progress import Bar, Curve


@dataclass(frozen=True)
class TaggerConfig:
    """BERT-Tagger (Ding et al. 2021): a linear layer over the encoder's word vectors, IO labels,
    cross-entropy, best dev checkpoint. ``frozen`` trains the head on cached features (the CPU
    default: ``epochs`` with early stopping); ``finetune`` trains the encoder too, as the official
    ``run_supervised.sh`` does: AdamW (ε 1e-8, weight decay 0) at 5e-5 with linear decay and no
    warm-up, gradients clipped at norm 1, ``passes`` over the training data in total (its 20,000
    steps of 16 sentences over 131,767 sentences: 2.43), dev scored ``evaluations`` times evenly
    (its every 2,000 steps: 10) and the best checkpoint kept."""

    encoder: EncoderSettings = EncoderSettings()
    mode: Literal["frozen", "finetune"] = "frozen"
    coarse: bool = False  # train on the 8 coarse types (used by eigproj)
    lr: float | None = None  # None: 1e-3 for the frozen head, 5e-5 for fine-tuning (the recipe's)
    epochs: int = 10  # frozen: at most this many epochs, early stopping after `patience`
    patience: int = 3
    passes: float = 20_000 * 16 / 131_767  # finetune: passes over the training sentences in all
    evaluations: int = 10  # finetune: dev checks, evenly spaced; the best one is kept
    warmup: float = 0.0  # finetune: share of the steps with a linearly rising learning rate
    weight_decay: float = 0.0  # finetune (AdamW; never on biases and LayerNorm weights)
    max_grad_norm: float = 1.0  # finetune: gradient clipping
    tf32: bool = False  # finetune on CUDA: TF32 matmuls (bf16 autocast is always on there)
    batch_size: int = 32  # sentences per step
    hidden: int = 0  # 0: a linear head as in BERT-Tagger; >0: one ReLU hidden layer
    dropout: float | None = None  # None: 0.1 when fine-tuning (BERT's), 0 on frozen features

    def __post_init__(self) -> None:
        if min(self.epochs, self.batch_size, self.patience, self.evaluations) < 1:
            raise ConfigError("epochs, batch_size, patience and evaluations must be at least 1")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must lie in [0, 1), got {self.dropout}")
        if self.lr is not None and self.lr <= 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")
        if self.passes <= 0 or not 0 <= self.warmup < 1 or self.weight_decay < 0 or self.max_grad_norm <= 0:
            raise ConfigError("passes and max_grad_norm must be positive, warmup in [0, 1), weight_decay ≥ 0")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (1e-3 if self.mode == "frozen" else 5e-5)

    @property
    def dropout_rate(self) -> float:
        return self.dropout if self.dropout is not None else (0.0 if self.mode == "frozen" else 0.1)


class Head(nn.Module):
    def __init__(self, dim: int, n_labels: int, hidden: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        if hidden:
            layers += [nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout)]
        layers.append(nn.Linear(hidden or dim, n_labels))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Tagger(Method):
    """BERT-Tagger: IO token classification on the shared encoder (frozen or fine-tuned).

    ``ner`` decodes maximal runs of one label; ``typing`` gives each gold span the majority of
    its words' best non-O labels. With ``coarse`` it learns coarse types (for eigproj).
    """

    protocols = frozenset({"ner", "typing"})
    default_protocol = "ner"
    defaults = Settings("paper", "BERT-Tagger: a linear layer over the encoder's last layer (frozen here: 2 CPU cores)")
    variants: ClassVar[dict[str, Settings]] = {
        "layer4-mlp": Settings(
            "dev",
            "encoder layer 4 and a 512-unit ReLU hidden layer, picked by a dev sweep under ner (see the card)",
            {"encoder.layer": 4, "hidden": 512},
        ),
        "finetune": Settings(
            "paper",
            "Few-NERD's run_supervised.sh: the encoder trained with the head, batch 16, max length 128, AdamW 5e-5 "
            "with linear decay and no warm-up, 2.43 passes (its 20,000 steps), best of 10 dev checks",
            {"mode": "finetune", "batch_size": 16, "encoder.window": 128},
        ),
        "layer3-mlp": Settings(
            "oracle",
            "layer 3 and a 512-unit hidden layer, chosen after their test F1 was seen; kept for reference",
            {"encoder.layer": 3, "hidden": 512},
        ),
    }
    Config = TaggerConfig

    @classmethod
    def check_config(cls, config: TaggerConfig, protocol: str) -> None:
        if config.coarse:
            raise ConfigError(f"coarse=true predicts coarse types, but {protocol!r} is scored on fine types")
        if config.mode == "finetune" and config.encoder.name in STATIC_ENCODERS:
            raise ConfigError(f"mode=finetune needs a transformer encoder, not {config.encoder.name!r}")

    def fit(self, train: View, dev: View, ctx: Context) -> Self:
        cfg = self.config
        to_level = coarse_of if cfg.coarse else str
        self.labels_ = [OUTSIDE, *sorted({to_level(s.label) for e in train.examples for s in e.spans})]
        self._features = ctx.features
        generator = torch.Generator().manual_seed(ctx.seed)
        if cfg.mode == "frozen":
            self._fit_frozen(train, dev, generator, ctx)
        else:
            self._fit_finetune(train, dev, generator, ctx)
        return self

    def _curve(self, ctx: Context, points: int, unit: str = "epoch") -> Curve:
        """The learning curve (``points`` dev checks at most); a coarse tagger is a stage of
        another method (eigproj's), so its curve is logged under ``coarse-tagger/``."""
        if self.config.coarse:
            return ctx.curve("coarse-tagger", points, "coarse_micro_f1", final=False, unit=unit)
        return ctx.curve("tagger", points, "micro_f1", unit=unit)

    def _targets(self, view: View) -> list[np.ndarray]:
        index = {label: i for i, label in enumerate(self.labels_)}
        to_level = coarse_of if self.config.coarse else str
        return [np.array([index.get(to_level(x), 0) for x in e.labels], dtype=np.int64) for e in view.examples]

    def _fit_frozen(self, train: View, dev: View, generator: torch.Generator, ctx: Context) -> None:
        cfg = self.config
        x, offsets = self._cached_matrix([e.tokens for e in train.examples])
        dev_x, dev_offsets = self._cached_matrix([e.tokens for e in dev.examples])
        y = torch.from_numpy(np.concatenate(self._targets(train)))
        lengths = np.diff(offsets)
        self.head_ = Head(x.shape[1], len(self.labels_), cfg.hidden, cfg.dropout_rate)
        optimizer = torch.optim.Adam(self.head_.parameters(), lr=cfg.learning_rate)
        loss_fn = nn.CrossEntropyLoss()
        stopper = EarlyStopping(cfg.patience, self._curve(ctx, cfg.epochs))
        for epoch in range(cfg.epochs):
            self.head_.train()
            order = torch.randperm(len(lengths), generator=generator).numpy()
            rows, bounds = _word_rows(offsets[:-1][order], lengths[order], cfg.batch_size)
            meter = LossMeter()
            for batch in torch.from_numpy(rows).tensor_split(bounds.tolist()):
                optimizer.zero_grad()
                loss = loss_fn(self.head_(x[batch]), y[batch])
                loss.backward()
                optimizer.step()
                meter.add(loss, len(batch))
            predicted = self._decode(dev, self._probabilities(dev_x, dev_offsets))
            if stopper.step(epoch, dev_f1(predicted, dev), self.head_, meter.mean):
                break
        stopper.restore(self.head_)
        self.dev_history_ = stopper.history

    def _cached_matrix(self, sentences: Sequence[Sequence[str]]) -> tuple[torch.Tensor, np.ndarray]:
        features = self._features.word_features(sentences, self.config.encoder)
        return torch.from_numpy(np.asarray(features.matrix, dtype=np.float32)), features.offsets

    def _probabilities(self, matrix: torch.Tensor, offsets: np.ndarray) -> list[np.ndarray]:
        self.head_.eval()
        with torch.inference_mode():
            probs = self.head_(matrix.to(next(self.head_.parameters()).device)).softmax(-1).cpu().numpy()
        return [probs[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]

    def _fit_finetune(self, train: View, dev: View, generator: torch.Generator, ctx: Context) -> None:
        """The encoder and the head trained together on length-bucketed batches (each padded to
        its own longest sentence) for ``passes`` passes; dev scored ``evaluations`` times, under
        ``torch.inference_mode``; the best checkpoint kept."""
        from transformers import AutoModel, get_linear_schedule_with_warmup

        cfg = self.config
        self.encoder_ = self._features.encoder(cfg.encoder)
        if not isinstance(self.encoder_, TransformerEncoder):
            raise ConfigError(f"mode=finetune needs a transformer encoder, not {cfg.encoder.name!r}")
        ctx.metrics.update(accelerator_settings(cfg.tf32))
        self.model_ = AutoModel.from_pretrained(self.encoder_.path).to(device())
        self.head_ = Head(self.encoder_.dim, len(self.labels_), cfg.hidden, cfg.dropout_rate).to(device())
        both = nn.ModuleDict({"model": self.model_, "head": self.head_})
        tokens = [e.tokens for e in train.examples]
        units = self.encoder_.units(tokens)  # tokenized once
        sizes = np.array([unit_size(u) for u in units])
        targets = [torch.from_numpy(t) for t in self._targets(train)]
        steps = math.ceil(cfg.passes * math.ceil(len(tokens) / cfg.batch_size))
        optimizer = grouped_adamw([both], cfg.learning_rate, cfg.weight_decay)
        scheduler = get_linear_schedule_with_warmup(optimizer, round(cfg.warmup * steps), steps)
        checks = set(np.linspace(0, steps, cfg.evaluations + 1).round().astype(int)[1:].tolist())
        stopper = EarlyStopping(cfg.evaluations, self._curve(ctx, cfg.evaluations, "check"))  # never stops early
        rng = np.random.default_rng(ctx.seed)
        loss_fn = nn.CrossEntropyLoss()
        meter, step, trained, training = LossMeter(), 0, 0, 0.0
        both.train()
        with Bar("fine-tuning", steps, "step") as progress:
            while step < steps:
                groups = bucketed_batches(sizes, cfg.batch_size, rng)[: steps - step]
                clock = time.perf_counter()
                for batch in self.encoder_.batches(tokens, groups=groups, units=units):
                    gold = torch.cat([targets[i] for i in batch.sentences]).to(device())
                    optimizer.zero_grad(set_to_none=True)
                    try:
                        with autocast():
                            loss = loss_fn(self.head_(self.encoder_.forward(self.model_, batch)).float(), gold)
                        loss.backward()
                    except (torch.OutOfMemoryError, RuntimeError) as error:
                        if not isinstance(error, torch.OutOfMemoryError) and "memory" not in str(error):
                            raise
                        width = batch.inputs["input_ids"].shape
                        raise ConfigError(
                            f"a batch of {len(batch.sentences)} sentences ({width[0]} windows × {width[1]} sub-words) "
                            f"does not fit in {device()} memory: lower batch_size (now {cfg.batch_size}) "
                            "or encoder.window"
                        ) from error
                    nn.utils.clip_grad_norm_(both.parameters(), cfg.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    meter.add(loss, len(gold))
                    step, trained = step + 1, trained + len(batch.sentences)
                    progress.update()
                    if step in checks:  # dev checks are not training time
                        training += time.perf_counter() - clock
                        score = dev_f1(self._predict_ner(dev), dev)
                        stopper.step(len(stopper.history), score, both, meter.mean)
                        meter, clock = LossMeter(), time.perf_counter()
                        both.train()
                training += time.perf_counter() - clock
        stopper.restore(both)
        self.dev_history_ = stopper.history
        ctx.metrics.update(steps=steps, train_sentences_per_second=trained / training)

    def word_probabilities(self, sentences: Sequence[Sequence[str]], cached: bool = True) -> list[np.ndarray]:
        """Label probabilities of every word (columns: ``labels_``); live encoding if not cached."""
        check_is_fitted(self, "head_")
        if self.config.mode == "finetune":
            self.head_.eval()
            self.model_.eval()
            out: list[np.ndarray] = [np.empty(0)] * len(sentences)
            with torch.inference_mode():
                for batch in self.encoder_.batches(sentences):
                    probs = self.head_(self.encoder_.forward(self.model_, batch)).softmax(-1).cpu().numpy()
                    for i, part in zip(
                        batch.sentences, np.split(probs, np.cumsum(batch.word_counts)[:-1]), strict=True
                    ):
                        out[i] = part
            return out
        if cached:
            return self._probabilities(*self._cached_matrix(sentences))
        arrays = self._features.encoder(self.config.encoder).encode_all(sentences)
        return self._probabilities(torch.from_numpy(np.concatenate(arrays)), np.cumsum([0, *map(len, arrays)]))

    def _decode(self, view: View, probabilities: Sequence[np.ndarray]) -> list[Span]:
        return [s for e, p in zip(view.examples, probabilities, strict=True) for s in decode_io(e.id, p, self.labels_)]

    def _predict_ner(self, view: View) -> list[Span]:
        return self._decode(view, self.word_probabilities([e.tokens for e in view.examples]))

    def predict(self, view: View) -> list[Span]:
        check_is_fitted(self, "head_")
        if view.protocol == "ner":
            return self._predict_ner(view)
        probabilities = self.word_probabilities([e.tokens for e in view.examples])
        out = []
        for example, probs in zip(view.examples, probabilities, strict=True):
            for span in example.spans:
                label, score = vote_in_span(probs[span.start : span.end], self.labels_)
                out.append(span._replace(label=label, score=score))
        return out


def _word_rows(starts: np.ndarray, lengths: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Word rows of sentences in the given order, and where each batch of sentences ends."""
    return word_rows(starts, lengths), np.cumsum(lengths)[batch_size - 1 : -1 : batch_size]
