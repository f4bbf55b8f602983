"""MLflow's own UI in a real browser: the URL `run` prints opens the runs table of the
harness's experiment, with the run and its dataset."""

from __future__ import annotations

import pytest

from benchmark.cli import main
from benchmark.run.tracking import DEFAULT_UI, Tracker


@pytest.fixture
def mlflow_ui(tmp_path, mlflow_serving):
    """``mlflow ui`` on 127.0.0.1 (a free port) over a fresh SQLite store; stopped afterwards."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    Tracker("embedded/ner", uri)  # the store exists (schema migrated) before the server opens it
    with mlflow_serving(["ui", "--backend-store-uri", uri], tmp_path / "mlflow-ui.log", timeout=120) as address:
        yield uri, address


@pytest.mark.slow
def test_the_printed_url_opens_the_runs_table_with_the_run(page, mlflow_ui, monkeypatch, capsys):  # page first
    """A real run (a parent with its seed run): the URL `run` prints shows it with its dataset."""
    uri, address = mlflow_ui
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert main(["run", "--method", "gazetteer", "--protocol", "ner", "--bootstrap", "0", "--quiet"]) == 0
    printed = capsys.readouterr().out.split("then open ")[-1].strip()
    assert printed.startswith(f"{DEFAULT_UI}/#/experiments/")
    page.goto(printed.replace(DEFAULT_UI, address))
    page.get_by_text("gazetteer:protocol=ner", exact=True).first.wait_for(timeout=60_000)  # the parent row
    assert page.get_by_text("few-nerd/embedded").first.is_visible()  # the Dataset column
    assert page.get_by_text("Traces: 0").count() == 0  # not MLflow 3's GenAI overview
