"""The stack as ``make run`` starts it, but one process at a time so each can be killed.

``make run`` is ``scripts/run-stack``: it sets the environment (free ports and ``DATA_DIR``
here, from ``tests.e2e.stack.Stack.configure``; the store URIs it derives, from
``Stack.client_env``; ``.venv/bin`` first on ``PATH``) and hands the Procfile to honcho. Honcho
would stop the whole stack when one process dies, so this module runs each Procfile line itself,
with the same shell and environment, and can ``kill -9`` and restart any one of them. Every
incarnation of a process writes its own log file; a process is ready when its log shows the line
it prints once it serves (``ready_marker``).

The Procfile's ``projector`` line may run as several instances (``projector-1`` ..
``projector-N``) sharing the projections through leases (``projector.leases``). Every
incarnation of an instance is an instance of its own to the others: its
``PROJECTOR_INSTANCE_ID`` is its log file's name (``projector-2-3`` is the third start of
``projector-2``), as a restarted process gets a new ``<hostname>:<pid>``; each gets a free
metrics port. Their leases last ``LEASE_S`` unless told otherwise, so that a ``kill -9``'d
owner's projections are taken over within seconds.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.stack import BIN, REPO, Stack, free_port

PROCFILE = REPO / "Procfile"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
POLL_S = 0.02
# What each Procfile process prints once it serves; the projector prints nothing of the kind.
READY_MARKERS = {
    "eventstore": "embedded-eventstore ready: ",
    "mongo": "embedded-mongo ready: ",
    "api": "orders-api ready on ",
}
# Started in this order (each waits for its ready line): stores, then the API, then the projector
# instances (``instance_names``), which run the Procfile's ``projector`` line.
START_ORDER = ("eventstore", "mongo", "api")
PROJECTOR = "projector"
LEASE_S = 2.0  # PROJECTOR_LEASE_S of the soak's projector instances, unless told otherwise


def instance_names(count: int) -> tuple[str, ...]:
    """The names of ``count`` projector instances: ``projector-1`` .. ``projector-<count>``."""
    if count < 1:
        raise ValueError(f"at least one projector instance, not {count}")
    return tuple(f"{PROJECTOR}-{number}" for number in range(1, count + 1))


def procfile_commands(path: Path = PROCFILE) -> dict[str, str]:
    """``name: command`` lines of the Procfile (what honcho runs through a shell)."""
    commands = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, command = line.split(":", 1)
            commands[name.strip()] = command.strip()
    return commands


def rss_kb(pid: int) -> int | None:
    """VmRSS of a live process in kB (``/proc/PID/status``), None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


