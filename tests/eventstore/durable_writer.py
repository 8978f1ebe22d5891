"""Load generator for the kill -9 test: appends until the server goes away, printing each ack.

Usage: python durable_writer.py URI STREAM_PREFIX

Two threads each append to their own stream (``<prefix>-0``, ``<prefix>-1``) with exact expected
revisions, 2-5 events per append. A line is printed only after the server acknowledged the
append: ``<stream> <append number> <size> <last revision> <commit position>``.
"""

from __future__ import annotations

import json
import sys
import threading

from esdbclient import EventStoreDBClient, NewEvent, StreamState

MAX_APPENDS = 20_000  # a bound in case nobody stops us


def write(uri: str, stream: str, lock: threading.Lock) -> None:
    client = EventStoreDBClient(uri)
    revision = -1
    try:
        for number in range(MAX_APPENDS):
            size = 2 + number % 4
            events = [
                NewEvent(
                    type="Durable",
                    data=json.dumps({"append": number, "index": index, "size": size}).encode(),
                )
                for index in range(size)
            ]
            version = StreamState.NO_STREAM if revision < 0 else revision
            position = client.append_to_stream(
                stream, current_version=version, events=events, timeout=5
            )
            revision += size
            with lock:
                print(stream, number, size, revision, position, flush=True)
    except Exception as error:  # the server was killed: that is the point
        print(f"{stream} stopped: {error!r}", file=sys.stderr, flush=True)
    finally:
        client.close()


def main() -> None:
    uri, prefix = sys.argv[1], sys.argv[2]
    lock = threading.Lock()
    threads = [
        threading.Thread(target=write, args=(uri, f"{prefix}-{number}", lock))
        for number in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main()
