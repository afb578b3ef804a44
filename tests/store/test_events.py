"""The event feed (docs/architecture.md invariant 5): every mutation appends its events in its own transaction; ids are
commit-ordered, so a reader following the cursor sees every event once, even when writers interleave."""

from __future__ import annotations

import multiprocessing
import os
import signal

import pytest
import sqlalchemy as sa

from wandb_dagster.api.events import head_cursor, read_events
from wandb_dagster.store import AliasInUseError, Store, TypeMismatchError
from wandb_dagster.store import schema as db

from . import _event_helpers, _helpers
from ._helpers import ENTITY, PROJECT, commit


def _events(store: Store, after: str | None = None) -> list:
    page = read_events(store, after=after, limit=10_000)
    assert not page.has_more
    return list(page)


def _brief(events: list) -> list[tuple]:
    """(type, collection:version, alias or tag) of each event, for compact comparisons."""
    return [(e.type, f"{e.collection}:{e.version}" if e.collection else None, e.alias or e.tag) for e in events]


def _since(store: Store):
    """Call before a mutation; calling the result returns the events it appended."""
    cursor = head_cursor(store)
    return lambda: _events(store, cursor)


# ---------------------------------------------------------------------------------------------- what is emitted


def test_a_new_version_emits_create_then_its_aliases_and_tags_but_never_latest(store: Store) -> None:
    run = store.create_run(ENTITY, PROJECT, "r1")
    new = _since(store)
    v = commit(store, "d0", aliases=["latest", "best"], tags=["t2", "t1"], run_pk=run.pk).version
    events = new()
    assert _brief(events) == [
        ("CREATE_ARTIFACT", "dataset:v0", None),
        ("ADD_ARTIFACT_ALIAS", "dataset:v0", "best"),
        ("ADD_ARTIFACT_TAG", "dataset:v0", "t2"),
        ("ADD_ARTIFACT_TAG", "dataset:v0", "t1"),
    ]
    create = events[0]
    assert (create.entity, create.project, create.collection, create.collection_type) == (
        ENTITY, PROJECT, "dataset", "dataset",
    )
    assert create.artifact_id == v.id and create.run_id == "r1"
    assert create.artifact_name == f"{ENTITY}/{PROJECT}/dataset:v0"
    assert create.payload == {"digest": "d0", "size": 0, "file_count": 0}
    assert create.created_at.tzinfo is not None and create.created_at == v.created_at
    # One transaction: consecutive ids, one timestamp.
    assert [e.id for e in events] == list(range(events[0].id, events[0].id + 4))
    assert len({e.created_at for e in events}) == 1


def test_identical_content_creates_nothing_but_reports_the_aliases_and_tags_it_adds(store: Store) -> None:
    commit(store, "d0", aliases=["latest", "best"], tags=["t1"])
    new = _since(store)
    result = commit(store, "d0", aliases=["latest", "best", "fresh"], tags=["t1", "t3"])
    assert not result.created
    assert _brief(new()) == [("ADD_ARTIFACT_ALIAS", "dataset:v0", "fresh"), ("ADD_ARTIFACT_TAG", "dataset:v0", "t3")]
    new = _since(store)
    commit(store, "d0", aliases=["latest", "best"], tags=["t1"])  # changes nothing
    assert new() == []


def test_moving_an_alias_is_remove_on_the_old_version_then_add_with_previous_version(store: Store) -> None:
    commit(store, "d0", aliases=["latest", "prod"])
    new = _since(store)
    commit(store, "d1", aliases=["latest", "prod"])
    create, remove, add = new()
    assert (create.type, create.version) == ("CREATE_ARTIFACT", "v1")
    assert (remove.type, remove.version, remove.alias, remove.payload) == (
        "REMOVE_ARTIFACT_ALIAS", "v0", "prod", {"moved_to": "v1"},
    )
    assert (add.type, add.version, add.alias, add.payload) == (
        "ADD_ARTIFACT_ALIAS", "v1", "prod", {"previous_version": "v0"},
    )
    assert remove.id + 1 == add.id


