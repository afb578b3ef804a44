"""Invariant 1 (store side): a commit that dies inside its transaction leaves nothing, and costs no index."""

from __future__ import annotations

import multiprocessing
import os
import signal

import pytest

from wandb_dagster.store import Store

from . import _helpers
from ._helpers import ENTITY, PROJECT, commit


@pytest.mark.parametrize("existing", [0, 2], ids=["new-collection", "existing-collection"])
def test_kill_9_inside_the_commit_transaction_leaves_nothing(store: Store, existing: int) -> None:
    for i in range(existing):
        commit(store, f"d{i}")
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    child = ctx.Process(target=_helpers.commit_and_hang, args=(store.url, "dataset", ready))
    child.start()
    try:
        assert ready.wait(120), "the child never reached the end of its commit transaction"
        # Written but not committed: invisible to everyone else.
        assert store.resolve(ENTITY, PROJECT, "dataset", "doomed") is None
        assert store.resolve(ENTITY, PROJECT, "dataset", f"v{existing}") is None
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.join(60)
    assert child.exitcode == -signal.SIGKILL
    coll = store.collection(ENTITY, PROJECT, "dataset")
    if existing:
        assert [v.digest for v in store.collection_versions(coll.pk)] == [f"d{i}" for i in range(existing)]
        assert coll.next_index == existing
        assert store.resolve(ENTITY, PROJECT, "dataset", "latest").index == existing - 1
    else:
        assert coll is None
    # The locks died with the process: the next commit proceeds and gets the next gapless index.
    after = commit(store, "after").version
    assert after.index == existing
    assert store.resolve(ENTITY, PROJECT, "dataset", "doomed") is None


def test_exception_inside_the_commit_transaction_leaves_nothing(store: Store, monkeypatch) -> None:
    commit(store, "d0", aliases=["latest", "prod"])

    def fail(point: str) -> None:
        raise RuntimeError(f"injected at {point}")

    monkeypatch.setattr(Store, "_fault_hook", fail)
    with pytest.raises(RuntimeError, match="injected at commit_version"):
        commit(store, "d1", aliases=["latest", "prod"], tags=["t"])
    with pytest.raises(RuntimeError):  # a reuse of existing content is rolled back too
        commit(store, "d0", aliases=["moved"])
    with pytest.raises(RuntimeError):
        commit(store, "x", collection="brand-new")
    monkeypatch.setattr(Store, "_fault_hook", None)

    coll = store.collection(ENTITY, PROJECT, "dataset")
    (v0,) = store.collection_versions(coll.pk)
    assert (v0.digest, v0.aliases, v0.tags, coll.next_index) == ("d0", ["latest", "prod"], [], 1)
    assert store.collection(ENTITY, PROJECT, "brand-new") is None
    assert commit(store, "d1").version.index == 1
