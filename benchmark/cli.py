"""Command line: ``python -m benchmark {list,run,sweep,score,report,export,import,export-predictions,cache,data}``.

Parses, dispatches, prints."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tabulate import tabulate

from benchmark.core.errors import BenchmarkError
from benchmark.seeds import SeedSummary

EPILOG = """examples:
  python -m benchmark run --method gazetteer --protocol ner
  python -m benchmark run --method random-within-coarse --seeds 1 2 3
  python -m benchmark run --method gazetteer --set min_entity_ratio=0.5
  python -m benchmark run --method eigproj --variant tuned
  python -m benchmark run --method all                   # the whole comparison (5 or 3 seeds a row), resumable
  python -m benchmark sweep --method tagger --protocol ner --grid encoder.layer=-1,3 --grid hidden=0,512
  python -m benchmark score --protocol ner --name my-system --predictions s1.jsonl s2.jsonl s3.jsonl
  python -m benchmark report                             # tables and plots in reports/
  python -m benchmark report --runs reports/runs --out /tmp/r   # the same, from the published runs
  python -m benchmark import reports/runs                # the published runs into your store
  python -m benchmark data --dataset supervised --data-dir ~/few-nerd
results go to MLflow (sqlite:///mlflow.db here, or $MLFLOW_TRACKING_URI); browse with: mlflow ui"""


def _dataset_options(parser: argparse.ArgumentParser) -> None:
    from benchmark.core.data.fewnerd import DATASETS

    choices = "; ".join(f"{k}: {v}" for k, v in DATASETS.items())
    parser.add_argument("--dataset", default="embedded", metavar="D", help=f"dataset (default: embedded). {choices}")
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="official Few-NERD layout DIR/<benchmark>/{train,dev,test}.txt[.gz]",
    )
    parser.add_argument("--from-hub", action="store_true", help="load DFKI-SLT/few-nerd from the hub (needs network)")
    parser.add_argument("--no-verify", action="store_true", help="accept data files that differ from the official ones")


def _cache_option(parser: argparse.ArgumentParser) -> None:
    from benchmark.core.encoders import default_cache_dir

    parser.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help=f"feature cache location (default: $BENCHMARK_CACHE_DIR or ~/.cache/fewnerd-benchmark; "
        f"now {default_cache_dir()})",
    )


def _quiet_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bars or stage lines on stderr (errors still print)"
    )


def _task_options(parser: argparse.ArgumentParser, seeds: str, force: str) -> None:
    """What `run` and `sweep` share: the row (protocol, variant, settings), seeds, data, cache,
    and who runs the tasks."""
    parser.add_argument("--protocol", metavar="P", help="weak-typing, typing or ner (default: the method's first)")
    parser.add_argument("--variant", metavar="NAME", help="a named settings preset of the method (see `list`)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override one setting (TOML value); repeatable"
    )
    parser.add_argument("--seeds", type=int, nargs="+", metavar="N", help=seeds)
    parser.add_argument("--force", action="store_true", help=force)
    _dataset_options(parser)
    _cache_option(parser)
    executors = parser.add_argument_group("executor")
    executors.add_argument(
        "--executor",
        choices=["local", "ray"],
        default="local",
        help="who runs the tasks: local (one after another here, default) or ray (a Ray cluster; "
        "pip install -e '.[ray]')",
    )
    executors.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="a running Ray cluster (default: RAY_ADDRESS, else the one `ray start` began here, else a new local one)",
    )
    executors.add_argument(
        "--cpus-per-task", type=int, default=1, metavar="N", help="CPU threads each Ray task reserves (default 1)"
    )
    _quiet_option(parser)