def test_update_version_reports_exactly_the_alias_and_tag_changes(store: Store) -> None:
    v0 = commit(store, "d0", aliases=["latest", "a", "b"], tags=["x", "y"]).version
    v1 = commit(store, "d1", aliases=["latest"]).version
    new = _since(store)
    store.update_version(v1.pk, v1.collection_id, add_aliases=["a"], remove_aliases=["nope"], description="d")
    assert [(e.type, e.version, e.alias, e.payload) for e in new()] == [
        ("REMOVE_ARTIFACT_ALIAS", "v0", "a", {"moved_to": "v1"}),
        ("ADD_ARTIFACT_ALIAS", "v1", "a", {"previous_version": "v0"}),
    ]
    new = _since(store)
    store.update_version(v0.pk, v0.collection_id, aliases=["latest", "c"], tags=["y", "z"])
    assert _brief(new()) == [
        ("REMOVE_ARTIFACT_ALIAS", "dataset:v0", "b"),
        ("ADD_ARTIFACT_ALIAS", "dataset:v0", "c"),
        ("REMOVE_ARTIFACT_TAG", "dataset:v0", "x"),
        ("ADD_ARTIFACT_TAG", "dataset:v0", "z"),
    ]
    new = _since(store)
    store.update_version(v0.pk, v0.collection_id, add_tags=["y"], remove_tags=["absent"], metadata={"k": 1})
    assert new() == []


def test_links_unlinks_and_their_aliases(store: Store) -> None:
    run = store.create_run(ENTITY, PROJECT, "linker")
    v0 = commit(store, "m0", collection="model", type="model").version
    v1 = commit(store, "m1", collection="model", type="model").version
    new = _since(store)
    l0 = store.link_version(v0.pk, ENTITY, "wandb-registry-model", "Demo", aliases=["latest", "prod"], run_pk=run.pk)
    link, add = new()
    assert (link.type, link.project, link.collection, link.version, link.artifact_id, link.run_id) == (
        "LINK_ARTIFACT", "wandb-registry-model", "Demo", "v0", v0.id, "linker",
    )
    assert link.payload == {"source": f"{ENTITY}/{PROJECT}/model:v0"}
    assert (add.type, add.alias, add.version) == ("ADD_ARTIFACT_ALIAS", "prod", "v0")
    new = _since(store)
    store.link_version(v1.pk, ENTITY, "wandb-registry-model", "Demo", aliases=["latest", "prod"])
    assert _brief(new()) == [
        ("LINK_ARTIFACT", "Demo:v1", None),
        ("REMOVE_ARTIFACT_ALIAS", "Demo:v0", "prod"),
        ("ADD_ARTIFACT_ALIAS", "Demo:v1", "prod"),
    ]
    new = _since(store)
    again = store.link_version(v0.pk, ENTITY, "wandb-registry-model", "Demo", aliases=["latest", "staging"])
    assert not again.created
    assert _brief(new()) == [("ADD_ARTIFACT_ALIAS", "Demo:v0", "staging")]
    new = _since(store)
    store.unlink_version(v0.pk, l0.version.collection_id, run_pk=run.pk)
    events = new()
    assert _brief(events) == [("REMOVE_ARTIFACT_ALIAS", "Demo:v0", "staging"), ("UNLINK_ARTIFACT", "Demo:v0", None)]
    assert {e.run_id for e in events} == {"linker"}


def test_delete_reports_the_version_its_links_and_the_aliases_deleted_with_it(store: Store) -> None:
    v0 = commit(store, "m0", collection="model", type="model", aliases=["latest", "best"]).version
    commit(store, "m1", collection="model", type="model")
    store.link_version(v0.pk, ENTITY, "wandb-registry-model", "Demo", aliases=["latest", "prod"])
    new = _since(store)
    with pytest.raises(AliasInUseError):
        store.delete_version(v0.pk)
    assert new() == []  # refused: rolled back, nothing reported
    store.delete_version(v0.pk, delete_aliases=True)
    events = new()
    assert _brief(events) == [
        ("REMOVE_ARTIFACT_ALIAS", "model:v0", "best"),
        ("DELETE_ARTIFACT", "model:v0", None),
        ("REMOVE_ARTIFACT_ALIAS", "Demo:v0", "prod"),
        ("UNLINK_ARTIFACT", "Demo:v0", None),
    ]
    assert events[-1].payload == {"reason": "deleted"}
    assert {e.artifact_id for e in events} == {v0.id}
    new = _since(store)
    store.delete_version(v0.pk, delete_aliases=True)  # already deleted: a no-op
    assert new() == []


