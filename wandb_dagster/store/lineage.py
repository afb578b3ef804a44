"""Lineage reads for graphs: the edges next to many nodes at once, a bounded number per node.

``runs.of_version`` and ``versions.of_run`` return every neighbour of one node with its full record; a
graph walk over those costs a query per node and reads every consumer of a version that ten thousand runs
used. Here one statement serves a whole frontier, keeps at most ``limit`` edges per node (the oldest, by
pk) and reports how many there are in all, so the caller can say "and 9,980 more".
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from wandb_dagster.store import schema as db
from wandb_dagster.store import versions
from wandb_dagster.store.records import LineageEdge, LineageRun, LineageVersion, VersionRecord
from wandb_dagster.store.sql import one_of

_ra = db.run_artifacts


def edges(
    conn: sa.Connection, *, of: str, pks: Sequence[int], direction: str, limit: int
) -> tuple[list[LineageEdge], dict[int, int]]:
    """Edges of ``direction`` at the ``of`` nodes (``"run"``: by run pk; ``"version"``: by version pk), at
    most ``limit`` per node, oldest neighbour first; and each node's total count of such edges."""
    if of not in ("run", "version"):
        raise ValueError(f"of={of!r} is invalid; use 'run' or 'version'")
    if direction not in ("input", "output"):
        raise ValueError(f"direction={direction!r} is invalid; use 'input' or 'output'")
    if limit < 1:
        raise ValueError(f"limit={limit!r} must be at least 1")
    if not pks:
        return [], {}
    key, other = (_ra.c.run_pk, _ra.c.version_id) if of == "run" else (_ra.c.version_id, _ra.c.run_pk)
    # Window functions (SQLite >= 3.25, PostgreSQL): the per-node cut happens in the database, so a version
    # with 10,000 consumers sends ``limit`` rows, not 10,000.
    ranked = (
        sa.select(
            _ra.c.run_pk,
            _ra.c.version_id,
            sa.func.row_number().over(partition_by=key, order_by=other).label("rank"),
            sa.func.count().over(partition_by=key).label("total"),
        )
        .where(one_of(conn, key, list(pks)), _ra.c.direction == direction)
        .subquery()
    )
    rows = conn.execute(
        sa.select(ranked.c.run_pk, ranked.c.version_id, ranked.c.total)
        .where(ranked.c.rank <= limit)
        .order_by(ranked.c.run_pk if of == "run" else ranked.c.version_id, ranked.c.rank)
    ).all()
    found = [LineageEdge(run_pk, version_pk, direction) for run_pk, version_pk, _ in rows]
    totals = {(run_pk if of == "run" else version_pk): total for run_pk, version_pk, total in rows}
    return found, totals


_RUN_NODES = sa.select(
    db.runs.c.id, db.entities.c.name, db.projects.c.name, db.runs.c.run_id, db.runs.c.display_name,
    db.runs.c.state, db.runs.c.job_type, db.runs.c.username,
).select_from(
    db.runs.join(db.projects, db.projects.c.id == db.runs.c.project_id).join(
        db.entities, db.entities.c.id == db.projects.c.entity_id
    )
)


def run_nodes(conn: sa.Connection, pks: Sequence[int]) -> list[LineageRun]:
    """The runs ``pks`` (those that still exist), by pk."""
    if not pks:
        return []
    rows = conn.execute(_RUN_NODES.where(one_of(conn, db.runs.c.id, list(pks))).order_by(db.runs.c.id)).all()
    return [LineageRun(*row) for row in rows]


def runs_by_id(conn: sa.Connection, run_ids: Sequence[str]) -> dict[str, LineageRun]:
    """The runs with these ids (events name runs by id only), for the ids that name exactly one run in the
    workspace: an id used in two projects names no run here rather than the wrong one."""
    wanted = sorted(set(run_ids))
    if not wanted:
        return {}
    found: dict[str, list[LineageRun]] = {}
    for row in conn.execute(_RUN_NODES.where(db.runs.c.run_id.in_(wanted))).all():
        found.setdefault(row[3], []).append(LineageRun(*row))
    return {run_id: runs[0] for run_id, runs in found.items() if len(runs) == 1}


def version_nodes(conn: sa.Connection, pks: Sequence[int]) -> list[LineageVersion]:
    """The versions ``pks`` as members of the collections they were logged to (deleted ones too, with
    index None), by pk."""
    if not pks:
        return []
    v, c, m = db.versions, db.collections, db.memberships
    rows = conn.execute(
        sa.select(
            v.c.id, v.c.public_id, db.entities.c.name, db.projects.c.name, c.c.name, c.c.type, m.c.version_index,
            v.c.state,
        )
        .select_from(
            v.join(c, c.c.id == v.c.source_collection_id)
            .join(db.projects, db.projects.c.id == c.c.project_id)
            .join(db.entities, db.entities.c.id == db.projects.c.entity_id)
            .outerjoin(m, sa.and_(m.c.collection_id == v.c.source_collection_id, m.c.version_id == v.c.id))
        )
        .where(one_of(conn, v.c.id, list(pks)))
        .order_by(v.c.id)
    ).all()
    return [LineageVersion(*row) for row in rows]


def memberships(conn: sa.Connection, version_pk: int) -> list[VersionRecord]:
    """Every place version ``version_pk`` is a member of: where it was logged and each registry collection
    it is linked into (membership views: that collection's index and aliases), in the order they were made."""
    return versions.records(conn, db.memberships.c.version_id == version_pk, order_by=[db.memberships.c.id])
