"""Which version of a projection a query reads and how far it has got, resolved in shared rounds.

Every query first resolves its projection's active version and that version's checkpoint: a
read of the registry, then one of the checkpoints. Under load many queries do so at once, and
each pair of reads costs MongoDB as much as the query's own read of the data: at 90 commands/s
on the embedded stack, resolving was half the API's queries and kept the store saturated.

``ActiveModels`` resolves in rounds instead. A query that arrives while no round runs starts one
at once; a query that arrives while one runs joins the next, which starts as soon as the running
one ends and resolves the projections of every query that joined it with the same two reads
(``read_active``). A query is answered only by a round that began after it arrived, so it sees
nothing older than a read of its own would have shown: a caller that changes a checkpoint and
then queries sees the change, as with ``resolve_active``. Alone, a query costs what it did; under
load the rounds take longer and more queries share each one, so the cost of resolving stays near
two reads per round however many queries arrive.

A round runs as a task of its own: a query whose client leaves stops waiting for it, and the
others in the round are answered as usual. A round that fails (MongoDB unavailable) fails every
query in it, each with the round's error.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from shared.contract.read_models import ActiveReadModel, read_active
from shared.ports.document_store import DocumentStore


@dataclass(eq=False)
class _Round:
    wanted: set[str] = field(default_factory=set)
    models: asyncio.Future[dict[str, ActiveReadModel]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class ActiveModels:
    """Resolves active versions for the queries of one process, in shared rounds."""

    def __init__(self, store: DocumentStore) -> None:
        self._store = store
        self._next: _Round | None = None  # gathering queries while a round runs
        self._running: asyncio.Task[None] | None = None
        self._current: _Round | None = None  # the round being read, if any
        self.rounds = 0

    async def resolve(self, projection: str) -> ActiveReadModel:
        """The active version of ``projection`` and its checkpoint, as a round that began
        after this call read them."""
        if self._running is not None and self._running.get_loop() is not asyncio.get_running_loop():
            # Left behind by an event loop that has closed: that round never ends.
            self._running, self._current, self._next = None, None, None
        if self._next is None:
            self._next = _Round()
        round_ = self._next
        round_.wanted.add(projection)
        if self._running is None:
            self._start()
        # Shielded: a query that is cancelled leaves the round to the others.
        models = await asyncio.shield(round_.models)
        return models[projection]

    def _start(self) -> None:
        round_, self._next = self._next, None
        self._current = round_
        if round_ is None:
            self._running = None
            return
        self._running = asyncio.get_running_loop().create_task(
            self._run(round_), name="read-side-resolve-round"
        )

    async def _run(self, round_: _Round) -> None:
        try:
            models = await read_active(self._store, sorted(round_.wanted))
        except Exception as error:
            round_.models.set_exception(error)
            # Retrieved here: the queries that joined may all have left.
            round_.models.exception()
        else:
            round_.models.set_result(models)
        finally:
            self.rounds += 1
            if self._current is round_:  # not a round of a closed loop, finalised late
                self._start()
