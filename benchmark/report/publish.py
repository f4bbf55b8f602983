"""``benchmark export``: the runs a report would use, from the store into the published record."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

import pandas as pd

from benchmark.core.episodic import EpisodeProtocol
from benchmark.core.errors import BenchmarkError
from benchmark.report.collect import group_runs, load_gold_corpus, load_runs
from benchmark.run.external import EXTERNAL
from benchmark.run.published import STORE_TAGS, run_path, write_run
from benchmark.run.tracking import ORIGIN_TAG, read_predictions, run_details, tracking_uri


@dataclass
class Exported:
    """What `export_record` did."""

    written: int = 0  # runs whose files were written
    unchanged: int = 0  # runs whose files were there with the same content
    without_predictions: int = 0  # runs left out: nothing to re-score them from
    removed: int = 0  # runs of an exported row that its report no longer uses (older code, say)


def export_record(
    out: Path,
    protocol: str | None = None,
    method: str | None = None,
    uri: str | None = None,
    data_dir: Path | None = None,
    echo: Callable[[str], None] = print,
) -> Exported:
    """Write every finished run that ``report`` would use (the newest code of each row, one run a
    seed, of the data loadable here) into the record ``out``, one JSON and one Parquet file each
    (`benchmark.run.published`), in the row's folder (named by its declared setting set, a scored
    system's name, or ``custom-<settings hash>``). In a row it exports, files of seeds the report no longer uses are
    removed; rows it does not export are left as they are."""
    uri = uri or tracking_uri()
    runs = load_runs(uri, protocol=protocol)
    if method is not None:
        runs = runs[runs["tags.method"] == method]
        if runs.empty:
            raise BenchmarkError(f"no finished runs of method {method!r} in {uri}: nothing written")
    corpora = {name: load_gold_corpus(name, data_dir) for name in sorted(set(runs["tags.dataset"]))}
    current = {name: c.sha256 for name, c in corpora.items() if not isinstance(c, BenchmarkError)}
    sections, notes = group_runs(runs, current)
    for note in notes:
        echo(f"note: {note}")
    done = Exported()
    for section in sections:
        episodic = isinstance(section.protocol, EpisodeProtocol)
        for variant in section.variants:
            method = variant.tag("method")
            if variant.declared:
                row = variant.declared[0]
            elif method == EXTERNAL:  # a scored system's folder is its name
                row = variant.tag("variant")
            else:
                row = f"custom-{sha256(variant.settings.encode()).hexdigest()[:10]}"
            folder = run_path(out, section.dataset, section.protocol.name, method, row, 0).parent
            written = set()
            for run in variant.runs.to_dict("records"):
                predictions = read_predictions(run["artifact_uri"])
                if predictions is None:
                    done.without_predictions += 1
                    seed = run["tags.seed"]
                    echo(f"note: {variant.label} seed {seed}: run {run['run_id']} has no predictions; left out")
                    continue
                tags = {k[5:]: str(v) for k, v in run.items() if k.startswith("tags.") and _present(v)}
                original = tags.pop(ORIGIN_TAG, run["run_id"])
                name = tags.pop("mlflow.runName", variant.label)
                tags = {k: v for k, v in tags.items() if k not in STORE_TAGS and not k.startswith("mlflow.")}
                params = {k[7:]: str(v) for k, v in run.items() if k.startswith("params.") and _present(v)}
                record = {
                    "name": name,
                    "run_id": original,
                    "experiment": section.slug,
                    "tags": tags,
                    "params": params,
                    **run_details(uri, run["run_id"]),
                }
                if episodic:  # its predictions number the query sentences of its episodes: say how many
                    queries = _query_sentences(tags, corpora[section.dataset], section)
                    if queries is None:
                        echo(f"note: {variant.label} seed {tags['seed']}: its episodes cannot be drawn again; left out")
                        continue
                    record["episodes"] = {**record.get("episodes", {}), "query_sentences": queries}
                path = folder / f"seed-{tags['seed']}.json"
                written.add(path.stem)
                if write_run(path, record, predictions):
                    done.written += 1
                else:
                    done.unchanged += 1
            for stale in sorted(folder.glob("seed-*.*")) if folder.is_dir() else ():
                if stale.name.split(".")[0] not in written:  # a seed of this row the report no longer uses
                    stale.unlink()
                    done.removed += stale.suffix == ".json"
    return done


def _query_sentences(tags: dict[str, str], corpus: object, section: object) -> int | None:
    """How many query sentences the run's test episodes hold (None: they cannot be drawn again)."""
    from benchmark.run.episodes import rebuilt_view

    if isinstance(corpus, BenchmarkError):
        return None
    try:
        _, gold = rebuilt_view(tags, corpus, section.protocol)  # type: ignore[arg-type, attr-defined]
    except BenchmarkError:
        return None
    return len(gold)


