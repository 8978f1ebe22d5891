"""One contract for the document store port, run against every implementation.

Subclasses provide the ``store`` fixture only: a store on an empty database of its own. The
motor adapter runs it over embedded-mongo, or a real MongoDB when MONGO_URI is set. The
operation shapes exercised here (conditional upserts, ``$setOnInsert``, ``$max``, escaped map
keys, aggregation-pipeline updates) are the ones the projections emit, so they are checked on
both servers.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

from shared.adapters.motor_document_store import DocumentStoreError, MotorDocumentStore
from shared.errors import ServiceError
from shared.ports.document_store import (
    MAX_BATCH,
    DeleteOne,
    DocumentStore,
    IndexSpec,
    ReplaceOne,
    UpdateOne,
)
from shared.ports.errors import StoreUnavailable
from tests.conftest import unique
from tests.misbehaving_servers import TurningProxy, silent_server

T0 = datetime(2025, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)


def at(position: int, doc_id: str, **inc: int) -> UpdateOne:
    """The projections' pattern: applied only while the document is behind ``position``."""
    return UpdateOne(
        {"_id": doc_id, "_position": {"$lt": position}},
        {"$inc": inc or {"n": 1}, "$set": {"_position": position}},
        upsert=True,
    )


async def snapshot(store: DocumentStore, collection: str) -> list[dict[str, Any]]:
    return await store.find(collection, {}, sort=[("_id", 1)])