def test_run_state_changes(store: Store) -> None:
    new = _since(store)
    run = store.create_run(ENTITY, PROJECT, "r1")
    store.update_run(run.pk, state="running", summary={"loss": 1})  # no change of state
    store.update_run(run.pk, heartbeat_at=run.created_at)
    store.update_run(run.pk, state="finished")
    store.create_run(ENTITY, PROJECT, "r1", resume="allow")
    store.create_run(ENTITY, PROJECT, "r1", resume="allow")  # already running
    events = new()
    assert [(e.type, e.entity, e.project, e.run_id, e.collection, e.version, e.payload) for e in events] == [
        ("RUN_STATE_CHANGE", ENTITY, PROJECT, "r1", None, None, {"previous_state": None, "state": "running"}),
        ("RUN_STATE_CHANGE", ENTITY, PROJECT, "r1", None, None, {"previous_state": "running", "state": "finished"}),
        ("RUN_STATE_CHANGE", ENTITY, PROJECT, "r1", None, None, {"previous_state": "finished", "state": "running"}),
    ]
    assert events[0].artifact_name is None


# ---------------------------------------------------------------------------------------------- atomicity


def test_a_failed_or_rolled_back_mutation_leaves_no_event(store: Store, monkeypatch) -> None:
    commit(store, "d0", aliases=["latest", "prod"])
    new = _since(store)
    with pytest.raises(TypeMismatchError):
        commit(store, "d1", type="model", aliases=["latest", "prod"])

    def fail(point: str) -> None:
        raise RuntimeError(f"injected at {point}")

    monkeypatch.setattr(Store, "_fault_hook", fail)
    with pytest.raises(RuntimeError, match="injected at commit_version"):
        commit(store, "d1", aliases=["latest", "prod"], tags=["t"])
    with pytest.raises(RuntimeError, match="injected at commit_version"):
        commit(store, "d0", aliases=["other"])
    with pytest.raises(RuntimeError, match="injected at link_version"):
        store.link_version(1, ENTITY, "wandb-registry-model", "Demo", aliases=["latest", "prod"])
    monkeypatch.setattr(Store, "_fault_hook", None)
    assert new() == []
    # The feed carries on gapless: the next event gets the next id.
    before = _events(store)[-1].id
    commit(store, "d1", aliases=["latest"])
    assert [e.id for e in new()] == [before + 1]


def test_kill_9_inside_the_transaction_leaves_no_event_and_does_not_block_the_feed(store: Store) -> None:
    commit(store, "d0")
    cursor = head_cursor(store)
    last_id = _events(store)[-1].id
    ctx = multiprocessing.get_context("spawn")
    # Killed after its events were written with ids, holding the feed lock, before COMMIT.
    reached, go, done = ctx.Event(), ctx.Event(), ctx.Event()
    child = ctx.Process(
        target=_event_helpers.commit_pausing_after_flush, args=(store.url, "doomed", "other", reached, go, done)
    )
    child.start()
    try:
        assert reached.wait(120), "the child never reached the end of its transaction"
        assert read_events(store, after=cursor).cursor == cursor  # uncommitted: invisible
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.join(60)
    assert child.exitcode == -signal.SIGKILL
    commit(store, "d1")
    events = _events(store, cursor)
    assert _brief(events) == [("CREATE_ARTIFACT", "dataset:v1", None)]
    assert events[0].id == last_id + 1  # the dead transaction's ids were never used


# ---------------------------------------------------------------------------------------------- order


def _spawn(ctx, target, *args):
    process = ctx.Process(target=target, args=args)
    process.start()
    return process


