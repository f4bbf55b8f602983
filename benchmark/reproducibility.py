"""Seeding and the provenance recorded with every run (code version, package versions)."""

from __future__ import annotations

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
    """Seed python, numpy and (if a method imported it) torch, with deterministic torch ops."""
    random.seed(seed)
    np.random.seed(seed)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)


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


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
