"""MLflow's own UI in a real browser: the URL `run` prints opens the runs table of the
harness's experiment, with the run and its dataset."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from benchmark.cli import main
from benchmark.tracking import DEFAULT_UI, Tracker


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_ui(tmp_path):
    """``mlflow ui`` on 127.0.0.1 (a free port) over a fresh SQLite store; stopped afterwards."""
    uri, port = f"sqlite:///{tmp_path / 'mlflow.db'}", _free_port()
    Tracker("embedded/ner", uri)  # the store exists (schema migrated) before the server opens it
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1"]
    log = tmp_path / "mlflow-ui.log"
    with log.open("w") as output:
        server = subprocess.Popen([*command, "--port", str(port)], stdout=output, stderr=subprocess.STDOUT)
    address = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{address}/health", timeout=2):
                    break
            except OSError:
                if server.poll() is not None:
                    pytest.fail(f"mlflow ui exited: {log.read_text()[-2000:]}")
                if time.monotonic() > deadline:
                    pytest.fail("mlflow ui did not answer /health within 120 s")
                time.sleep(0.5)
        yield uri, address
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


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
