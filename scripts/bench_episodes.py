"""The episodes protocol's speed on the shipped INTER test split: sampling, scoring, and a
training-free protobert over the episodes.

    python scripts/bench_episodes.py [--episodes 1000] [--cache-dir DIR]

Per setting it prints the seconds to sample the episodes (Few-NERD's sampler) and to score them
(the one evaluator over every query set, with 1,000 episode resamples for the CIs), then the
seconds of protobert's fit and predict over all four settings' episodes at once: the first time
with an empty feature cache (every sentence encoded) and again with the cache filled. Run it on an
otherwise idle machine: it says how many cores other processes kept busy meanwhile.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmark.core.cache import FeatureCache  # noqa: E402
from benchmark.core.data.fewnerd import load_corpus  # noqa: E402
from benchmark.core.episodes import QUERY_SHOTS, SETTINGS, sample_episodes  # noqa: E402
from benchmark.core.fit import fit_predict  # noqa: E402
from benchmark.core.registry import METHODS, PROTOCOLS  # noqa: E402
from benchmark.run.cpu import measure  # noqa: E402
from benchmark.run.episodes import score_episodes  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: a new empty folder")
    args = parser.parse_args()
    corpus = load_corpus("inter", splits=("test",))
    test, protocol, hierarchy = corpus.split("test"), PROTOCOLS["episodes"], corpus.hierarchy
    sets = []
    with measure() as cpu:
        for i, setting in enumerate(SETTINGS):
            started = time.perf_counter()
            episodes = sample_episodes(
                test, setting, args.episodes, seed=i, query_shots=QUERY_SHOTS[setting.n, setting.k]
            )
            sets.append((setting, episodes))
            print(f"{setting.name}: sampled {len(episodes)} episodes in {time.perf_counter() - started:.2f} s")
        view, gold = protocol.episode_view(sets, hierarchy)
        gold_spans = [s for sentence in gold for s in sentence.spans]
        started = time.perf_counter()
        score_episodes(view, gold, gold_spans, hierarchy, resamples=1000)
        print(f"scored all four settings (gold as predictions, 1,000 resamples): {time.perf_counter() - started:.2f} s")
    print(f"  other processes kept {cpu.other_cores:.2f} cores busy meanwhile")
    empty = protocol.train_view((), "train", hierarchy)
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache_dir or Path(tmp) / "cache"
        for attempt in ("empty cache", "filled cache"):
            scratch = Path(tempfile.mkdtemp(dir=tmp))
            method = METHODS.get("protobert")()
            with measure() as cpu:
                _, seconds = fit_predict(method, protocol, (empty, empty), view, 1, FeatureCache(cache), scratch)
            print(f"protobert over {len(view.episodes)} episodes ({len(view.sentences())} sentences), {attempt}: "
                  f"fit {seconds['time/fit_seconds']:.1f} s, predict {seconds['time/predict_seconds']:.1f} s; "
                  f"other processes kept {cpu.other_cores:.2f} cores busy")  # fmt: skip


if __name__ == "__main__":
    main()