RUN_HELP = "Fit, predict and evaluate a method for each seed; log every seed as an MLflow run."
SWEEP_HELP = (
    "Fit every point of a settings grid on train, predict and score the dev split only (the test split is never "
    "touched), log a parent MLflow run and a child per point and seed, print the dev table, the selected point and "
    "the run command that uses it. Under weak-typing dev has coarse labels only: points are scored by coarse-blind "
    "typing (the coarse type withheld, the coarse accuracy of the fine picks) unless --oracle scores them with fine "
    "labels, which makes the choice `oracle`."
)
SWEEP_EPILOG = """examples:
  python -m benchmark sweep --method tagger --protocol ner --grid encoder.layer=-1,3 --grid hidden=0,512
  python -m benchmark sweep --method label-name --grid label_names=raw,readable,described
  python -m benchmark sweep --method eigproj --grid-file grid.toml --seeds 1 2 --executor ray"""
SCORE_HELP = (
    "Read one prediction file per seed of a system made anywhere, check each against the test split, score it with "
    "the one evaluator and log it as a seed run of the row --name (provenance external: compared with every row in "
    "`report`, never ranked, unless --provenance says how it was chosen). Formats (the guide, `Scoring your own "
    "system`): jsonl (one object per sentence: id or tokens, entities with start, end, label[, score]), fewnerd "
    "(token<TAB>tag, IO or BIO, sentences in test order; ner only), spans (one object per gold span: id, start, end, "
    "label[, score]; typing and weak-typing)."
)
SCORE_EPILOG = """examples:
  python -m benchmark score --protocol ner --name my-crf --predictions crf.txt
  python -m benchmark score --protocol ner --name gliner --predictions seed1.jsonl seed2.jsonl seed3.jsonl
  python -m benchmark score --protocol typing --name llm-typing --predictions spans.jsonl
  python -m benchmark export-predictions --protocol ner --row gazetteer --runs reports/runs   # example files"""
