"""What the store sends to the database: a constant handful of statements per commit, values always bound."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from wandb_dagster.store import Store

from ._helpers import ENTITY, PROJECT, commit


@contextmanager
def _statements(store: Store) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append(statement)

    event.listen(store._engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(store._engine, "before_cursor_execute", record)


def test_commit_into_an_existing_collection_is_a_constant_handful_of_statements(store: Store) -> None:
    run = store.create_run(ENTITY, PROJECT, "r")
    counts = []
    for i in range(40):
        with _statements(store) as seen:
            commit(store, f"d{i}", aliases=["latest"], tags=["t"], run_pk=run.pk)
        counts.append(len(seen))
        assert not any("count(" in s.lower() for s in seen), seen
    # The same work for the 3rd and the 40th version: nothing scans what grows with the collection.
    assert counts[2:] == [counts[2]] * len(counts[2:])
    # 10 for the version itself, plus the event feed: one INSERT of the events (and on PostgreSQL the
    # advisory lock that makes event ids commit-ordered; see store/events.py).
    assert counts[2] <= 12, counts[2]


def test_values_are_bound_parameters_never_sql_text(store: Store) -> None:
    hostile = "x'); DROP TABLE versions; --"
    with _statements(store) as seen:
        run = store.create_run(hostile, hostile, hostile, config={hostile: hostile}, notes=hostile)
        v = commit(
            store, hostile, collection=hostile, type=hostile, aliases=[hostile], tags=[hostile],
            metadata={hostile: hostile}, description=hostile, manifest=hostile, run_pk=run.pk,
        ).version
        store.update_version(v.pk, v.collection_id, description=hostile, aliases=[hostile], tags=[hostile])
        assert store.resolve(ENTITY, PROJECT, hostile, hostile) == store.get_version(v.id)
        store.append_history(run.pk, [{"_step": 0, hostile: hostile}])
        store.update_run(run.pk, summary={hostile: hostile})
        store.delete_version(v.pk, delete_aliases=True)
    assert seen and not [s for s in seen if "DROP TABLE" in s]
    assert store.history(run.pk) == [{"_step": 0, hostile: hostile}]
