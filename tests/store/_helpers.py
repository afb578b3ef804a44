"""Helpers shared by the store tests, including the targets of spawned processes.

Spawned children import this module by name, so it imports nothing but the store (no pytest, no fixtures).
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from collections.abc import Sequence
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


def run_processes(target: Any, args: Sequence[tuple[Any, ...]], timeout: float = 300) -> list[Any]:
    """Run ``target(*args[i], barrier, results)`` in one spawned process per args tuple; return the results.

    Each process puts one result on ``results``; ``barrier`` lines them up to start together. Fails as soon
    as a process dies (its traceback is in the captured stderr) instead of waiting for the timeout.
    """
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(len(args)), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*a, barrier, results)) for a in args]
    for p in procs:
        p.start()
    collected: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(collected) < len(procs):
            try:
                collected.append(results.get(timeout=0.2))
                continue
            except queue.Empty:
                pass
            failed = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if failed:
                raise AssertionError(f"worker process(es) failed with exit codes {failed}; see captured stderr")
            if time.monotonic() > deadline:
                raise AssertionError(f"workers produced {len(collected)} of {len(procs)} results in {timeout} s")
    finally:
        for p in procs:
            p.join(30 if len(collected) == len(procs) else 0)
            if p.is_alive():
                p.kill()
                p.join()
    return collected


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


def commit_in_forked_child(store: Store, inherited: Any) -> None:
    with store._engine.connect() as conn:
        # The parent's pooled connection was inherited; using it would share its socket / file locks.
        assert conn.connection.dbapi_connection is not inherited, "the child reused the parent's connection"
    commit(store, "child")


def commit_and_hang(url: str, collection: str, ready: Any) -> None:
    """Commit, and stop inside the transaction (after every write, before COMMIT) until killed."""
    store = Store.open(url, storage_root="unused")

    def hang(point: str) -> None:
        ready.set()
        time.sleep(3600)

    Store._fault_hook = hang
    commit(store, "doomed", collection=collection, aliases=["latest", "doomed"])


def link_distinct(url: str, worker: int, count: int, barrier: Any, results: Any) -> None:
    """Log ``count`` versions into a collection of this worker's own, then link them all into one registry
    collection at the same moment as the other workers."""
    store = Store.open(url, storage_root="unused")
    versions = [commit(store, f"l{worker}-{i}", collection=f"src{worker}", type="model").version for i in range(count)]
    barrier.wait(120)
    out = []
    for version in versions:
        r = store.link_version(version.pk, ENTITY, "wandb-registry-model", "shared", aliases=["latest"])
        out.append((version.pk, r.version.index, r.created))
    results.put((worker, out))
    store.close()
