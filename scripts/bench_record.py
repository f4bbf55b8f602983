"""The published record's speed: `import` into a fresh SQLite store, and `report --runs`, on the full record.

    python scripts/bench_record.py [reports/runs]

Runs both through the real CLI in a temporary folder (fresh store, fresh output) and prints their
wall-clock seconds, the runs imported and the record's size. Run it on an otherwise idle machine:
the script says how much CPU other processes used meanwhile.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmark.run.cpu import SHARED_ABOVE, measure  # noqa: E402


def timed(command: list[str], env: dict[str, str], cwd: str) -> tuple[float, float, str]:
    with measure() as cpu:
        done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command[2:])} failed:\n{done.stderr}")
    return cpu.wall, cpu.other_cores, (done.stdout.strip().splitlines() or [""])[-1]


def main() -> None:
    record = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "reports" / "runs").resolve()
    files = [p for p in record.rglob("*") if p.is_file()]
    runs = sum(p.suffix == ".json" for p in files)
    print(f"record {record}: {runs} runs, {sum(p.stat().st_size for p in files) / 1e6:.1f} MB; CPUs {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{Path(tmp) / 'mlflow.db'}", "PYTHONPATH": str(REPO)}
        cli = [sys.executable, "-m", "benchmark"]
        steps = {
            "import into a fresh SQLite store": [*cli, "import", str(record)],
            "report --runs into a fresh folder": [*cli, "report", "--runs", str(record), "--out", "out"],
        }
        for name, command in steps.items():
            started = time.strftime("%H:%M:%S")
            seconds, other, last = timed(command, env, tmp)
            shared = "" if other <= SHARED_ABOVE else f"; other processes kept {other:.1f} cores busy meanwhile"
            print(f"{name}: {seconds:.1f} s (started {started}{shared})\n  {last}")


if __name__ == "__main__":
    main()
