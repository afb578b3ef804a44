from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from wandb_dagster.api.events import read_events
from wandb_dagster.store import NotFoundError, RunExistsError, RunNotFoundError, Store

from ._helpers import ENTITY, PROJECT


def _create(store: Store, run_id: str = "run1", **kwargs) -> object:
    return store.create_run(ENTITY, PROJECT, run_id, **kwargs)


def test_create_and_get_run(store: Store) -> None:
    before = datetime.now(timezone.utc)
    run = _create(
        store,
        display_name="brave-otter-1",
        config={"lr": 0.1, "layers": [1, 2], "nested": {"b": 1, "a": 2}},
        tags=["baseline", "x y"],
        group="dagster-run-1",
        job_type="train",
        notes="notes",
        host="h",
        username="u",
    )
    assert (run.id, run.entity, run.project, run.state) == ("run1", ENTITY, PROJECT, "running")
    assert run.config == {"lr": 0.1, "layers": [1, 2], "nested": {"b": 1, "a": 2}}
    assert list(run.config["nested"]) == ["b", "a"]  # key order survives on both backends
    assert (run.tags, run.group, run.job_type, run.notes, run.host, run.username) == (
        ["baseline", "x y"], "dagster-run-1", "train", "notes", "h", "u"
    )
    assert run.summary == {} and run.finished_at is None
    assert run.created_at.tzinfo == timezone.utc and before <= run.created_at <= datetime.now(timezone.utc)
    assert store.get_run(ENTITY, PROJECT, "run1") == run
    assert store.get_run(ENTITY, PROJECT, "nope") is None
    assert store.get_run(ENTITY, "other-project", "run1") is None


def test_same_run_id_in_another_project_is_another_run(store: Store) -> None:
    a = _create(store)
    b = store.create_run(ENTITY, "elsewhere", "run1")
    assert a.pk != b.pk


@pytest.mark.parametrize("resume", [None, "never"])
def test_duplicate_run_id_is_refused(store: Store, resume: str | None) -> None:
    _create(store)
    with pytest.raises(RunExistsError, match=r"'ent/proj/run1' already exists.*resume='allow'") as info:
        _create(store, resume=resume)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("resume", ["allow", "auto", "must"])
def test_resume_continues_an_existing_run(store: Store, resume: str) -> None:
    run = _create(store, config={"a": 1})
    store.update_run(run.pk, state="finished", finished_at=datetime.now(timezone.utc))
    resumed = _create(store, resume=resume, config={"ignored": True})
    assert resumed.pk == run.pk
    assert resumed.state == "running" and resumed.finished_at is None
    assert resumed.config == {"a": 1}


@pytest.mark.parametrize("resume", ["allow", "auto"])
def test_resume_allow_creates_a_missing_run(store: Store, resume: str) -> None:
    run = _create(store, "fresh", resume=resume)
    assert run.state == "running" and store.get_run(ENTITY, PROJECT, "fresh") == run


def test_resume_must_requires_the_run(store: Store) -> None:
    with pytest.raises(RunNotFoundError, match=r"'ent/proj/ghost' does not exist") as info:
        _create(store, "ghost", resume="must")
    assert isinstance(info.value, ValueError)
    assert store.get_run(ENTITY, PROJECT, "ghost") is None


def test_invalid_resume_mode(store: Store) -> None:
    with pytest.raises(ValueError, match="resume='sometimes'"):
        _create(store, resume="sometimes")


def test_update_run_persists_each_field(store: Store) -> None:
    run = _create(store, config={"a": 1, "b": 2}, tags=["t"])
    heartbeat = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))
    store.update_run(
        run.pk,
        state="finished",
        display_name="renamed",
        config={"b": 3},  # replaced whole, not merged
        summary={"loss": 0.25, "acc": {"top1": 0.9}},
        tags=["u", "v"],
        group="g",
        job_type="eval",
        notes="n",
        heartbeat_at=heartbeat,
        finished_at=heartbeat,
    )
    got = store.get_run(ENTITY, PROJECT, "run1")
    assert (got.state, got.display_name, got.config, got.summary, got.tags) == (
        "finished", "renamed", {"b": 3}, {"loss": 0.25, "acc": {"top1": 0.9}}, ["u", "v"]
    )
    assert (got.group, got.job_type, got.notes) == ("g", "eval", "n")
    # Stored as the same instant and returned in UTC, to the microsecond, on both backends.
    assert got.heartbeat_at == heartbeat and got.heartbeat_at.tzinfo == timezone.utc
    assert got.finished_at == heartbeat
    store.update_run(run.pk, finished_at=None, config=None)
    got = store.get_run(ENTITY, PROJECT, "run1")
    assert got.finished_at is None and got.config == {}


def test_update_run_rejects_bad_input(store: Store) -> None:
    run = _create(store)
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['colour'\]; valid fields: .*'summary'"):
        store.update_run(run.pk, colour="red")
    with pytest.raises(ValueError, match="naive datetime .* has no timezone"):
        store.update_run(run.pk, heartbeat_at=datetime(2030, 1, 1))
    # PostgreSQL's json refuses NaN; SQLite must refuse it the same way.
    with pytest.raises(ValueError, match="strict JSON"):
        store.update_run(run.pk, summary={"loss": math.nan})
    with pytest.raises(TypeError, match="not JSON serializable.*strict JSON"):
        store.update_run(run.pk, config={"obj": object()})
    with pytest.raises(NotFoundError, match="no run with pk 999999"):
        store.update_run(999999, state="finished")
    assert store.get_run(ENTITY, PROJECT, "run1").summary == {}


