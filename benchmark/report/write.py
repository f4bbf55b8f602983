"""Writing a report: every section's files and plots, then claims.md, index.html and the README's
results block from every table in ``--out``; nothing is written on error, nor a block that loses rows."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
from threadpoolctl import threadpool_limits

from benchmark.core.data.fewnerd import Corpus
from benchmark.core.episodic import EpisodeProtocol
from benchmark.core.errors import BenchmarkError
from benchmark.core.method import CUSTOM, REGIMES
from benchmark.core.registry import PROTOCOLS
from benchmark.report.collect import (
    PredictionReader,
    Section,
    attach_episodes,
    attach_predictions,
    gold_split,
    group_runs,
    load_gold_corpus,
    load_published,
    load_runs,
    stored_predictions,
)
from benchmark.report.figures import PLOTS, plot_data, plot_jobs
from benchmark.report.leaderboard import render_leaderboard
from benchmark.report.render import (
    LOGGED_MARK,
    README_END,
    README_START,
    render_claims,
    render_latex,
    render_markdown,
    render_readme_block,
)
from benchmark.report.stats import rank_rows, summarise
from benchmark.run.cpu import collector_paused
from benchmark.run.external import ROW_MARKS
from benchmark.run.published import PublishedRun, check_test_split, read_record

FORMATS = ("md", "csv", "tex")
#: processes drawing the plots: two, so that the last section's four are not drawn one after another
PAINTERS = 2
#: CSV numbers to 10 significant digits: the last bits of a float sum differ between CPUs, and a
#: table regenerated from the published runs on any machine must read the same
CSV_FLOATS = "%.10g"


@dataclass(frozen=True)
class ReportRequest:
    dataset: str | None = None
    protocol: str | None = None
    regime: str | None = None
    formats: tuple[str, ...] = FORMATS
    out: Path = Path("reports")
    data_dir: Path | None = None
    verify: bool = True  # check --data-dir files against the official checksums
    readme: Path | None = Path("reports", "README.md")
    force: bool = False  # rewrite the README block even if it would lose rows
    alpha: float = 0.05
    trials: int = 1000  # bootstrap resamples at least (more where a family needs them)
    runs: Path | None = None  # a published record to read instead of the store


def default_readme(out: Path) -> Path | None:
    """The README whose results block a report updates unless told otherwise:
    ``reports/README.md`` when ``out`` is the default ``reports/`` of the working directory, else
    none (a report written elsewhere touches no README of the project)."""
    return Path("reports", "README.md") if out.resolve() == Path("reports").resolve() else None


@collector_paused()  # forked workers inherit the pause
def write_reports(request: ReportRequest, echo: Callable[[str], None] = print) -> list[Path]:
    """Read the store (or the record ``runs``), build every section and write its files; nothing is written on error."""
    bad = [f for f in request.formats if f not in FORMATS]
    if bad or not request.formats:
        raise BenchmarkError(f"--format: unknown {', '.join(bad) or 'none given'}; choose from {', '.join(FORMATS)}")
    if request.protocol is not None and request.protocol not in PROTOCOLS:
        raise BenchmarkError(f"unknown protocol {request.protocol!r}; choose one of: {', '.join(PROTOCOLS)}")
    if request.regime is not None and request.regime not in REGIMES:
        raise BenchmarkError(f"unknown regime {request.regime!r}; choose one of: {', '.join(REGIMES)}")
    painter = ProcessPoolExecutor(max_workers=PAINTERS, mp_context=multiprocessing.get_context("spawn"))
    for _ in range(PAINTERS):
        painter.submit(int)  # start the drawing processes (imports) while the store is read
    try:
        return _build_and_write(request, echo, painter)
    finally:
        painter.shutdown(cancel_futures=True)


def _build_and_write(request: ReportRequest, echo: Callable[[str], None], painter: ProcessPoolExecutor) -> list[Path]:
    wanted = request.dataset, request.protocol, request.regime
    published: list[PublishedRun] = []
    if request.runs is None:
        runs, read = load_runs(None, *wanted), stored_predictions
    else:
        published = read_record(request.runs, predictions=False)  # read by the section that scores them
        runs, read = load_published(published, str(request.runs), *wanted)
    names = sorted(set(runs["tags.dataset"]))
    corpora = {name: load_gold_corpus(name, request.data_dir, request.verify) for name in names}
    if request.runs is not None:  # a record's runs must fit the gold they are scored on (spans: by their section)
        for corpus in corpora.values():
            if not isinstance(corpus, BenchmarkError):
                check_test_split(published, corpus, spans=False)
    current = {name: c.sha256 for name, c in corpora.items() if not isinstance(c, BenchmarkError)}
    sections, notes = group_runs(runs, current)
    for note in notes:
        echo(f"note: {note}")
    created = not request.out.exists()
    request.out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".report-", dir=request.out))  # inside --out: nothing written elsewhere
    written: list[Path] = []
    try:
        drawing, lines = [], {}
        jobs = [
            partial(
                _prepare_section, section, corpora[section.dataset], read, request, _published_runs(section, published)
            )
            for section in sections
        ]
        sizes = [_size(section) for section in sections]

        for index, prepared in _prepared_sections(jobs, sizes):
            section = sections[index]
            if prepared.plots is not None:  # drawn while the pool prepares the other sections
                folder = staging / section.dataset / section.protocol.name
                folder.mkdir(parents=True, exist_ok=True)
                drawing += [
                    painter.submit(draw, *args) for draw, args in plot_jobs(prepared.plots, folder, section.slug)
                ]
            lines[index] = _write_section(section, prepared, request, staging / section.dataset)
        for index in sorted(lines):
            for line in lines[index]:
                echo(line)
        for job in drawing:
            job.result()  # a failed plot fails the report before anything is moved into place
        if request.readme is not None and request.readme.is_file() and not request.force:
            ahead = {**read_tables(request.out, lambda _: None), **read_tables(staging, lambda _: None)}
            _refuse_lost_rows(request.readme, ahead)
        for file in sorted(p for p in staging.rglob("*") if p.is_file()):
            target = request.out / file.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(file, target)
            written.append(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not written:
            shutil.rmtree(request.out, ignore_errors=True)
    tables = read_tables(request.out, echo)
    defaults = {protocol: table for (dataset, protocol), table in tables.items() if dataset == "embedded"}
    if ("inter", "episodes") in tables:  # Few-NERD's episodes are on INTER, not the embedded split
        defaults["episodes"] = tables[("inter", "episodes")]
    if defaults:
        ablations = [pd.read_csv(path) for path in sorted((request.out / "embedded").glob("*_ablations.csv"))]
        (request.out / "claims.md").write_text(render_claims(defaults, request.alpha, ablations))
        written.append(request.out / "claims.md")
    (request.out / "index.html").write_text(render_leaderboard(tables, request.out, request.alpha))
    (request.out / ".nojekyll").touch()  # GitHub Pages serves the .md and .csv files as they are
    written += [request.out / "index.html", request.out / ".nojekyll"]
    if request.readme is not None and request.readme.is_file():
        _update_readme(request, tables, echo)
    return written


@dataclass(frozen=True)
class _Prepared:
    """What scoring a section leaves to the parent (`_prepare_section`): its statistics (the
    `Section` fields `summarise` sets) and its plots' data."""

    fields: dict[str, Any]
    plots: dict[str, dict] | None


