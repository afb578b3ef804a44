"""The store's run files and system metrics stream (runs aggregate, migration 0009), on both backends."""

from __future__ import annotations

import pytest

from wandb_dagster.store import NotFoundError, Store

from ._helpers import ENTITY, PROJECT


def test_run_files_are_recorded_replaced_listed_and_counted_for_gc(store: Store) -> None:
    run = store.create_run(ENTITY, PROJECT, "r1")
    other = store.create_run(ENTITY, PROJECT, "r2")
    store.put_run_files(run.pk, [("config.yaml", "a" * 32, 10), ("sub/b.txt", "b" * 32, 3)])
    store.put_run_files(other.pk, [("output.log", "c" * 32, 5)])
    # Saving a name again (policy="live" after a change) replaces its content in place.
    store.put_run_files(run.pk, [("config.yaml", "d" * 32, 12)])
    files = store.run_files(run.pk)
    assert [(f.name, f.digest, f.size) for f in files] == [("config.yaml", "d" * 32, 12), ("sub/b.txt", "b" * 32, 3)]
    assert files[0].updated_at >= files[1].updated_at
    assert store.run_file_digests() == {"b" * 32, "c" * 32, "d" * 32}
    # A deleted run's files go with it and no longer keep their blobs alive.
    store.delete_run(other.pk)
    assert store.run_file_digests() == {"b" * 32, "d" * 32}


def test_run_files_of_a_missing_run_are_refused(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no run with pk 12345"):
        store.put_run_files(12345, [("a.txt", "a" * 32, 1)])


def test_system_metrics_are_a_stream_apart_from_history(store: Store) -> None:
    run = store.create_run(ENTITY, PROJECT, "r1")
    store.append_system_metrics(run.pk, [{"system/cpu": 1.0, "_timestamp": 1.0}])
    store.append_system_metrics(run.pk, [{"system/cpu": 2.0, "_timestamp": 2.0}, {"system/cpu": 3.0, "_timestamp": 3.0}])
    assert [row["system/cpu"] for row in store.system_metrics(run.pk)] == [1.0, 2.0, 3.0]
    assert store.history(run.pk) == []
    store.delete_run(run.pk)
    assert store.system_metrics(run.pk) == []
