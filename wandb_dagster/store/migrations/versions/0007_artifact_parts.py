"""Distributed artifacts: the ``artifact_parts`` table (``run.upsert_artifact`` / ``run.finish_artifact``).

Revision ID: 0007
Revises: 0004
Create Date: 2026-12-04

Written out in full (a migration is a snapshot; see 0001). One row per upsert; finish_artifact merges the
rows of a (project, collection, distributed_id) into one version and deletes them in the same transaction.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "artifact_parts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("collection", sa.String(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("distributed_id", sa.String(), nullable=False),
        sa.Column("run_pk", sa.Integer(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("aliases", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("manifest", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_artifact_parts_project_id")),
        sa.ForeignKeyConstraint(["run_pk"], ["runs.id"], name=op.f("fk_artifact_parts_run_pk")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_artifact_parts")),
    )
    op.create_index(
        op.f("ix_artifact_parts_project_id_collection_distributed_id"),
        "artifact_parts",
        ["project_id", "collection", "distributed_id"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_artifact_parts_project_id_collection_distributed_id"), table_name="artifact_parts")
    op.drop_table("artifact_parts")
