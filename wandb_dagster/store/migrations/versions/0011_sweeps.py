"""Sweeps: the ``sweeps`` and ``sweep_trials`` tables and ``runs.sweep_pk``.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04

Written out in full (a migration is a snapshot; see 0001). ``runs.sweep_pk`` is added in place on both
backends: SQLite's ALTER TABLE ADD COLUMN takes a REFERENCES clause when the column defaults to NULL, so the
runs table (which other tables reference) is not rebuilt on upgrade. Dropping it again on SQLite does rebuild
the table (SQLite cannot drop a column in a foreign key), with foreign keys checked at COMMIT, when the
rebuilt table has its name back.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sweeps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("sweep_id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("method", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_sweeps_project_id")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sweeps")),
        sa.UniqueConstraint("project_id", "sweep_id", name=op.f("uq_sweeps_project_id_sweep_id")),
    )
    op.create_table(
        "sweep_trials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sweep_pk", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("grid_index", sa.Integer(), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["sweep_pk"], ["sweeps.id"], name=op.f("fk_sweep_trials_sweep_pk")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sweep_trials")),
        sa.UniqueConstraint("sweep_pk", "number", name=op.f("uq_sweep_trials_sweep_pk_number")),
        sa.UniqueConstraint("sweep_pk", "grid_index", name=op.f("uq_sweep_trials_sweep_pk_grid_index")),
    )
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE runs ADD COLUMN sweep_pk INTEGER CONSTRAINT fk_runs_sweep_pk REFERENCES sweeps (id)")
    else:
        op.add_column("runs", sa.Column("sweep_pk", sa.Integer(), nullable=True))
        op.create_foreign_key(op.f("fk_runs_sweep_pk"), "runs", "sweeps", ["sweep_pk"], ["id"])
    op.create_index(op.f("ix_runs_sweep_pk"), "runs", ["sweep_pk"])


def downgrade() -> None:
    op.drop_index(op.f("ix_runs_sweep_pk"), table_name="runs")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite (3.35+) drops the column in place. Rebuilding the runs table instead fails at commit once
        # any table refers to a run (history, files): dropping the old table counts every such row as a
        # deferred foreign-key violation that renaming the new table in does not clear.
        op.execute("ALTER TABLE runs DROP COLUMN sweep_pk")
    else:
        op.drop_constraint(op.f("fk_runs_sweep_pk"), "runs", type_="foreignkey")
        op.drop_column("runs", "sweep_pk")
    op.drop_table("sweep_trials")
    op.drop_table("sweeps")
