"""The provenance recorded with every run: code version, code fingerprint, package versions."""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from benchmark.core.encoders import file_sha256

if TYPE_CHECKING:
    from benchmark.run.plan import RunPlan

REPO_ROOT = Path(__file__).resolve().parents[2]
RECORDED_PACKAGES = (
    "numpy", "scipy", "scikit-learn", "pandas", "torch", "transformers",
    "datasets", "lime", "mlflow",
)  # fmt: skip


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


#: the packages whose modules can change a prediction (everything else records, scores or shows)
PREDICTING = ("benchmark.core", "methods")
#: the harness's own part of every prediction: seeding, the method's context, the protocol's check
HARNESS = "benchmark.core.fit"


def prediction_modules(method_module: str, root: Path = REPO_ROOT) -> list[str]:
    """The modules of `PREDICTING` that ``method_module`` and `HARNESS` import, directly or
    through each other (imports inside functions too), with the packages that hold them."""
    found: set[str] = set()
    todo = [method_module, HARNESS]
    while todo:
        name = todo.pop()
        path = _module_file(name, root)
        if name in found or path is None or not _predicting(name):
            continue
        found.add(name)
        todo += [name.rsplit(".", k)[0] for k in range(1, name.count(".") + 1)]  # its packages
        todo += _imported(path, name)
    return sorted(found)


def _predicting(name: str) -> bool:
    return any(name == package or name.startswith(f"{package}.") for package in PREDICTING)


def _module_file(name: str, root: Path) -> Path | None:
    """The file of a module or package under ``root``; None for a name that is neither (an
    attribute named in ``from module import name``)."""
    base = root.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imported(path: Path, name: str) -> list[str]:
    """Every module name a file's import statements may load: ``import a.b`` gives ``a.b``,
    ``from a import b`` gives ``a`` and ``a.b`` (which may be a module), relative imports resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module) if part)
            names += [module, *(f"{module}.{alias.name}" for alias in node.names)]
    return names


def code_fingerprint(method_module: str, protocol: object, root: Path = REPO_ROOT) -> str:
    """sha256 of what computes a run's predictions: the files of `prediction_modules` (their
    paths and bytes) and the definition of its ``protocol``. Editing the evaluator, a report, the
    orchestration, another method or the list of protocols keeps it, so finished runs stay valid;
    editing a module the method's predictions import changes it."""
    # what a protocol shows (headline, summary, main metrics) changes no prediction: left out
    definition = (protocol.name, protocol.train_level, protocol.test_spans)  # type: ignore[attr-defined]
    digest = hashlib.sha256(repr(definition).encode() + b"\0")
    for name in prediction_modules(method_module, root):
        path = _module_file(name, root)
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def row_fingerprint(plan: RunPlan) -> str:
    """What a row's run key records as its code: its `code_fingerprint`; for a method whose class
    has an ``input_files(config)`` hook (the files it predicts with but the harness does not ship,
    such as `checkpoint`'s model), the sha256 of that fingerprint and the names and bytes of those
    files, so a changed file at the same path is a new run. Methods without the hook keep exactly
    their `code_fingerprint`. The driver and every worker (`check_same_inputs`) call this one."""
    code = code_fingerprint(plan.method_cls.__module__, plan.protocol)
    hook = getattr(plan.method_cls, "input_files", None)
    if hook is None:
        return code
    digest = hashlib.sha256(code.encode() + b"\0")
    for path in hook(plan.config):
        digest.update(Path(path).name.encode() + b"\0" + _file_sha256(Path(path)).encode() + b"\0")
    return digest.hexdigest()


_hashed: dict[tuple[str, int, int], str] = {}  # (file, size, mtime) → sha256, for this process


def _file_sha256(path: Path) -> str:
    """sha256 of a file's bytes (read once per process while its size and mtime stay)."""
    stat = path.stat()
    stamp = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if stamp not in _hashed:
        _hashed[stamp] = file_sha256(path)
    return _hashed[stamp]


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
