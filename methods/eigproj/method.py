"""eigproj: fine-grained typing from coarse labels by keyword/entity eigenprojection.

Paper: "Weakly supervised fine-grained NER by eigenprojection" (Sudhanshu & Gaurav; see
``shared/papers/eigenprojection-weak-fine-ner.txt``) and ``methods/eigproj/README.md``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from dataclasses import dataclass, fields, replace
from typing import ClassVar, Literal, Self

import numpy as np

from benchmark.core.decoding import decode_io
from benchmark.core.encoders import EncoderSettings
from benchmark.core.errors import ConfigError
from benchmark.core.labels import label_text
from benchmark.core.method import Context, Method, Settings, check_is_fitted
from benchmark.core.protocols import Example, View
from benchmark.core.spans import Span
from benchmark.ui.progress import bar, stage
from methods.eigproj.keywords import explain_sentence, rerank
from methods.eigproj.projection import fit_projection, nearest_class
from methods.tagger.method import Tagger, TaggerConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EigProjConfig:
    """Defaults follow the paper where it gives them (the coarse tagger's predicted entities
    explained for their predicted class, PCA to 20 dims shared by X, H and the classes, Σx+Σh
    constraint, top keyword per entity, "fine coarse" label text, nearest class); the rest are
    CPU budgets. With the linear kernel, ``k = pca_dims`` keeps every eigenvector: the map is then
    a whitening only. ``tagger`` trains the coarse tagger (BERT-Tagger's defaults: a linear head,
    10 epochs) on eigproj's own ``encoder``; its ``encoder``, ``coarse`` and ``mode`` are fixed
    (see `coarse_tagger`)."""

    encoder: EncoderSettings = EncoderSettings(pooling="mean")
    tagger: TaggerConfig = TaggerConfig(coarse=True)
    explain: Literal["predicted", "gold"] = "predicted"  # which training entities LIME explains, for which class
    lime_entities: int = 1000  # training entities explained (the paper: all of them)
    lime_samples: int = 100  # LIME perturbations per sentence (LIME's default: 5000)
    lime_features: int = 10
    rerank: bool = True
    rerank_keep: float = 0.5  # quantile of keyword/type relevance below which keywords drop
    pca_dims: int = 20
    k: int = 10  # eigenvectors kept
    epsilon: float = 1e-3  # noise on B's diagonal, relative to B's own mean diagonal
    constraint: Literal["sum", "keywords", "classes"] = "sum"
    pca: Literal["separate", "joint"] = "joint"  # one PCA for X, H and classes (see the card)
    kernel: Literal["linear", "rbf"] = "linear"
    kernel_components: int = 200
    gamma: float | None = None
    similarity: Literal["euclidean", "cosine"] = "euclidean"
    label_names: Literal["raw", "readable", "described"] = "raw"

    def __post_init__(self) -> None:
        limit = self.kernel_components if self.kernel == "rbf" else self.pca_dims
        if not 1 <= self.k <= limit:
            space = (
                f"kernel_components={self.kernel_components}" if self.kernel == "rbf" else f"pca_dims={self.pca_dims}"
            )
            raise ConfigError(f"k={self.k} must lie between 1 and the projected dimension ({space})")
        if self.epsilon < 0:
            raise ConfigError(f"epsilon must be >= 0, got {self.epsilon}")
        if not 0 <= self.rerank_keep < 1:
            raise ConfigError(f"rerank_keep must lie in [0, 1), got {self.rerank_keep}")
        if self.lime_entities < 1 or self.lime_samples < 2:
            raise ConfigError("lime_entities must be >= 1 and lime_samples >= 2")
        fixed = TaggerConfig(coarse=True).encoder
        changed = [f.name for f in fields(fixed) if getattr(self.tagger.encoder, f.name) != getattr(fixed, f.name)]
        if changed:
            raise ConfigError(
                f"tagger.encoder.{changed[0]}: the coarse tagger uses eigproj's encoder; set encoder.{changed[0]}"
            )
        if not self.tagger.coarse:
            raise ConfigError("tagger.coarse=false: eigproj's tagger learns the coarse types it explains")
        if self.tagger.mode != "frozen":
            raise ConfigError(f"tagger.mode={self.tagger.mode}: eigproj's coarse tagger trains on frozen features")

    @property
    def coarse_tagger(self) -> TaggerConfig:
        """The coarse tagger's settings: ``tagger``'s, on eigproj's ``encoder``."""
        return replace(self.tagger, encoder=self.encoder)


def _mean_rows(features, spans) -> np.ndarray:
    return np.stack([np.asarray(features[s][a:b], dtype=np.float32).mean(axis=0) for s, a, b in spans])


