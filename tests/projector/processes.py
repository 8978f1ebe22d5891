"""Running ``projector`` as a real process (``python -m projector``), for kill and signal tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def projector_env(
    eventstore_uri: str, mongo_uri: str, database: str, **extra: str
) -> dict[str, str]:
    env = {
        **os.environ,
        "EVENTSTORE_URI": eventstore_uri,
        "MONGO_URI": mongo_uri,
        "MONGO_DATABASE": database,
        "PROJECTOR_METRICS_PORT": "0",
        "PROJECTOR_STARTUP_WAIT_S": "20",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    env.update(extra)
    return env


def start_projector(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "projector", *(args or ("run",))],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def run_projector(env: dict[str, str], *args: str, timeout: float = 60) -> tuple[int, str]:
    """Run a command to completion: (exit code, output)."""
    done = subprocess.run(
        [sys.executable, "-m", "projector", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr
