"""Run files and system metrics: the ``run_files`` and ``run_system_metrics`` tables.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04

Written out in full (a migration is a snapshot; see 0001). ``run_files``: one row per (run, name) naming the
blob of the file's newest content (``run.save``, the console's ``output.log``). ``run_system_metrics``: the
samples of W&B's system metrics stream, one row per sample.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "run_files",
        sa.Column("run_pk", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("digest", sa.String(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["run_pk"], ["runs.id"], name=op.f("fk_run_files_run_pk")),
        sa.PrimaryKeyConstraint("run_pk", "name", name=op.f("pk_run_files")),
    )
    op.create_table(
        "run_system_metrics",
        sa.Column("run_pk", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("row", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["run_pk"], ["runs.id"], name=op.f("fk_run_system_metrics_run_pk")),
        sa.PrimaryKeyConstraint("run_pk", "seq", name=op.f("pk_run_system_metrics")),
    )


def downgrade() -> None:
    op.drop_table("run_system_metrics")
    op.drop_table("run_files")