#: the `Section` fields `benchmark.report.stats.summarise` sets
_SUMMARY_FIELDS = ("table", "pairs", "seeds", "partial", "partial_resamples", "ablations", "resamples", "notes")


def _size(section: Section) -> int:
    """How long a section takes to prepare, in runs: its runs, an episodes run counting 10 (it is
    scored on the 41,277 query sentences of its 4,000 episodes; a run of the embedded test split
    on 3,755)."""
    return section.run_count * (10 if isinstance(section.protocol, EpisodeProtocol) else 1)


def _published_runs(section: Section, published: list[PublishedRun]) -> list[PublishedRun]:
    """The runs of a record that ``section`` shows."""
    shown = {str(run_id) for variant in section.variants for run_id in variant.runs["run_id"]}
    return [run for run in published if run.run_id in shown]


def _prepare_section(
    section: Section,
    corpus: Corpus | BenchmarkError,
    read: PredictionReader,
    request: ReportRequest,
    published: list[PublishedRun],
) -> _Prepared:
    """Score one section's runs (a record's ``published`` runs read and checked first, against the
    test split where it can be had) and compute its statistics (`summarise`) and its plots' data."""
    for run in published:
        run.predictions  # noqa: B018 (read and checked against its run file, gold or not)
    if published and not isinstance(corpus, BenchmarkError):
        check_test_split(published, corpus)
    test = None
    if isinstance(section.protocol, EpisodeProtocol):  # scored on its query sets: no test-split plots
        attach_episodes(section, corpus, read)
    else:
        test = gold_split(section, corpus)
        if test is not None:
            attach_predictions(section, test, corpus.hierarchy, read)
    summarise(section, request.alpha, request.trials)
    gold = [span for sentence in test for span in sentence.spans] if test is not None else None
    data = plot_data(section, gold, corpus.hierarchy) if gold else None
    return _Prepared({name: getattr(section, name) for name in _SUMMARY_FIELDS}, data)


