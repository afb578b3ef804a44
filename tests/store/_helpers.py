"""Helpers shared by the store tests, including the targets of spawned processes.

Spawned children import this module by name, so it imports nothing but the store (no pytest, no fixtures).
"""

from __future__ import annotations

import time
from typing import Any

from wandb_dagster.store import CommitResult, Store

ENTITY, PROJECT = "ent", "proj"


def commit(
    store: Store,
    digest: str,
    *,
    collection: str = "dataset",
    type: str = "dataset",
    aliases: list[str] | None = None,
    tags: list[str] | None = None,
    run_pk: int | None = None,
    **kwargs: Any,
) -> CommitResult:
    """commit_version with defaults for everything a test does not care about."""
    values: dict[str, Any] = {
        "manifest": '{"version": 1, "contents": {}}',
        "size": 0,
        "file_count": 0,
        "metadata": {},
        "description": None,
    }
    values.update(kwargs)
    return store.commit_version(
        ENTITY,
        PROJECT,
        collection,
        type,
        digest=digest,
        aliases=["latest"] if aliases is None else aliases,
        tags=tags or [],
        run_pk=run_pk,
        **values,
    )


# ---------------------------------------------------------------------- targets of spawned processes


def open_store(url: str, storage_root: str, barrier: Any, results: Any) -> None:
    barrier.wait(120)
    store = Store.open(url, storage_root=storage_root)
    results.put(store.storage_root)
    store.close()


def commit_distinct(url: str, worker: int, count: int, barrier: Any, results: Any) -> None:
    store = Store.open(url, storage_root="unused")
    run = store.create_run(ENTITY, PROJECT, f"distinct{worker}")
    barrier.wait(120)
    out = [
        (r.version.digest, r.version.index, r.created)
        for r in (commit(store, f"w{worker}-{i}", collection="shared", run_pk=run.pk) for i in range(count))
    ]
    results.put((worker, out))
    store.close()


def commit_same(url: str, worker: int, rounds: int, barrier: Any, results: Any) -> None:
    store = Store.open(url, storage_root="unused")
    run = store.create_run(ENTITY, PROJECT, f"same{worker}")
    out = []
    for round_ in range(rounds):
        barrier.wait(120)  # everyone commits round N's digest at the same moment
        r = commit(store, f"round{round_}", collection="shared", aliases=["latest", f"w{worker}"], run_pk=run.pk)
        out.append((round_, r.version.id, r.version.index, r.created))
    results.put((worker, out))
    store.close()


def commit_and_hang(url: str, collection: str, ready: Any) -> None:
    """Commit, and stop inside the transaction (after every write, before COMMIT) until killed."""
    store = Store.open(url, storage_root="unused")

    def hang(point: str) -> None:
        ready.set()
        time.sleep(3600)

    Store._fault_hook = hang
    commit(store, "doomed", collection=collection, aliases=["latest", "doomed"])
