"""`embedded-eventstore`: an EventStoreDB-compatible gRPC server on SQLite (development, tests).

esdbclient (sync and async) uses it as it uses a single EventStoreDB 23.10 node without TLS.

- `__main__`: command line, signals, the ready line.
- `server`: the grpc.aio server and its services.
- `streams_service`: Streams.Read/Append/BatchAppend/Delete/Tombstone; `append_answers` builds
  the append responses, `reads` the finite reads, `subscriptions` the catch-up subscriptions,
  `read_batches` their pages (on reader threads), `read_encoding` the event messages as bytes,
  `filters` the `$all` filters, `wire` the other protobuf conversions.
- `cluster_services`: Gossip and PersistentSubscriptions.List.
- `expected_revision`: the pure expected-revision and idempotency rules.
- `event_store` (threads and commit notifications), `group_commit` (concurrent writes share
  one transaction), `writer` (the one write connection), `storage` (schema and read queries),
  `records` (plain records).
- `errors`: deliberate gRPC errors and the handler guards.
"""