def _write_section(section: Section, prepared: _Prepared, request: ReportRequest, folder: Path) -> list[str]:
    """Write a section's files (its statistics ``prepared``) into ``folder`` and return the lines
    to print."""
    for name, value in prepared.fields.items():
        setattr(section, name, value)
    plots = list(PLOTS) if prepared.plots else []
    folder.mkdir(parents=True, exist_ok=True)
    name = section.protocol.name
    if "md" in request.formats:
        (folder / f"{name}.md").write_text(render_markdown(section, plots, request.alpha))
    if "csv" in request.formats:
        section.table.to_csv(folder / f"{name}.csv", index=False, float_format=CSV_FLOATS)
        section.pairs.to_csv(folder / f"{name}_pairs.csv", index=False, float_format=CSV_FLOATS)
        section.seeds.to_csv(folder / f"{name}_seeds.csv", index=False, float_format=CSV_FLOATS)
        if section.partial is not None:
            section.partial.to_csv(folder / f"{name}_partial.csv", index=False, float_format=CSV_FLOATS)
        if section.ablations is not None:
            section.ablations.to_csv(folder / f"{name}_ablations.csv", index=False, float_format=CSV_FLOATS)
    if "tex" in request.formats:
        (folder / f"{name}.tex").write_text(render_latex(section))
    lines = [f"note: {section.slug}: {note}" for note in section.notes]
    counts = f"{len(section.variants)} rows from {section.run_count} runs, {len(section.pairs)} pairs compared"
    lines.append(f"{section.slug}: {counts}")
    return lines


#: the sections a forked worker prepares: it inherits them (a prediction reader may be a lambda,
#: which could not be sent to it), and gets only an index
_JOBS: list[Callable[[], _Prepared]] = []


def _prepare_job(index: int) -> _Prepared:
    with threadpool_limits(1):  # one worker per core: BLAS threads of their own would fight over the cores
        return _JOBS[index]()


def _prepared_sections(jobs: list[Callable[[], _Prepared]], sizes: list[int]) -> Iterator[tuple[int, _Prepared]]:
    """Each job's index and result, as each is done: on forked workers (one per core, the largest
    ``sizes`` first) where the platform forks, else one after the other. A section's work is
    independent of the others' and seeded, so the results are the same either way."""
    workers = min(len(jobs), os.cpu_count() or 1)
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        yield from enumerate(job() for job in jobs)
        return
    _JOBS[:] = jobs
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"))
    try:
        with warnings.catch_warnings():  # Python ≥ 3.12 warns on forking with threads alive (the
            # painter's, a library's pool): a worker only computes on what it inherited and never
            # touches the state of those threads
            warnings.filterwarnings("ignore", r".*use of fork\(\) may lead to deadlocks", DeprecationWarning)
            preparing = {pool.submit(_prepare_job, i): i for i in sorted(range(len(jobs)), key=lambda i: -sizes[i])}
        for future in as_completed(preparing):
            yield preparing[future], future.result()
    finally:
        pool.shutdown(cancel_futures=True)
        _JOBS.clear()


