"""One table of filter fields per target: runs, registries, collections, versions, events.

Each field names its SQL (columns of :mod:`wandb_dagster.store.schema`, within the FROM clauses the store's
queries use) and where the Python evaluation reads the same value on a record:

- runs: :class:`~wandb_dagster.store.records.RunRecord` (``summary_metrics.*`` reads ``summary``);
- registries: a project record (``name``, ``description``, ``created_at``, ``updated_at``);
- collections: :class:`~wandb_dagster.store.records.CollectionRecord` (``tag`` reads ``tags``);
- versions: :class:`~wandb_dagster.store.records.VersionRecord` as seen through one membership (``tag``
  reads ``tags``, ``alias`` the membership's ``aliases``, ``version`` the ``index``);
- events: a row of the ``events`` table as a mapping (``version`` reads ``version_index``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from wandb_dagster.store import schema as _db
from wandb_dagster.store.filters.dialect import _Ctx
from wandb_dagster.store.filters.document import Fields
from wandb_dagster.store.filters.fields import Column, DerivedValue, SetField
from wandb_dagster.store.filters.values import COMPARE


def _exists_rows(table: Any, correlate: Any, column: Any) -> Callable[[_Ctx, Callable[[Any], Any] | None], Any]:
    """EXISTS over ``table`` rows where ``correlate`` holds and ``predicate(column)`` does."""

    def exists(ctx: _Ctx, predicate: Callable[[Any], Any] | None) -> Any:
        conditions = [correlate] if predicate is None else [correlate, predicate(column)]
        return sa.exists(sa.select(sa.literal(1)).select_from(table).where(*conditions))

    return exists


def _count_rows(table: Any, correlate: Any) -> Callable[[_Ctx], Any]:
    def count(ctx: _Ctx) -> Any:
        return sa.select(sa.func.count()).select_from(table).where(correlate).scalar_subquery()

    return count


def _rows(table: Any, correlate: Any, column: Any, get: str) -> SetField:
    return SetField(_exists_rows(table, correlate, column), _count_rows(table, correlate), get=get)


def _json_string_array(column: Any, get: str) -> SetField:
    """A JSON column holding an array of strings (a run's tags), as a set field."""

    def exists(ctx: _Ctx, predicate: Callable[[Any], Any] | None) -> Any:
        if ctx.pg:
            elements = sa.func.json_array_elements_text(column).table_valued("value").alias("el")
        else:
            elements = sa.func.json_each(column).table_valued("value").alias("el")
        query = sa.select(sa.literal(1)).select_from(elements)
        if predicate is not None:
            query = query.where(predicate(elements.c.value))
        return sa.exists(query)

    def count(ctx: _Ctx) -> Any:
        return sa.func.json_array_length(column)

    return SetField(exists, count, get=get)


def _duration(ctx: _Ctx) -> Any:
    """Seconds from creation to the end (or the last heartbeat of a run still going)."""
    end = sa.func.coalesce(_db.runs.c.finished_at, _db.runs.c.heartbeat_at)
    if ctx.pg:
        # EXTRACT is typed INTEGER by SQLAlchemy, which made $in bind its values as ::INTEGER (0.25 -> 0).
        return sa.type_coerce(sa.extract("epoch", end - _db.runs.c.created_at), sa.Float())
    # SQLite stores "YYYY-MM-DD HH:MM:SS.ffffff" (UTC). Whole seconds and microseconds are subtracted as
    # integers and divided once, which gives the float Python's timedelta.total_seconds() gives; julianday()
    # differences are off by up to ~10 microseconds, so `duration == x` missed runs the records show.
    start = _db.runs.c.created_at

    def micros(text: Any) -> Any:
        return sa.cast(sa.func.substr(text, 21, 6), sa.Integer())

    seconds = sa.cast(sa.func.strftime("%s", end), sa.Integer()) - sa.cast(sa.func.strftime("%s", start), sa.Integer())
    return sa.type_coerce((seconds * 1_000_000 + micros(end) - micros(start)) / sa.literal(1_000_000.0), sa.Float())


def _run_duration(run: Any) -> float | None:
    end = run.finished_at or run.heartbeat_at
    return None if end is None else (end - run.created_at).total_seconds()


def _version_index(name: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"v\d+", value):
        return int(value[1:])
    raise ValueError(f"{name!r} takes a version such as 'v3', got {value!r}")


_VERSION_OPS = ("$eq", "$ne", *COMPARE, "$in", "$nin", "$not")


def _s(expr: Any, get: str, nullable: bool = False) -> Column:
    """A string column."""
    return Column(expr, nullable=nullable, get=get)


def _t(expr: Any, get: str, nullable: bool = False) -> Column:
    """A timestamp column."""
    return Column(expr, "datetime", nullable=nullable, get=get)


_r = _db.runs.c
_sw = _db.sweeps.alias("run_sweep")
RUN_FIELDS = Fields(
    "runs",
    {
        "createdAt": _t(_r.created_at, "created_at"),
        "created_at": _t(_r.created_at, "created_at"),
        "displayName": _s(_r.display_name, "display_name", nullable=True),
        "display_name": _s(_r.display_name, "display_name", nullable=True),
        "duration": Column(None, "number", nullable=True, per_dialect=_duration, get=_run_duration),
        "group": _s(_r.group_name, "group", nullable=True),
        "host": _s(_r.host, "host", nullable=True),
        "jobType": _s(_r.job_type, "job_type", nullable=True),
        "job_type": _s(_r.job_type, "job_type", nullable=True),
        "name": _s(_r.run_id, "id"),
        "state": _s(_r.state, "state"),
        # The id of the run's sweep (W&B's filter key "sweep"); None for a run of no sweep. An alias of sweeps,
        # correlated to runs only: the runs' page query joins sweeps itself (for RunRecord.sweep).
        "sweep": _s(
            sa.select(_sw.c.sweep_id).where(_sw.c.id == _r.sweep_pk).correlate_except(_sw).scalar_subquery(),
            "sweep",
            nullable=True,
        ),
        "tags": _json_string_array(_r.tags, "tags"),
        "username": _s(_r.username, "username", nullable=True),
    },
    {"config": _r.config, "summary_metrics": _r.summary},
    {"summary_metrics": "summary"},
)

_p = _db.projects.c
REGISTRY_FIELDS = Fields(
    "registries",
    {
        "name": Column(_p.name, registry=True, get="name"),
        "description": _s(_p.description, "description", nullable=True),
        "created_at": _t(_p.created_at, "created_at"),
        "updated_at": _t(_p.updated_at, "updated_at"),
    },
)

_c = _db.collections.c
_ct = _db.collection_tags
COLLECTION_FIELDS = Fields(
    "registry collections",
    {
        "name": _s(_c.name, "name"),
        "tag": _rows(_ct, _ct.c.collection_id == _c.id, _ct.c.tag, "tags"),
        "description": _s(_c.description, "description", nullable=True),
        "created_at": _t(_c.created_at, "created_at"),
        "updated_at": _t(_c.updated_at, "updated_at"),
    },
)

_v = _db.versions.c
_vt, _al, _m = _db.version_tags, _db.aliases, _db.memberships
VERSION_FIELDS = Fields(
    "artifact versions",
    {
        "tag": _rows(_vt, _vt.c.version_id == _v.id, _vt.c.tag, "tags"),
        "alias": _rows(_al, _al.c.membership_id == _m.c.id, _al.c.alias, "aliases"),
        "version": DerivedValue(Column(_m.c.version_index, "number", get="index"), _version_index, _VERSION_OPS),
        "description": _s(_v.description, "description", nullable=True),
        "created_at": _t(_v.created_at, "created_at"),
        "updated_at": _t(_v.updated_at, "updated_at"),
    },
    {"metadata": _v.metadata},
)

_e = _db.events.c
EVENT_FIELDS = Fields(
    "events",
    {
        "type": Column(_e.type, get="type", choices=_db.EVENT_TYPES),
        "created_at": _t(_e.created_at, "created_at"),
        "entity": _s(_e.entity, "entity"),
        "project": _s(_e.project, "project"),
        "collection": _s(_e.collection, "collection", nullable=True),
        "collection_type": _s(_e.collection_type, "collection_type", nullable=True),
        "version": DerivedValue(
            Column(_e.version_index, "number", nullable=True, get="version_index"), _version_index, _VERSION_OPS
        ),
        "artifact_id": _s(_e.artifact_id, "artifact_id", nullable=True),
        "alias": _s(_e.alias, "alias", nullable=True),
        "tag": _s(_e.tag, "tag", nullable=True),
        "run_id": _s(_e.run_id, "run_id", nullable=True),
    },
    {"payload": _e.payload},
)
