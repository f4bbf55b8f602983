"""Zero-shot weak typing by label-name similarity: eigproj without the learned projection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, Self

import numpy as np
from sklearn.preprocessing import normalize

from benchmark.core.encoders import EncoderSettings
from benchmark.core.labels import label_text
from benchmark.core.method import Context, Method, Settings, check_is_fitted
from benchmark.core.protocols import View
from benchmark.core.spans import Span


@dataclass(frozen=True)
class LabelNameConfig:
    """Encoder settings for entities and label texts, and how label texts are spelled."""

    encoder: EncoderSettings = EncoderSettings(pooling="mean")
    label_names: Literal["raw", "readable", "described"] = "raw"


class LabelName(Method):
    """Nearest fine-type name ("politician person") to the entity, within its gold coarse type.

    Entity: mean of its words' contextual vectors. Label: mean word vector of its text, encoded
    as a sentence. Score: cosine margin between the best and the second-best candidate.
    """

    protocols = frozenset({"weak-typing"})
    defaults = Settings("prior", "the dataset's own label strings as \"fine coarse\" text, as eigproj's class texts")
    variants: ClassVar[dict[str, Settings]] = {
        "described": Settings(
            "oracle",
            "split compounds and the GPE gloss: texts first tried after a test comparison (0.318 -> 0.381; card)",
            {"label_names": "described"},
        ),
        "readable": Settings(
            "oracle",
            "split compounds only: the spelling step of the texts first tried after a test comparison (card)",
            {"label_names": "readable"},
        ),
    }
    Config = LabelNameConfig

    def fit(self, train: View, dev: View, ctx: Context) -> Self:
        self._features = ctx.features
        fine = train.hierarchy.fine_types
        texts = [label_text(f, self.config.label_names) for f in fine]
        vectors = self._features.encoder(self.config.encoder).embed_phrases(texts)
        self.label_vectors_ = dict(zip(fine, vectors, strict=True))
        self.hierarchy_ = train.hierarchy
        return self

    def predict(self, view: View) -> list[Span]:
        check_is_fitted(self, "label_vectors_")
        features = self._features.word_features([e.tokens for e in view.examples], self.config.encoder)
        out = []
        for example in view.examples:
            words = np.asarray(features[example.id], dtype=np.float32)
            for span in example.spans:
                entity = normalize(words[span.start : span.end].mean(axis=0, keepdims=True))[0]
                options = self.hierarchy_.fines_of(span.label)  # all fine types if the coarse is withheld
                similarity = normalize(np.stack([self.label_vectors_[f] for f in options])) @ entity
                ranked = np.argsort(-similarity, kind="stable")
                margin = similarity[ranked[0]] - (similarity[ranked[1]] if len(options) > 1 else -1.0)
                out.append(span._replace(label=options[ranked[0]], score=float(margin)))
        return out
