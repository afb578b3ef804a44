"""Targets of the processes spawned by test_events.py (imports nothing but the store and _helpers).

Events are the only way a parent learns where a child is: ``reached`` is set when the child stops, and it
waits for ``go`` before going on (or is killed).
"""

from __future__ import annotations

import time
from typing import Any

from wandb_dagster.api.events import read_events
from wandb_dagster.store import Store
from wandb_dagster.store import events as store_events

from ._helpers import commit


def commit_pausing_before_flush(url: str, digest: str, collection: str, reached: Any, go: Any, done: Any) -> None:
    """Commit ``digest``, stopping after every write of the transaction but before its events get ids."""
    store = Store.open(url, storage_root="unused")

    def pause(point: str) -> None:
        reached.set()
        go.wait(300)

    Store._fault_hook = pause
    commit(store, digest, collection=collection, aliases=["latest", f"a-{digest}"])
    done.set()
    store.close()


def commit_pausing_after_flush(url: str, digest: str, collection: str, reached: Any, go: Any, done: Any) -> None:
    """Commit ``digest``, stopping after its events were written (ids taken, feed lock held), before COMMIT."""
    store = Store.open(url, storage_root="unused")
    original = store_events.flush

    def flush_then_pause(conn: Any) -> None:
        original(conn)
        reached.set()
        go.wait(300)

    # store.py calls events.flush through the module, so this replaces it for this process only.
    store_events.flush = flush_then_pause  # type: ignore[assignment]
    commit(store, digest, collection=collection, aliases=["latest"])
    done.set()
    store.close()


def plain_commit(url: str, digest: str, collection: str, done: Any) -> None:
    store = Store.open(url, storage_root="unused")
    commit(store, digest, collection=collection, aliases=["latest"], tags=["t"])
    done.set()
    store.close()


def commit_many(url: str, worker: int, count: int, barrier: Any, results: Any) -> None:
    """Commit ``count`` versions (each: CREATE + tag event) into this worker's own collection: no row lock
    in common with the other writers, so only the feed itself orders their events."""
    store = Store.open(url, storage_root="unused")
    barrier.wait(120)
    for i in range(count):
        commit(store, f"w{worker}-{i}", collection=f"c{worker}", aliases=["latest"], tags=[f"w{worker}"])
    results.put(("writer", worker))
    store.close()


def follow_feed(url: str, writers: int, expected: int, barrier: Any, results: Any) -> None:
    """Follow the feed with small pages while the writers commit, until ``expected`` events were read."""
    store = Store.open(url, storage_root="unused")
    barrier.wait(120)
    seen: list[int] = []
    cursor = None
    deadline = time.monotonic() + 240
    while len(seen) < expected and time.monotonic() < deadline:
        page = read_events(store, after=cursor, limit=7)
        seen.extend(event.id for event in page)
        cursor = page.cursor
    results.put(("reader", seen))
    store.close()


def feed_worker(url: str, role: str, index: int, count: int, barrier: Any, results: Any) -> None:
    """One target for run_processes: a writer (``count`` commits) or the reader (``count`` events expected)."""
    if role == "writer":
        commit_many(url, index, count, barrier, results)
    else:
        follow_feed(url, index, count, barrier, results)