def _present(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and pd.isna(value))


#: the file ending of each prediction format
SUFFIXES = {"jsonl": ".jsonl", "fewnerd": ".txt", "spans": ".spans.jsonl"}


def export_predictions(
    out: Path,
    protocol: str,
    row: str,
    formats: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    dataset: str = "embedded",
    runs: Path | None = None,
    data_dir: Path | None = None,
) -> list[Path]:
    """Write the test predictions of one row (its label as the reports print it) of the store,
    or of the published record ``runs``, in each of ``formats`` (default: every one its protocol
    reads), one file per seed: ``out/<row>.seed-<n>`` with `SUFFIXES`. Returns the files."""
    from benchmark.core.registry import get_protocol
    from benchmark.report.collect import load_published, stored_predictions
    from benchmark.run.prediction_files import formats_for, write_prediction_file
    from benchmark.run.published import read_record

    chosen = get_protocol(protocol)
    allowed = formats_for(chosen)
    formats = list(formats or allowed)
    wrong = [f for f in formats if f not in allowed]
    if wrong:
        raise BenchmarkError(
            f"--format {wrong[0]}: --protocol {protocol} predictions are written as {', '.join(allowed)}"
        )
    if runs is None:
        frame, read = load_runs(protocol=protocol), stored_predictions
        where = tracking_uri()
    else:
        frame, read = load_published(read_record(runs), str(runs), protocol=protocol)
        where = str(runs)
    frame = frame[frame["tags.dataset"] == dataset]
    corpus = load_gold_corpus(dataset, data_dir)
    if isinstance(corpus, BenchmarkError):
        raise corpus
    sections, _ = group_runs(frame, {dataset: corpus.sha256}) if not frame.empty else ([], [])
    variants = {v.label: v for section in sections if section.dataset_sha256 == corpus.sha256 for v in section.variants}
    if row not in variants:
        known = ", ".join(sorted(variants)) or "none"
        raise BenchmarkError(f"no row {row!r} under {dataset}/{protocol} in {where}; its rows: {known}")
    variant = variants[row]
    test = corpus.split("test")
    chosen_runs = [r for r in variant.runs.to_dict("records") if seeds is None or int(r["tags.seed"]) in seeds]
    missing = sorted(set(seeds or ()) - {int(r["tags.seed"]) for r in chosen_runs})
    if missing:
        have = " ".join(variant.runs["tags.seed"].astype(str))
        raise BenchmarkError(f"row {row!r} has no seed {missing[0]} (its seeds: {have})")
    written = []
    for run in chosen_runs:
        predictions = read(run)
        if predictions is None:
            raise BenchmarkError(f"row {row!r} seed {run['tags.seed']}: run {run['run_id']} stored no predictions")
        for fmt in formats:
            path = out / f"{row.replace(':', '_')}.seed-{run['tags.seed']}{SUFFIXES[fmt]}"
            write_prediction_file(path, fmt, predictions, test, chosen)  # type: ignore[arg-type]
            written.append(path)
    return written
