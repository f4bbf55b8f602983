"""``benchmark score``: predictions made anywhere (another toolkit, an LLM prompt, a CRF) scored
by the one evaluator and logged as a row like any other: its seed runs (one per file) under a
parent run, with the predictions as an artifact, so `report`, ``index.html`` and the published
record show it beside the harness's own rows.

Such a row's method, and by default its provenance and regime, are ``external``: it is shown and
compared with every row, never ranked. Declaring a provenance (``paper``, ``prior``, ``dev``, with
the reason) and the encoder regime puts it among that regime's ranked rows.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from benchmark.core.data.fewnerd import Corpus
from benchmark.core.errors import BenchmarkError
from benchmark.core.method import MARKS, RANKED, REGIMES
from benchmark.core.registry import METHODS, get_protocol
from benchmark.core.spans import Span
from benchmark.evaluate import EVALUATOR_VERSION, evaluate_split
from benchmark.run.plan import DataSource
from benchmark.run.prediction_files import Format, read_prediction_file
from benchmark.run.provenance import code_version, package_versions
from benchmark.run.published import predictions_sha256
from benchmark.run.record import RunConfig
from benchmark.run.seed import informative, load
from benchmark.run.tracking import Tracker, flatten
from benchmark.seeds import summarise_seeds

#: the method of every scored row, and the provenance and regime of one that declares neither
EXTERNAL = "external"
#: how reports mark every unranked row, external ones included
ROW_MARKS = {**MARKS, EXTERNAL: "§"}
EXTERNAL_SENTENCE = (
    "Rows marked § (external: predictions made outside the harness and scored by `benchmark score`, or a "
    "`checkpoint` run that declared no provenance) are compared with every row and never ranked."
)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class ScoreRequest:
    """What `benchmark score` was asked: a row ``name``, one file per seed, the protocol and data,
    and how the system was chosen (``external`` unless declared, with ``why`` and a ``regime``)."""

    name: str
    protocol: str
    files: tuple[Path, ...]
    source: DataSource = field(default_factory=DataSource)
    fmt: Format | None = None
    provenance: str = EXTERNAL
    why: str = ""
    regime: str | None = None
    resamples: int = 1000

    @property
    def command(self) -> str:
        words = ["python", "-m", "benchmark", "score", "--protocol", self.protocol, "--name", self.name]
        words += ["--predictions", *map(str, self.files)]
        if self.provenance != EXTERNAL:
            words += ["--provenance", self.provenance, "--why", self.why, "--regime", str(self.regime)]
        return shlex.join([*words, *self.source.options()])


@dataclass
class ScoredSeed:
    seed: int
    file: Path
    metrics: dict[str, float]
    run_id: str
    skipped: bool


@dataclass
class Scored:
    """What `score_files` logged: a seed per file, the parent run (None: every seed was there)."""

    request: ScoreRequest
    tracker: Tracker
    seeds: list[ScoredSeed] = field(default_factory=list)
    parent_id: str | None = None


def check_request(request: ScoreRequest) -> None:
    """Refuse a bad name, a declared provenance without its reason or regime, no files."""
    if not NAME.fullmatch(request.name):
        raise BenchmarkError(
            f"--name {request.name!r}: use letters, digits, '.', '_' or '-' (at most 64, a letter or digit first)"
        )
    if request.name in METHODS:
        raise BenchmarkError(f"--name {request.name!r} is a registered method's name; name your system otherwise")
    if not request.files:
        raise BenchmarkError("--predictions needs at least one file (several: the seeds of one row)")
    repeated = next((f for i, f in enumerate(request.files) if f in request.files[:i]), None)
    if repeated is not None:
        raise BenchmarkError(f"--predictions: {repeated} is given twice")
    if request.provenance == EXTERNAL:
        if request.why or request.regime:
            raise BenchmarkError("--why and --regime go with a declared --provenance (paper, prior or dev)")
        return
    if request.provenance not in RANKED:
        raise BenchmarkError(f"--provenance {request.provenance!r}: choose paper, prior or dev (or leave it out)")
    if not request.why.strip():
        raise BenchmarkError(f"--provenance {request.provenance} needs --why: how the system's settings were chosen")
    if request.regime not in REGIMES:
        raise BenchmarkError(
            f"--provenance {request.provenance} needs --regime {' or '.join(REGIMES)}: the table it is ranked in"
        )


def read_files(request: ScoreRequest, corpus: Corpus) -> list[list[Span]]:
    """Every file's spans, all checked before anything is logged."""
    protocol = get_protocol(request.protocol)
    test = corpus.split("test")
    return [read_prediction_file(path, protocol, test, corpus.hierarchy, request.fmt) for path in request.files]


