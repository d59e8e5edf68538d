"""The production shape for tests: built artifacts, a fresh venv, PostgreSQL, Airflow's components.

Everything listens on 127.0.0.1 on free ports and lives in temporary directories; every process is
started in its own session and stopped by its process group, then by PID (see :class:`Processes`).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Dists:
    """The artifacts ``python -m build`` made: the sdist, and the wheel built from that sdist."""

    wheel: Path
    sdist: Path


def build_dists(out: Path) -> Dists:
    """Build the sdist, then the wheel from it (isolated build env, as a release would)."""
    run = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, f"python -m build failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return Dists(wheel=wheel, sdist=sdist)
