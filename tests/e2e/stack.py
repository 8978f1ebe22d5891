"""The whole system started the way ``make run`` starts it: ``scripts/run-stack`` under honcho.

The stack gets free ports and its own ``DATA_DIR``. ``EVENTSTORE_URI`` / ``MONGO_URI`` are
removed from its environment so it starts the embedded servers, unless the test session is
pointed at real servers (then they are passed through and only the API and the projector
start). Everything the stack prints goes to one log file, read back when a test fails.

Honcho puts every process in a session of its own, so Ctrl-C (SIGINT to the foreground process
group) reaches only honcho, which then sends SIGTERM to each process. ``interrupt`` does the
same; ``processes`` lists the stack's process tree so a test can check none outlives it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.servers import external_uri

REPO = Path(__file__).resolve().parents[2]
RUN_STACK = REPO / "scripts" / "run-stack"
BIN = Path(sys.executable).parent
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0


def free_port() -> int:
    """A port nothing listens on right now (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True, order=True)
class ProcessInfo:
    """One process of the tree; the start time tells a reused pid from the original."""

    pid: int
    start_ticks: int
    command: str = field(compare=False)


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time) of a live process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces or parentheses.
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0], int(fields[19])


def _command(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def process_tree(root: int) -> list[ProcessInfo]:
    """``root`` and all its live descendants (read from /proc)."""
    children: dict[int, list[int]] = {}
    stats: dict[int, tuple[int, str, int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            stats[int(entry.name)] = stat
            children.setdefault(stat[0], []).append(int(entry.name))
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        if pid in stats and stats[pid][1] != "Z":
            found.append(ProcessInfo(pid, stats[pid][2], _command(pid)))
        pending.extend(children.get(pid, []))
    return sorted(found)


def still_running(process: ProcessInfo) -> bool:
    """Whether this very process (not a later one with its pid) exists and is not a zombie."""
    stat = _stat(process.pid)
    return stat is not None and stat[1] != "Z" and stat[2] == process.start_ticks


@dataclass
class Stack:
    """One ``scripts/run-stack`` run. Build with ``Stack.configure``, then ``start``."""

    data_dir: Path
    log_path: Path
    env: dict[str, str]
    api_url: str
    embedded: tuple[str, ...]
    process: subprocess.Popen[bytes] | None = None
    tree: list[ProcessInfo] = field(default_factory=list)

    @classmethod
    def configure(
        cls,
        data_dir: Path,
        log_path: Path,
        *,
        mongo_database: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> Stack:
        """A stack on free ports over ``data_dir``; real servers from the environment if set."""
        env = {k: v for k, v in os.environ.items() if k not in ("EVENTSTORE_URI", "MONGO_URI")}
        ports = {
            "EVENTSTORE_PORT": free_port(),
            "MONGO_PORT": free_port(),
            "API_PORT": free_port(),
            "PROJECTOR_METRICS_PORT": free_port(),
        }
        env.update({name: str(port) for name, port in ports.items()})
        env.update(DATA_DIR=str(data_dir), LOG_FORMAT="text", PYTHONUNBUFFERED="1")
        if mongo_database:
            env["MONGO_DATABASE"] = mongo_database
        env.update(extra_env or {})
        embedded = []
        for variable, name in (("EVENTSTORE_URI", "eventstore"), ("MONGO_URI", "mongo")):
            uri = external_uri(variable)
            if uri:
                env[variable] = uri
            else:
                embedded.append(name)
        return cls(
            data_dir=data_dir,
            log_path=log_path,
            env=env,
            api_url=f"http://127.0.0.1:{ports['API_PORT']}",
            embedded=tuple(embedded),
        )

    @property
    def client_env(self) -> dict[str, str]:
        """The environment for the CLI next to the stack (``rebuild-projection``, ...): the
        stack's, with the URIs ``run-stack`` derives for the embedded servers."""
        env = dict(self.env)
        env.setdefault(
            "EVENTSTORE_URI", f"esdb://127.0.0.1:{self.env['EVENTSTORE_PORT']}?Tls=false"
        )
        env.setdefault(
            "MONGO_URI", f"mongodb://127.0.0.1:{self.env['MONGO_PORT']}/?directConnection=true"
        )
        return env

    def start(self) -> Stack:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            # A session of its own, like a terminal's foreground job: Ctrl-C reaches the group.
            self.process = subprocess.Popen(
                [str(RUN_STACK)],
                cwd=REPO,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    async def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Poll ``GET /health/ready`` until 200; fail at once if the stack exits meanwhile."""
        assert self.process is not None, "start the stack first"
        deadline = time.monotonic() + timeout_s
        last = "no answer yet"
        async with httpx.AsyncClient(base_url=self.api_url, timeout=5.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"the stack exited with {self.process.returncode} before it was ready"
                    )
                try:
                    response = await client.get("/health/ready")
                except httpx.TransportError as error:
                    last = f"{type(error).__name__}: {error}"
                else:
                    if response.status_code == 200:
                        self.tree = process_tree(self.process.pid)
                        return
                    last = f"{response.status_code} {response.text[:300]}"
                await asyncio.sleep(0.1)  # the poll interval, not a wait for an outcome
        raise TimeoutError(f"GET /health/ready not 200 within {timeout_s:.0f} s: {last}")

    def processes_named(self, program: str) -> list[ProcessInfo]:
        """The stack's processes running ``program`` (seen when it became ready), not counting
        the shells honcho starts them through."""
        return [
            p
            for p in self.tree
            if any(Path(word).name == program for word in p.command.split()[:2])
        ]

    def interrupt(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """Ctrl-C: SIGINT to the stack's process group; returns run-stack's exit code."""
        assert self.process is not None, "start the stack first"
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"the stack did not stop within {timeout_s:.0f} s") from None

    def survivors(self, timeout_s: float = 5.0) -> list[ProcessInfo]:
        """Processes of the tree still running after ``timeout_s`` (the tree just exited, so a
        process may need a moment to be reaped)."""
        deadline = time.monotonic() + timeout_s
        while True:
            alive = [p for p in self.tree if still_running(p)]
            if not alive or time.monotonic() >= deadline:
                return alive
            time.sleep(0.05)  # poll interval while the exiting processes are reaped

    def kill(self) -> None:
        """Clean-up after a failed test: SIGKILL every process group of the tree."""
        tree = set(self.tree)
        if self.process is not None and self.process.poll() is None:
            tree |= set(process_tree(self.process.pid))
        for process in tree:
            if not still_running(process):
                continue  # gone, and its pid may belong to somebody else by now
            try:
                group = os.getpgid(process.pid)
                if group != os.getpgrp():
                    os.killpg(group, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait(10)


class StackFactory:
    """Makes the stacks of one test; they all share one DATA_DIR (a restart keeps the data)."""

    def __init__(self, tmp_path: Path) -> None:
        self.data_dir = tmp_path / "data"
        self.started: list[Stack] = []
        self._tmp_path = tmp_path
        # Against a real MongoDB the read models go to a database of the test's own.
        self._database = f"e2e_{uuid.uuid4().hex}" if external_uri("MONGO_URI") else None

    def __call__(self, **extra_env: str) -> Stack:
        log_path = self._tmp_path / f"stack-{len(self.started) + 1}.log"
        stack = Stack.configure(
            self.data_dir, log_path, mongo_database=self._database, extra_env=extra_env
        )
        self.started.append(stack)
        return stack.start()