def test_writers_commit_out_of_order_and_a_reader_following_the_cursor_sees_both_once(store: Store) -> None:
    """Writer A starts first and writes first (its version row gets the lower id, as would an event id
    drawn from a sequence) but commits last; writer B commits in between; a reader reads between the commits."""
    ctx = multiprocessing.get_context("spawn")
    store.ensure_project(ENTITY, PROJECT)  # else B would wait for A's uncommitted insert of the project
    cursor = head_cursor(store)
    a_reached, a_go, a_done = ctx.Event(), ctx.Event(), ctx.Event()
    b_done = ctx.Event()
    a = _spawn(ctx, _event_helpers.commit_pausing_before_flush, store.url, "a", "coll-a", a_reached, a_go, a_done)
    processes = [a]
    try:
        assert a_reached.wait(120), "writer A never reached the end of its transaction"
        if store.dialect == "sqlite":
            # SQLite: A holds the database write lock, so B cannot even start: writers are serialised.
            b = _spawn(ctx, _event_helpers.plain_commit, store.url, "b", "coll-b", b_done)
            processes.append(b)
            assert not b_done.wait(1.0), "B committed while A held the write lock"
            first = read_events(store, after=cursor)
            assert list(first) == [] and first.cursor == cursor
            a_go.set()
            assert a_done.wait(120) and b_done.wait(120)
            events = list(read_events(store, after=cursor))
            assert [e.artifact_name.split("/")[-1] for e in events if e.type == "CREATE_ARTIFACT"] == [
                "coll-a:v0", "coll-b:v0",
            ]
            return
        b = _spawn(ctx, _event_helpers.plain_commit, store.url, "b", "coll-b", b_done)
        processes.append(b)
        assert b_done.wait(120), "writer B was blocked by writer A (writers of other collections run in parallel)"
        first = read_events(store, after=cursor)
        assert _brief(first) == [("CREATE_ARTIFACT", "coll-b:v0", None), ("ADD_ARTIFACT_TAG", "coll-b:v0", "t")]
        a_go.set()
        assert a_done.wait(120)
        second = read_events(store, after=first.cursor)
        assert _brief(second) == [
            ("CREATE_ARTIFACT", "coll-a:v0", None),
            ("ADD_ARTIFACT_ALIAS", "coll-a:v0", "a-a"),
        ]
        # The interleaving really was "lower id commits last": A's version row was inserted first.
        version_a = store.resolve(ENTITY, PROJECT, "coll-a", "v0")
        version_b = store.resolve(ENTITY, PROJECT, "coll-b", "v0")
        assert version_a.pk < version_b.pk
        # One total order, each event once, ids in commit order; nothing more to read.
        everything = list(first) + list(second)
        assert [e.id for e in everything] == sorted({e.id for e in everything})
        assert list(read_events(store, after=second.cursor)) == []
        assert _events(store, cursor) == everything
    finally:
        a_go.set()
        for process in processes:
            process.join(60)
            if process.is_alive():
                process.kill()


@pytest.mark.postgres
def test_postgres_event_ids_are_taken_one_transaction_at_a_time(postgres_url: str) -> None:
    """While a writer holds ids it has not committed, the next writer waits for them: it can never commit
    a higher id before a lower one is visible."""
    store = Store.open(postgres_url, storage_root="unused")
    try:
        ctx = multiprocessing.get_context("spawn")
        store.ensure_project(ENTITY, PROJECT)
        cursor = head_cursor(store)
        a_reached, a_go, a_done = ctx.Event(), ctx.Event(), ctx.Event()
        b_reached, b_go, b_done = ctx.Event(), ctx.Event(), ctx.Event()
        a = _spawn(ctx, _event_helpers.commit_pausing_after_flush, store.url, "a", "coll-a", a_reached, a_go, a_done)
        processes = [a]
        try:
            assert a_reached.wait(120)
            # B does all its writes (other collection: no row lock in common with A), then goes for its ids.
            b = _spawn(
                ctx, _event_helpers.commit_pausing_before_flush, store.url, "b", "coll-b", b_reached, b_go, b_done
            )
            processes.append(b)
            assert b_reached.wait(120)
            b_go.set()
            assert not b_done.wait(1.0), "B committed events while A held uncommitted, lower event ids"
            assert read_events(store, after=cursor).cursor == cursor
            a_go.set()
            # Both commit: B waited for A's ids instead of colliding with them.
            assert a_done.wait(60) and b_done.wait(60), "a writer failed; see the captured stderr"
        finally:
            a_go.set()
            b_go.set()
            for process in processes:
                process.join(60)
                if process.is_alive():
                    process.kill()
        events = _events(store, cursor)
        assert [e.collection for e in events] == ["coll-a", "coll-b", "coll-b"]  # B: CREATE + alias "a-b"
        assert [e.id for e in events] == list(range(events[0].id, events[0].id + 3))
    finally:
        store.close()


def test_a_reader_following_concurrent_writers_sees_every_event_once_in_order(database_url: str) -> None:
    writers, count = 3, 15
    Store.open(database_url, storage_root="unused").close()
    expected = writers * count * 2  # CREATE_ARTIFACT + ADD_ARTIFACT_TAG per commit
    args = [(database_url, "writer", w, count) for w in range(writers)] + [(database_url, "reader", writers, expected)]
    results = _helpers.run_processes(_event_helpers.feed_worker, args)
    (seen,) = [payload for role, payload in results if role == "reader"]
    store = Store.open(database_url, storage_root="unused")
    try:
        everything = [e.id for e in _events(store)]
    finally:
        store.close()
    assert len(everything) == expected
    # Read while the writers were committing: nothing missed, nothing twice, in the one total order.
    assert seen == everything
    assert everything == list(range(1, expected + 1))


