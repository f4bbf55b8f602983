"""One fit and predict: the harness's part of every prediction (seeding, the method's context,
the protocol's check of what it returned)."""

from __future__ import annotations

import time
from pathlib import Path

from benchmark.core.cache import FeatureCache
from benchmark.core.method import Context, Method
from benchmark.core.protocols import Protocol, View
from benchmark.core.seeding import seed_everything
from benchmark.core.spans import Span
from benchmark.ui.progress import MetricLog, ignore, stage


def fit_predict(
    method: Method,
    protocol: Protocol,
    training: tuple[View, View],
    view: View,
    seed: int,
    features: FeatureCache,
    scratch: Path,
    log: MetricLog = ignore,
    split: str = "test",
) -> tuple[list[Span], dict[str, float]]:
    """Seed, fit on (train, dev), predict ``view`` and check the predictions against the protocol
    (and that ``fit`` returned the method, as the contract says).

    ``scratch/work`` is the method's scratch space and ``scratch/artifacts`` what it logs; ``log``
    receives learning-curve points as they happen; ``split`` names ``view`` in progress lines.
    Returns the predictions and the run's bookkeeping metrics (seconds, cache use, the method's own).
    """
    workdir, artifact_dir = scratch / "work", scratch / "artifacts"
    workdir.mkdir()
    artifact_dir.mkdir()
    seed_everything(seed)
    ctx = Context(seed, workdir, artifact_dir, features, log=log)
    started = time.perf_counter()
    if method.fit(*training, ctx) is not method:
        raise TypeError(f"{type(method).__name__}.fit must return self")
    fitted = time.perf_counter()
    with stage(f"predicting {len(view.examples)} {split} sentences"):
        predictions = protocol.validate(method.predict(view), view)
    predicted = time.perf_counter()
    return predictions, {
        "time/fit_seconds": fitted - started,
        "time/predict_seconds": predicted - fitted,
        "features/cache_hits": features.hits,
        "features/cache_misses": features.misses,
        "features/encoded_sentences": features.encoded_sentences,
        "features/stage_cache_hits": features.stage_hits,
        **{f"method/{k}": float(v) for k, v in ctx.metrics.items()},
    }