@dataclass
class Managed:
    """One Procfile process and its incarnations (every start is a new one, with its log)."""

    name: str
    command: str
    log_dir: Path
    instance: bool = False  # a projector instance: every start has an instance id of its own
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    exits: list[int] = field(default_factory=list)  # return codes of every ended incarnation
    unexpected_exits: list[str] = field(default_factory=list)
    rss_start_kb: int | None = None
    rss_end_kb: int | None = None

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}-{self.starts}.log"

    @property
    def instance_id(self) -> str:
        """The ``PROJECTOR_INSTANCE_ID`` of the current (or last) start: its log file's name."""
        assert self.instance, f"{self.name} is not a projector instance"
        return self.log_path.stem

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def spawn(self, env: dict[str, str]) -> None:
        assert not self.running(), f"{self.name} is already running"
        self.starts += 1
        if self.instance:
            env = {
                **env,
                "PROJECTOR_INSTANCE_ID": self.instance_id,
                "PROJECTOR_METRICS_PORT": str(free_port()),
            }
        with self.log_path.open("wb") as log:
            # ``exec`` in every Procfile line makes the shell become the program: the pid is the
            # program's, so a signal reaches the program itself.
            self.process = subprocess.Popen(
                ["/bin/sh", "-c", self.command],
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def reap(self) -> int | None:
        """The exit code if this incarnation ended, recording it once (and noting an exit
        nobody asked for, e.g. a crash)."""
        if self.process is None or self.process.poll() is None:
            return None
        code = self.process.returncode
        if len(self.exits) < self.starts:
            self.exits.append(code)
            if code not in (0, -signal.SIGKILL, -signal.SIGTERM):
                tail = " | ".join(self.output().strip().splitlines()[-5:])
                self.unexpected_exits.append(f"{self.name}#{self.starts} exited {code}: {tail}")
        return code

    def signal(self, signum: int, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """Send ``signum`` and wait for the exit; returns the exit code."""
        assert self.process is not None and self.running(), f"{self.name} is not running"
        self.process.send_signal(signum)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout_s)
            self.unexpected_exits.append(f"{self.name}: {signum} did not stop it in {timeout_s} s")
        code = self.reap()
        assert code is not None
        return code


class SoakStack:
    """The Procfile processes on free ports over ``data_dir``, separately controlled, with
    ``projectors`` instances of the projector."""

    def __init__(
        self, data_dir: Path, log_dir: Path, projectors: int = 1, lease_s: float = LEASE_S
    ) -> None:
        configured = Stack.configure(data_dir, log_dir / "unused.log")
        if configured.embedded != ("eventstore", "mongo"):
            raise RuntimeError("the soak harness kills the stores: it needs the embedded ones")
        self.data_dir = data_dir
        self.api_url = configured.api_url
        # What scripts/run-stack exports: the URIs it derives for the embedded stores, and the
        # virtualenv's programs first on PATH.
        self.env = configured.client_env
        self.env["PATH"] = f"{BIN}{os.pathsep}{self.env.get('PATH', '')}"
        self.env.setdefault("LOG_LEVEL", "INFO")
        self.env["PROJECTOR_LEASE_S"] = str(lease_s)
        commands = procfile_commands()
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir = log_dir
        self.projector_command = commands[PROJECTOR]
        self.processes = {name: Managed(name, commands[name], log_dir) for name in START_ORDER}
        for name in instance_names(projectors):
            self.processes[name] = Managed(name, self.projector_command, log_dir, instance=True)
        self.order = tuple(self.processes)

    @property
    def mongo_uri(self) -> str:
        return self.env["MONGO_URI"]

    @property
    def eventstore_uri(self) -> str:
        return self.env["EVENTSTORE_URI"]

    @property
    def database(self) -> str:
        return self.env.get("MONGO_DATABASE", "orders")

    def __getitem__(self, name: str) -> Managed:
        return self.processes[name]

    @property
    def projectors(self) -> list[Managed]:
        """The projector instances, in start order."""
        return [managed for managed in self.processes.values() if managed.instance]

    def running_instance(self, instance_id: str | None) -> Managed | None:
        """The projector instance running as ``instance_id`` now, if any."""
        for managed in self.projectors:
            if managed.running() and managed.instance_id == instance_id:
                return managed
        return None

    def projector_logs(self) -> list[Path]:
        """The log of every start of every projector instance."""
        return sorted(
            path for m in self.projectors for path in self.log_dir.glob(f"{m.name}-*.log")
        )

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for name in self.order:
            await self.start_one(name)

    def record_rss_start(self) -> None:
        for managed in self.processes.values():
            managed.rss_start_kb = rss_kb(managed.pid)

    async def start_one(self, name: str, env: dict[str, str] | None = None) -> None:
        """Start ``name`` and wait for its ready line (fails at once if it exits first)."""
        managed = self.processes[name]
        managed.reap()
        managed.spawn(env or self.env)
        marker = READY_MARKERS.get(name)
        if marker is None:
            return
        deadline = time.monotonic() + START_TIMEOUT_S
        while marker not in managed.output():
            if managed.reap() is not None:
                raise RuntimeError(f"{name} exited before it was ready:\n{managed.output()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} not ready in {START_TIMEOUT_S} s:\n{managed.output()}")
            await asyncio.sleep(POLL_S)  # poll interval while waiting for the ready line

    async def kill_and_restart(self, name: str, signum: int = signal.SIGKILL) -> int:
        """Stop ``name`` with ``signum`` (on the same file and port) and start it again."""
        code = await asyncio.to_thread(self.processes[name].signal, signum)
        await self.start_one(name)
        return code

    def record_rss_end(self) -> None:
        for managed in self.processes.values():
            if managed.running():
                managed.rss_end_kb = rss_kb(managed.pid)

    def unexpected_exits(self) -> list[str]:
        for managed in self.processes.values():
            managed.reap()
        return [line for m in self.processes.values() for line in m.unexpected_exits]

    def stop(self) -> None:
        """SIGTERM in reverse start order (what honcho does on Ctrl-C), SIGKILL if stuck."""
        for name in reversed(self.order):
            managed = self.processes[name]
            if managed.running():
                managed.signal(signal.SIGTERM)

    def kill_all(self) -> None:
        """Clean-up after a failure: nothing of this stack may outlive the run."""
        for managed in self.processes.values():
            if managed.running():
                assert managed.process is not None
                managed.process.kill()
                managed.process.wait(STOP_TIMEOUT_S)