def test_history_is_appended_and_read_back_in_step_order(store: Store) -> None:
    run = _create(store)
    rows = [{"_step": s, "_timestamp": 1700000000.5 + s, "_runtime": s * 0.1, "loss": 1 / (s + 1)} for s in range(6)]
    store.append_history(run.pk, rows[3:])
    store.append_history(run.pk, [rows[1], rows[0], rows[2]])
    store.append_history(run.pk, [])
    assert store.history(run.pk) == rows
    assert store.history(_create(store, "other").pk) == []


def test_history_steps_are_unique_and_batches_all_or_nothing(store: Store) -> None:
    run = _create(store)
    store.append_history(run.pk, [{"_step": 0, "x": 1}])
    with pytest.raises(ValueError, match=r"already has step\(s\) \[0\]; history is append-only"):
        store.append_history(run.pk, [{"_step": 1, "x": 2}, {"_step": 0, "x": 3}])
    with pytest.raises(ValueError, match=r"step\(s\) \[5\]"):
        store.append_history(run.pk, [{"_step": 5}, {"_step": 5}])
    assert store.history(run.pk) == [{"_step": 0, "x": 1}]
    with pytest.raises(ValueError, match="no integer '_step'"):
        store.append_history(run.pk, [{"x": 1}])
    with pytest.raises(NotFoundError, match="no run with pk 424242"):
        store.append_history(424242, [{"_step": 0}])


def test_history_summary_and_final_state_are_one_commit(store: Store) -> None:
    run = _create(store)
    store.append_history(run.pk, [{"_step": 0, "loss": 1.0}])
    commits = []

    def count(conn) -> None:
        commits.append(conn)

    sa.event.listen(store._engine, "commit", count)
    try:
        store.update_run(
            run.pk, history=[{"_step": 1, "loss": 0.5}], summary={"loss": 0.5}, state="finished"
        )
    finally:
        sa.event.remove(store._engine, "commit", count)
    assert len(commits) == 1
    done = store.get_run(ENTITY, PROJECT, "run1")
    assert (done.state, done.summary) == ("finished", {"loss": 0.5})
    assert store.history(run.pk) == [{"_step": 0, "loss": 1.0}, {"_step": 1, "loss": 0.5}]
    # All or none: a clashing step leaves the state, the summary and the other rows as they were.
    with pytest.raises(ValueError, match=r"already has step\(s\) \[1\]"):
        store.update_run(run.pk, history=[{"_step": 2}, {"_step": 1}], summary={"loss": 9.0}, state="crashed")
    after = store.get_run(ENTITY, PROJECT, "run1")
    assert (after.state, after.summary, len(store.history(run.pk))) == ("finished", {"loss": 0.5}, 2)


def test_a_non_durable_write_cannot_carry_events(store: Store) -> None:
    run = _create(store)
    with pytest.raises(RuntimeError, match="non-durable store write appended events"):
        store.update_run(run.pk, state="finished", summary={"x": 1}, durable=False)
    assert store.get_run(ENTITY, PROJECT, "run1").state == "running"
    assert [e.type for e in read_events(store, after=None)] == ["RUN_STATE_CHANGE"]  # the creation's
    store.update_run(run.pk, history=[{"_step": 0, "x": 1}], summary={"x": 1}, durable=False)
    assert store.get_run(ENTITY, PROJECT, "run1").summary == {"x": 1} and len(store.history(run.pk)) == 1


def test_only_non_durable_writes_skip_the_commit_fsync_on_sqlite(store: Store) -> None:
    run, version_pk = _create(store), _a_version(store)
    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith(("PRAGMA synchronous", "BEGIN")):
            sent.append(statement)

    sa.event.listen(store._engine, "before_cursor_execute", record)
    try:
        store.update_run(run.pk, summary={"x": 1}, durable=False)
        store.record_input(run.pk, version_pk, durable=False)
        store.update_run(run.pk, state="finished")
        store.update_run(run.pk, summary={"x": 2})
    finally:
        sa.event.remove(store._engine, "before_cursor_execute", record)
    if store.dialect != "sqlite":
        assert not any(s.startswith("PRAGMA") for s in sent)
        return
    # The level is set before BEGIN (SQLite refuses to change it inside a transaction), and only on change.
    assert sent[:2] == ["PRAGMA synchronous = NORMAL", "BEGIN IMMEDIATE"]
    assert sent.count("PRAGMA synchronous = NORMAL") == 1
    full = sent.index("PRAGMA synchronous = FULL")
    assert sent[full + 1] == "BEGIN IMMEDIATE" and sent.count("PRAGMA synchronous = FULL") == 1
    with store._engine.connect() as conn:  # the pooled connection is FULL (2) again for everyone else
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2


def _a_version(store: Store) -> int:
    return store.commit_version(
        ENTITY, PROJECT, "data", "dataset", digest="d" * 32, manifest="{}", size=0, file_count=0, metadata={},
        description=None, aliases=["latest"], tags=[], run_pk=None,
    ).version.pk
