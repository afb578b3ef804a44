"""Deleting a whole collection (``ArtifactCollection.delete()``, as in W&B).

Where artifacts are logged ("sequence"), every version is deleted as :func:`versions.delete` does with
``delete_aliases=True`` (its registry links go, with the same events: REMOVE_ARTIFACT_ALIAS, DELETE_ARTIFACT,
UNLINK_ARTIFACT), then the collection's rows go, its versions' rows included: nothing names them any more,
and the name is free for a new collection that starts again at v0. A registry collection ("portfolio") is
unlinked member by member (the linked versions stay where they were logged), then removed. One transaction.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from wandb_dagster.store import blob_refs, links, retention, versions
from wandb_dagster.store import schema as db
from wandb_dagster.store.errors import NotFoundError


def delete(conn: sa.Connection, collection_id: int, *, run_pk: int | None, now: datetime) -> None:
    """Store.delete_collection inside its transaction."""
    row = conn.execute(
        sa.select(db.collections.c.kind, db.collections.c.project_id, db.collections.c.name)
        .where(db.collections.c.id == collection_id)
        .with_for_update()
    ).first()
    if row is None:
        raise NotFoundError(f"no collection with pk {collection_id}; it may have been deleted already")
    member_versions = list(
        conn.execute(
            sa.select(db.memberships.c.version_id)
            .where(db.memberships.c.collection_id == collection_id)
            .order_by(db.memberships.c.version_index)
        ).scalars()
    )
    if row.kind == "portfolio":
        for version_pk in member_versions:
            links.unlink(conn, version_pk, collection_id, run_pk=run_pk, now=now)
    else:
        for version_pk in member_versions:
            versions.delete(conn, version_pk, delete_aliases=True, run_pk=run_pk, now=now)
        logged_here = sa.select(db.versions.c.id).where(db.versions.c.source_collection_id == collection_id)
        conn.execute(sa.delete(db.run_artifacts).where(db.run_artifacts.c.version_id.in_(logged_here)))
        conn.execute(sa.delete(db.version_tags).where(db.version_tags.c.version_id.in_(logged_here)))
        # Their blobs are garbage for the next gc unless another version names them.
        blob_refs.forget_versions(conn, logged_here)
        retention.forget_versions(conn, logged_here)
        conn.execute(sa.delete(db.versions).where(db.versions.c.source_collection_id == collection_id))
        of_collection = (
            db.artifact_parts.c.project_id == row.project_id, db.artifact_parts.c.collection == row.name
        )
        blob_refs.forget_parts(conn, sa.select(db.artifact_parts.c.id).where(*of_collection))
        conn.execute(sa.delete(db.artifact_parts).where(*of_collection))
    conn.execute(sa.delete(db.collection_tags).where(db.collection_tags.c.collection_id == collection_id))
    conn.execute(sa.delete(db.collections).where(db.collections.c.id == collection_id))
