"""The frozen `RunConfig` that names and records one seed run."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything that defines one seed run: a method's settings under a protocol, on a dataset,
    with a seed, predicting the split ``scored_on`` names (``test``; a sweep's ``dev`` criterion).

    ``code_sha256`` fingerprints the code that computes the predictions (and the files a method
    predicts with that the harness does not ship, as `checkpoint`'s model: `row_fingerprint`) and ``packages`` the
    library versions; ``label`` (the row: method, variant, ad-hoc settings), ``code_version`` (the
    git commit), ``provenance`` (paper, prior, dev, oracle or custom) and ``evaluator_version``
    (what scored the run when it ran; `report` re-scores the stored predictions with the current
    evaluator) describe the run and are not part of the `key`.
    """

    method: str
    label: str
    protocol: str
    dataset: str
    dataset_sha256: str
    seed: int
    config: dict[str, Any]
    scored_on: str
    provenance: str
    evaluator_version: str
    code_version: str
    code_sha256: str
    packages: dict[str, str]

    #: fields that describe a run without changing its predictions
    DESCRIBED = ("label", "code_version", "provenance", "evaluator_version")

    @property
    def name(self) -> str:
        """The run's name in MLflow: its row, protocol and seed (``gazetteer:half:protocol=ner,seed=2``)."""
        return f"{self.label}:protocol={self.protocol},seed={self.seed}"

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @property
    def key(self) -> str:
        """Identifies identical predictions: same method, settings, data, seed, scored split, code
        and packages. A finished run with the same key is not run again."""
        identity = {k: v for k, v in dataclasses.asdict(self).items() if k not in self.DESCRIBED}
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