class DocumentStoreContract:
    """What every DocumentStore implementation promises."""

    async def test_find_one_returns_none_when_nothing_matches(self, store: DocumentStore) -> None:
        assert await store.find_one(unique("c"), {"_id": "missing"}) is None

    async def test_upsert_inserts_with_filter_equalities_then_updates(
        self, store: DocumentStore
    ) -> None:
        c = unique("c")
        await store.bulk_write(c, [UpdateOne({"_id": "a"}, {"$set": {"x": 1}}, upsert=True)])
        await store.bulk_write(c, [UpdateOne({"_id": "a"}, {"$set": {"y": 2}})])
        assert await store.find_one(c, {"_id": "a"}) == {"_id": "a", "x": 1, "y": 2}

    async def test_update_without_upsert_changes_nothing_when_nothing_matches(
        self, store: DocumentStore
    ) -> None:
        c = unique("c")
        await store.bulk_write(c, [UpdateOne({"_id": "a"}, {"$set": {"x": 1}})])
        assert await store.find(c, {}) == []

    async def test_replace_and_delete(self, store: DocumentStore) -> None:
        c = unique("c")
        await store.bulk_write(
            c,
            [
                ReplaceOne({"_id": "a"}, {"v": 1, "old": True}, upsert=True),
                ReplaceOne({"_id": "a"}, {"v": 2}, upsert=True),
                ReplaceOne({"_id": "b"}, {"v": 3}, upsert=True),
                ReplaceOne({"_id": "missing"}, {"v": 4}),
                DeleteOne({"_id": "b"}),
            ],
        )
        assert await snapshot(store, c) == [{"_id": "a", "v": 2}]

    async def test_ops_apply_in_the_order_given(self, store: DocumentStore) -> None:
        c = unique("c")
        await store.bulk_write(
            c,
            [
                UpdateOne({"_id": "a"}, {"$set": {"n": 1}}, upsert=True),
                UpdateOne({"_id": "a"}, {"$inc": {"n": 10}}),
                DeleteOne({"_id": "a"}),
                UpdateOne({"_id": "a"}, {"$inc": {"n": 5}}, upsert=True),
                UpdateOne({"_id": "a"}, {"$set": {"last": True}}),
            ],
        )
        assert await snapshot(store, c) == [{"_id": "a", "n": 5, "last": True}]

    async def test_conditional_upsert_applied_again_changes_nothing(
        self, store: DocumentStore
    ) -> None:
        c = unique("c")
        ops = [at(p, doc) for p in range(1, 6) for doc in ("a", "b")]
        await store.bulk_write(c, ops)
        first = await snapshot(store, c)
        await store.bulk_write(c, ops)
        await store.bulk_write(c, ops[3:7])
        assert await snapshot(store, c) == first
        assert first == [{"_id": "a", "n": 5, "_position": 5}, {"_id": "b", "n": 5, "_position": 5}]

    async def test_stale_ops_do_not_stop_later_ops_of_the_same_call(
        self, store: DocumentStore
    ) -> None:
        c = unique("c")
        await store.bulk_write(c, [at(10, "a")])
        # Stale upserts (duplicate _id) between fresh ones, on several documents.
        await store.bulk_write(
            c, [at(3, "a"), at(4, "b"), at(5, "a"), at(6, "a"), at(11, "a"), at(12, "c")]
        )
        assert await snapshot(store, c) == [
            {"_id": "a", "n": 2, "_position": 11},
            {"_id": "b", "n": 1, "_position": 4},
            {"_id": "c", "n": 1, "_position": 12},
        ]

    async def test_a_call_of_450_ops_is_applied_in_order_across_chunks(
        self, store: DocumentStore
    ) -> None:
        c = unique("c")
        ops = [at(p, "counter") for p in range(1, 451)]
        ops[::50] = [at(p, f"doc-{p:03d}") for p in range(1, 451, 50)]
        await store.bulk_write(c, ops)
        counter = await store.find_one(c, {"_id": "counter"})
        assert counter == {"_id": "counter", "n": 441, "_position": 450}
        assert len(await store.find(c, {"_id": {"$regex": "^doc-"}})) == 9
        before = await snapshot(store, c)
        # Re-delivery of a slice with fresh ops among the stale ones: the stale ops change
        # nothing and do not stop the fresh ones.
        replay = ops[190:215]
        replay[9], replay[10], replay[-1] = at(451, "counter"), at(452, "new"), at(453, "counter")
        await store.bulk_write(c, replay)
        after = await snapshot(store, c)
        assert [d for d in after if d["_id"] not in ("counter", "new")] == [
            d for d in before if d["_id"] != "counter"
        ]
        assert await store.find_one(c, {"_id": "counter"}) == {
            "_id": "counter",
            "n": 443,
            "_position": 453,
        }
        assert await store.find_one(c, {"_id": "new"}) == {"_id": "new", "n": 1, "_position": 452}

    async def test_insert_only_fields_inc_max_and_escaped_map_keys(
        self, store: DocumentStore
    ) -> None:
        c = unique("c")

        def op(position: int, when: datetime, amount: int) -> UpdateOne:
            return UpdateOne(
                {"_id": "s", "_position": {"$lt": position}},
                {
                    "$setOnInsert": {"counts.other": 0, "paid": {}, "first": position},
                    "$inc": {"counts.draft": 1, "open": -1, "by.EUR%3Aa%2Eb%24": amount},
                    "$max": {"last_at": when},
                    "$set": {"_position": position, "by.EUR%3Aa%2Eb%24x.sku": "a.b$"},
                },
                upsert=True,
            )

        await store.bulk_write(c, [op(1, T0, 5), op(2, T0 - timedelta(days=1), 7)])
        assert await store.find_one(c, {"_id": "s"}) == {
            "_id": "s",
            "counts": {"other": 0, "draft": 2},
            "paid": {},
            "first": 1,
            "open": -2,
            "by": {"EUR%3Aa%2Eb%24": 12, "EUR%3Aa%2Eb%24x": {"sku": "a.b$"}},
            "last_at": T0,
            "_position": 2,
        }

    async def test_max_of_a_date_over_null(self, store: DocumentStore) -> None:
        c = unique("c")
        await store.bulk_write(
            c,
            [
                UpdateOne({"_id": "s"}, {"$set": {"last_at": None}}, upsert=True),
                UpdateOne({"_id": "s"}, {"$max": {"last_at": T0}}),
            ],
        )
        assert await store.find_one(c, {"_id": "s"}) == {"_id": "s", "last_at": T0}

    async def test_aggregation_pipeline_updates(self, store: DocumentStore) -> None:
        c = unique("c")

        def add(position: int, sku: str, quantity: int) -> UpdateOne:
            items: Any = {"$ifNull": ["$items", []]}
            literal_sku = {"$literal": sku}
            raised = {
                "$map": {
                    "input": items,
                    "as": "line",
                    "in": {
                        "$cond": [
                            {"$eq": ["$$line.sku", literal_sku]},
                            {
                                "$mergeObjects": [
                                    "$$line",
                                    {"quantity": {"$add": ["$$line.quantity", quantity]}},
                                ]
                            },
                            "$$line",
                        ]
                    },
                }
            }
            appended = {"$concatArrays": [items, [{"sku": literal_sku, "quantity": quantity}]]}
            has = {"$in": [literal_sku, {"$ifNull": ["$items.sku", []]}]}
            return UpdateOne(
                {"_id": "o", "_position": {"$lt": position}},
                [
                    {"$set": {"items": {"$cond": [has, raised, appended]}}},
                    {"$set": {"total": {"$sum": "$items.quantity"}}},
                    {"$set": {"left": {"$subtract": ["$total", {"$ifNull": ["$paid", 0]}]}}},
                    {"$set": {"_position": {"$literal": position}, "at": {"$literal": T0}}},
                ],
                upsert=True,
            )

        remove = UpdateOne(
            {"_id": "o", "_position": {"$lt": 5}},
            [
                {
                    "$set": {
                        "items": {
                            "$filter": {
                                "input": "$items",
                                "as": "line",
                                "cond": {"$ne": ["$$line.sku", {"$literal": "$a.b"}]},
                            }
                        }
                    }
                },
                {"$set": {"total": {"$sum": "$items.quantity"}, "_position": {"$literal": 5}}},
            ],
        )
        ops = [add(1, "$a.b", 2), add(2, "x", 1), add(3, "$a.b", 3), add(4, "y", 4), remove]
        await store.bulk_write(c, ops)
        expected = {
            "_id": "o",
            "items": [{"sku": "x", "quantity": 1}, {"sku": "y", "quantity": 4}],
            "total": 5,
            "left": 10,
            "_position": 5,
            "at": T0,
        }
        assert await store.find_one(c, {"_id": "o"}) == expected
        await store.bulk_write(c, ops)
        assert await store.find_one(c, {"_id": "o"}) == expected

    async def test_find_filters_sorts_and_limits(self, store: DocumentStore) -> None:
        c = unique("c")
        docs = [
            {
                "_id": f"o{i}",
                "customer": "k" if i % 2 else "j",
                "at": T0 + timedelta(minutes=i // 2),
            }
            for i in range(10)
        ]
        await store.bulk_write(c, [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in docs])
        newest = [("at", -1), ("_id", -1)]
        page = await store.find(c, {"customer": "k"}, sort=newest, limit=2)
        assert [d["_id"] for d in page] == ["o9", "o7"]
        last = page[-1]
        after = {"$or": [{"at": {"$lt": last["at"]}}, {"at": last["at"], "_id": {"$lt": "o7"}}]}
        rest = await store.find(c, {"customer": "k", **after}, sort=newest)
        assert [d["_id"] for d in rest] == ["o5", "o3", "o1"]
        assert [d["_id"] for d in await store.find(c, {}, sort=[("_id", 1)], limit=0)] == [
            f"o{i}" for i in range(10)
        ]
        assert await store.find(c, {"customer": "nobody"}) == []

    async def test_datetimes_come_back_aware_in_utc_at_millisecond_precision(
        self, store: DocumentStore
    ) -> None:
        c = unique("c")
        written = datetime(2025, 3, 1, 14, 0, 0, 123456, tzinfo=UTC)
        await store.bulk_write(c, [UpdateOne({"_id": "t"}, {"$set": {"at": written}}, upsert=True)])
        found = await store.find_one(c, {"_id": "t"})
        assert found is not None
        assert found["at"] == written.replace(microsecond=123000)
        assert found["at"].utcoffset() == timedelta(0)

    async def test_a_unique_index_rejects_duplicates_even_from_an_upsert(
        self, store: DocumentStore
    ) -> None:
        c = unique("c")
        index = IndexSpec(keys=(("email", 1),), unique=True, name="email_unique")
        await store.ensure_indexes(c, [index])
        await store.ensure_indexes(c, [index])  # idempotent
        await store.bulk_write(c, [UpdateOne({"_id": "a"}, {"$set": {"email": "x"}}, upsert=True)])
        with pytest.raises(ServiceError):
            await store.bulk_write(
                c, [UpdateOne({"_id": "b"}, {"$set": {"email": "x"}}, upsert=True)]
            )
        assert [d["_id"] for d in await snapshot(store, c)] == ["a"]

    async def test_partial_and_compound_indexes(self, store: DocumentStore) -> None:
        c = unique("c")
        await store.ensure_indexes(
            c,
            [
                IndexSpec(
                    keys=(("code", 1),),
                    unique=True,
                    name="active_code",
                    partial_filter={"active": True},
                ),
                IndexSpec(keys=(("customer", 1), ("at", -1), ("_id", -1)), name="newest"),
            ],
        )
        await store.bulk_write(
            c,
            [
                ReplaceOne({"_id": "a"}, {"code": "x", "active": False}, upsert=True),
                ReplaceOne({"_id": "b"}, {"code": "x", "active": True}, upsert=True),
            ],
        )
        with pytest.raises(ServiceError):
            await store.bulk_write(
                c, [ReplaceOne({"_id": "c"}, {"code": "x", "active": True}, upsert=True)]
            )

    async def test_drop_and_list_collections(self, store: DocumentStore) -> None:
        first, second = unique("c"), unique("c")
        for name in (first, second):
            await store.bulk_write(name, [UpdateOne({"_id": 1}, {"$set": {"x": 1}}, upsert=True)])
        assert {first, second} <= set(await store.list_collections())
        await store.drop_collection(first)
        await store.drop_collection(unique("never-existed"))
        names = set(await store.list_collections())
        assert second in names and first not in names
        assert await store.find_one(first, {}) is None

    async def test_ping(self, store: DocumentStore) -> None:
        await store.ping()

    async def test_bulk_write_counts_only_the_operations_that_changed_a_document(
        self, store: DocumentStore
    ) -> None:
        c = unique("c")
        fresh = [at(5, "a"), at(5, "b"), UpdateOne({"_id": "c"}, {"$set": {"x": 1}}, upsert=True)]
        assert (await store.bulk_write(c, fresh)).changed == 3
        # A compare-and-set that lost (stale upsert, filter matching nothing), an update of a
        # missing document: none counted. A replace and a delete are.
        mixed = [
            at(4, "a"),
            at(6, "b"),
            UpdateOne({"_id": "nobody"}, {"$set": {"x": 1}}),
            ReplaceOne({"_id": "c", "x": 2}, {"x": 3}),
            ReplaceOne({"_id": "c"}, {"x": 4}),
            DeleteOne({"_id": "a"}),
        ]
        assert (await store.bulk_write(c, mixed)).changed == 3
        assert (await store.bulk_write(c, [])).changed == 0

    async def test_find_by_ids_reads_more_ids_than_one_query_may_name(
        self, store: DocumentStore
    ) -> None:
        c = unique("c")
        # Beyond embedded-mongo's 495-value $in and several MAX_BATCH chunks.
        ids = [f"d{i:04d}" for i in range(3 * MAX_BATCH + 7)]
        for start in range(0, len(ids), MAX_BATCH):
            chunk = ids[start : start + MAX_BATCH]
            written = await store.bulk_write(
                c, [UpdateOne({"_id": i}, {"$set": {"n": 1}}, upsert=True) for i in chunk]
            )
            assert written.changed == len(chunk)
        found = await store.find_by_ids(c, [*ids, "missing", ids[0]])
        assert sorted(d["_id"] for d in found) == ids
        assert await store.find_by_ids(c, []) == []

    async def test_find_by_ids_of_one_id(self, store: DocumentStore) -> None:
        c = unique("c")
        await store.bulk_write(
            c, [UpdateOne({"_id": "a", "n": 1}, {"$set": {"n": 1}}, upsert=True)]
        )
        assert await store.find_by_ids(c, ["a"]) == [{"_id": "a", "n": 1}]
        assert await store.find_by_ids(c, ["a", "a"]) == [{"_id": "a", "n": 1}]
        assert await store.find_by_ids(c, ["missing"]) == []

    async def test_find_refuses_an_in_longer_than_max_batch(self, store: DocumentStore) -> None:
        many = [str(i) for i in range(MAX_BATCH + 1)]
        with pytest.raises(ValueError, match="find_by_ids"):
            await store.find(unique("c"), {"_id": {"$in": many}})
        with pytest.raises(ValueError, match="find_by_ids"):
            await store.find(unique("c"), {"$or": [{"x": 1}, {"y": {"$in": many}}]})


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class TestMotorDocumentStore(DocumentStoreContract):
    @pytest.fixture
    def store(self, document_store: MotorDocumentStore) -> DocumentStore:
        return document_store

    async def test_unreachable_server_raises_store_unavailable(self) -> None:
        uri = f"mongodb://127.0.0.1:{closed_port()}/?directConnection=true"
        store = MotorDocumentStore(uri, "unreachable", server_selection_timeout_ms=100, attempts=2)
        try:
            with pytest.raises(StoreUnavailable) as raised:
                await store.ping()
            assert raised.value.store == "mongodb"
            with pytest.raises(StoreUnavailable):
                await store.find_one("c", {})
            with pytest.raises(StoreUnavailable):
                await store.bulk_write("c", [at(1, "a")])
        finally:
            await store.close()

    async def test_a_server_turning_to_garbage_mid_session_is_unavailable(
        self, mongo_uri: str
    ) -> None:
        # The connections are open and working; then every answer is garbage. Reads used to
        # fail with a driver error other than ConnectionFailure (ProtocolError): a 500, not 503.
        upstream = urlsplit(mongo_uri)
        assert upstream.hostname is not None and upstream.port is not None
        async with TurningProxy((upstream.hostname, upstream.port)) as proxy:
            store = _bounded_store(f"mongodb://127.0.0.1:{proxy.port}/?directConnection=true")
            try:
                await store.bulk_write("c", [at(1, "a")])
                assert await store.find_one("c", {"_id": "a"}) is not None
                proxy.turn()
                await _every_call_is_unavailable(store)
            finally:
                await store.close()

    async def test_a_server_that_never_answers_is_unavailable_within_the_call_bound(
        self,
    ) -> None:
        async with silent_server() as port:
            store = _bounded_store(f"mongodb://127.0.0.1:{port}/?directConnection=true")
            try:
                await _every_call_is_unavailable(store)
            finally:
                await store.close()

    async def test_stale_ops_at_chunk_boundaries(
        self, mongo_uri: str, mongo_database_name: str
    ) -> None:
        store = MotorDocumentStore(mongo_uri, mongo_database_name, chunk_size=4)
        c = unique("c")
        try:
            await store.bulk_write(c, [at(p, "a") for p in range(1, 11)])
            # Stale ops last in a chunk, first in the next, and a whole stale chunk.
            ops = [at(11, "b"), at(12, "b"), at(13, "b"), at(3, "a")]
            ops += [at(4, "a"), at(14, "a"), at(15, "b"), at(16, "c")]
            ops += [at(5, "a"), at(6, "a"), at(7, "a"), at(8, "a")]
            ops += [at(17, "a")]
            await store.bulk_write(c, ops)
            assert await snapshot(store, c) == [
                {"_id": "a", "n": 12, "_position": 17},
                {"_id": "b", "n": 4, "_position": 15},
                {"_id": "c", "n": 1, "_position": 16},
            ]
        finally:
            await store.drop_collection(c)
            await store.close()

    async def test_a_rejected_op_names_its_index_in_the_call(
        self, mongo_uri: str, mongo_database_name: str
    ) -> None:
        store = MotorDocumentStore(mongo_uri, mongo_database_name, chunk_size=4)
        c = unique("c")
        ops: list[UpdateOne] = [at(p, "a") for p in range(1, 11)]
        ops.append(UpdateOne({"_id": "a"}, {"$set": {"x": 1}, "$inc": {"x": 1}}))
        ops.append(at(11, "a"))
        try:
            with pytest.raises(DocumentStoreError) as raised:
                await store.bulk_write(c, ops)
            assert raised.value.op_index == 10
            assert raised.value.collection == c
            assert await store.find_one(c, {"_id": "a"}) == {"_id": "a", "n": 10, "_position": 10}
        finally:
            await store.drop_collection(c)
            await store.close()

    def test_chunks_are_at_most_200_ops(self) -> None:
        with pytest.raises(ValueError, match="chunk_size"):
            MotorDocumentStore("mongodb://127.0.0.1:1", "x", chunk_size=201)


def _bounded_store(uri: str) -> MotorDocumentStore:
    return MotorDocumentStore(
        uri,
        unique("misbehaving").replace("-", "_")[:40],
        server_selection_timeout_ms=300,
        connect_timeout_ms=300,
        socket_timeout_ms=300,
        attempts=2,
        max_backoff_s=0.05,
        call_timeout_s=2.0,
    )


async def _every_call_is_unavailable(store: MotorDocumentStore) -> None:
    calls: list[Callable[[], Awaitable[object]]] = [
        store.ping,
        lambda: store.find_one("c", {"_id": "a"}),
        lambda: store.find("c", {}),
        lambda: store.find_by_ids("c", ["a", "b"]),
        lambda: store.bulk_write("c", [at(2, "a")]),
    ]
    for call in calls:
        with pytest.raises(StoreUnavailable) as raised:
            async with asyncio.timeout(30):  # a bound on failing only; the store's is 2 s
                await call()
        assert raised.value.store == "mongodb"
