"""Reports (``wandb_dagster.reports``, W&B's Report API): one row per saved report.

The store keeps a report's title, description, width and its blocks (``spec``, JSON the reports package
writes and reads) without understanding them. The id users see (``report_id``, in the report's URL) is W&B's
form, base64 of ``View:<pk>`` without padding, so it is unique because the primary key is, and is assigned in
the transaction that inserts the row.
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from wandb_dagster.store import schema as db
from wandb_dagster.store.errors import NotFoundError
from wandb_dagster.store.records import ReportRecord

_REPORTS = sa.select(db.reports, db.entities.c.name.label("entity"), db.projects.c.name.label("project")).select_from(
    db.reports.join(db.projects, db.projects.c.id == db.reports.c.project_id).join(
        db.entities, db.entities.c.id == db.projects.c.entity_id
    )
)


def view_id(pk: int) -> str:
    """W&B's report id for row ``pk``: ``base64("View:<pk>")`` without the ``=`` padding (as in its URLs)."""
    return base64.b64encode(f"View:{pk}".encode()).decode().rstrip("=")


def create(
    conn: sa.Connection,
    project_pk: int,
    *,
    title: str,
    description: str,
    width: str,
    spec: dict[str, Any],
    username: str | None,
    now: datetime,
) -> ReportRecord:
    # The id derives from the primary key, known only after the insert: a random placeholder first (no real
    # id can equal it: they all start with "Vmlld"), then the id, in the same transaction.
    pk = conn.execute(
        sa.insert(db.reports)
        .values(
            project_id=project_pk,
            report_id=f"pending-{uuid.uuid4().hex}",
            title=title,
            description=description,
            width=width,
            spec=spec,
            username=username,
            created_at=now,
            updated_at=now,
        )
        .returning(db.reports.c.id)
    ).scalar_one()
    conn.execute(sa.update(db.reports).where(db.reports.c.id == pk).values(report_id=view_id(pk)))
    found = by_pk(conn, pk)
    assert found is not None  # written just above, in this transaction
    return found


def update(
    conn: sa.Connection,
    report_id: str,
    *,
    title: str,
    description: str,
    width: str,
    spec: dict[str, Any],
    now: datetime,
) -> ReportRecord:
    updated = conn.execute(
        sa.update(db.reports)
        .where(db.reports.c.report_id == report_id)
        .values(title=title, description=description, width=width, spec=spec, updated_at=now)
    ).rowcount
    if not updated:
        raise NotFoundError(f"no report with id {report_id!r} (deleted?); save it as a new report with clone=True")
    found = get(conn, report_id)
    assert found is not None
    return found


def get(conn: sa.Connection, report_id: str) -> ReportRecord | None:
    row = conn.execute(_REPORTS.where(db.reports.c.report_id == report_id)).first()
    return None if row is None else _record(row)


def by_pk(conn: sa.Connection, pk: int) -> ReportRecord | None:
    row = conn.execute(_REPORTS.where(db.reports.c.id == pk)).first()
    return None if row is None else _record(row)


def in_project(conn: sa.Connection, entity: str, project: str, title: str | None = None) -> list[ReportRecord]:
    """The reports of ``entity/project`` (those titled ``title`` when given), newest first, as W&B lists them."""
    query = _REPORTS.where(db.entities.c.name == entity, db.projects.c.name == project)
    if title is not None:
        query = query.where(db.reports.c.title == title)
    rows = conn.execute(query.order_by(db.reports.c.id.desc())).all()
    return [_record(row) for row in rows]


def delete(conn: sa.Connection, report_id: str) -> bool:
    return bool(conn.execute(sa.delete(db.reports).where(db.reports.c.report_id == report_id)).rowcount)


def _record(row: Any) -> ReportRecord:
    m = row._mapping
    return ReportRecord(
        pk=m["id"],
        id=m["report_id"],
        entity=m["entity"],
        project=m["project"],
        title=m["title"],
        description=m["description"],
        width=m["width"],
        spec=m["spec"],
        username=m["username"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )
