"""The report on a synthetic store whose numbers are known: predictions built from the real
embedded test gold with a chosen number of wrong labels per seed."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.core.errors import BenchmarkError
from benchmark.evaluate import EVALUATOR_VERSION, evaluate_split, holm_adjust
from benchmark.report import README_END, README_START, ReportRequest, render, stats, write_reports
from benchmark.report.claims import Ablation, gold_span_recall_table
from benchmark.run.tracking import Tracker


def wrong_first(gold, n, hierarchy):
    """The gold spans with the first ``n`` relabelled to another fine type of the same coarse type."""
    out = []
    for i, span in enumerate(gold):
        if i < n:
            siblings = [t for t in hierarchy.fine_types if t.split("-")[0] == span.label.split("-")[0]]
            span = span._replace(label=next(t for t in siblings if t != span.label))
        out.append(span._replace(score=1.0 - i / len(gold)))
    return out


def log_run(
    tracker, corpus, gold, method, seed, predictions, *, sha=None, status="FINISHED", keep=True, provenance="prior",
    logged=None, evaluator=EVALUATOR_VERSION, regime=None,
):  # fmt: skip
    """Log a seed run whose metrics are the evaluator's (or ``logged``, as an older evaluator
    logged them); return its true accuracy."""
    test = corpus.split("test")
    scores = evaluate_split(test, predictions, corpus.hierarchy, "typing", resamples=0)
    tags = {
        "role": "seed", "method": method, "label": method, "variant": "default", "protocol": "typing",
        "dataset": "embedded", "dataset_sha256": sha or corpus.sha256, "evaluator_version": evaluator,
        "code_version": "abc", "code_sha256": "c0de", "encoder": "none", "seed": str(seed), "provenance": provenance,
        "command": f"python -m benchmark run --method {method} --protocol typing",
    }  # fmt: skip
    if regime is not None:
        tags["regime"] = regime
    try:
        with tracker.run(f"{method}:{seed}", tags, {"knob": method}) as run_id:
            metrics = scores.metrics if logged is None else logged
            shared = 0.5 if method == "noisy" else 0.0  # noisy's seeds shared the machine: no timing
            timing = {"time/fit_seconds": 2.0, "time/predict_seconds": 1.0, "time/other_cpu_share": shared,
                      "time/cpu_count": 2.0}  # fmt: skip
            tracker.log(run_id, metrics={**metrics, **timing})
            if keep:
                lines = "".join(json.dumps(p._asdict()) + "\n" for p in predictions)
                tracker.client.log_text(run_id, lines, "predictions.jsonl")
            if status == "FAILED":
                raise RuntimeError("a crash")
    except RuntimeError:
        pass
    return scores.metrics["fine/accuracy"]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory, corpus):
    """A store: `perfect` (2 seeds, an older run of seed 1, a FAILED run), `noisy` (3 seeds), `noisy-copy` (the same
    predictions), `lost` (no predictions), one run on other data, `peeked` (perfect too, but its settings were
    chosen on test: oracle) and `by-hand` (noisy, an ad-hoc --set run: custom)."""
    folder = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        tracker = Tracker("embedded/typing", uri)
        gold = [s for sentence in corpus.split("test") for s in sentence.spans]
        h = corpus.hierarchy
        log_run(tracker, corpus, gold, "perfect", 1, wrong_first(gold, 3000, h))  # superseded by the rerun below
        known = {"perfect": [log_run(tracker, corpus, gold, "perfect", s, gold) for s in (1, 2)]}
        log_run(tracker, corpus, gold, "perfect", 3, wrong_first(gold, 5000, h), status="FAILED")
        wrong = {1: 2000, 2: 2300, 3: 2600}
        for method in ("noisy", "noisy-copy"):
            known[method] = [
                log_run(tracker, corpus, gold, method, s, wrong_first(gold, n, h)) for s, n in wrong.items()
            ]
        log_run(tracker, corpus, gold, "lost", 1, wrong_first(gold, 100, h), keep=False)
        log_run(tracker, corpus, gold, "elsewhere", 1, gold, sha="0" * 64)
        log_run(tracker, corpus, gold, "peeked", 1, gold, provenance="oracle")
        log_run(tracker, corpus, gold, "by-hand", 1, wrong_first(gold, 2000, h), provenance="custom")
        yield folder, known


def test_aggregation_ranks_and_significance_on_known_numbers(synthetic, tmp_path, monkeypatch):
    folder, known = synthetic
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'mlflow.db'}")
    readme = tmp_path / "README.md"
    readme.write_text(f"# project\n\n{README_START}\nold\n{README_END}\n\nafter\n")
    notes = []
    written = write_reports(ReportRequest(out=tmp_path / "reports", readme=readme), notes.append)
    table = {r["method"]: r for r in _csv(tmp_path / "reports/embedded/typing.csv")}

    assert set(table) == {"perfect", "noisy", "noisy-copy", "lost", "peeked", "by-hand"}  # no FAILED run, no other data
    assert table["perfect"]["seeds"] == "2"
    assert float(table["perfect"]["fine/accuracy_mean"]) == 1.0
    assert float(table["noisy"]["fine/accuracy_mean"]) == pytest.approx(statistics.fmean(known["noisy"]))
    assert float(table["noisy"]["fine/accuracy_std"]) == pytest.approx(statistics.stdev(known["noisy"]))
    assert (
        float(table["noisy"]["ci_low"]) < float(table["noisy"]["fine/accuracy_mean"]) < float(table["noisy"]["ci_high"])
    )
    assert float(table["perfect"]["ci_low"]) == float(table["perfect"]["ci_high"]) == 1.0
    assert float(table["perfect"]["seconds"]) == 3.0
    assert table["perfect"]["timed_seeds"] == "2"
    assert table["noisy"]["seconds"] == ""  # every seed shared the machine
    assert table["noisy"]["timed_seeds"] == "0"
    # perfect beats both noisy copies; the two copies cannot be told apart and share rank 2; the oracle and
    # custom rows get no rank (and `peeked`'s wins do not count against the ranked rows), listed last
    ranks = [table[m]["rank"] for m in ("perfect", "noisy", "noisy-copy", "lost", "peeked", "by-hand")]
    assert ranks == ["1", "2", "2", "", "", ""]
    assert [table[m]["provenance"] for m in ("perfect", "peeked", "by-hand")] == ["prior", "oracle", "custom"]
    order = list(table)
    assert order[:3] == ["perfect", "noisy-copy", "noisy"]  # the ranked rows first
    assert set(order[3:]) == {"lost", "peeked", "by-hand"}  # then the unranked: one seed, oracle, custom
    pairs = _csv(tmp_path / "reports/embedded/typing_pairs.csv")
    copies = next(p for p in pairs if {p["better"], p["worse"]} == {"noisy", "noisy-copy"})
    assert float(copies["delta"]) == 0.0  # the same predictions: only the seed draws differ
    assert float(copies["p"]) > 0.5
    assert (copies["significant"], copies["beats"], copies["family"]) == ("False", "False", "ranked frozen")
    versus = next(p for p in pairs if p["better"] == "perfect" and p["worse"] == "noisy")
    assert (versus["significant"], versus["beats"]) == ("True", "True")
    assert float(versus["delta"]) == pytest.approx(1 - statistics.fmean(known["noisy"]))
    peeked = next(p for p in pairs if p["better"] == "peeked" and p["worse"] == "noisy")  # oracle pairs compared
    assert peeked["family"] == "apart"
    assert len(pairs) == 10  # `lost` has no predictions: not tested

    assert any("lost" in n and "has no predictions" in n for n in notes)
    assert any("other data" in n for n in notes)
    assert any("1 runs superseded" in n for n in notes)
    names = {p.relative_to(tmp_path / "reports").as_posix() for p in written}
    assert {"embedded/typing.md", "embedded/typing.tex", "embedded/typing/per_type_f1.png"} <= names
    assert {"embedded/typing/confusion_coarse.png", "embedded/typing/p_at_k.png", "claims.md"} <= names
    markdown = (tmp_path / "reports/embedded/typing.md").read_text()
    assert "python -m benchmark report --dataset embedded --protocol typing" in markdown
    assert "`python -m benchmark run --method noisy --protocol typing --seeds 1 2 3`" in markdown
    ran = "`python -m benchmark run --method by-hand lost noisy noisy-copy peeked perfect --seeds 1 2 3`"
    assert f"after the runs {ran} (each row's own command" in markdown  # what was run, not `--method all`
    claims = (tmp_path / "reports/claims.md").read_text()
    assert "`python -m benchmark report --runs reports/runs` from the published runs" in claims
    assert f"`python -m benchmark report` after {ran}." in claims
    assert "| 1      | perfect" in markdown
    peeked = next(line for line in markdown.splitlines() if "peeked †" in line)
    assert [c.strip() for c in peeked.split("|")[1:4]] == ["–", "peeked †", "oracle"]
    assert "**" not in peeked  # the unranked perfect row is not bold
    assert "never ranked" in markdown
    text = readme.read_text()
    assert text.startswith("# project")
    assert text.endswith("after\n")
    assert "old" not in text
    assert "**embedded/typing**" in text


@pytest.fixture(scope="module")
def legacy_store(tmp_path_factory, corpus):
    """Runs logged by an older evaluator: `legacy` kept its predictions (its logged numbers are
    stale and it lacks Few-NERD's rates), `lost` did not."""
    folder = tmp_path_factory.mktemp("legacy")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    tracker = Tracker("embedded/typing", uri)
    gold = [s for sentence in corpus.split("test") for s in sentence.spans]
    predictions = wrong_first(gold, 1500, corpus.hierarchy)
    stale = {"fine/accuracy": 0.5, "errors/within_rate": 0.9}
    for seed in (1, 2):
        log_run(tracker, corpus, gold, "legacy", seed, predictions, logged=stale, evaluator="1.0")
    log_run(tracker, corpus, gold, "lost", 1, gold, logged=stale, evaluator="1.0", keep=False)
    return uri, evaluate_split(corpus.split("test"), predictions, corpus.hierarchy, "typing", resamples=0).metrics


def test_report_rescores_stored_predictions_with_the_current_evaluator(legacy_store, tmp_path, monkeypatch):
    uri, truth = legacy_store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    write_reports(ReportRequest(out=tmp_path / "reports", readme=None), lambda _: None)
    table = {r["method"]: r for r in _csv(tmp_path / "reports/embedded/typing.csv")}
    legacy, lost = table["legacy"], table["lost"]
    assert float(legacy["fine/accuracy_mean"]) == pytest.approx(truth["fine/accuracy"])  # not the logged 0.5
    assert truth["fine/accuracy"] != pytest.approx(0.5)
    assert float(legacy["fewnerd/within_rate_mean"]) == pytest.approx(truth["fewnerd/within_rate"])
    assert float(legacy["fewnerd/within_rate_mean"]) > 0
    assert legacy["scored_by"] == f"evaluator {EVALUATOR_VERSION}"
    assert lost["scored_by"] == "logged by evaluator 1.0"
    assert float(lost["fine/accuracy_mean"]) == 0.5  # no predictions: what it logged, and said so
    assert lost["fewnerd/within_rate_mean"] == ""
    markdown = (tmp_path / "reports/embedded/typing.md").read_text()
    assert f"Scored by evaluator {EVALUATOR_VERSION}" in markdown
    assert "lost ◦" in markdown
    assert "kept no predictions" in markdown
    assert "## Error analysis (Few-NERD's definitions)" in markdown


def test_report_elsewhere_leaves_the_readme_alone_and_never_drops_its_rows(legacy_store, tmp_path, monkeypatch, capsys):
    uri, _ = legacy_store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    shown = "**embedded/typing** ([full report](embedded/typing.md))\n\n| rank | method |\n|---|---|\n"
    block = f"{README_START}\n{shown}| 1 | hier-soft |\n| – | tagger:layer3-mlp † |\n{README_END}"
    (tmp_path / "reports").mkdir()
    readme = tmp_path / "reports/README.md"
    readme.write_text(f"# results\n\n{block}\n")
    (tmp_path / "README.md").write_text("# project\n")
    assert main(["report", "--out", str(tmp_path / "elsewhere")]) == 0
    assert readme.read_text() == f"# results\n\n{block}\n"  # a report elsewhere writes only under --out
    assert (tmp_path / "elsewhere/embedded/typing.md").is_file()
    assert (tmp_path / "elsewhere/index.html").is_file()
    capsys.readouterr()
    # into reports/ its README's block is updated by default, but not from a store that lacks rows it shows
    assert main(["report"]) == 2
    err = capsys.readouterr().err
    assert "would drop (embedded/typing: hier-soft, tagger:layer3-mlp)" in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1
    assert readme.read_text() == f"# results\n\n{block}\n"
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["README.md"]  # nothing half-written
    assert main(["report", "--force"]) == 0
    assert "| legacy" in readme.read_text()
    assert "hier-soft" not in readme.read_text()
    assert (tmp_path / "README.md").read_text() == "# project\n"  # the project's README is never touched


def test_each_regime_is_ranked_on_its_own(corpus, tmp_path, monkeypatch):
    """A fine-tuned row better than every frozen row takes no rank from them: each regime has its
    own rank 1; the pair across regimes is still tested; runs without a regime tag are frozen."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    tracker = Tracker("embedded/typing", uri)
    gold = [s for sentence in corpus.split("test") for s in sentence.spans]
    for seed in (1, 2, 3):  # three seeds a row (one seed is never ranked); frozen-good has no regime tag
        jitter = 50 * seed
        log_run(tracker, corpus, gold, "tuned", seed, wrong_first(gold, jitter, corpus.hierarchy), regime="finetuned")
        log_run(tracker, corpus, gold, "tuned-worse", seed, wrong_first(gold, 3000 + jitter, corpus.hierarchy),
                regime="finetuned")  # fmt: skip
        log_run(tracker, corpus, gold, "frozen-good", seed, wrong_first(gold, 1000 + jitter, corpus.hierarchy))
        log_run(tracker, corpus, gold, "frozen-bad", seed, wrong_first(gold, 2000 + jitter, corpus.hierarchy),
                regime="frozen")  # fmt: skip
    log_run(tracker, corpus, gold, "one-seed", 1, wrong_first(gold, 1500, corpus.hierarchy), regime="frozen")
    write_reports(ReportRequest(out=tmp_path / "reports", readme=None, trials=200), lambda _: None)
    table = _csv(tmp_path / "reports/embedded/typing.csv")
    assert [(r["method"], r["regime"], r["rank"]) for r in table] == [
        ("frozen-good", "frozen", "1"), ("frozen-bad", "frozen", "2"), ("one-seed", "frozen", ""),
        ("tuned", "finetuned", "1"), ("tuned-worse", "finetuned", "2"),
    ]  # fmt: skip
    pairs = _csv(tmp_path / "reports/embedded/typing_pairs.csv")
    across = next(p for p in pairs if {p["better"], p["worse"]} == {"tuned", "frozen-good"})
    assert {"better": "tuned", "worse": "frozen-good", "family": "apart", "beats": "True"}.items() <= across.items()
    families = {(p["better"], p["worse"]): p["family"] for p in pairs}
    assert families[("frozen-good", "frozen-bad")] == "ranked frozen"
    assert families[("tuned", "tuned-worse")] == "ranked finetuned"
    assert families[("frozen-good", "one-seed")] == "apart"  # one seed: no seed variance, not in the family
    assert sum(f == "ranked frozen" for f in families.values()) == 1  # its family: the ranked pairs only
    markdown = (tmp_path / "reports/embedded/typing.md").read_text()
    assert "| regime" in markdown
    assert "each regime is ranked on its own" in markdown
    assert ">regime</th>" in (tmp_path / "reports/index.html").read_text()
    write_reports(ReportRequest(out=tmp_path / "frozen", readme=None, regime="frozen", trials=200), lambda _: None)
    assert [r["method"] for r in _csv(tmp_path / "frozen/embedded/typing.csv")] == [
        "frozen-good",
        "frozen-bad",
        "one-seed",
    ]


def test_a_papers_ablation_is_tested_on_its_own_metric_as_its_own_family(synthetic, tmp_path, monkeypatch):
    folder, known = synthetic
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'mlflow.db'}")
    coarse = Ablation("A paper, Table 9", "typing", "coarse/accuracy", ("perfect", "noisy", "noisy-copy"))
    fine = Ablation("A paper, Table 10", "typing", "fine/accuracy", ("noisy", "perfect"))
    missing = Ablation("Another paper", "typing", "fine/accuracy", ("perfect", "never-run"))
    for module in (stats, render):
        monkeypatch.setattr(module, "ABLATIONS", (coarse, fine, missing))
    write_reports(ReportRequest(out=tmp_path / "reports", readme=None), lambda _: None)
    pairs = {
        (p["source"], p["better"], p["worse"]): p for p in _csv(tmp_path / "reports/embedded/typing_ablations.csv")
    }
    assert set(pairs) == {
        (coarse.source, "perfect", "noisy"), (coarse.source, "perfect", "noisy-copy"),
        (coarse.source, "noisy", "noisy-copy"), (fine.source, "perfect", "noisy"),
    }  # fmt: skip
    # wrong_first relabels within the coarse type: on coarse accuracy every row is perfect
    assert {float(p["delta"]) for (source, *_), p in pairs.items() if source == coarse.source} == {0.0}
    assert {p["beats"] for (source, *_), p in pairs.items() if source == coarse.source} == {"False"}
    versus = pairs[fine.source, "perfect", "noisy"]
    assert float(versus["delta"]) == pytest.approx(1 - statistics.fmean(known["noisy"]))
    assert (versus["metric"], versus["p_holm"], versus["beats"]) == ("fine/accuracy", versus["p"], "True")  # alone
    claims = (tmp_path / "reports/claims.md").read_text()
    assert "**A paper, Table 9**: `typing` · `coarse/accuracy`" in claims
    assert "| perfect  | noisy-copy | 100.00       | 100.00      | +0.00        | [+0.00, +0.00] |" in claims
    assert f"| perfect  | noisy   | 100.00       | {100 * statistics.fmean(known['noisy']):.2f}" in claims
    assert "Not tested yet: no runs of never-run (rows: perfect, never-run)." in claims


def test_filters_that_match_nothing_write_nothing(synthetic, tmp_path, monkeypatch):
    folder, _ = synthetic
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'mlflow.db'}")
    with pytest.raises(BenchmarkError, match=r"no finished runs in .* with protocol=ner: nothing written"):
        write_reports(ReportRequest(protocol="ner", out=tmp_path / "reports", readme=None))
    with pytest.raises(BenchmarkError, match=r"no finished runs in .* with regime=finetuned: nothing written"):
        write_reports(ReportRequest(regime="finetuned", out=tmp_path / "reports", readme=None))
    assert not (tmp_path / "reports").exists()


def test_cli_report_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'missing.db'}")
    assert main(["report"]) == 2
    assert "no MLflow store at" in capsys.readouterr().err
    (tmp_path / "broken.db").write_text("this is not a database")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'broken.db'}")
    assert main(["report"]) == 2
    assert "cannot read the MLflow store" in capsys.readouterr().err
    assert main(["report", "--format", "pdf"]) == 2
    assert "--format: unknown pdf" in capsys.readouterr().err
    assert main(["report", "--regime", "warm"]) == 2
    assert "unknown regime 'warm'; choose one of: frozen, finetuned" in capsys.readouterr().err
    assert not (tmp_path / "reports").exists()


def test_the_guide_states_the_ranking_rule_the_reports_use():
    from benchmark.report import RANKING_RULE

    guide = (Path(__file__).resolve().parents[1] / "docs" / "guide.md").read_text()
    assert RANKING_RULE in " ".join(guide.split())


def test_enough_resamples_that_holm_reaches_far_below_alpha():
    from benchmark.report import bootstrap_resamples

    assert bootstrap_resamples(1000, 2, 0.05) == 1000
    for family in (10, 78, 300):
        resamples = bootstrap_resamples(1000, family, 0.05)
        floor = 2 / (resamples + 1)  # the smallest two-sided bootstrap p
        assert resamples >= 20 * family / 0.05
        assert family * floor <= 0.05 / 10  # the smallest Holm-adjusted p can reach alpha / 10


def test_the_regenerate_command_names_the_methods_and_seeds_the_rows_have():
    from benchmark.report import runs_command

    rows = {"eigproj:tuned": "1 2", "label-name": "2 3", "random-within-coarse": 4, "cofee #1a2b3c": "1"}
    table = pd.DataFrame({"method": list(rows), "seed_list": list(rows.values())})  # a CSV reads seed 4 as 4
    every = "python -m benchmark run --method all --seeds 1 2 3 4"
    assert runs_command([table], ["weak-typing"]) == every  # a row of every method that runs weak-typing
    assert runs_command([table.iloc[:3]], ["weak-typing"]) == (
        "python -m benchmark run --method eigproj label-name random-within-coarse --seeds 1 2 3 4"
    )
    assert runs_command([table], ["weak-typing", "ner"]).startswith("python -m benchmark run --method cofee eigproj")
    assert runs_command([table.iloc[3:]], ["weak-typing"], "supervised") == (
        "python -m benchmark run --method cofee --dataset supervised --seeds 1"
    )
    # every row with its regime's comparison seeds: the comparison's own default, no --seeds
    regular = pd.DataFrame({"method": [*list(rows), "tagger:finetune"], "seed_list": ["1 2 3 4 5"] * 4 + ["1 2 3"],
                            "regime": ["frozen"] * 4 + ["finetuned"]})  # fmt: skip
    assert runs_command([regular], ["weak-typing"]) == "python -m benchmark run --method all"
    regular.loc[4, "seed_list"] = "1 2 3 4 5"  # a fine-tuned row with 5 seeds: not the default
    assert runs_command([regular], ["weak-typing"]).endswith("--seeds 1 2 3 4 5")


def test_holm_adjustment():
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]).tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])


def _csv(path):
    import csv

    with path.open() as f:
        return list(csv.DictReader(f))


def test_claims_explain_the_span_papers_recall_from_typing_and_ner_rows():
    tables = {
        "typing": pd.DataFrame({"method": ["span-bilstm-attn", "gazetteer"], "fine/accuracy_mean": [0.6, 0.4]}),
        "ner": pd.DataFrame(
            {
                "method": ["span-bilstm-attn"],
                "fine/micro_precision_mean": [0.3],
                "fine/micro_recall_mean": [0.2],
                "fine/micro_f1_mean": [0.24],
            }
        ),
    }
    table = gold_span_recall_table(tables).set_index("method")
    assert list(table.index) == ["span-bilstm-attn", "gazetteer"]  # tagger has no rows: left out
    span = table.loc["span-bilstm-attn"]
    assert span["typing: R (paper)"] == 100
    assert span["typing: P = acc"] == span["typing: F1 (Few-NERD)"] == 60
    assert span["typing: F1 (paper)"] == pytest.approx(75.0)  # 2 · 0.6 / 1.6
    assert (span["ner: P"], span["ner: R"], span["ner: F1"]) == (30, 20, 24)
    assert pd.isna(table.loc["gazetteer", "ner: R"])


def test_summaries_rank_the_committed_tables_and_fill_provenance_of_old_ones(tmp_path):
    """The README block and claims.md come from the tables in --out; a table written before
    provenance existed takes its rows' declarations, and a custom row's wins rank nobody down."""
    from benchmark.report import read_tables, render_readme_block

    folder = tmp_path / "embedded"
    folder.mkdir()
    rows = [("gazetteer [min_entity_ratio=0.5]", "default", 0.30), ("gazetteer", "default", 0.25)]
    rows += [("gazetteer:half", "half", 0.15)]
    columns = {"fine/accuracy_std": 0.0, "seeds": 3, "rank": 1}
    frame = [
        {"method": m, "variant": v, "fine/accuracy_mean": x, "ci_low": x, "ci_high": x} | columns for m, v, x in rows
    ]
    pd.DataFrame(frame).to_csv(folder / "typing.csv", index=False)
    pd.DataFrame(
        [
            {"better": "gazetteer [min_entity_ratio=0.5]", "worse": "gazetteer", "significant": True},
            {"better": "gazetteer [min_entity_ratio=0.5]", "worse": "gazetteer:half", "significant": True},
            {"better": "gazetteer", "worse": "gazetteer:half", "significant": True},
        ]
    ).to_csv(folder / "typing_pairs.csv", index=False)
    notes = []
    table = read_tables(tmp_path, notes.append)[("embedded", "typing")].set_index("method")
    assert any("written before provenance" in n for n in notes)
    assert list(table["provenance"]) == ["prior", "prior", "custom"]
    assert list(table["rank"].astype(object).where(table["rank"].notna(), None)) == [1, 2, None]
    block = render_readme_block({("embedded", "typing"): table.reset_index()}, tmp_path, tmp_path / "README.md")
    assert "gazetteer [min_entity_ratio=0.5] ‡" in block
    assert "**0.2500" in block
    assert "**0.3000" not in block


@pytest.mark.slow
def test_leaderboard_page_sorts_on_a_click_and_shows_every_plot(synthetic, tmp_path, monkeypatch, page):
    """``reports/index.html`` in a real headless Chromium, opened from the file system."""
    folder, _ = synthetic
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'mlflow.db'}")
    write_reports(ReportRequest(out=tmp_path / "reports", readme=None), lambda _: None)
    page.goto((tmp_path / "reports/index.html").as_uri())
    page.wait_for_load_state("load")

    def methods():
        return page.locator("#embedded-typing tbody tr td:nth-child(2)").all_inner_texts()

    ranked = methods()
    assert ranked[0] == "perfect"  # as the report ranks them: best first, unranked rows last
    assert set(ranked) == {"perfect", "noisy", "noisy-copy", "lost ◦", "peeked †", "by-hand ‡"}  # ◦: no predictions
    page.locator("#embedded-typing th", has_text="(mean)").click()  # ascending by the headline
    ascending = methods()
    assert ascending != ranked
    assert ascending[-2:] in (["perfect", "peeked †"], ["peeked †", "perfect"])  # accuracy 1.0
    assert set(ascending[:2]) == {"noisy", "noisy-copy"}  # the most wrong labels on average
    page.locator("#embedded-typing th", has_text="(mean)").click()  # and back, descending
    assert set(methods()[-2:]) == {"noisy", "noisy-copy"}
    images = page.locator("#embedded-typing img")
    assert images.count() == 4
    assert page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    links = page.locator("#embedded-typing p.note a").evaluate_all("links => links.map(a => a.textContent)")
    assert links == ["full report", "table (CSV)", "every pair (CSV)", "LaTeX"]


def test_runs_logged_before_a_setting_existed_keep_their_declaration():
    """A setting added later takes its default for older runs: a tagger run logged without the
    fine-tuning settings is still the declared `layer4-mlp`, grouped with newer runs of it."""
    from benchmark.core.config import config_dict
    from benchmark.core.encoders import EncoderSettings
    from benchmark.report import completed_settings, declared_settings
    from benchmark.run.tracking import flatten
    from methods.tagger.method import TaggerConfig

    now = flatten(config_dict(TaggerConfig(EncoderSettings(layer=4), hidden=512)))
    before = {k: v for k, v in now.items() if k not in {"encoder.window", "passes", "evaluations", "tf32", "warmup"}}
    assert declared_settings("tagger", before) == ("layer4-mlp", "dev")
    assert completed_settings("tagger", before) == completed_settings("tagger", now)
    assert declared_settings("tagger", {**before, "hidden": "256"}) is None
