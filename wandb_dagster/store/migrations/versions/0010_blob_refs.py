"""Garbage collection: the blobs each version names, writers' claims, gc's marks; retention (version_ttl).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04

The protocol is docs/architecture.md, "Garbage collection" (store/blob_refs.py). ``version_blobs`` and
``part_blobs`` are filled here from the manifests of the versions and distributed-artifact parts already
logged (every stored entry's digest: an entry without a ``ref``), so that a gc after the upgrade never takes
a blob an existing version or part names. Written out in full (a
migration is a snapshot; see 0001): the manifest is parsed with the standard library only.
"""
import base64
import binascii
import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _stored_hexes(manifest: str) -> set[str]:
    try:
        contents = json.loads(manifest).get("contents") or {}
    except (ValueError, AttributeError):
        return set()  # a damaged manifest: verify reports it; nothing can be read from it here
    hexes = set()
    for body in contents.values() if isinstance(contents, dict) else ():
        if isinstance(body, dict) and body.get("ref") is None and isinstance(body.get("digest"), str):
            try:
                raw = base64.b64decode(body["digest"], validate=True)
            except (binascii.Error, ValueError):
                continue
            if len(raw) == 16:
                hexes.add(raw.hex())
    return hexes


def upgrade() -> None:
    op.create_table(
        "version_blobs",
        sa.Column("hex", sa.String(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["versions.id"], name=op.f("fk_version_blobs_version_id")),
        sa.PrimaryKeyConstraint("hex", "version_id", name=op.f("pk_version_blobs")),
    )
    op.create_table(
        "part_blobs",
        sa.Column("hex", sa.String(), nullable=False),
        sa.Column("part_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["part_id"], ["artifact_parts.id"], name=op.f("fk_part_blobs_part_id")),
        sa.PrimaryKeyConstraint("hex", "part_id", name=op.f("pk_part_blobs")),
    )
    op.create_table(
        "version_ttl",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("ttl_seconds", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["versions.id"], name=op.f("fk_version_ttl_version_id")),
        sa.PrimaryKeyConstraint("version_id", name=op.f("pk_version_ttl")),
    )
    op.create_index(op.f("ix_version_ttl_expires_at"), "version_ttl", ["expires_at"])
    op.create_table(
        "blob_claims",
        sa.Column("token", sa.String(), nullable=False),
        sa.Column("hex", sa.String(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token", "hex", name=op.f("pk_blob_claims")),
    )
    op.create_index(op.f("ix_blob_claims_hex"), "blob_claims", ["hex"])
    op.create_table(
        "blob_marks",
        sa.Column("hex", sa.String(), nullable=False),
        sa.Column("marked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("hex", name=op.f("pk_blob_marks")),
    )
    if op.get_context().as_sql:
        # Offline (SQL script) mode cannot read the manifests; gc also reads every committed manifest
        # before it marks anything, so a workspace upgraded this way loses no blob either.
        return
    _backfill("versions", "version_blobs", "version_id")
    _backfill("artifact_parts", "part_blobs", "part_id")


def _backfill(source: str, target: str, key: str) -> None:
    conn = op.get_bind()
    rows_of = sa.table(source, sa.column("id", sa.Integer()), sa.column("manifest", sa.Text()))
    blobs = sa.table(target, sa.column("hex", sa.String()), sa.column(key, sa.Integer()))
    ids = list(conn.execute(sa.select(rows_of.c.id).order_by(rows_of.c.id)).scalars())
    for i in range(0, len(ids), 200):  # a few manifests in memory at a time
        chunk = ids[i : i + 200]
        query = sa.select(rows_of.c.id, rows_of.c.manifest).where(rows_of.c.id.in_(chunk))
        rows = [
            {"hex": h, key: pk}
            for pk, manifest in conn.execute(query).all()
            for h in sorted(_stored_hexes(manifest))
        ]
        if rows:
            conn.execute(sa.insert(blobs), rows)


def downgrade() -> None:
    op.drop_table("blob_marks")
    op.drop_index(op.f("ix_blob_claims_hex"), table_name="blob_claims")
    op.drop_table("blob_claims")
    op.drop_table("part_blobs")
    op.drop_index(op.f("ix_version_ttl_expires_at"), table_name="version_ttl")
    op.drop_table("version_ttl")
    op.drop_table("version_blobs")
