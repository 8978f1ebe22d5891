"""Start the embedded servers as subprocesses for tests, or use real ones from the environment.

Each server is started on a free port (``--port 0``) in a temporary directory; the helper waits
for its "ready" line (no sleeping) and stops it with SIGTERM afterwards.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

READY = re.compile(r" ready: (\S+)")
START_TIMEOUT_S = 30.0
BIN = Path(sys.executable).parent


@dataclass
class ServerProcess:
    """A running embedded server: its URI, process and everything it printed so far."""

    name: str
    command: list[str]
    uri: str = ""
    process: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)

    def start(self) -> ServerProcess:
        self.process = subprocess.Popen(
            self.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        ready = threading.Event()
        threading.Thread(target=self._pump, args=(ready,), daemon=True).start()
        if not ready.wait(START_TIMEOUT_S) or not self.uri:
            self.kill()
            raise RuntimeError(f"{self.name} did not become ready:\n" + "".join(self.output))
        return self

    def _pump(self, ready: threading.Event) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            match = READY.search(line)
            if match and not self.uri:
                self.uri = match.group(1)
                ready.set()
        ready.set()  # process ended: wake the waiter so it fails fast

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        """SIGKILL: no chance to clean up (crash tests)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def eventstore_server(db_path: Path, port: int = 0, *flags: str) -> ServerProcess:
    command = [str(BIN / "embedded-eventstore"), "--db", str(db_path), "--port", str(port)]
    return ServerProcess("embedded-eventstore", [*command, *flags])


def mongo_server(db_path: Path | None, port: int = 0) -> ServerProcess:
    storage = ["--db", str(db_path)] if db_path is not None else ["--memory"]
    return ServerProcess(
        "embedded-mongo", [str(BIN / "embedded-mongo"), *storage, "--port", str(port)]
    )


def external_uri(variable: str) -> str | None:
    """The URI of a real server named by the environment, if any."""
    return os.environ.get(variable) or None