def read_tables(out: Path, echo: Callable[[str], None] = print) -> dict[tuple[str, str], pd.DataFrame]:
    """Every report table under ``out`` (``<dataset>/<protocol>.csv`` with its pairs), ranked by
    `rank_rows`: the README block and claims.md summarise the committed tables, whichever run
    of `report` wrote each. A table written before rows had a provenance gets each row's
    current declaration (by its method and variant), and says so."""
    tables = {}
    for path in sorted(out.glob("*/*.csv")):
        if path.stem not in PROTOCOLS:
            continue
        table = pd.read_csv(path)
        pairs_path = path.with_name(f"{path.stem}_pairs.csv")
        pairs = pd.read_csv(pairs_path) if pairs_path.is_file() else pd.DataFrame(columns=["better", "worse"])
        if "beats" not in pairs and "significant" in pairs:  # written before ASO joined the ranking rule
            pairs["beats"] = pairs["significant"]
            echo(f"note: {pairs_path}: written before the ranking rule used ASO; ranks count its significant pairs")
        pairs["beats"] = pairs.get("beats", pd.Series(dtype=str)).astype(str) == "True"
        if "provenance" not in table:
            table["provenance"] = [
                _declared_by_name(label, v) for label, v in zip(table["method"], table["variant"], strict=True)
            ]
            echo(f"note: {path}: written before provenance was recorded; rows take their variant's declaration now")
        tested = set(pairs["better"]) | set(pairs["worse"])
        tables[(path.parent.name, path.stem)] = rank_rows(table, pairs, PROTOCOLS[path.stem].headline, tested)
    return tables


def _declared_by_name(label: str, variant: str) -> str:
    """A row's current declared provenance from its label (`method[:variant]`); `custom` for a
    row with overrides (``[k=v]``) or settings no declaration names (``#hash``)."""
    from benchmark.run.plan import resolve_settings

    if " " in label:
        return CUSTOM
    try:
        return resolve_settings(label.split(":")[0], None if variant == "default" else variant)[2]
    except BenchmarkError:
        return CUSTOM


def block_rows(readme: Path) -> dict[str, set[str]]:
    """The rows (method labels, marks stripped) the README's results block shows now, per
    ``dataset/protocol``."""
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        return {}
    block = text.split(README_START, 1)[1].split(README_END, 1)[0]
    rows: dict[str, set[str]] = {}
    section = None
    for line in block.splitlines():
        if line.startswith("**") and "**" in line[2:]:
            section = line[2:].split("**", 1)[0]
        elif section and line.startswith("|") and not line.startswith(("| rank", "|--", "| --")):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if len(cells) > 1:
                label = cells[1]
                for mark in (*ROW_MARKS.values(), LOGGED_MARK):
                    label = label.replace(mark, "")
                rows.setdefault(section, set()).add(label.strip())
    return rows


def _refuse_lost_rows(readme: Path, tables: dict[tuple[str, str], pd.DataFrame]) -> None:
    """Refuse (before anything is written) a results block that would drop rows it shows."""
    after = {f"{dataset}/{protocol}": set(table["method"]) for (dataset, protocol), table in tables.items()}
    lost = {
        section: sorted(shown - after.get(section, set()))
        for section, shown in block_rows(readme).items()
        if shown - after.get(section, set())
    }
    if lost:
        listed = "; ".join(f"{section}: {', '.join(labels)}" for section, labels in sorted(lost.items()))
        raise BenchmarkError(
            f"{readme}: its results block shows rows this report would drop ({listed}); nothing written. "
            "Run them into this store, write elsewhere with --out, or pass --force to rewrite the block anyway"
        )


def _update_readme(
    request: ReportRequest, tables: dict[tuple[str, str], pd.DataFrame], echo: Callable[[str], None]
) -> None:
    text = request.readme.read_text()
    if README_START not in text or README_END not in text:
        return
    head, rest = text.split(README_START, 1)
    tail = rest.split(README_END, 1)[1]
    request.readme.write_text(head + render_readme_block(tables, request.out, request.readme, request.alpha) + tail)
    echo(f"{request.readme}: results block rewritten")
