"""eigproj stages 2–3: keywords by LIME (paper §5.1) and their re-ranking per coarse type."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence

import numpy as np
from lime.lime_text import LimeTextExplainer
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

log = logging.getLogger(__name__)

#: one explained entity: sentence id, span, coarse type, LIME keywords [(position, weight), ...]
Explained = dict


def is_keyword_candidate(token: str) -> bool:
    """A word, not punctuation, a number or a stop word."""
    return any(c.isalpha() for c in token) and len(token) > 1 and token.lower() not in ENGLISH_STOP_WORDS


def explain_sentence(
    tokens: Sequence[str],
    entities: Sequence[tuple[int, int, str]],
    entity_positions: set[int],
    probabilities: Callable[[list[list[str]]], list[np.ndarray]],
    labels: Sequence[str],
    *,
    num_samples: int,
    num_features: int,
    mask: str,
    random_state: int,
) -> list[list[tuple[int, float]]]:
    """LIME keywords for each entity of one sentence, best first.

    ``LimeTextExplainer`` with ``bow=False`` masks words in place (positions kept). Every entity
    of the sentence is explained with the same random state, so the perturbed sentences are the
    same and are classified once, in one batch; each entity then reads its own column: the
    tagger's probability of its coarse type, averaged over its words. Keywords exclude the
    words of any entity, punctuation, numbers and stop words, and keep positive weights only.
    """
    text = " ".join(t.replace(" ", "_") for t in tokens)
    memo: dict[tuple[str, ...], np.ndarray] = {}

    def all_entities(texts: list[str]) -> np.ndarray:
        key = tuple(texts)
        if key not in memo:
            per_sentence = probabilities([t.split(" ") for t in texts])
            memo[key] = np.stack([np.stack([p[s:e].mean(axis=0) for s, e, _ in entities]) for p in per_sentence])
        return memo[key]

    out = []
    for j, (_, _, coarse) in enumerate(entities):
        explainer = LimeTextExplainer(
            class_names=list(labels), split_expression=lambda s: s.split(" "), bow=False,
            mask_string=mask, random_state=random_state,
        )  # fmt: skip
        target = labels.index(coarse)
        explanation = explainer.explain_instance(
            text,
            lambda texts, j=j: all_entities(texts)[:, j, :],
            labels=(target,),
            num_features=num_features,
            num_samples=num_samples,
        )
        ranked = [
            (int(position), float(weight))
            for position, weight in explanation.as_map()[target]
            if weight > 0 and position not in entity_positions and is_keyword_candidate(tokens[position])
        ]
        out.append(ranked)
    return out


def rerank(
    explained: Sequence[Explained],
    tokens: Callable[[int], Sequence[str]],
    relevance: Callable[[list[str], str], np.ndarray],
    keep: float,
) -> tuple[list[int | None], dict[str, list[tuple[str, int, float]]]]:
    """Drop keywords not pertinent to their coarse type; pick each entity's best survivor.

    Per coarse type, every distinct keyword (lowercased) is scored by the encoder's cosine
    similarity between the word and the type's name; those below the ``keep`` quantile of
    their type are dropped (``keep`` = 0 keeps all). Returns the chosen keyword position per
    entity (``None`` when none survives) and, per coarse type, (keyword, count, relevance) rows.
    """
    by_type: dict[str, Counter[str]] = defaultdict(Counter)
    for item in explained:
        for position, _ in item["keywords"]:
            by_type[item["coarse"]][tokens(item["sentence"])[position].lower()] += 1
    kept: dict[str, set[str]] = {}
    table: dict[str, list[tuple[str, int, float]]] = {}
    for coarse, counts in by_type.items():
        words = sorted(counts)
        scores = relevance(words, coarse)
        threshold = np.quantile(scores, keep) if keep > 0 else -np.inf
        kept[coarse] = {w for w, s in zip(words, scores, strict=True) if s >= threshold}
        rows = [(w, counts[w], float(s)) for w, s in zip(words, scores, strict=True) if w in kept[coarse]]
        table[coarse] = sorted(rows, key=lambda r: (-r[1], -r[2], r[0]))
    choice: list[int | None] = []
    for item in explained:
        sentence = tokens(item["sentence"])
        survivors = [p for p, _ in item["keywords"] if sentence[p].lower() in kept.get(item["coarse"], set())]
        choice.append(survivors[0] if survivors else None)
    return choice, table
