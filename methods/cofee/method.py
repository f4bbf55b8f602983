"""CoFEE (Xue et al., EMNLP 2020): coarse-to-fine pre-training for NER in three stages —
entity span identification (ESI), named entity extraction from a gazetteer with iterative
self-picking (NEE), and fine-grained entity typing by k-means pseudo labels (FET)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal, Self

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans
from sklearn.preprocessing import normalize

from benchmark.core.cache import WordSource
from benchmark.core.decoding import decode_bio, dev_f1
from benchmark.core.encoders import EncoderSettings
from benchmark.core.errors import ConfigError
from benchmark.core.labels import label_text
from benchmark.core.method import Context, Method, Settings, check_is_fitted
from benchmark.core.protocols import View, coarse_view
from benchmark.core.spans import Span, bio_tags
from benchmark.core.training import EarlyStopping, LossMeter
from benchmark.ui.progress import Curve, stage
from methods.cofee.model import (
    CofeeNet,
    cluster_variances,
    pick_spans,
    pool_spans,
    split_rows,
    variance_weighted_loss,
    variance_weights,
)
from methods.gazetteer.method import Gazetteer, GazetteerConfig

Triples = list[list[tuple[int, int, int]]]  # per sentence: (start, end, type index)
CHUNK = 50_000  # words per forward pass outside training


@dataclass(frozen=True)
class CofeeConfig:
    """The paper's Algorithm 1 on the CoFEE-BERT backbone (a token tagger), over frozen encoder
    features with a trainable ReLU layer. δ = 0.1 (the low end of the paper's search, 0.1-0.5)
    and K = the number of fine types (the centre of its search, K - 2 to K + 2, both tuned on dev
    there and fixed here); epochs, γ, the layer size and the dictionary share are our choices (the
    paper gives none). ``setting=weak`` tags coarse types without any fine label (Table 3);
    ``supervised`` fine-tunes the pre-trained model on fine labels (Table 2). ``gazetteer`` is
    NEE's dictionary (the `gazetteer` method's settings): half the distinct training entity
    strings by default."""

    encoder: EncoderSettings = EncoderSettings()
    gazetteer: GazetteerConfig = GazetteerConfig(fraction=0.5)
    setting: Literal["weak", "supervised"] = "weak"
    pretrain: bool = True  # False (supervised only): the backbone without CoFEE pre-training
    esi: bool = True  # stage 1 on untyped training spans (the stand-in for Wikipedia anchors)
    fet: bool = True  # stage 3
    delta: float = 0.1  # self-picking threshold δ
    clusters: int | None = None  # K; None: the number of fine types
    gamma: float = 1.0  # trade-off γ of the clustering loss (0: FET's extra NEE epochs alone, a control)
    variance_weighted: bool = True  # Eq. 9-10; False: plain cross-entropy on pseudo labels (Eq. 7)
    label_names: Literal["raw", "readable", "described"] = "raw"  # fine-type texts clusters are matched to
    hidden: int = 512
    dropout: float = 0.1
    lr: float = 1e-3
    batch_size: int = 32  # sentences per step
    esi_epochs: int = 2
    nee_epochs: int = 10  # self-picking iterations, one epoch each, best on dev
    fet_epochs: int = 5  # best on dev
    epochs: int = 10  # supervised fine-tuning, best on dev
    patience: int = 2

    def __post_init__(self) -> None:
        if not 0 < self.delta < 1:
            raise ConfigError(f"delta (the self-picking threshold δ) must lie in (0, 1), got {self.delta}")
        if self.clusters is not None and self.clusters < 2:
            raise ConfigError(f"clusters (K) must be at least 2, got {self.clusters}")
        if self.gamma < 0 or self.lr <= 0 or not 0 <= self.dropout < 1:
            raise ConfigError("gamma must not be negative, lr must be positive and dropout lie in [0, 1)")
        if min(self.hidden, self.batch_size, self.nee_epochs, self.fet_epochs, self.epochs, self.patience) < 1:
            raise ConfigError("hidden, batch_size, nee_epochs, fet_epochs, epochs and patience must be at least 1")
        if self.esi_epochs < 0:
            raise ConfigError(f"esi_epochs must not be negative, got {self.esi_epochs}")


class Cofee(Method):
    """CoFEE coarse-to-fine pre-training on a token-tagger backbone (ESI → NEE → FET).

    ``weak`` (default): ``ner`` tags the coarse types learnt from the gazetteer and gives each
    entity the fine type whose name is nearest its cluster's centre (within its coarse type);
    ``weak-typing`` does the same on the gold spans. ``supervised``: the pre-trained network is
    fine-tuned on the fine labels. Predictions carry their k-means cluster, which the evaluator
    scores against the hidden fine types (NMI, ARI).
    """

    protocols = frozenset({"ner", "weak-typing"})
    default_protocol = "ner"
    defaults = Settings(
        "prior",
        "Algorithm 1 with δ, K as the paper; clusters named by the dataset's own fine-type strings, fixed a priori "
        "(the spelt-out texts were first tried after a test comparison: card)",
    )
    variants: ClassVar[dict[str, Settings]] = {
        "no-fet": Settings("paper", "Table 3's -FET, on the defaults", {"fet": False}),
        "fet-control": Settings(
            "prior",
            "control for FET's clustering loss: FET's up to fet_epochs extra dev-selected NEE epochs with γ = 0",
            {"gamma": 0.0},
        ),
        "no-fet-esi": Settings("paper", "Table 3's -FET-ESI, on the defaults", {"fet": False, "esi": False}),
        "supervised": Settings("paper", "Table 2's CoFEE-BERT: fine-tuned on fine labels", {"setting": "supervised"}),
        "no-pretrain": Settings(
            "paper", "Table 2's BERT row: the bare backbone", {"setting": "supervised", "pretrain": False}
        ),
    }
    Config = CofeeConfig

    @classmethod
    def check_config(cls, config: CofeeConfig, protocol: str) -> None:
        if config.setting == "supervised" and protocol != "ner":
            raise ConfigError(f"setting=supervised fine-tunes on fine labels, which {protocol!r} does not give")
        if not config.pretrain and config.setting != "supervised":
            raise ConfigError("pretrain=false leaves nothing to train in setting=weak; use setting=supervised")

    def fit(self, train: View, dev: View, ctx: Context) -> Self:
        cfg = self.config
        self.check_config(cfg, train.protocol)
        self._features = ctx.features
        self.hierarchy_ = train.hierarchy
        self.coarse_types_ = list(train.hierarchy.coarse_types)
        self._rng = np.random.default_rng(ctx.seed)
        self._metrics = ctx.metrics
        self._final = "finetune" if cfg.setting == "supervised" else "fet" if cfg.fet else "nee"
        words, dev_words = self._words(train), self._words(dev)
        self.net_ = CofeeNet(words.cached.shape[1], cfg.hidden, cfg.dropout)
        self.kmeans_: KMeans | None = None
        # pre-training reads coarse labels only: spans drawn from coarse labels, so two adjacent
        # entities of one coarse type stay one span even where the view's fine labels split them
        coarse_train, coarse_dev = coarse_view(train, "coarse"), coarse_view(dev, "coarse")
        self._metrics["coarse_training_spans"] = sum(len(e.spans) for e in coarse_train.examples)
        if cfg.pretrain:
            if cfg.esi:
                self._timed("esi", self._esi, coarse_train, words, ctx)
            labelled = self._timed("nee", self._nee, coarse_train, words, dev_words, coarse_dev, ctx)
            if cfg.fet:
                self._timed("fet", self._fet, words, dev_words, coarse_dev, labelled, ctx)
        if cfg.setting == "supervised":
            self.fine_types_ = list(train.hierarchy.fine_types)
            self._timed("finetune", self._finetune, train, dev, words, dev_words, ctx)
        else:
            self._timed("clusters", self._fit_clusters, words, labelled, ctx)
        return self

    # ----- stages -------------------------------------------------------------------------

    def _esi(self, train: View, words: WordSource, ctx: Context) -> None:
        """Stage 1: untyped BIO tagging of the (coarse-view) training entity spans (the anchors'
        stand-in: gold boundaries)."""
        self.net_.add_head("esi", 3)
        triples = [[(s.start, s.end, 0) for s in e.spans] for e in train.examples]
        tags = self._tags(words, triples)
        optimizer = self._optimizer()
        curve = self._curve(ctx, "esi", self.config.esi_epochs, "none")
        for _ in range(self.config.esi_epochs):
            curve.point(self._epoch("esi", words, tags, optimizer), None)
        curve.close()

    def _nee(self, train: View, words: WordSource, dev_words: WordSource, coarse_dev: View, ctx: Context) -> Triples:
        """Stage 2: coarse BIO tagging on gazetteer matches, re-labelled by self-picking after
        each epoch; returns the label set of the best epoch on dev (``D_s^best``)."""
        cfg = self.config
        gazetteer = Gazetteer(cfg.gazetteer).fit(train, coarse_dev, ctx)
        index = {c: i for i, c in enumerate(self.coarse_types_)}
        labelled = [[(s.start, s.end, index[s.label]) for s in gazetteer.tag(e.id, e.tokens)] for e in train.examples]
        self._metrics["nee_matched_entities"] = sum(map(len, labelled))
        self.net_.add_head("nee", 1 + 2 * len(self.coarse_types_))
        optimizer = self._optimizer()
        stopper = EarlyStopping(cfg.patience, self._curve(ctx, "nee", cfg.nee_epochs, "coarse_micro_f1"))
        best = labelled
        for epoch in range(cfg.nee_epochs):
            loss = self._epoch("nee", words, self._tags(words, labelled), optimizer)
            dev_score = dev_f1(self._coarse_spans(coarse_dev, dev_words), coarse_dev)
            stop = stopper.step(epoch, dev_score, self.net_, loss)
            if stopper.best_epoch == epoch:
                best = labelled
            if stop:
                break
            probabilities = split_rows(self._probabilities("nee", words), words.counts)
            labelled = [pick_spans(p, cfg.delta) for p in probabilities]
            self._metrics[f"nee_picked_entities_{epoch + 1}"] = sum(map(len, labelled))
        stopper.restore(self.net_)
        self._metrics["nee_dev_f1"] = stopper.best_score
        self._metrics["nee_best_entities"] = sum(map(len, best))
        return best

    def _fet(self, words: WordSource, dev_words: WordSource, coarse_dev: View, labelled: Triples, ctx: Context) -> None:
        """Stage 3: NEE tagging on ``D_s^best`` plus γ × the variance-weighted cross-entropy of a
        cluster classifier on k-means pseudo labels of the entities, re-clustered every epoch."""
        cfg = self.config
        entities = _rows_of(labelled)
        k = self._k(len(entities))
        self.net_.add_head("clusters", k)
        optimizer = self._optimizer()
        stopper = EarlyStopping(cfg.patience, self._curve(ctx, "fet", cfg.fet_epochs, "coarse_micro_f1"))
        tags = self._tags(words, labelled)
        centres: np.ndarray | None = None
        for epoch in range(cfg.fet_epochs):
            vectors = self._entity_vectors(words, entities)
            kmeans = self._kmeans(vectors, k, centres, ctx.seed)
            centres = kmeans.cluster_centers_
            variances = cluster_variances(vectors, kmeans.labels_, centres)
            alpha = variance_weights(variances) if cfg.variance_weighted else np.ones(k)
            if epoch == 0:
                self._metrics["fet_alpha_max_over_min"] = float(alpha.max() / max(alpha[alpha > 0].min(), 1e-300))
            pseudo = (entities, kmeans.labels_, torch.as_tensor(alpha, dtype=torch.float32))
            loss = self._epoch("nee", words, tags, optimizer, pseudo)
            if stopper.step(epoch, dev_f1(self._coarse_spans(coarse_dev, dev_words), coarse_dev), self.net_, loss):
                break
        stopper.restore(self.net_)
        self._metrics["fet_dev_f1"] = stopper.best_score

    def _finetune(self, train: View, dev: View, words: WordSource, dev_words: WordSource, ctx: Context) -> None:
        """Supervised setting: a new BIO head over the fine types, trained with the pre-trained
        layer on the human fine labels; best epoch on dev fine F1."""
        cfg = self.config
        index = {f: i for i, f in enumerate(self.fine_types_)}
        triples = [[(s.start, s.end, index[s.label]) for s in e.spans] for e in train.examples]
        tags = self._tags(words, triples)
        self.net_.add_head("fine", 1 + 2 * len(self.fine_types_))
        optimizer = self._optimizer()
        stopper = EarlyStopping(cfg.patience + 1, self._curve(ctx, "finetune", cfg.epochs, "micro_f1"))
        for epoch in range(cfg.epochs):
            loss = self._epoch("fine", words, tags, optimizer)
            dev_score = dev_f1(self._tagged(dev, dev_words, "fine", self.fine_types_), dev)
            if stopper.step(epoch, dev_score, self.net_, loss):
                break
        stopper.restore(self.net_)
        self._metrics["finetune_dev_f1"] = stopper.best_score

    def _fit_clusters(self, words: WordSource, labelled: Triples, ctx: Context) -> None:
        """Weak setting: cluster ``D_s^best``'s entities with the final network, and score each
        cluster against every fine-type name by the cosine between the name's embedding and the
        mean of its members' (unit) encoder vectors."""
        entities = _rows_of(labelled)
        vectors = self._entity_vectors(words, entities)
        with stage(f"k-means of {len(entities)} entities"):
            self.kmeans_ = self._kmeans(vectors, self._k(len(entities)), None, ctx.seed)
        raw = normalize(pool_spans(words.cached, *_word_bounds(entities, words)).numpy())
        k = self.kmeans_.n_clusters
        centres = normalize(np.stack([raw[self.kmeans_.labels_ == c].mean(axis=0) for c in range(k)]))
        fine = list(self.hierarchy_.fine_types)
        texts = [label_text(f, self.config.label_names) for f in fine]
        names = normalize(self._features.encoder(self.config.encoder).embed_phrases(texts))
        self.similarity_ = pd.DataFrame(centres @ names.T, columns=fine)
        members = pd.DataFrame({"cluster": self.kmeans_.labels_, "coarse": entities[:, 3]})
        table = members.groupby("cluster").agg(size=("coarse", "size"), coarse=("coarse", lambda x: x.mode().iloc[0]))
        table["coarse"] = [self.coarse_types_[c] for c in table["coarse"]]
        table["nearest_fine_type"] = [
            self.similarity_.loc[i, list(self.hierarchy_.fines_of(c))].idxmax() for i, c in table["coarse"].items()
        ]
        table.to_csv(ctx.artifact_dir / "clusters.csv")
        self._metrics["entities_clustered"] = len(entities)

    # ----- prediction ---------------------------------------------------------------------

    def predict(self, view: View) -> list[Span]:
        check_is_fitted(self, "net_")
        words = self._words(view)
        if self.config.setting == "supervised":
            return self._tagged(view, words, "fine", self.fine_types_)
        if view.protocol == "ner":
            spans = self._coarse_spans(view, words)
        else:
            spans = [s for e in view.examples for s in e.spans]
        return self._fine_from_clusters(spans, view, words)

    def _fine_from_clusters(self, spans: Sequence[Span], view: View, words: WordSource) -> list[Span]:
        """Each coarse-typed span → its nearest cluster → that cluster's best fine type under the
        span's coarse type. Score: the span's own score under ``ner``, else the margin between
        the best and second-best fine type."""
        position = {e.id: i for i, e in enumerate(view.examples)}
        rows = np.array([(position[s.sentence_id], s.start, s.end, 0) for s in spans], dtype=np.int64).reshape(-1, 4)
        if not len(rows):
            return []
        clusters = self.kmeans_.predict(self._entity_vectors(words, rows))
        out = []
        for span, cluster in zip(spans, clusters, strict=True):
            options = self.similarity_.loc[int(cluster), list(self.hierarchy_.fines_of(span.label))]
            ranked = options.sort_values(ascending=False, kind="stable")
            score = span.score
            if view.protocol != "ner":
                score = float(ranked.iloc[0] - (ranked.iloc[1] if len(ranked) > 1 else -1.0))
            out.append(span._replace(label=ranked.index[0], score=score, cluster=int(cluster)))
        return out

    # ----- helpers ------------------------------------------------------------------------

    def _timed(self, name: str, fn, *args):
        started = time.perf_counter()
        out = fn(*args)
        self._metrics[f"{name}_seconds"] = time.perf_counter() - started
        return out

    def _curve(self, ctx: Context, name: str, epochs: int, headline: str) -> Curve:
        return ctx.curve(name, epochs, headline, final=name == self._final)

    def _words(self, view: View) -> WordSource:
        sentences = [e.tokens for e in view.examples]
        features = self._features.word_features(sentences, self.config.encoder)
        return WordSource(sentences, features.matrix, features.offsets)

    def _tags(self, words: WordSource, triples: Triples) -> torch.Tensor:
        return torch.from_numpy(bio_tags(words.counts.tolist(), _rows_of(triples)))

    def _optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.net_.parameters(), lr=self.config.lr)

    def _k(self, n_entities: int) -> int:
        k = self.config.clusters or len(self.hierarchy_.fine_types)
        if n_entities < k:
            raise ConfigError(f"clusters (K) is {k}, but NEE left only {n_entities} entities to cluster")
        return k

    def _kmeans(self, vectors: np.ndarray, k: int, centres: np.ndarray | None, seed: int) -> KMeans:
        """k-means (scikit-learn); started from the previous centres when re-clustering, so a
        cluster keeps its index and ``W_c`` its meaning from one epoch to the next."""
        init = centres if centres is not None else "k-means++"
        return KMeans(n_clusters=k, init=init, n_init=1, random_state=seed).fit(vectors)

    def _epoch(self, head: str, words: WordSource, tags: torch.Tensor, optimizer, pseudo=None) -> float:
        """One pass over the sentences in random batches; with ``pseudo`` = (entities, cluster
        labels, α) the loss adds γ × the variance-weighted cluster loss of the batch's entities.
        Returns the epoch's mean loss."""
        cfg = self.config
        self.net_.train()
        meter = LossMeter()
        order = self._rng.permutation(len(words.counts))
        for batch in np.array_split(order, -(-len(order) // cfg.batch_size)):
            rows = words.rows(batch)
            h = self.net_(words.cached[rows])
            loss = F.cross_entropy(self.net_.heads[head](h), tags[rows])
            if pseudo is not None:
                entities, labels, alpha = pseudo
                chosen, local = _entities_in(entities, batch, words.counts)
                if len(chosen):
                    e = pool_spans(h, local, local + entities[chosen, 2] - entities[chosen, 1])
                    target = torch.from_numpy(labels[chosen]).long()
                    loss = loss + cfg.gamma * variance_weighted_loss(self.net_.heads["clusters"](e), target, alpha)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            meter.add(loss, len(batch))
        return meter.mean

    def _hidden(self, words: WordSource) -> torch.Tensor:
        self.net_.eval()
        with torch.inference_mode():
            return torch.cat([self.net_(part) for part in words.cached.split(CHUNK)])

    def _probabilities(self, head: str, words: WordSource) -> np.ndarray:
        self.net_.eval()
        with torch.inference_mode():
            parts = [self.net_.heads[head](self.net_(part)).softmax(-1) for part in words.cached.split(CHUNK)]
        return torch.cat(parts).numpy()

    def _entity_vectors(self, words: WordSource, entities: np.ndarray) -> np.ndarray:
        """``e_i``: the network's ``h`` sum-pooled over each entity (rows sentence, start, end, …)."""
        return pool_spans(self._hidden(words), *_word_bounds(entities, words)).numpy()

    def _tagged(self, view: View, words: WordSource, head: str, types: Sequence[str]) -> list[Span]:
        probabilities = split_rows(self._probabilities(head, words), words.counts)
        return [
            Span(e.id, a, b, types[kind], score)
            for e, p in zip(view.examples, probabilities, strict=True)
            for a, b, kind, score in decode_bio(p)
        ]

    def _coarse_spans(self, view: View, words: WordSource) -> list[Span]:
        return self._tagged(view, words, "nee", self.coarse_types_)


def _rows_of(triples: Triples) -> np.ndarray:
    """Rows ``(sentence, start, end, type)`` of per-sentence triples, sorted by sentence."""
    out = [(i, *t) for i, sentence in enumerate(triples) for t in sentence]
    return np.array(out, dtype=np.int64).reshape(-1, 4)


def _word_bounds(entities: np.ndarray, words: WordSource) -> tuple[np.ndarray, np.ndarray]:
    """The entities' first and past-the-end rows in the view's flat word matrix."""
    first = words.offsets[entities[:, 0]]
    return first + entities[:, 1], first + entities[:, 2]


def _entities_in(entities: np.ndarray, batch: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the entities (sorted by sentence) in ``batch``'s sentences, and each one's
    start row in the batch's word matrix."""
    lo = np.searchsorted(entities[:, 0], batch, side="left")
    hi = np.searchsorted(entities[:, 0], batch, side="right")
    chosen = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)]).astype(np.int64)
    first_row = np.cumsum([0, *counts[batch][:-1]])
    local = np.repeat(first_row, hi - lo) + entities[chosen, 1]
    return chosen, local
