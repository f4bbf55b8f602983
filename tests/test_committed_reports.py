"""The committed tables are exactly what the committed predictions give: every report file in
``reports/`` is regenerated from the published record ``reports/runs/`` and compared."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.core.registry import PROTOCOLS
from benchmark.report import ReportRequest, write_reports
from benchmark.run.provenance import RECORDED_PACKAGES

REPO = Path(__file__).resolve().parents[1]
REPORTS = REPO / "reports"
#: the files a report writes (the plots are pictures of the same numbers, and not compared)
COMPARED = {".md", ".csv", ".tex", ".html"}


def _report_files(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): p.read_text()
        for p in folder.rglob("*")
        if p.suffix in COMPARED and "runs" not in p.relative_to(folder).parts
    }


@pytest.mark.slow
def test_every_committed_table_is_regenerated_byte_for_byte_from_the_published_runs(tmp_path):
    out = tmp_path / "reports"
    out.mkdir()
    shutil.copy(REPORTS / "README.md", out / "README.md")  # its results block is rewritten, its prose kept
    write_reports(ReportRequest(out=out, readme=out / "README.md", runs=REPORTS / "runs"), lambda _: None)
    committed, regenerated = _report_files(REPORTS), _report_files(out)
    assert sorted(committed) == sorted(regenerated)
    differ = [name for name in committed if committed[name] != regenerated[name]]
    assert differ == [], f"committed reports that the published runs do not give: {differ}"


def test_the_record_holds_every_seed_the_tables_claim_and_no_other_in_under_30_mb():
    record = REPORTS / "runs"
    files = [p for p in record.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 30e6
    tables = [table for table in REPORTS.glob("*/*.csv") if table.stem in PROTOCOLS]
    claimed = sum(int(pd.read_csv(table)["seeds"].sum()) for table in tables)
    assert claimed == sum(p.suffix == ".json" for p in files)
    listed = sum(len(pd.read_csv(table.with_name(f"{table.stem}_seeds.csv"))) for table in tables)
    assert listed == claimed  # the Seed runs tables list every one of them


@pytest.mark.slow
def test_the_guide_sizes_the_cluster_from_the_published_runs():
    guide = (REPO / "docs" / "guide.md").read_text()
    start, end = "<!-- cluster-sizing:start -->", "<!-- cluster-sizing:end -->"
    committed = guide.split(start, 1)[1].split(end, 1)[0].strip()
    script = [sys.executable, str(REPO / "scripts" / "cluster_sizing.py"), "--runs", str(REPORTS / "runs")]
    printed = subprocess.run(script, cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    assert committed == printed, "docs/guide.md's cluster sizing: rerun scripts/cluster_sizing.py --write docs/guide.md"


def test_the_record_constraints_name_the_versions_its_runs_were_computed_with():
    pinned = dict(
        line.split("==")
        for line in (REPO / "requirements" / "record.txt").read_text().splitlines()
        if line and not line.startswith("#")
    )
    recorded = {
        (key.removeprefix("version."), value.split("+")[0])
        for run in (REPORTS / "runs").rglob("seed-*.json")
        for key, value in json.loads(run.read_text())["tags"].items()
        if key.startswith("version.") and key != "version.python"
    }
    assert recorded == set(pinned.items()), "requirements/record.txt: pin the versions the record's runs name"
    assert set(pinned) == set(RECORDED_PACKAGES)


#: a decimal number in prose, with its sign: "0.4826", "+2.9", "−3.4" (not inside a word or a version)
DECIMAL = re.compile(r"(?<![\w.])[+−-]?\d+\.\d+(?![\w.]*\d)")


def _prose(text: str) -> str:
    """The hand-written text of a Markdown file: without generated blocks, code and link targets."""
    text = re.sub(r"<!-- (\S+):start -->.*?<!-- \1:end -->", "", text, flags=re.S)
    text = re.sub(r"`[^`]*`", "", text)
    return re.sub(r"\]\([^)]*\)", "]", text)


def _table_numbers() -> set[str]:
    """Every way a committed report states a number: each decimal the generated files print, and
    each value of their CSVs, also as points (× 100), at 1 to 4 decimals."""
    stated: set[str] = set()
    for path in REPORTS.rglob("*"):
        if "runs" in path.relative_to(REPORTS).parts or path.suffix not in COMPARED or path.name == "README.md":
            continue
        stated |= {m.lstrip("+−-") for m in DECIMAL.findall(path.read_text())}
        if path.suffix == ".csv":
            for value in pd.read_csv(path).select_dtypes("number").to_numpy().ravel():
                for scale in (1, 100):
                    stated |= {f"{abs(value) * scale:.{d}f}" for d in range(1, 5) if np.isfinite(value)}
    readme = (REPORTS / "README.md").read_text()
    block = readme.split("<!-- results:start -->", 1)[1].split("<!-- results:end -->", 1)[0]
    return stated | {m.lstrip("+−-") for m in DECIMAL.findall(block)}


def test_every_decimal_in_the_discussion_is_a_number_the_reports_state():
    """reports/README.md's discussion quotes the tables: every decimal number in its prose (a score,
    a difference in points, a p-value, an ε_min) is one the generated reports state."""
    stated = _table_numbers()
    prose = _prose((REPORTS / "README.md").read_text())
    unstated = sorted({m for m in DECIMAL.findall(prose) if m.lstrip("+−-") not in stated})
    assert unstated == [], f"reports/README.md quotes numbers no committed report states: {unstated}"
