"""The browsable leaderboard: ``reports/index.html``, one self-contained page (inline style and
script, no network) with a section per dataset and protocol — the ranked table, sortable by any
column with a click, its provenance marks and CIs, the plots, links to the markdown/CSV/LaTeX
files and each row's command. Relative links only, so it reads the same from the file system
and from GitHub Pages."""

from __future__ import annotations

import html
import re
import urllib.parse
from pathlib import Path

import pandas as pd

from benchmark.core.episodic import EpisodeProtocol
from benchmark.core.registry import PROTOCOLS
from benchmark.evaluate import SEMEVAL_SCHEMES
from benchmark.report.render import (
    LOGGED_MARK,
    PARTIAL_SENTENCE,
    REGIME_SENTENCE,
    SECONDS_SENTENCE,
    has_finetuned,
    marks_sentence,
    seconds_text,
)
from benchmark.report.stats import ALL_TYPES, RANKING_RULE
from benchmark.run.external import ROW_MARKS

#: the plots a section shows when `report` drew them, with their captions
FIGURES = {
    "per_type_f1.png": "F1 of every fine type, mean over seeds (rows: methods; columns: fine types by coarse type)",
    "confusion_coarse.png": "coarse confusion matrices, all seeds summed (rows: gold; columns: predicted)",
    "p_at_k.png": "precision of the K most confident predictions, mean over seeds",
    "f1_by_length.png": "strict fine F1 by entity length, mean over seeds",
}
MISSING = "—"

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1500px; padding: 0 1.5em 3em; color: #222; }
nav a { margin-right: 1em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 13px; }
th, td { padding: 3px 8px; border-bottom: 1px solid #ddd; text-align: left; white-space: nowrap; }
th { cursor: pointer; background: #f4f4f4; user-select: none; position: sticky; top: 0; }
th[aria-sort="ascending"]::after { content: " ▲"; } th[aria-sort="descending"]::after { content: " ▼"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.unranked td { color: #777; }
code { font-size: 12px; background: #f6f6f6; padding: 1px 3px; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(600px, 1fr)); gap: 1em; }
figure.wide { grid-column: 1 / -1; }
figure { margin: 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 12px; color: #555; }
.note { color: #555; font-size: 13px; max-width: 110ch; }
"""

#: sorts a table by the clicked column: numbers by value, text alphabetically, blanks last
SCRIPT = """
document.querySelectorAll("table.sortable th").forEach((th, column) => th.addEventListener("click", () => {
  const table = th.closest("table"), body = table.tBodies[0];
  const ascending = th.getAttribute("aria-sort") !== "ascending";
  table.querySelectorAll("th").forEach(h => h.removeAttribute("aria-sort"));
  th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  const key = row => row.cells[column].dataset.sort ?? row.cells[column].textContent.trim();
  const rows = Array.from(body.rows).sort((a, b) => {
    const x = key(a), y = key(b);
    if (x === "" || y === "") return (x === "") - (y === "");
    const order = isNaN(x) || isNaN(y) ? x.localeCompare(y) : Number(x) - Number(y);
    return ascending ? order : -order;
  });
  rows.forEach(row => body.appendChild(row));
}));
"""


def _number(value: object, digits: int = 4) -> tuple[str, str]:
    """(shown text, sort key) of a number that may be missing."""
    if value is None or pd.isna(value):
        return MISSING, ""
    return f"{float(value):.{digits}f}", repr(float(value))


def _cell(text: str, sort: str | None = None, numeric: bool = False, code: bool = False) -> str:
    attributes = (' class="num"' if numeric else "") + ("" if sort is None else f' data-sort="{html.escape(sort)}"')
    body = f"<code>{html.escape(text)}</code>" if code else html.escape(text)
    return f"<td{attributes}>{body}</td>"


def _table(table: pd.DataFrame, protocol_name: str) -> str:
    protocol = PROTOCOLS[protocol_name]
    headline = protocol.headline
    others = [m for m in protocol.main_metrics if m != headline]
    mixed = has_finetuned(table)
    headers = ["rank", "method", "provenance", *(["regime"] if mixed else []), f"{headline} (mean)", "± std", "95% CI"]
    headers += [*others, "seeds", "s/seed"]
    headers.append("best epoch")
    lines = ['<div class="scroll"><table class="sortable"><thead><tr>']
    lines += [*(f"<th>{html.escape(h)}</th>" for h in headers), "</tr></thead><tbody>"]
    for row in table.to_dict("records"):
        ranked = not pd.isna(row.get("rank"))
        method = str(row["method"]) + (f" {ROW_MARKS[row['provenance']]}" if row["provenance"] in ROW_MARKS else "")
        if str(row.get("scored_by", "")).startswith("logged"):
            method += f" {LOGGED_MARK}"
        mean, mean_key = _number(row.get(f"{headline}_mean"))
        std, std_key = _number(row.get(f"{headline}_std"))
        low, high = row.get("ci_low"), row.get("ci_high")
        ci = MISSING if low is None or pd.isna(low) else f"[{low:.4f}, {high:.4f}]"
        cells = [
            _cell(str(int(row["rank"])) if ranked else MISSING, str(int(row["rank"])) if ranked else "", True),
            _cell(method),
            _cell(str(row["provenance"])),
            *([_cell(str(row.get("regime", "frozen")))] if mixed else []),
            _cell(mean, mean_key, True),
            _cell(std, std_key, True),
            _cell(ci, "" if ci == MISSING else repr(float(low)), True),
        ]
        for metric in others:
            text, key = _number(row.get(f"{metric}_mean"))
            cells.append(_cell(text, key, True))
        seconds = seconds_text(row.get("seconds"), row.get("timed_seeds"), row.get("seeds"))
        cells += [
            _cell(str(row.get("seeds", MISSING)), None, True),
            _cell(seconds, _number(row.get("seconds"))[1], True),
        ]
        cells.append(_cell(*_number(row.get("best_epoch"), 1), numeric=True))
        title = html.escape(_command(row) or MISSING, quote=True)
        css = "" if ranked else ' class="unranked"'
        lines.append(f'<tr{css} title="{title}">' + "".join(cells) + "</tr>")
    lines.append("</tbody></table></div>")
    return "\n".join(lines)


def _command(row: dict) -> str:
    """The row's run command with its seeds ('' when the runs recorded none)."""
    command = row.get("command")
    if not isinstance(command, str) or not command:
        return ""
    return f"{command} --seeds {row['seed_list']}"


def _href(path: str) -> str:
    """A relative link, URL-quoted and HTML-escaped."""
    return html.escape(urllib.parse.quote(path))


def _commands(table: pd.DataFrame) -> str:
    items = []
    for row in table.to_dict("records"):
        command = _command(row)
        text = f"<code>{html.escape(command)}</code>" if command else MISSING
        items.append(f"<li>{html.escape(str(row['method']))}: {text}</li>")
    return f"<details><summary>each row's run command</summary><ul>{''.join(items)}</ul></details>"


def _inline(markdown: str) -> str:
    """One sentence of the reports' markdown as HTML: *emphasis* and `code`."""
    text = re.sub(r"\*([^*]+)\*", r"<em>\1</em>", html.escape(markdown))
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


def _partial(partial: pd.DataFrame, path: str) -> str:
    """The rows' partial-match F1 (every span with its fine type), folded under the table."""
    overall = partial[partial["type"] == ALL_TYPES]
    headers = [
        "method",
        *(f"{scheme} F1" for scheme in SEMEVAL_SCHEMES),
        *(f"{scheme} 95% CI" for scheme in SEMEVAL_SCHEMES),
    ]
    lines = ['<div class="scroll"><table class="sortable"><thead><tr>']
    lines += [*(f"<th>{html.escape(h)}</th>" for h in headers), "</tr></thead><tbody>"]
    for method, rows in overall.groupby("method", sort=False):
        by_scheme = {row["scheme"]: row for row in rows.to_dict("records")}
        cells = [_cell(str(method))]
        cells += [_cell(*_number(by_scheme[s]["f1_mean"]), numeric=True) for s in SEMEVAL_SCHEMES]
        cells += [
            _cell(
                f"[{by_scheme[s]['f1_ci_low']:.4f}, {by_scheme[s]['f1_ci_high']:.4f}]",
                repr(by_scheme[s]["f1_ci_low"]),
                True,
            )
            for s in SEMEVAL_SCHEMES
        ]
        lines.append("<tr>" + "".join(cells) + "</tr>")
    lines.append("</tbody></table></div>")
    note = (
        f'<p class="note">{_inline(PARTIAL_SENTENCE)} Seed means; 95% CI of the seed mean, '
        "the test sentences resampled, the seeds' spread added as a Student-t draw. Precision, recall and each "
        "coarse type: "
        f'<a href="{_href(path)}">CSV</a>.</p>'
    )
    return f"<details><summary>partial matches (SemEval-2013 schemes)</summary>{note}{''.join(lines)}</details>"


def _anchor(dataset: str, protocol: str) -> str:
    return html.escape(urllib.parse.quote(f"{dataset}-{protocol}"))


def _section(dataset: str, protocol_name: str, table: pd.DataFrame, out: Path, alpha: float) -> str:
    protocol = PROTOCOLS[protocol_name]
    base = f"{dataset}/{protocol_name}"
    files = [(f"{base}.md", "full report"), (f"{base}.csv", "table (CSV)"), (f"{base}_pairs.csv", "every pair (CSV)")]
    files += [(f"{base}.tex", "LaTeX")]
    links = " · ".join(f'<a href="{_href(p)}">{label}</a>' for p, label in files if (out / p).is_file())
    figures = []
    for name, caption in FIGURES.items():
        if (out / base / name).is_file():
            wide = ' class="wide"' if name == "per_type_f1.png" else ""
            text = html.escape(caption)
            image = f'<a href="{_href(f"{base}/{name}")}"><img src="{_href(f"{base}/{name}")}" alt="{text}"></a>'
            figures.append(f"<figure{wide}>{image}<figcaption>{text}</figcaption></figure>")
    regimes = f"{html.escape(REGIME_SENTENCE)} " if has_finetuned(table) else ""
    resampled = "each setting's episodes" if isinstance(protocol, EpisodeProtocol) else "the test sentences"
    parts = [
        f'<section id="{_anchor(dataset, protocol_name)}">',
        f"<h2>{html.escape(dataset)} / {html.escape(protocol_name)}</h2>",
        f'<p class="note">{html.escape(protocol.summary)}. Headline: <code>{protocol.headline}</code>. {links}</p>',
        _table(table, protocol_name),
        f'<p class="note">{html.escape(marks_sentence([table]))} {regimes}Rank: {html.escape(RANKING_RULE)} '
        f"(α = {alpha}; every pair is in the full report); 95% CI of the seed mean, {resampled} resampled, "
        "the seeds' spread added as a Student-t draw; seeds: trained runs per row; "
        f"{MISSING}: not available for that row (best epoch: its runs logged none — the method trains no network, "
        "trains one inside a stage with no learning curve, as eigproj's coarse tagger, or its runs predate learning "
        "curves; a recipe counted in steps, such as tagger:finetune, gives its best dev check); "
        f"s/seed: {html.escape(SECONDS_SENTENCE.replace('`', ''))} "
        f"{LOGGED_MARK}: the run kept no predictions, its logged metrics are "
        "shown. Hover a row for its command; click a column to sort.</p>",
        _commands(table),
    ]
    if (out / f"{base}_partial.csv").is_file():
        parts.append(_partial(pd.read_csv(out / f"{base}_partial.csv"), f"{base}_partial.csv"))
    if figures:
        parts += ['<div class="figures">', *figures, "</div>"]
    parts.append("</section>")
    return "\n".join(parts)


def render_leaderboard(tables: dict[tuple[str, str], pd.DataFrame], out: Path, alpha: float = 0.05) -> str:
    """The page for every (dataset, protocol) table under ``out`` (`read_tables`)."""
    order = sorted(tables, key=lambda key: (key[0], list(PROTOCOLS).index(key[1])))
    nav = " ".join(f'<a href="#{_anchor(d, p)}">{html.escape(d)}/{html.escape(p)}</a>' for d, p in order)
    extra = [(name, label) for name, label in (("claims.md", "claims vs papers"), ("README.md", "results discussion"))]
    extra_links = " · ".join(f'<a href="{n}">{label}</a>' for n, label in extra if (out / n).is_file())
    body = [_section(d, p, tables[(d, p)], out, alpha) for d, p in order] or ["<p>No report tables yet.</p>"]
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            "<title>Few-NERD benchmark leaderboard</title>",
            f"<style>{STYLE}</style></head><body>",
            "<h1>Few-NERD fine-grained NER leaderboard</h1>",
            '<p class="note">Written by <code>python -m benchmark report</code> from the MLflow store or the '
            "published record (<code>reports/runs/</code>); every metric is "
            f"recomputed from the runs' stored predictions. {extra_links}</p>",
            f"<nav>{nav}</nav>",
            *body,
            f"<script>{SCRIPT}</script>",
            "</body></html>",
            "",
        ]
    )
