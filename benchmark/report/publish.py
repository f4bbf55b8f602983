"""``benchmark export``: the runs a report would use, from the store into the published record."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

import pandas as pd

from benchmark.core.errors import BenchmarkError
from benchmark.report.collect import group_runs, load_gold_corpus, load_runs
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
    (`benchmark.run.published`), in the row's folder (named by its declared setting set, or
    ``custom-<settings hash>``). In a row it exports, files of seeds the report no longer uses are
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
        for variant in section.variants:
            method = variant.tag("method")
            row = (
                variant.declared[0]
                if variant.declared
                else f"custom-{sha256(variant.settings.encode()).hexdigest()[:10]}"
            )
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


def _present(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and pd.isna(value))