def test_restarting_from_a_saved_cursor_repeats_and_misses_nothing(store: Store, database_url: str) -> None:
    for i in range(5):
        commit(store, f"d{i}", tags=[f"t{i}"])
    first = read_events(store, after=None, limit=3)
    saved = first.cursor
    assert first.has_more
    for i in range(5, 8):
        commit(store, f"d{i}")
    store.close()
    # A new process-like start: a fresh Store, only the saved string carried over.
    again = Store.open(database_url, storage_root="unused")
    try:
        rest, cursor = [], saved
        while True:
            page = read_events(again, after=cursor, limit=4)
            rest.extend(page)
            cursor = page.cursor
            if not page.has_more:
                break
        assert [e.id for e in first] + [e.id for e in rest] == list(range(1, 14))
        assert read_events(again, after=cursor).cursor == cursor
    finally:
        again.close()


# ---------------------------------------------------------------------------------------------- cost


def test_event_ids_are_the_primary_key_and_reads_of_an_empty_tail_are_an_index_seek(store: Store) -> None:
    for i in range(3):
        commit(store, f"d{i}")
    cursor = head_cursor(store)
    statements: list[str] = []

    def record(conn, cursor_, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    sa.event.listen(store._engine, "before_cursor_execute", record)
    try:
        page = read_events(store, after=cursor)
    finally:
        sa.event.remove(store._engine, "before_cursor_execute", record)
    assert list(page) == [] and page.cursor == cursor
    # Nothing new: one max(id) on the primary key and no page query at all.
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(reads) == 1 and "max(events.id)" in reads[0]
    with store._engine.connect() as conn:
        if store.dialect == "sqlite":
            plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN SELECT max(id) FROM events"))
            assert "SCAN" not in plan.upper(), plan
        else:
            conn.exec_driver_sql("SET enable_seqscan = off")  # tiny tables: ask whether an index *can* serve it
            plan = " ".join(r[0] for r in conn.exec_driver_sql("EXPLAIN SELECT max(id) FROM events"))
            assert "Index" in plan and "pk_events" in plan, plan
    assert db.events.c.id.primary_key


def test_no_statement_of_a_commit_needs_a_full_table_scan(store: Store) -> None:
    """What makes the 100,000th version cost what the 10th did: every statement of commit_version (events
    included) is served by an index. Asked of the planner, so it holds whatever the table sizes."""
    run = store.create_run(ENTITY, PROJECT, "r")
    for i in range(3):
        commit(store, f"d{i}", aliases=["latest", "candidate"], tags=["t"], run_pk=run.pk)
    statements: list[tuple[str, object]] = []

    def record(conn, cursor_, statement, parameters, context, executemany) -> None:
        # An executemany's plan is the plan of one of its rows; EXPLAIN takes one parameter set.
        statements.append((statement, parameters[0] if executemany and parameters else parameters))

    sa.event.listen(store._engine, "before_cursor_execute", record)
    try:
        commit(store, "new", aliases=["latest", "candidate"], tags=["t", "u"], run_pk=run.pk)  # new version
        commit(store, "d1", aliases=["latest", "other"], tags=["v"], run_pk=run.pk)  # identical content
    finally:
        sa.event.remove(store._engine, "before_cursor_execute", record)
    explained, scans = 0, []
    with store._engine.connect() as conn:
        if store.dialect == "postgresql":
            conn.exec_driver_sql("SET enable_seqscan = off")  # a Seq Scan left in a plan has no index to use
        for statement, parameters in statements:
            if statement.lstrip().split(None, 1)[0].upper() not in ("SELECT", "INSERT", "UPDATE", "DELETE"):
                continue
            explained += 1
            if store.dialect == "sqlite":
                plan = [str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
                bad = [p for p in plan if p.startswith("SCAN") and "CONSTANT ROW" not in p]
            else:
                plan = [r[0] for r in conn.exec_driver_sql("EXPLAIN " + statement, parameters)]
                bad = [p for p in plan if "Seq Scan" in p]
            if bad:
                scans.append((" ".join(statement.split())[:120], bad))
        conn.rollback()
    assert explained >= 15
    assert scans == []