REPORT_HELP = (
    "Read every FINISHED seed run of the MLflow store (or, with --runs, of a published record) and write, per "
    "dataset and protocol, "
    "reports/<dataset>/<protocol>.{md,csv,tex} (mean ± std over seeds, 95% CI, significance ranks) and plots, every "
    "metric computed from the runs' stored predictions by the current evaluator; then rebuild claims.md and the "
    "leaderboard page index.html in --out and, for the default --out, the results block of reports/README.md from "
    "every table in --out."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark",
        description="Fine-grained NER methods on Few-NERD, scored the same way, tracked in MLflow.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler, summary: str, description: str | None = None, epilog: str | None = None):
        sub = commands.add_parser(
            name,
            help=summary,
            description=description or summary,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(handler=handler)
        return sub

    command("list", cmd_list, "methods × protocols, datasets", "List what can be run.")

    run = command("run", cmd_run, "run a method end to end and log it to MLflow", RUN_HELP, EPILOG)
    run.add_argument(
        "--method",
        required=True,
        nargs="+",
        metavar="NAME",
        help="a registered method (see `list`); several, or `all`, run a comparison: each method with "
        "its defaults and every variant, on every protocol it supports (or --protocol)",
    )
    seeds = "seeds, one run each (default: 1; a comparison: 1-5 for frozen rows, 1-3 for fine-tuned ones)"
    _task_options(run, seeds, "rerun seeds that already finished with the same settings, data and code")
    run.add_argument("--config", type=Path, metavar="FILE.toml", help="method settings as TOML key = value")
    run.add_argument(
        "--bootstrap", type=int, default=1000, metavar="N", help="bootstrap resamples for CIs (default 1000)"
    )
    episodes = run.add_argument_group("episodes (--protocol episodes)")
    episodes.add_argument("--episodes", type=int, default=1000, metavar="N",
                          help="test episodes per setting, drawn with Few-NERD's sampler (default 1000)")  # fmt: skip
    episodes.add_argument("--episode-seed", type=int, default=0, metavar="S", help="the sampler's seed (default 0)")
    episodes.add_argument("--episode-dir", type=Path, metavar="DIR",
                          help="read Few-NERD's episode files DIR/test_<N>_<K>.jsonl instead of sampling")  # fmt: skip

    sweep = command(
        "sweep",
        cmd_sweep,
        "choose settings on dev: fit each grid point, score dev only, print the best",
        SWEEP_HELP,
        SWEEP_EPILOG,
    )
    sweep.add_argument("--method", required=True, metavar="NAME", help="a registered method (see `list`)")
    _task_options(sweep, "seeds per point (default: 1)", "refit points that finished before")
    sweep.add_argument(
        "--grid", action="append", default=[], metavar="KEY=V1,V2", help="a setting and its values (TOML); repeatable"
    )
    sweep.add_argument("--grid-file", type=Path, metavar="FILE.toml", help="a TOML table: key = [value, ...]")
    sweep.add_argument(
        "--metric",
        metavar="NAME",
        help="the dev criterion (default: the protocol's headline, or blind_coarse/accuracy under weak-typing)",
    )
    sweep.add_argument("--oracle", action="store_true", help="weak-typing only: score dev with fine labels (oracle)")

    score = command(
        "score",
        cmd_score,
        "score predictions made outside the harness and log them as a row",
        SCORE_HELP,
        SCORE_EPILOG,
    )
    score.add_argument("--protocol", required=True, metavar="P", help="weak-typing, typing or ner")
    score.add_argument(
        "--predictions", required=True, nargs="+", type=Path, metavar="FILE", help="one file per seed of the row"
    )
    score.add_argument("--name", required=True, help="the row's name in the reports (letters, digits, . _ -)")
    score.add_argument(
        "--format", choices=["jsonl", "fewnerd", "spans"], help="the files' format (default: read from each file)"
    )
    score.add_argument(
        "--provenance",
        choices=["paper", "prior", "dev"],
        help="how the system's settings were chosen (default: external, unranked); needs --why and --regime",
    )
    score.add_argument("--why", default="", help="with --provenance: the reason, in one line")
    score.add_argument("--regime", choices=["frozen", "finetuned"], help="with --provenance: the table it is ranked in")
    score.add_argument(
        "--bootstrap", type=int, default=1000, metavar="N", help="bootstrap resamples for CIs (default 1000)"
    )
    _dataset_options(score)
    _quiet_option(score)

    report = command(
        "report",
        cmd_report,
        "comparison tables and plots from the finished runs in the store (or a published record)",
        REPORT_HELP,
    )
    report.add_argument("--dataset", metavar="D", help="only this dataset (default: every one in the store)")
    report.add_argument("--protocol", metavar="P", help="only this protocol (default: every one in the store)")
    report.add_argument("--regime", metavar="R", help="only runs of this encoder regime: frozen or finetuned")
    report.add_argument("--format", default="md,csv,tex", metavar="LIST", help="comma-separated: md, csv, tex")
    report.add_argument("--out", type=Path, default=Path("reports"), metavar="DIR", help="default: reports/")
    report.add_argument("--data-dir", type=Path, metavar="DIR", help="where non-embedded datasets' gold is")
    report.add_argument(
        "--no-verify", action="store_true", help="accept --data-dir files that differ from the official ones"
    )
    report.add_argument(
        "--readme",
        type=Path,
        metavar="FILE",
        help="README whose results block to rewrite (default: reports/README.md when --out is reports/, else none)",
    )
    report.add_argument(
        "--force",
        action="store_true",
        help="rewrite the README's results block even if it would lose rows the block shows now",
    )
    report.add_argument("--alpha", type=float, default=0.05, help="significance level after Holm (default 0.05)")
    report.add_argument(
        "--trials",
        type=int,
        default=1000,
        metavar="N",
        help="bootstrap resamples, at least (default 1000; 20 × pairs / α for a larger family)",
    )

    report.add_argument(
        "--runs",
        type=Path,
        metavar="DIR",
        help="read the published record DIR (e.g. reports/runs) instead of the MLflow store",
    )

    export = command(
        "export",
        cmd_export,
        "write the finished runs a report would use into the published record (reports/runs/)",
        "Write, per finished seed run that `report` would use, its record (tags, settings, metrics with their "
        "histories, dataset inputs, run config) as JSON and its test predictions as Parquet under --out. An export "
        "adds and updates files; it never deletes the record's other runs.",
    )
    export.add_argument(
        "--out", type=Path, default=Path("reports", "runs"), metavar="DIR", help="default: reports/runs/"
    )
    export.add_argument("--protocol", metavar="P", help="only this protocol")
    export.add_argument("--method", metavar="NAME", help="only this method")
    export.add_argument("--data-dir", type=Path, metavar="DIR", help="where non-embedded datasets' gold is")

    imports = command(
        "import",
        cmd_import,
        "load a published record into the MLflow store (idempotent)",
        "Load every run of a published record into the MLflow store as ordinary parent and seed runs (params, "
        "tags, metrics with their curves, dataset inputs, predictions). A run the store holds already is not added "
        "again; `run` then skips every task the record holds.",
    )
    imports.add_argument("record", type=Path, nargs="?", default=Path("reports", "runs"), help="default: reports/runs")
    imports.add_argument(
        "--data-dir", type=Path, metavar="DIR", help="where non-embedded datasets are, to check their runs against"
    )

    predictions = command(
        "export-predictions",
        cmd_export_predictions,
        "write a row's test predictions in the files `score` reads",
        "Write the test predictions of one row of the store (or of a published record, --runs) in the formats "
        "`benchmark score` reads, one file per seed and format: "
        "OUT/<row>.seed-<n>.jsonl (jsonl), .txt (fewnerd), .spans.jsonl (spans).",
    )
    predictions.add_argument("--protocol", required=True, metavar="P", help="weak-typing, typing or ner")
    predictions.add_argument(
        "--row", required=True, metavar="LABEL", help="the row as reports name it (tagger:layer4-mlp)"
    )
    predictions.add_argument("--seeds", type=int, nargs="+", metavar="N", help="default: every seed of the row")
    predictions.add_argument(
        "--format",
        metavar="LIST",
        help="comma-separated: jsonl, fewnerd (ner), spans (typing); default: all that apply",
    )
    predictions.add_argument(
        "--out", type=Path, default=Path("predictions"), metavar="DIR", help="default: predictions/"
    )
    predictions.add_argument("--runs", type=Path, metavar="DIR", help="read the published record DIR, not the store")
    predictions.add_argument("--dataset", default="embedded", metavar="D", help="default: embedded")
    predictions.add_argument("--data-dir", type=Path, metavar="DIR", help="where non-embedded datasets' gold is")

    cache = command(
        "cache",
        cmd_cache,
        "inspect or free the word-feature cache",
        "Word features are computed once "
        "per (encoder + weights, data, layer, pooling, window) and reused by every method and run.",
    )
    cache.add_argument("action", choices=["ls", "clear"], help="ls: list entries; clear: delete them")
    cache.add_argument("--models", action="store_true", help="with clear: also delete unpacked models (mpnet)")
    _cache_option(cache)

    _dataset_options(
        command(
            "data", cmd_data, "per-split statistics of a dataset", "Sentences, tokens and entities per type and split."
        )
    )
    return parser


def cmd_list(args: argparse.Namespace) -> int:
    from benchmark.core.data.fewnerd import DATASETS
    from benchmark.core.encoders import ENCODERS, encoder_settings
    from benchmark.core.registry import METHODS, PROTOCOLS
    from benchmark.run.plan import resolve_settings

    rows = []
    for name in METHODS.names():
        cls = METHODS.get(name)
        encoder = ", ".join(dict.fromkeys(s.name for s in encoder_settings(cls.Config()))) or "-"
        supported = ("yes" if p in cls.protocols else "" for p in PROTOCOLS)
        left_out = "" if getattr(cls, "in_comparison", True) else " [not in --method all]"
        rows.append([name, *supported, encoder, ", ".join(cls.variants) or "-", cls.describe() + left_out])
    headers = ["method", *PROTOCOLS, "encoder", "variants", "description"]
    print("Methods\n" + tabulate(rows, headers=headers))
    settings_rows = []
    for name in METHODS.names():
        cls = METHODS.get(name)
        for variant, chosen in (("(defaults)", cls.defaults), *cls.variants.items()):
            overrides = " ".join(f"{k}={v}" for k, v in chosen.overrides.items()) or "-"
            provenance = resolve_settings(name, variant if chosen.overrides else None)[2]  # a declared one: its own
            settings_rows.append([f"{name}:{variant}" if chosen.overrides else name, provenance, overrides, chosen.why])
    print(
        "\nSettings and how they were chosen (paper, prior, dev: ranked in reports; oracle, and any --set run "
        "(custom): shown unranked)\n" + tabulate(settings_rows, headers=["row", "provenance", "settings", "why"])
    )
    protocol_rows = [[p.name, p.headline, p.summary] for p in PROTOCOLS.values()]
    print("\nProtocols\n" + tabulate(protocol_rows, headers=["protocol", "headline metric", "setting"]))
    print("\nDatasets\n" + tabulate(DATASETS.items(), headers=["dataset", "source"]))
    encoder_rows = [*ENCODERS.items(), ("<path or hub id>", "a local model directory or a Hugging Face model id")]
    print("\nEncoders (--set encoder.name=NAME)\n" + tabulate(encoder_rows, headers=["encoder", "what"]))
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    from benchmark.core.cache import FeatureCache

    cache = FeatureCache(args.cache_dir)
    if args.action == "clear":
        freed = cache.clear(models=args.models)
        print(f"freed {freed / 2**20:.1f} MiB in {cache.root}")
        return 0
    entries = cache.entries()
    rows = [
        [e["key"], e["encoder"], e["layer"], e["pooling"], e["window"], e["data_sha256"][:12], e["sentences"],
         f"{e['bytes'] / 2**20:.1f}", e["created"]]
        for e in entries
    ]  # fmt: skip
    headers = ["key", "encoder", "layer", "pooling", "window", "data", "sentences", "MiB", "created"]
    print(f"feature cache: {cache.root}\n" + tabulate(rows, headers=headers))
    print(f"{len(entries)} entries, {sum(e['bytes'] for e in entries) / 2**20:.1f} MiB")
    return 0


def _executor(args: argparse.Namespace):
    from benchmark.run.executors import make_executor

    return make_executor(args.executor, args.ray_address, args.cpus_per_task)


def _source(args: argparse.Namespace):
    from benchmark.run.plan import DataSource

    return DataSource(args.dataset, args.data_dir, args.from_hub, not args.no_verify)


def cmd_run(args: argparse.Namespace) -> int:
    from benchmark.run.driver import run_plans
    from benchmark.run.plan import EpisodeSource, RunRequest, plan_comparison, plan_run
    from benchmark.run.tracking import check_reachable, tracking_uri

    if args.bootstrap < 0:
        raise BenchmarkError("--bootstrap must be 0 (no CIs) or a positive number of resamples")
    check_reachable(tracking_uri())
    template = RunRequest(
        method=args.method[0],
        protocol=args.protocol,
        variant=args.variant,
        source=_source(args),
        seeds=tuple(args.seeds or (1,)),
        config_file=args.config,
        settings=tuple(args.set),
        resamples=args.bootstrap,
        episodes=EpisodeSource(args.episodes, args.episode_seed, args.episode_dir),
        cache_dir=args.cache_dir,
        force=args.force,
    )
    if args.method != ["all"] and len(args.method) == 1:
        plan = plan_run(template)
        _print_row(run_plans([plan], _executor(args), _echo)[0])
        return 0
    if args.variant or args.set or args.config:
        raise BenchmarkError("--variant, --set and --config apply to one method; run that method alone")
    plans = plan_comparison(args.method, args.protocol, template, args.seeds)
    plans.sort(key=lambda plan: plan.regime != "frozen")  # the quick frozen rows first, fine-tuning last
    rows = run_plans(plans, _executor(args), _echo)
    table, failed, urls = [], 0, {}
    for row in rows:
        plan = row.plan
        if row.error is not None:  # one broken method must not stop the comparison
            failed += 1
            print(f"FAILED: {plan.label} on {plan.protocol.name}: {type(row.error).__name__}: {row.error}",
                  file=sys.stderr)  # fmt: skip
            table.append([plan.label, plan.protocol.name, "FAILED", "", ""])
            continue
        urls[row.tracker.experiment] = row.tracker.runs_url()
        headline = plan.protocol.headline
        summary = SeedSummary.of(r.metrics[headline] for r in row.results)
        skipped = sum(r.skipped for r in row.results)
        seeds = f"{len(row.results) - skipped} run, {skipped} skipped"
        table.append([plan.label, plan.protocol.name, headline, summary.format(), seeds])
    print(tabulate(table, headers=["method", "protocol", "headline", "mean ± std", "seeds"], disable_numparse=True))
    print("next: python -m benchmark report   (tables and plots in reports/); browse runs with: mlflow ui")
    for experiment, url in urls.items():
        print(f"  {experiment}: {url}")
    if failed:
        print(f"error: {failed} of {len(plans)} runs failed; their MLflow runs are marked FAILED", file=sys.stderr)
        return 1
    return 0


def _echo(line: str) -> None:
    """A progress line on stderr (silenced by ``--quiet``)."""
    from benchmark.ui.progress import is_quiet

    if not is_quiet():
        print(line, file=sys.stderr)


def _print_row(row) -> None:
    """Per-seed main metrics of one method, their seed summary, the CI of the first seed, cache
    use, where it went."""
    protocol, results = row.plan.protocol, row.results
    keys = protocol.main_metrics
    table = [
        [r.run_config.seed, *(f"{r.metrics[k]:.4f}" for k in keys),
         f"{r.seconds:.1f}" + (" (earlier run)" if r.skipped else "")]
        for r in results
    ]  # fmt: skip
    if len(results) > 1:
        table.append(["mean ± std", *(SeedSummary.of(r.metrics[k] for r in results).format() for k in keys), ""])
    headline = protocol.headline
    first = results[0].metrics
    print(f"\n{row.plan.label} on {row.tracker.experiment} (headline: {headline})")
    print(tabulate(table, headers=["seed", *keys, "seconds"], disable_numparse=True))
    if f"{headline}_ci_low" in first:
        print(f"95% CI of {headline} (seed {results[0].run_config.seed}, sentence bootstrap): "
              f"[{first[f'{headline}_ci_low']:.4f}, {first[f'{headline}_ci_high']:.4f}]")  # fmt: skip
    if row.plan.scoring.episodes is not None:
        _print_episodes(first, results[0].run_config.seed)
    fresh = [r for r in results if not r.skipped]
    hits = sum(r.metrics["features/cache_hits"] for r in fresh)
    encoded = sum(r.metrics["features/encoded_sentences"] for r in fresh)
    if hits or encoded:
        print(f"word features: {hits:.0f} cache hits, {encoded:.0f} sentences encoded")
    where = f"MLflow: {row.tracker.uri}, experiment '{row.tracker.experiment}'"
    if row.parent_id is None:
        print(f"every seed had finished before (--force reruns them); {where}")
    else:
        print(f"logged to {where}, parent run {row.parent_id}")
    print(f"browse with: mlflow ui  then open {row.tracker.runs_url()}")


def _print_episodes(metrics: dict[str, float], seed: int) -> None:
    """Few-NERD's figures of each setting (one seed): P, R, F1 with their 95 % CIs over episodes."""
    from benchmark.core.episodes import SETTINGS
    from benchmark.core.episodic import metric_prefix

    def cell(key: str) -> str:
        value = f"{100 * metrics[key]:.2f}"
        if f"{key}_ci_low" in metrics:
            value += f" [{100 * metrics[f'{key}_ci_low']:.2f}, {100 * metrics[f'{key}_ci_high']:.2f}]"
        return value

    names = ("fine/micro_precision", "fine/micro_recall", "fine/micro_f1")
    rows = [[s.name, *(cell(f"{metric_prefix(s)}/{n}") for n in names)] for s in SETTINGS]
    print(f"\nFew-NERD's episode metric, seed {seed} (%, micro over every query set; 95% CI resampling episodes)")
    print(tabulate(rows, headers=["setting", "precision", "recall", "F1"], disable_numparse=True))


def cmd_sweep(args: argparse.Namespace) -> int:
    from benchmark.core.config import format_value
    from benchmark.run.sweep import SweepRequest, run_sweep
    from benchmark.run.tracking import check_reachable, tracking_uri

    check_reachable(tracking_uri())
    request = SweepRequest(
        method=args.method,
        grid=tuple(args.grid),
        grid_file=args.grid_file,
        protocol=args.protocol,
        variant=args.variant,
        settings=tuple(args.set),
        seeds=tuple(args.seeds or (1,)),
        metric=args.metric,
        oracle=args.oracle,
        source=_source(args),
        cache_dir=args.cache_dir,
        force=args.force,
    )
    summary = run_sweep(request, _echo, _executor(args))
    keys = list(summary.points[0].point)
    table = [
        [*(format_value(r.point[k]) for k in keys), r.summary.format(), len(r.values),
         f"{SeedSummary.of(r.seconds).mean:.1f}", f"{r.encoded:.0f}", "<- selected" if r is summary.best else ""]
        for r in summary.points
    ]  # fmt: skip
    headers = [*keys, f"dev {summary.metric} (mean ± std)", "seeds", "s/seed", "sentences encoded", ""]
    print(f"\n{summary.request.method} on {summary.protocol.name}, scored on dev only ({summary.metric})")
    print(tabulate(table, headers=headers, disable_numparse=True))
    chosen = " ".join(f"{k}={format_value(v)}" for k, v in summary.best.point.items())
    best = summary.best.summary.mean
    print(f"selected: {chosen} (dev {summary.metric} {best:.4f}); provenance: {summary.provenance}")
    if request.settings:
        print(f"          (the fixed --set {' '.join(request.settings)} were chosen by hand, not by this sweep)")
    adhoc = "   (ad-hoc settings: `custom`, unranked)" if "--set" in summary.run_command else ""
    print(f"try it:   {summary.run_command} --seeds 1 2 3{adhoc}")
    declaration = f"Settings({summary.provenance!r}, why, {summary.best.point})"
    print(f"rank it:  declare it in the method's `variants` as {declaration}")
    print(f"          and quote the sweep in its card: {summary.command}")
    print(f"logged to MLflow experiment '{summary.experiment}', parent run {summary.parent_run_id}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from benchmark.run.external import EXTERNAL, ScoreRequest, score_files
    from benchmark.run.tracking import check_reachable, tracking_uri

    if args.bootstrap < 0:
        raise BenchmarkError("--bootstrap must be 0 (no CIs) or a positive number of resamples")
    check_reachable(tracking_uri())
    request = ScoreRequest(
        name=args.name,
        protocol=args.protocol,
        files=tuple(args.predictions),
        source=_source(args),
        fmt=args.format,
        provenance=args.provenance or EXTERNAL,
        why=args.why,
        regime=args.regime,
        resamples=args.bootstrap,
    )
    done = score_files(request, _echo)
    from benchmark.core.registry import get_protocol

    keys = get_protocol(args.protocol).main_metrics
    table = [
        [s.seed, s.file.name, *(f"{s.metrics[k]:.4f}" for k in keys), "earlier run" if s.skipped else s.run_id]
        for s in done.seeds
    ]
    if len(done.seeds) > 1:
        table.append(["mean ± std", "", *(SeedSummary.of(s.metrics[k] for s in done.seeds).format() for k in keys), ""])
    print(f"\n{args.name} on {done.tracker.experiment} (provenance {request.provenance})")
    print(tabulate(table, headers=["seed", "file", *keys, "run"], disable_numparse=True))
    print(f"next: python -m benchmark report   (the row beside the others); browse with: mlflow ui  then open "
          f"{done.tracker.runs_url()}")  # fmt: skip
    return 0


def cmd_export_predictions(args: argparse.Namespace) -> int:
    from benchmark.report.publish import export_predictions
    from benchmark.run.tracking import check_reachable, tracking_uri

    if args.runs is None:
        check_reachable(tracking_uri())
    formats = [f.strip() for f in args.format.split(",") if f.strip()] if args.format else None
    written = export_predictions(
        args.out, args.protocol, args.row, formats, args.seeds, args.dataset, args.runs, args.data_dir
    )
    for path in written:
        print(path)
    print(f"{len(written)} files; score them with: python -m benchmark score --protocol {args.protocol} "
          f"--name NAME --predictions FILE ...")  # fmt: skip
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    import time

    from benchmark.report import ReportRequest, default_readme, write_reports
    from benchmark.run.tracking import check_reachable, tracking_uri

    if not 0 < args.alpha < 1 or args.trials < 100:
        raise BenchmarkError("--alpha must lie in (0, 1) and --trials be at least 100")
    if args.runs is None:
        check_reachable(tracking_uri())
    request = ReportRequest(
        dataset=args.dataset,
        protocol=args.protocol,
        regime=args.regime,
        formats=tuple(f.strip() for f in args.format.split(",") if f.strip()),
        out=args.out,
        data_dir=args.data_dir,
        verify=not args.no_verify,
        readme=args.readme if args.readme is not None else default_readme(args.out),
        force=args.force,
        alpha=args.alpha,
        trials=args.trials,
        runs=args.runs,
    )
    started = time.perf_counter()
    written = write_reports(request, _echo)
    print(f"wrote {len(written)} files under {args.out}/ in {time.perf_counter() - started:.1f} s")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import time

    from benchmark.report.publish import export_record
    from benchmark.run.tracking import check_reachable, tracking_uri

    check_reachable(tracking_uri())
    started = time.perf_counter()
    done = export_record(args.out, args.protocol, args.method, data_dir=args.data_dir, echo=_echo)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file()) / 1e6
    print(f"{done.written} runs written, {done.unchanged} unchanged, {done.removed} superseded removed, "
          f"{done.without_predictions} without predictions left out; {args.out}/ holds {size:.1f} MB "
          f"({time.perf_counter() - started:.1f} s)")  # fmt: skip
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    import time

    from benchmark.run.published import import_record
    from benchmark.run.tracking import check_reachable, tracking_uri

    check_reachable(tracking_uri())
    started = time.perf_counter()
    done = import_record(args.record, data_dir=args.data_dir, echo=_echo)
    print(f"{done.added} runs imported under {done.parents} parent runs, {done.present} already in the store "
          f"({tracking_uri()}, {time.perf_counter() - started:.1f} s); browse with: mlflow ui")  # fmt: skip
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from benchmark.core.data.fewnerd import load_corpus
    from benchmark.report.data_stats import entity_counts, split_summary

    corpus = load_corpus(args.dataset, args.data_dir, args.from_hub, not args.no_verify)
    print(f"dataset {corpus.name}: {', '.join(corpus.sources)}")
    print(f"content sha256 {corpus.sha256}; {len(corpus.hierarchy.fine_types)} fine types, "
          f"{len(corpus.hierarchy.coarse_types)} coarse types\n")  # fmt: skip
    print(tabulate(split_summary(corpus), headers="keys", intfmt=","))
    for level in ("coarse", "fine"):
        print(f"\nentities per {level} type\n" + tabulate(entity_counts(corpus, level), headers="keys", intfmt=","))
    return 0


def main(argv: list[str] | None = None) -> int:
    from benchmark.ui.progress import set_quiet

    args = build_parser().parse_args(argv)
    set_quiet(getattr(args, "quiet", False))
    try:
        return args.handler(args)
    except BenchmarkError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the runs in progress are marked KILLED", file=sys.stderr)
        return 130
