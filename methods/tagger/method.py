"""The Few-NERD paper's BERT-Tagger: token classification over IO labels on an encoder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal, Self

import numpy as np
import torch
from torch import nn

from benchmark.cache import settings_from
from benchmark.encoders import STATIC_ENCODERS, TransformerEncoder, device
from benchmark.errors import ConfigError
from benchmark.labels import coarse_of
from benchmark.method import Context, Method, Settings, check_is_fitted
from benchmark.progress import bar
from benchmark.protocols import View
from benchmark.spans import OUTSIDE, Span
from benchmark.training import EarlyStopping, LossMeter, decode_io, dev_f1, vote_in_span, word_rows


@dataclass(frozen=True)
class TaggerConfig:
    """BERT-Tagger (Ding et al. 2021): a linear layer over the encoder's word vectors, IO labels,
    cross-entropy, best dev checkpoint. ``frozen`` trains the head on cached features (the CPU
    default); ``finetune`` trains the encoder too with AdamW (the paper's recipe)."""

    encoder: str = "minilm"
    layer: int = -1
    pooling: Literal["first", "mean"] = "first"
    mode: Literal["frozen", "finetune"] = "frozen"
    coarse: bool = False  # train on the 8 coarse types (used by eigproj)
    lr: float | None = None  # None: 1e-3 for the frozen head, 1e-4 for fine-tuning
    epochs: int = 10
    patience: int = 3
    batch_size: int = 32  # sentences per step
    hidden: int = 0  # 0: a linear head as in BERT-Tagger; >0: one ReLU hidden layer
    dropout: float | None = None  # None: 0.1 when fine-tuning (BERT's), 0 on frozen features

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise ConfigError("epochs, batch_size and patience must be at least 1")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must lie in [0, 1), got {self.dropout}")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (1e-3 if self.mode == "frozen" else 1e-4)

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
            {"layer": 4, "hidden": 512},
        ),
        "layer3-mlp": Settings(
            "oracle",
            "layer 3 and a 512-unit hidden layer, chosen after their test F1 was seen; kept for reference",
            {"layer": 3, "hidden": 512},
        ),
    }
    Config = TaggerConfig

    @classmethod
    def check_config(cls, config: TaggerConfig, protocol: str) -> None:
        if config.coarse:
            raise ConfigError(f"coarse=true predicts coarse types, but {protocol!r} is scored on fine types")
        if config.mode == "finetune" and config.encoder in STATIC_ENCODERS:
            raise ConfigError(f"mode=finetune needs a transformer encoder, not {config.encoder!r}")

    def fit(self, train: View, dev: View, ctx: Context) -> Self:
        cfg = self.config
        self.settings_ = settings_from(cfg)
        to_level = coarse_of if cfg.coarse else str
        self.labels_ = [OUTSIDE, *sorted({to_level(s.label) for e in train.examples for s in e.spans})]
        self._features = ctx.features
        generator = torch.Generator().manual_seed(ctx.seed)
        if cfg.mode == "frozen":
            self._fit_frozen(train, dev, generator, ctx)
        else:
            self._fit_finetune(train, dev, generator, ctx)
        return self

    def _stopper(self, ctx: Context) -> EarlyStopping:
        """Early stopping on dev F1 with the learning curve; a coarse tagger is a stage of another
        method (eigproj's), so its curve is logged under ``coarse-tagger/``."""
        cfg = self.config
        if cfg.coarse:
            return EarlyStopping(cfg.patience, ctx.curve("coarse-tagger", cfg.epochs, "coarse_micro_f1", final=False))
        return EarlyStopping(cfg.patience, ctx.curve("tagger", cfg.epochs, "micro_f1"))

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
        stopper = self._stopper(ctx)
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
        features = self._features.word_features(sentences, self.settings_)
        return torch.from_numpy(np.asarray(features.matrix, dtype=np.float32)), features.offsets

    def _probabilities(self, matrix: torch.Tensor, offsets: np.ndarray) -> list[np.ndarray]:
        self.head_.eval()
        with torch.inference_mode():
            probs = self.head_(matrix.to(next(self.head_.parameters()).device)).softmax(-1).cpu().numpy()
        return [probs[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]

    def _fit_finetune(self, train: View, dev: View, generator: torch.Generator, ctx: Context) -> None:
        from transformers import AutoModel

        cfg = self.config
        self.encoder_ = self._features.encoder(self.settings_)
        if not isinstance(self.encoder_, TransformerEncoder):
            raise ConfigError(f"mode=finetune needs a transformer encoder, not {cfg.encoder!r}")
        self.model_ = AutoModel.from_pretrained(self.encoder_.path).to(device())
        self.head_ = Head(self.encoder_.dim, len(self.labels_), cfg.hidden, cfg.dropout_rate).to(device())
        parameters = [*self.model_.parameters(), *self.head_.parameters()]
        optimizer = torch.optim.AdamW(parameters, lr=cfg.learning_rate)
        targets = self._targets(train)
        tokens = [e.tokens for e in train.examples]
        loss_fn = nn.CrossEntropyLoss()
        both = nn.ModuleDict({"model": self.model_, "head": self.head_})
        stopper = self._stopper(ctx)
        for epoch in range(cfg.epochs):
            both.train()
            order = torch.randperm(len(tokens), generator=generator).tolist()
            meter = LossMeter()
            batches = self.encoder_.batches(tokens, order=order)
            for batch in bar(batches, f"tagger epoch {epoch + 1}", len(tokens), "sent", lambda b: len(b.sentences)):
                gold = torch.from_numpy(np.concatenate([targets[i] for i in batch.sentences])).to(device())
                optimizer.zero_grad()
                loss = loss_fn(self.head_(self.encoder_.forward(self.model_, batch)), gold)
                loss.backward()
                optimizer.step()
                meter.add(loss, len(gold))
            if stopper.step(epoch, dev_f1(self._predict_ner(dev), dev), both, meter.mean):
                break
        stopper.restore(both)
        self.dev_history_ = stopper.history

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
        arrays = self._features.encoder(self.settings_).encode_all(sentences)
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