class EigProj(Method):
    """Coarse tagger → LIME keywords → re-ranking → PCA → eigenprojection → nearest fine class.

    Learns a map under which each training entity lies close to the keyword that explains its
    coarse prediction, then types a test entity by the nearest projected "fine coarse" label
    embedding within its gold coarse type; the score is the distance margin to the runner-up.
    """

    protocols = frozenset({"weak-typing"})
    defaults = Settings(
        "paper", "the paper's pipeline (§5) as written (one PCA: see the card); k = 10, the LIME budget fixed a priori"
    )
    variants: ClassVar[dict[str, Settings]] = {
        "tuned": Settings(
            "oracle",
            "our adaptations (cosine, described class texts), first tried in sweeps scored on the test split; a "
            "later coarse-blind dev sweep agreed, but a candidate first tried on test stays oracle (card)",
            {"similarity": "cosine", "label_names": "described"},
        ),
        "test-picked": Settings(
            "oracle",
            "picked from single-factor sweeps scored with fine labels on the test split (k=20 on top of tuned; "
            "with the linear kernel k = pca_dims keeps every eigenvector, so the map is only a whitening)",
            {"similarity": "cosine", "label_names": "described", "k": 20},
        ),
        "separate-pca": Settings(
            "paper", "the other reading of §5.2: X gets its own PCA, H and the classes another", {"pca": "separate"}
        ),
        "gold-entities": Settings(
            "prior",
            "LIME explains gold training entities for their gold coarse type (our first reading)",
            {"explain": "gold"},
        ),
    }
    Config = EigProjConfig

    def fit(self, train: View, dev: View, ctx: Context) -> Self:
        cfg = self.config
        self._features = ctx.features
        seconds: dict[str, float] = {}
        clock = time.perf_counter()

        tagger = Tagger(cfg.coarse_tagger).fit(train, dev, ctx)
        seconds["tagger"], clock = time.perf_counter() - clock, time.perf_counter()

        explained = self._explain(train, tagger, ctx)
        seconds["lime"], clock = time.perf_counter() - clock, time.perf_counter()

        x, h, classes = self._matrices(train, explained, ctx)
        seconds["keywords_and_matrices"], clock = time.perf_counter() - clock, time.perf_counter()

        with stage(f"eigenprojection of {len(x)} entity–keyword pairs"):
            self.projection_ = fit_projection(
                x, h, classes, dims=cfg.pca_dims, k=cfg.k, constraint=cfg.constraint, epsilon=cfg.epsilon,
                pca=cfg.pca, kernel=cfg.kernel, kernel_components=cfg.kernel_components, gamma=cfg.gamma,
                seed=ctx.seed,
            )  # fmt: skip
        self.fine_ = train.hierarchy.fine_types
        self.class_points_ = self.projection_.keywords(classes)
        seconds["projection"] = time.perf_counter() - clock
        ctx.metrics.update({f"seconds_{k}": v for k, v in seconds.items()})
        ctx.metrics.update(
            {"entities_explained": len(explained), "entities_with_keyword": len(x),
             "lime_explanations_per_second": len(explained) / max(seconds["lime"], 1e-9)}
        )  # fmt: skip
        return self

    def _matrices(self, train: View, explained: list[dict], ctx: Context) -> tuple[np.ndarray, ...]:
        """Re-rank keywords, then X (entities), H (their keywords, in context), class vectors."""
        cfg = self.config
        tokens = {e.id: e.tokens for e in train.examples}
        encoder = ctx.features.encoder(cfg.encoder)
        coarse_types = train.hierarchy.coarse_types
        coarse_vectors = dict(zip(coarse_types, encoder.embed_phrases(coarse_types), strict=True))

        def relevance(words: list[str], coarse: str) -> np.ndarray:
            vectors = encoder.embed_phrases(words)
            target = coarse_vectors[coarse]
            return vectors @ target / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(target) + 1e-12)

        with stage(f"re-ranking the keywords of {len(explained)} entities"):
            choice, table = rerank(explained, tokens.__getitem__, relevance, cfg.rerank_keep if cfg.rerank else 0.0)
        self._write_keywords(table, train, ctx)

        pairs = [(item, position) for item, position in zip(explained, choice, strict=True) if position is not None]
        if len(pairs) <= cfg.pca_dims:
            raise ConfigError(
                f"only {len(pairs)} entities have a keyword, too few for pca_dims={cfg.pca_dims}; "
                "raise lime_entities or lower rerank_keep"
            )
        features = ctx.features.word_features([e.tokens for e in train.examples], cfg.encoder)
        x = _mean_rows(features, [(i["sentence"], i["start"], i["end"]) for i, _ in pairs])
        h = _mean_rows(features, [(i["sentence"], p, p + 1) for i, p in pairs])
        classes = encoder.embed_phrases([label_text(f, cfg.label_names) for f in train.hierarchy.fine_types])
        return x, h, classes

    def _explain(self, train: View, tagger: Tagger, ctx: Context) -> list[dict]:
        """LIME on a seeded sample of training sentences, until ``lime_entities`` are covered:
        the entities the coarse tagger predicts, each explained for its predicted class (the
        paper), or (``explain=gold``) the gold coarse entities for their gold class."""
        cfg = self.config
        examples = list(train.examples)
        random.Random(ctx.seed).shuffle(examples)
        chosen: list[tuple[Example, tuple[Span, ...]]] = []
        total = 0
        for start in range(0, len(examples), 256):  # the tagger runs only as far as needed
            if total >= cfg.lime_entities:
                break
            batch = examples[start : start + 256]
            if cfg.explain == "gold":
                found = [e.spans for e in batch]
            else:
                probabilities = tagger.word_probabilities([e.tokens for e in batch])
                found = [tuple(decode_io(e.id, p, tagger.labels_)) for e, p in zip(batch, probabilities, strict=True)]
            for example, entities in zip(batch, found, strict=True):
                if total >= cfg.lime_entities:
                    break
                if entities:
                    chosen.append((example, entities))
                    total += len(entities)
        gold = {(e.id, s.start, s.end, s.label) for e, _ in chosen for s in e.spans}
        explained = [(e.id, s.start, s.end, s.label) for e, spans in chosen for s in spans]
        ctx.metrics["explained_gold_share"] = sum(x in gold for x in explained) / max(len(explained), 1)
        head = hashlib.sha256(b"".join(v.numpy().tobytes() for v in tagger.head_.state_dict().values()))
        fields = {
            "tagger": head.hexdigest(),
            "labels": tagger.labels_,
            "encoder": [cfg.encoder.name, cfg.encoder.layer, cfg.encoder.pooling],
            "samples": cfg.lime_samples,
            "features": cfg.lime_features,
            "seed": ctx.seed,
            "sentences": hashlib.sha256(json.dumps([list(e.tokens) for e, _ in chosen]).encode()).hexdigest(),
            "entities": hashlib.sha256(
                json.dumps([[(s.start, s.end, s.label) for s in spans] for _, spans in chosen]).encode()
            ).hexdigest(),
        }
        encoder = ctx.features.encoder(cfg.encoder)
        mask = getattr(getattr(encoder, "tokenizer", None), "mask_token", None) or "UNKWORDZ"

        def compute() -> list[dict]:
            out = []
            entities = sum(len(spans) for _, spans in chosen)
            for example, spans in bar(chosen, "LIME explanations", entities, "entity", lambda pair: len(pair[1])):
                entities = [(s.start, s.end, s.label) for s in spans]
                inside = {p for s in spans for p in range(s.start, s.end)}
                ranked = explain_sentence(
                    example.tokens, entities, inside, lambda batch: tagger.word_probabilities(batch, cached=False),
                    tagger.labels_, num_samples=cfg.lime_samples, num_features=cfg.lime_features, mask=mask,
                    random_state=ctx.seed * 1_000_003 + example.id,
                )  # fmt: skip
                for (start, end, coarse), keywords in zip(entities, ranked, strict=True):
                    out.append(
                        {"sentence": example.id, "start": start, "end": end, "coarse": coarse, "keywords": keywords}
                    )
            return out

        return ctx.features.cached_json("eigproj-lime", fields, compute)

    def _write_keywords(self, table: dict, train: View, ctx: Context) -> None:
        """Artifact: the top keywords per coarse type (compare with the paper's Table 1)."""
        lines = ["| coarse | top keywords (count) |", "| --- | --- |"]
        for coarse in train.hierarchy.coarse_types:
            rows = table.get(coarse, [])
            if not rows:
                log.warning("eigproj: no keyword survived for coarse type %r; it adds no rows to X/H", coarse)
            lines.append(f"| {coarse} | {', '.join(f'{w} ({n})' for w, n, _ in rows[:15]) or '(none)'} |")
        (ctx.artifact_dir / "keywords.md").write_text("\n".join(lines) + "\n")
        with (ctx.artifact_dir / "keywords.csv").open("w") as f:
            f.write("coarse,keyword,count,relevance\n")
            for coarse, rows in sorted(table.items()):
                f.writelines(f"{coarse},{w},{n},{r:.4f}\n" for w, n, r in rows)

    def predict(self, view: View) -> list[Span]:
        check_is_fitted(self, "projection_")
        features = self._features.word_features([e.tokens for e in view.examples], self.config.encoder)
        given = [s for e in view.examples for s in e.spans]
        if not given:
            return []
        points = self.projection_.entities(_mean_rows(features, [(s.sentence_id, s.start, s.end) for s in given]))
        allowed = np.array([[s.label in (None, f.split("-", 1)[0]) for f in self.fine_] for s in given])
        best, margin = nearest_class(points, self.class_points_, allowed, self.config.similarity)
        return [s._replace(label=self.fine_[b], score=float(m)) for s, b, m in zip(given, best, margin, strict=True)]
