"""Garbage collection: the blobs each version names, writers' claims, gc's marks; retention (version_ttl).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04

The protocol is docs/architecture.md, "Garbage collection" (store/blob_refs.py). ``version_blobs`` and
``part_blobs`` are filled here from the manifests of the versions and distributed-artifact parts already
logged (every stored entry's digest: an entry without a ``ref``), so that a gc after the upgrade never takes
a blob an existing version or part names. ``run_blobs`` (the media blobs runs name) is filled from every run's
summary and history rows (the media values' ``digest``/``digests``, as sdk/data_types/base.py's
``media_files`` reads them), and ``run_files.digest`` gets the index gc looks it up by. Written out in full (a
migration is a snapshot; see 0001): manifests and rows are parsed with the standard library only.
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


# The media types whose run JSON names one stored file (``digest``) and the one naming several (``digests``).
_ONE_FILE = frozenset({"image-file", "html-file", "table-file", "incremental-table-file"})


def _hex_of(digest: object) -> str | None:
    if not isinstance(digest, str):
        return None
    try:
        raw = base64.b64decode(digest, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 16 else None


def _media_hexes(value: object, out: set[str]) -> None:
    """The blobs (hex) the media values in ``value`` (a summary or history row, nested ones too) name."""
    if isinstance(value, dict):
        kind = value.get("_type")
        if kind in _ONE_FILE:
            h = _hex_of(value.get("digest"))
            if h is not None:
                out.add(h)
        elif kind == "images/separated" and isinstance(value.get("digests"), list):
            out.update(h for h in map(_hex_of, value["digests"]) if h is not None)
        for inner in value.values():
            if isinstance(inner, (dict, list)):
                _media_hexes(inner, out)
    elif isinstance(value, list):
        for inner in value:
            _media_hexes(inner, out)


def _loaded(value: object) -> object:
    if isinstance(value, str):  # a JSON column read without its type: the text
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


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
    op.create_index(op.f("ix_version_blobs_version_id"), "version_blobs", ["version_id"])
    op.create_index(op.f("ix_part_blobs_part_id"), "part_blobs", ["part_id"])
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
    op.create_table(
        "run_blobs",
        sa.Column("run_pk", sa.Integer(), nullable=False),
        sa.Column("hex", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["run_pk"], ["runs.id"], name=op.f("fk_run_blobs_run_pk")),
        sa.PrimaryKeyConstraint("run_pk", "hex", name=op.f("pk_run_blobs")),
    )
    op.create_index(op.f("ix_run_blobs_hex"), "run_blobs", ["hex"])
    op.create_index(op.f("ix_run_files_digest"), "run_files", ["digest"])
    if op.get_context().as_sql:
        # Offline (SQL script) mode cannot read the manifests; gc also reads every committed manifest
        # before it marks anything, so a workspace upgraded this way loses no blob either.
        return
    _backfill("versions", "version_blobs", "version_id")
    _backfill("artifact_parts", "part_blobs", "part_id")
    _backfill_runs()


def _backfill_runs() -> None:
    """``run_blobs`` of the runs already logged: the media their summary and history rows name (a run's
    rows read a run at a time, so memory holds one run's history)."""
    conn = op.get_bind()
    runs = sa.table("runs", sa.column("id", sa.Integer()), sa.column("summary", sa.JSON()))
    history = sa.table("run_history", sa.column("run_pk", sa.Integer()), sa.column("row", sa.JSON()))
    blobs = sa.table("run_blobs", sa.column("run_pk", sa.Integer()), sa.column("hex", sa.String()))
    for pk, summary in conn.execute(sa.select(runs.c.id, runs.c.summary).order_by(runs.c.id)).all():
        found: set[str] = set()
        _media_hexes(_loaded(summary), found)
        for row in conn.execute(sa.select(history.c.row).where(history.c.run_pk == pk)).scalars():
            _media_hexes(_loaded(row), found)
        if found:
            conn.execute(sa.insert(blobs), [{"run_pk": pk, "hex": h} for h in sorted(found)])


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
    op.drop_index(op.f("ix_run_files_digest"), table_name="run_files")
    op.drop_index(op.f("ix_run_blobs_hex"), table_name="run_blobs")
    op.drop_table("run_blobs")
    op.drop_table("blob_marks")
    op.drop_index(op.f("ix_blob_claims_hex"), table_name="blob_claims")
    op.drop_table("blob_claims")
    op.drop_table("part_blobs")
    op.drop_index(op.f("ix_version_ttl_expires_at"), table_name="version_ttl")
    op.drop_table("version_ttl")
    op.drop_table("version_blobs")
