"""Speed of the evaluator against seqeval's classification_report, on the full Few-NERD test size.

37,648 sentences (the official supervised test size) = the shipped supervised dev file twice.
Predictions are the gold spans perturbed (dropped, retyped, boundary-shifted, spurious), kept
IO-canonical so seqeval (fed ``I-`` prefixes) sees the same spans. Prints both times and the ratio.

    python scripts/bench_evaluate.py
"""

from __future__ import annotations

import random
import time

from seqeval.metrics import classification_report

from benchmark.core.data.fewnerd import make_sentence, read_shipped
from benchmark.core.labels import FEWNERD
from benchmark.core.spans import Span, labels_from_spans, spans_from_labels
from benchmark.evaluate import evaluate

N_SENTENCES = 37_648


def perturbed(sentences, rng: random.Random) -> list[Span]:
    predictions = []
    for s in sentences:
        kept = []
        for span in s.spans:
            roll = rng.random()
            if roll < 0.15:
                continue
            if roll < 0.35:
                span = span._replace(label=rng.choice(FEWNERD.fine_types))
            elif roll < 0.5:
                span = span._replace(start=max(0, span.start - 1))
            if not kept or span.start >= kept[-1].end:
                kept.append(span)
        if rng.random() < 0.2:
            start = rng.randrange(len(s.tokens))
            if all(start >= k.end or start < k.start for k in kept):
                kept.append(Span(s.id, start, start + 1, rng.choice(FEWNERD.fine_types)))
        predictions.extend(spans_from_labels(s.id, labels_from_spans(len(s.tokens), kept)))
    return predictions


def main() -> None:
    base = read_shipped("supervised/dev.txt")
    sentences = [make_sentence(i, s.tokens, s.labels) for i, s in enumerate((base * 3)[:N_SENTENCES])]
    gold = [span for s in sentences for span in s.spans]
    predictions = perturbed(sentences, random.Random(0))
    print(f"{len(sentences):,} sentences, {len(gold):,} gold spans, {len(predictions):,} predicted spans")

    def tagged(spans):
        by_sentence = [[] for _ in sentences]
        for span in spans:
            by_sentence[span.sentence_id].append(span)
        return [
            [x if x == "O" else f"I-{x}" for x in labels_from_spans(len(s.tokens), by_sentence[s.id])]
            for s in sentences
        ]

    y_true, y_pred = tagged(gold), tagged(predictions)
    started = time.perf_counter()
    classification_report(y_true, y_pred, digits=4)
    seqeval_seconds = time.perf_counter() - started

    started = time.perf_counter()
    scores = evaluate(gold, predictions, [len(s.tokens) for s in sentences], FEWNERD, "spans", resamples=1000)
    ours_seconds = time.perf_counter() - started

    print(f"seqeval classification_report:             {seqeval_seconds:6.2f} s")
    print(f"benchmark evaluate (all metrics + 1000 CI): {ours_seconds:6.2f} s")
    print(f"ratio ours / seqeval:                       {ours_seconds / seqeval_seconds:6.2f}")
    print(f"fine/micro_f1 = {scores.metrics['fine/micro_f1']:.4f} "
          f"[{scores.metrics['fine/micro_f1_ci_low']:.4f}, {scores.metrics['fine/micro_f1_ci_high']:.4f}]")  # fmt: skip


if __name__ == "__main__":
    main()
