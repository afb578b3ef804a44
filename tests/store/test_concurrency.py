"""Invariant 2 with real processes: gapless indices and one version per digest under concurrent writers."""

from __future__ import annotations

import multiprocessing
from typing import Any

import pytest

from wandb_dagster.store import Store

from . import _helpers
from ._helpers import ENTITY, PROJECT

WORKERS = 4


def _run_workers(target: Any, url: str, *args: Any) -> dict[int, Any]:
    return dict(_helpers.run_processes(target, [(url, w, *args) for w in range(WORKERS)]))


@pytest.mark.slow
def test_concurrent_commits_get_gapless_unique_indices(store: Store) -> None:
    per_worker = 10
    # The collection does not exist yet: the workers also race to create it.
    results = _run_workers(_helpers.commit_distinct, store.url, per_worker)
    coll = store.collection(ENTITY, PROJECT, "shared")
    versions = store.collection_versions(coll.pk)
    assert [v.index for v in versions] == list(range(WORKERS * per_worker))
    assert coll.next_index == WORKERS * per_worker
    expected = {f"w{w}-{i}" for w in range(WORKERS) for i in range(per_worker)}
    assert {v.digest for v in versions} == expected
    # What each worker was told matches the database, and every commit created its version.
    by_digest = {v.digest: v.index for v in versions}
    reported = [item for out in results.values() for item in out]
    assert sorted((d, i) for d, i, _ in reported) == sorted(by_digest.items())
    assert all(created for _, _, created in reported)
    assert [v.index for v in versions if "latest" in v.aliases] == [WORKERS * per_worker - 1]
    for w in range(WORKERS):
        run = store.get_run(ENTITY, PROJECT, f"distinct{w}")
        assert sorted(v.digest for v in store.run_outputs(run.pk)) == sorted(f"w{w}-{i}" for i in range(per_worker))


@pytest.mark.slow
def test_concurrent_commits_of_the_same_content_yield_one_version(store: Store) -> None:
    rounds = 5
    results = _run_workers(_helpers.commit_same, store.url, rounds)
    coll = store.collection(ENTITY, PROJECT, "shared")
    versions = store.collection_versions(coll.pk)
    assert [(v.index, v.digest) for v in versions] == [(r, f"round{r}") for r in range(rounds)]
    run_ids = sorted(f"same{w}" for w in range(WORKERS))
    for r, version in enumerate(versions):
        told = [out[r] for out in results.values()]
        assert {version_id for _, version_id, _, _ in told} == {version.id}
        assert {index for _, _, index, _ in told} == {r}
        assert sum(created for _, _, _, created in told) == 1
        assert sorted(store.producers(version.pk)) == run_ids
    # Everyone's aliases were applied; the last round holds them all.
    assert versions[-1].aliases == sorted(["latest"] + [f"w{w}" for w in range(WORKERS)])
    assert all(v.aliases == [] for v in versions[:-1])


def test_a_forked_child_gets_its_own_connections(store: Store) -> None:
    # Dagster may fork; pooled connections inherited from the parent must not be shared with the child.
    _helpers.commit(store, "parent-before")
    with store._engine.connect() as conn:
        pooled = conn.connection.dbapi_connection  # back in the pool when the block ends
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=_helpers.commit_in_forked_child, args=(store, pooled))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    _helpers.commit(store, "parent-after")
    coll = store.collection(ENTITY, PROJECT, "dataset")
    assert [v.digest for v in store.collection_versions(coll.pk)] == ["parent-before", "child", "parent-after"]
