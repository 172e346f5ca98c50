"""Helpers of the whole-workflow tests: run Snakemake on a config in a working directory.

Shared by tests/test_workflow.py and tests/test_slurm.py; the local demo run they both compare
against is the session-scoped ``demo_run`` fixture in tests/conftest.py (run once per session).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO / "resources" / "configs" / "demo.yaml"
#: cores of the local demo run (and the CPUs of the test SLURM node, so both use the same threads)
DEMO_CORES = 2


def snakemake(workdir: Path, *args: str, configfile: Path = DEMO_CONFIG, check: bool = True,
              cores: int | None = DEMO_CORES, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable, "-m", "snakemake",
        "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir),
        "--configfile", str(configfile),
        *(["--cores", str(cores)] if cores is not None else []),
        *args,
    ]
    env = dict(env if env is not None else os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1400)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stderr[-6000:]}\n{job_logs(workdir)}")
    return proc


def job_logs(workdir: Path, last: int = 6) -> str:
    """The tails of the last few job logs under ``workdir/logs``."""
    logs = sorted((workdir / "logs").rglob("*.log")) if (workdir / "logs").exists() else []
    return "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-3000:]}" for p in logs[-last:])