def score_files(request: ScoreRequest, echo: Callable[[str], None] = print) -> Scored:
    """Check every file against the test split, then score and log one seed run per file (a file
    scored before with the same key is skipped), under a parent that logs the seed summary."""
    check_request(request)
    protocol = get_protocol(request.protocol)
    corpus = load(request.source)
    files = read_files(request, corpus)
    test = corpus.split("test")
    gold = [span for sentence in test for span in sentence.spans]
    packages = package_versions()
    row_sha = hashlib.sha256("".join(predictions_sha256(spans) for spans in files).encode()).hexdigest()
    regime = request.regime or EXTERNAL
    config = {"name": request.name}
    tags = {
        "method": EXTERNAL, "protocol": protocol.name, "variant": request.name, "dataset": corpus.name,
        "dataset_sha256": corpus.sha256, "dataset_sources": ",".join(corpus.sources), "code_version": code_version(),
        "code_sha256": row_sha, "evaluator_version": EVALUATOR_VERSION,
        **{f"version.{k}": v for k, v in packages.items()}, "label": request.name,
        "provenance": request.provenance, "command": request.command, "encoder": "unknown", "regime": regime,
        **({"why": request.why} if request.why else {}),
    }  # fmt: skip
    tracker = Tracker(f"{corpus.name}/{protocol.name}")
    done = Scored(request, tracker)
    pending: list[tuple[RunConfig, Path, list[Span]]] = []
    for seed, (path, spans) in enumerate(zip(request.files, files, strict=True), 1):
        run_config = RunConfig(
            method=EXTERNAL, label=request.name, protocol=protocol.name, dataset=corpus.name,
            dataset_sha256=corpus.sha256, seed=seed, config=config, scored_on="test", provenance=request.provenance,
            evaluator_version=EVALUATOR_VERSION, code_version=tags["code_version"], code_sha256=row_sha,
            packages=packages,
        )  # fmt: skip
        found = tracker.find_finished(run_config.key)
        if found is None:
            pending.append((run_config, path, spans))
        else:
            echo(f"[{run_config.name}] {path} was scored before as run {found[0]} (same predictions): skipped")
            done.seeds.append(ScoredSeed(seed, path, found[1], found[0], skipped=True))
    if pending:
        _log(done, tags, flatten(config), corpus, pending, gold, echo)
    done.seeds.sort(key=lambda s: s.seed)
    return done


def _log(
    done: Scored,
    tags: dict[str, str],
    params: dict[str, str],
    corpus: Corpus,
    pending: Sequence[tuple[RunConfig, Path, list[Span]]],
    gold: Sequence[Span],
    echo: Callable[[str], None],
) -> None:
    request, tracker = done.request, done.tracker
    protocol, test = get_protocol(request.protocol), corpus.split("test")
    seeds = tuple(range(1, len(request.files) + 1))
    parent = tracker.open(f"{request.name}:protocol={protocol.name}", {**tags, "role": "parent"},
                          {**params, "seeds": str(seeds)})  # fmt: skip
    done.parent_id = parent
    try:
        tracker.log_datasets(parent, corpus, ("test",))
        for run_config, path, spans in pending:
            seed_tags = {**tags, "role": "seed", "seed": str(run_config.seed), "run_key": run_config.key,
                         "predictions_file": path.name}  # fmt: skip
            with tracker.run(run_config.name, seed_tags, params, parent_id=parent) as run_id:
                echo(f"[{run_config.name}] scoring {path} ({len(spans)} spans)")
                tracker.log_datasets(run_id, corpus, ("test",))
                scores = evaluate_split(test, spans, corpus.hierarchy, protocol.scoring, request.resamples)
                scores = replace(scores, metrics=informative(scores.metrics, protocol))
                with tempfile.TemporaryDirectory(prefix="benchmark-") as tmp:
                    given = Path(tmp, "given")
                    given.mkdir()
                    shutil.copy(path, given / path.name)  # the file as it was given, beside the parsed spans
                    tracker.log_result(run_id, run_config, scores, spans, {}, given, gold)
            done.seeds.append(ScoredSeed(run_config.seed, path, scores.metrics, run_id, skipped=False))
    except BaseException as error:
        tracker.end_family(parent, "KILLED" if isinstance(error, KeyboardInterrupt | SystemExit) else "FAILED")
        raise
    summaries = summarise_seeds([s.metrics for s in done.seeds])
    tracker.log(parent, metrics={k: v for key, s in summaries.items() for k, v in s.metrics(key).items()})
    tracker.end_family(parent, "FINISHED")
