"""What a soak run proves afterwards, each by reading the stores directly:

- ``acknowledged_writes_lost``: every command answered 2xx has its event in the log at the
  stream revision (``version``) and commit position it answered;
- ``compare_with_clean_rebuild``: the projector (the Procfile's ``projector run``, same code and
  settings) builds every projection from scratch into a fresh database on the same MongoDB;
  then every document of the stack's read models must equal the clean one. Nothing is ignored:
  every field of a read document derives from the events (their ``occurred_at``, revision and
  position), none from the time the projector applied it;
- ``final_round``: after the faults, order lives whose every command succeeds at the first try,
  each read back fresh with its consistency token (the API recovered without a restart).
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from projector.catalog import subscription_event_types
from projector.projections import all_projections
from shared.adapters.esdb_event_store import EsdbEventStore
from shared.adapters.motor_document_store import MotorDocumentStore
from shared.contract.order_events import order_stream
from shared.contract.read_models import PROJECTION_NAMES, resolve_active
from shared.ports.document_store import Document, DocumentStore
from shared.ports.event_store import RecordedEvent, StreamNotFound
from tests.e2e.stack import free_port
from tests.e2e.traffic import WAIT_MS
from tests.projector.support import wait_for_position
from tests.samples import ADDRESS
from tests.soak.clients import SHIPMENT, key
from tests.soak.http import ApiClient
from tests.soak.record import Ack, Record
from tests.soak.stack import Managed, SoakStack

CATCH_UP_TIMEOUT_S = 300.0
READ_CONCURRENCY = 8
FINAL_READ_ATTEMPTS = 12  # each waits up to WAIT_MS for the projector


async def head_position(events: EsdbEventStore) -> int:
    """The newest position of the events the projector subscribes to."""
    return await events.head_position(subscription_event_types(list(all_projections())))


async def acknowledged_writes_lost(events: EsdbEventStore, acks: Sequence[Ack]) -> list[str]:
    """Acknowledged commands whose event is not in the log where the answer said."""
    by_order: dict[str, list[Ack]] = {}
    for ack in acks:
        by_order.setdefault(ack.order_id, []).append(ack)
    gate = asyncio.Semaphore(READ_CONCURRENCY)
    lost: list[str] = []

    async def check(order_id: str, answered: list[Ack]) -> None:
        async with gate:
            try:
                stream = await events.read_stream(order_stream(uuid.UUID(order_id)))
            except StreamNotFound:
                stream = []
        at: dict[int, RecordedEvent] = {event.revision: event for event in stream}
        for ack in answered:
            event = at.get(ack.version)
            if event is None or event.position != ack.position:
                found = f"position {event.position}" if event else "no event"
                lost.append(
                    f"{ack.command} {order_id} answered version {ack.version} position "
                    f"{ack.position}; the log has {found} at that revision"
                )

    await asyncio.gather(*(check(order_id, answered) for order_id, answered in by_order.items()))
    return lost


@dataclass
class Comparison:
    compared: dict[str, int] = field(default_factory=dict)
    mismatched: dict[str, int] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)


def _difference(ours: Document | None, clean: Document | None) -> str:
    if ours is None or clean is None:
        return "missing in the stack" if ours is None else "not in the clean rebuild"
    fields = sorted(k for k in ours.keys() | clean.keys() if ours.get(k) != clean.get(k))
    return "; ".join(f"{k}: {ours.get(k)!r} != clean {clean.get(k)!r}" for k in fields[:6])


async def _all_documents(store: DocumentStore, name: str) -> dict[Any, Document]:
    active = await resolve_active(store, name)
    return {doc["_id"]: doc for doc in await store.find(active.collection, {})}


async def compare_with_clean_rebuild(
    stack: SoakStack, documents: DocumentStore, head: int
) -> Comparison:
    database = f"soak_clean_{uuid.uuid4().hex[:12]}"
    env = {**stack.env, "MONGO_DATABASE": database, "PROJECTOR_METRICS_PORT": str(free_port())}
    rebuilder = Managed("projector-clean", stack.projector_command, stack.log_dir)
    clean = MotorDocumentStore(stack.mongo_uri, database)
    rebuilder.spawn(env)
    try:
        waiting = asyncio.create_task(
            wait_for_position(clean, head, PROJECTION_NAMES, within_s=CATCH_UP_TIMEOUT_S)
        )
        while not waiting.done():
            if rebuilder.reap() is not None:
                waiting.cancel()
                raise AssertionError(f"the clean rebuild exited early:\n{rebuilder.output()}")
            await asyncio.wait([waiting], timeout=0.2)  # watching the process meanwhile
        await waiting
        await asyncio.to_thread(rebuilder.signal, signal.SIGTERM)
        result = Comparison()
        for name in PROJECTION_NAMES:
            ours, theirs = await _all_documents(documents, name), await _all_documents(clean, name)
            ids = ours.keys() | theirs.keys()
            different = sorted((i for i in ids if ours.get(i) != theirs.get(i)), key=str)
            result.compared[name], result.mismatched[name] = len(ids), len(different)
            for doc_id in different[:5]:
                result.samples.append(
                    f"{name} {doc_id}: {_difference(ours.get(doc_id), theirs.get(doc_id))}"
                )
        return result
    finally:
        if rebuilder.running():
            await asyncio.to_thread(rebuilder.signal, signal.SIGKILL)
        for collection in await clean.list_collections():
            await clean.drop_collection(collection)
        await clean.close()


async def final_round(api: ApiClient, lives: int) -> tuple[Record, list[str]]:
    """``lives`` orders created, placed, paid and shipped, every command 2xx at the first try,
    then each read with the newest token: fresh and at its last version."""
    record, problems = Record(), []

    async def life(number: int) -> Ack | None:
        body = {
            "customer_id": f"final-{number}",
            "currency": "EUR",
            "shipping_address": ADDRESS,
            "items": [{"sku": f"FINAL-{number}", "quantity": 2, "unit_price": 700}],
        }
        created = await record.send(api, "final-create", "POST", "/orders", key=key(), body=body)
        if created is None or created.status_code != 201:
            problems.append(f"final create: {created.status_code if created else 'no answer'}")
            return None
        base = f"/orders/{created.json()['order_id']}"
        for label, path, payload in (
            ("final-place", f"{base}/place", None),
            ("final-pay", f"{base}/payments", {"amount": 1400}),
            ("final-ship", f"{base}/ship", SHIPMENT),
        ):
            answer = await record.send(api, label, "POST", path, key=key(), body=payload)
            if answer is None or answer.status_code != 200:
                problems.append(f"{label}: {answer.status_code if answer else 'no answer'}")
                return None
        return record.acks[-1]

    shipped = [ack for ack in await asyncio.gather(*(life(n) for n in range(lives))) if ack]
    if record.retries:
        problems.append(f"{record.retries} retries in the final round")
    newest = max((ack.position for ack in shipped), default=0)
    for ack in shipped:
        # A stale answer after WAIT_MS only means the projector is still busy: ask again, within
        # a generous bound; a fresh answer must show the last version.
        for _ in range(FINAL_READ_ATTEMPTS):
            response = await api.get(
                f"/orders/{ack.order_id}",
                params={"wait_ms": WAIT_MS},
                headers={"X-Consistency-Token": str(newest)},
            )
            if response.headers.get("X-Read-Model-Stale") != "true":
                break
        fresh = response.headers.get("X-Read-Model-Stale") == "false"
        if response.status_code != 200 or not fresh or response.json()["version"] != ack.version:
            problems.append(f"final read {ack.order_id}: {response.status_code} {response.text}")
    return record, problems
