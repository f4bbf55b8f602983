"""Every method, under every protocol it supports, with its defaults and every variant that
applies, fitted on a small real slice of the embedded split (300 train, 100 dev, 200 test
sentences, seed 1, cheap epochs): the sha256 of its test predictions and its evaluator metrics.

A refactoring that claims to change no prediction runs this before and after and compares (for
issue 27, "before" was main 34bf682 with the same cases on its older API and setting names):

    python scripts/prediction_check.py --out after.json --compare before.json

It prints one line per case and exits 1 if any case's predictions or metrics differ.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

from benchmark.core.cache import FeatureCache
from benchmark.core.config import resolve_config
from benchmark.core.data.fewnerd import load_embedded, make_sentence
from benchmark.core.errors import ConfigError
from benchmark.core.fit import fit_predict
from benchmark.core.registry import METHODS, PROTOCOLS
from benchmark.evaluate import evaluate_split

SIZES = {"train": 300, "dev": 100, "test": 200}
#: cheaper settings for methods whose defaults are sized for the full run
FAST = {
    "eigproj": ["lime_entities=40", "lime_samples=16", "tagger.epochs=2", "pca_dims=8", "k=4"],
    "span-bilstm-attn": ["epochs=2"],
    "hier-soft": ["epochs=2", "pretrain_epochs=1", "warmup_steps=20"],
    "tagger": ["passes=1.0", "evaluations=2"],
    "cofee": [
        *("hidden=128", "batch_size=4", "lr=0.003", "gazetteer.fraction=1.0", "clusters=8"),
        *("esi_epochs=1", "nee_epochs=3", "patience=3", "fet_epochs=2", "epochs=2"),
    ],
}


def cases() -> dict[str, dict]:
    """Each case's prediction count, prediction sha256 and metrics (100 bootstrap resamples)."""
    corpus = load_embedded()
    splits = {
        name: [make_sentence(i, s.tokens, s.labels) for i, s in enumerate(corpus.splits[name][:n])]
        for name, n in SIZES.items()
    }
    results = {}
    for name in METHODS.names():
        cls = METHODS.get(name)
        for protocol in (p for p in PROTOCOLS if p in cls.protocols):
            for variant in (None, *cls.variants):
                preset = None if variant is None else (variant, cls.variants[variant].overrides)
                config = resolve_config(cls.Config, None, FAST.get(name, []), preset)
                try:
                    cls.check_config(config, protocol)
                except ConfigError:
                    continue  # the variant does not apply to this protocol
                p = PROTOCOLS[protocol]
                training = tuple(p.train_view(splits[s], s, corpus.hierarchy) for s in ("train", "dev"))
                view = p.test_view(splits["test"], corpus.hierarchy)
                case = f"{name}:{variant or 'default'}:{protocol}"
                print(f"== {case}", file=sys.stderr, flush=True)
                with tempfile.TemporaryDirectory() as tmp:
                    predictions, _ = fit_predict(cls(config), p, training, view, 1, FeatureCache(), Path(tmp))
                scores = evaluate_split(splits["test"], predictions, corpus.hierarchy, p.scoring, 100)
                text = json.dumps([list(span) for span in predictions])
                results[case] = {
                    "predictions": len(predictions),
                    "sha256": hashlib.sha256(text.encode()).hexdigest(),
                    "metrics": scores.metrics,
                }
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="where to write this checkout's cases (JSON)")
    parser.add_argument("--compare", type=Path, help="an earlier checkout's file to compare with")
    args = parser.parse_args()
    now = cases()
    args.out.write_text(json.dumps(now, indent=1, sort_keys=True))
    if args.compare is None:
        return 0
    before = json.loads(args.compare.read_text())
    differ = 0
    for case in sorted(set(before) | set(now)):
        old, new = before.get(case), now.get(case)
        if old is None or new is None:
            verdict = "only before" if new is None else "only now"
        elif old["sha256"] != new["sha256"]:
            verdict = "predictions differ"
        elif old["metrics"] != new["metrics"]:
            verdict = "metrics differ"
        else:
            verdict = "identical"
        differ += verdict != "identical"
        print(f"{case:45s} {verdict}")
    print(f"{len(now)} cases now, {len(before)} before, {differ} differ")
    return int(differ > 0)


if __name__ == "__main__":
    sys.exit(main())
