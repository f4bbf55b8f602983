"""Seeding and the provenance recorded with every run (code version, package versions)."""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import platform
import random
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
RECORDED_PACKAGES = (
    "numpy", "scipy", "scikit-learn", "pandas", "torch", "transformers",
    "datasets", "lime", "mlflow",
)  # fmt: skip


def seed_everything(seed: int) -> None:
    """Seed python, numpy and (if a method imported it) torch, with deterministic torch ops and
    PyTorch's own TF32 defaults, whatever a run before it in this process set (a fine-tuned run
    sets TF32 explicitly)."""
    random.seed(seed)
    np.random.seed(seed)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = True


def code_version() -> str:
    """The git commit of the checkout, with ``-dirty`` when tracked files are modified."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}-dirty" if status else commit


#: modules that record, score or present results but cannot change a method's predictions (the
#: evaluator is among them: `report` re-scores stored predictions with the current one, and
#: training scores dev with its own `benchmark.training.dev_f1`)
FRONT_ENDS = frozenset(
    {
        "__main__.py",
        "cli.py",
        "executors.py",
        "report.py",
        "claims.py",
        "plots.py",
        "tracking.py",
        "sweep.py",
        "evaluate.py",
        "leaderboard.py",
        "progress.py",
    }
)


def source_fingerprint(method_module: str) -> str:
    """sha256 of the code that computes a method's predictions: ``benchmark/`` (less
    `FRONT_ENDS`), the method's folder and the folders of the methods it imports. A commit that
    touches only the README, reports, the evaluator or another method keeps the fingerprint, so
    finished runs stay valid."""
    folders, todo = set(), [method_module.split(".")[1]]
    while todo:
        folder = REPO_ROOT / "methods" / todo.pop()
        if folder in folders:
            continue
        folders.add(folder)
        for file in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(file.read_text())):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("methods."):
                    todo.append(node.module.split(".")[1])
    files = [f for f in (REPO_ROOT / "benchmark").rglob("*.py") if f.name not in FRONT_ENDS]
    files += [f for folder in folders for f in folder.rglob("*.py")]
    digest = hashlib.sha256()
    for file in sorted(files):
        digest.update(file.relative_to(REPO_ROOT).as_posix().encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
