"""``python -m benchmark report``: comparison tables and plots from the MLflow store.

Only FINISHED seed runs are read (never FAILED or KILLED ones). Runs are grouped into
*sections* — one per (dataset, protocol) and data fingerprint —
and, within a section, into *variants*: one method with one exact set of settings. A variant
keeps the runs of its newest code fingerprint, one per seed (the newest).

Per variant: each main metric as mean ± std over seeds; a 95 % CI of the headline's seed mean
from a two-level bootstrap (seeds and test sentences resampled; `benchmark.evaluate.SeedBootstrap`).
Every pair: the difference of seed means with its CI and p from the same bootstrap, Holm's
correction within its family, and ASO's ε_min (deepsig's, `stats.aso_eps_min`). ``rank`` follows
`stats.RANKING_RULE`: 1 + the number of ranked rows of the same regime that beat the row. Only
rows whose settings were chosen honestly (provenance ``paper``, ``prior`` or ``dev``) are ranked;
``oracle`` and ``custom`` rows are listed below them, marked, with their pairs compared apart.
Every metric is recomputed by the current evaluator from the stored predictions and the test
gold, whatever evaluator logged the run. Nothing is written outside ``--out`` but the README's
results block (by default only for the default ``reports/``), and that only if it keeps every row
it shows (``--force`` overrides).

The modules, in the order a report runs: `collect` (runs from the store into sections, re-scored
from their predictions), `stats` (seed summaries, CIs, paired tests, ranks), `render` (markdown,
LaTeX, the README block, claims.md; `claims` holds the papers' numbers), `figures` (the plots),
`leaderboard` (index.html) and `write` (the files, and the README guard).
"""

from benchmark.report.collect import (
    Section,
    Variant,
    attach_predictions,
    completed_settings,
    declared_settings,
    group_runs,
    load_runs,
)
from benchmark.report.render import (
    README_END,
    README_START,
    render_claims,
    render_latex,
    render_markdown,
    render_readme_block,
    runs_command,
)
from benchmark.report.stats import RANKING_RULE, bootstrap_resamples, compare_pairs, rank_rows, summarise
from benchmark.report.write import FORMATS, ReportRequest, default_readme, read_tables, write_reports

__all__ = [
    "FORMATS",
    "RANKING_RULE",
    "README_END",
    "README_START",
    "ReportRequest",
    "Section",
    "Variant",
    "attach_predictions",
    "bootstrap_resamples",
    "compare_pairs",
    "completed_settings",
    "declared_settings",
    "default_readme",
    "group_runs",
    "load_runs",
    "rank_rows",
    "read_tables",
    "render_claims",
    "render_latex",
    "render_markdown",
    "render_readme_block",
    "runs_command",
    "summarise",
    "write_reports",
]
