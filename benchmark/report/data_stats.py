"""Per-split statistics of a corpus: sentences, tokens, entities per coarse and fine type."""

from __future__ import annotations

from collections import Counter

import pandas as pd

from benchmark.core.data.fewnerd import Corpus
from benchmark.core.labels import coarse_of


def split_summary(corpus: Corpus) -> pd.DataFrame:
    """One row per split: sentences, tokens, entities, sentences without entities, fine types."""
    rows = []
    for name, sentences in corpus.splits.items():
        spans = [span for s in sentences for span in s.spans]
        rows.append(
            {
                "split": name,
                "sentences": len(sentences),
                "tokens": sum(len(s.tokens) for s in sentences),
                "entities": len(spans),
                "no-entity sentences": sum(not s.spans for s in sentences),
                "coarse types": len({coarse_of(span.label) for span in spans}),
                "fine types": len({span.label for span in spans}),
            }
        )
    return pd.DataFrame(rows).set_index("split")


def entity_counts(corpus: Corpus, level: str) -> pd.DataFrame:
    """Entities per type (``level`` is ``coarse`` or ``fine``), one column per split."""
    types = corpus.hierarchy.coarse_types if level == "coarse" else corpus.hierarchy.fine_types
    columns = {}
    for name, sentences in corpus.splits.items():
        counts = Counter(
            coarse_of(span.label) if level == "coarse" else span.label for s in sentences for span in s.spans
        )
        columns[name] = [counts[t] for t in types]
    table = pd.DataFrame(columns, index=pd.Index(types, name=level))
    table.loc["total"] = table.sum()
    return table
