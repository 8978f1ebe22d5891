"""Rebuilds started over HTTP: background tasks of the API process, stopped cleanly at shutdown.

Each runs ``projector.facade.rebuild`` (the same zero-downtime rebuild as the
``rebuild-projection`` command) and remembers how it ended, for the status URL. One rebuild per
projection at a time: a second request is refused while this process runs one, or while the
registry shows another process's rebuild alive (its heartbeat is fresh). Two processes asking at
the very same moment are settled by the registry's compare-and-set: the loser's job ends as
``conflict``.

After the switch a rebuild waits for the retire grace period before it drops the old version;
the job stays ``running`` until then. At shutdown every job is asked to stop (the batch in
hand is finished and its checkpoint saved, the claim is released so the next rebuild resumes
it) and cancelled if it does not within the bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from projector.facade import (
    Projection,
    RebuildFailed,
    RebuildInProgress,
    RebuildLost,
    RebuildOutcome,
    live_rebuild,
    rebuild,
)
from shared.contract.versioned_events import utc_now
from shared.ports.document_store import DocumentStore
from shared.ports.event_store import EventStoreReader
from shared.process.logging_setup import redact

log = logging.getLogger(__name__)
JobState = Literal["running", "switched", "interrupted", "failed", "conflict"]


class RebuildJob(BaseModel):
    """A rebuild this API process started."""

    projection: str
    state: JobState = Field(
        description="running (also while the old version waits out its grace period), "
        "switched (done: the new version is active), interrupted (stopped at shutdown; a "
        "new request resumes it), failed (see error), conflict (another process won the claim)"
    )
    started_at: datetime
    finished_at: datetime | None = None
    version: int | None = Field(default=None, description="The version built (once known)")
    previous_version: int | None = None
    events: int | None = Field(default=None, description="Events read by the rebuild")
    error: str | None = None


class RebuildAlreadyRunning(Exception):
    def __init__(self, name: str, where: str) -> None:
        self.name = name
        super().__init__(f"a rebuild of {name!r} is already running ({where})")


class RebuildJobs:
    def __init__(
        self,
        document_store: DocumentStore,
        event_store: EventStoreReader,
        *,
        retire_grace_s: float,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._documents = document_store
        self._events = event_store
        self._retire_grace_s = retire_grace_s
        self._clock = clock
        self._jobs: dict[str, RebuildJob] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stops: dict[str, asyncio.Event] = {}
        self._starting: set[str] = set()
        self._closed = False

    def job(self, name: str) -> RebuildJob | None:
        """The latest rebuild of ``name`` this process started (None if it started none)."""
        return self._jobs.get(name)

    def running(self, name: str) -> bool:
        task = self._tasks.get(name)
        return task is not None and not task.done()

    async def start(self, projection: Projection) -> RebuildJob:
        """Start rebuilding ``projection`` in the background. Raises RebuildAlreadyRunning."""
        name = projection.name
        if self._closed:
            raise RuntimeError("the API is shutting down")
        if self.running(name) or name in self._starting:
            raise RebuildAlreadyRunning(name, "started by this API process")
        # Reserved before the first await, so two requests cannot both get past here.
        self._starting.add(name)
        try:
            version = await live_rebuild(self._documents, name, self._clock())
            if version is not None:
                raise RebuildAlreadyRunning(name, f"version {version}, by another process")
            job = RebuildJob(projection=name, state="running", started_at=self._clock())
            stop = asyncio.Event()
            self._jobs[name] = job
            self._stops[name] = stop
            self._tasks[name] = asyncio.create_task(
                self._run(job, projection, stop), name=f"rebuild-{name}"
            )
        finally:
            self._starting.discard(name)
        log.info("rebuild of %s started in the background", name)
        return job

    async def _run(self, job: RebuildJob, projection: Projection, stop: asyncio.Event) -> None:
        try:
            outcome = await rebuild(
                self._events,
                self._documents,
                projection,
                retire_grace_s=self._retire_grace_s,
                stop=stop,
                clock=self._clock,
            )
        except asyncio.CancelledError:
            self._finish(job, "interrupted", "cancelled at shutdown")
            raise
        except RebuildInProgress as error:
            self._finish(job, "conflict", str(error))
        except (RebuildFailed, RebuildLost) as error:
            self._finish(job, "failed", str(error))
            log.error("rebuild of %s failed: %s", job.projection, redact(str(error)))
        except Exception as error:
            self._finish(job, "failed", f"{type(error).__name__}: {error}")
            log.exception("rebuild of %s failed", job.projection)
        else:
            self._finished(job, outcome)

    def _finished(self, job: RebuildJob, outcome: RebuildOutcome) -> None:
        job.version = outcome.version
        job.previous_version = outcome.previous_version
        job.events = outcome.events
        self._finish(job, "switched" if outcome.switched else "interrupted")
        log.info(
            "rebuild of %s: %s (v%s -> v%d, %d events in %.1fs)",
            job.projection,
            job.state,
            outcome.previous_version,
            outcome.version,
            outcome.events,
            outcome.seconds,
        )

    def _finish(self, job: RebuildJob, state: JobState, error: str | None = None) -> None:
        job.state = state
        job.error = redact(error) if error else None
        job.finished_at = self._clock()

    async def wait(self, name: str) -> None:
        """Until the running rebuild of ``name`` (if any) has ended."""
        task = self._tasks.get(name)
        if task is not None:
            await asyncio.wait({task})

    async def close(self, timeout_s: float = 10.0) -> None:
        """Ask every rebuild to stop, wait up to ``timeout_s``, cancel what is left."""
        self._closed = True
        for stop in self._stops.values():
            stop.set()
        tasks = [task for task in self._tasks.values() if not task.done()]
        if not tasks:
            return
        log.info("stopping %d rebuild(s); each resumes on the next request", len(tasks))
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for task in pending:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
