"""Sweep trials: ``sweep_trials.value``, the metric's value a trial's run reached.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04

Written out in full (a migration is a snapshot; see 0001). ``value`` is what bayes search learns from: the
extremum of the sweep's metric over the run's history and summary (W&B's ``metric_extremum``), recorded
when the trial ends, so a suggestion reads one row per trial rather than every run's history. Trials that
ended before this revision have none (NULL); the SDK computes theirs from the run when it needs them.
Added and dropped in place on both backends (SQLite 3.35+ drops a column that no constraint names).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("sweep_trials", sa.Column("value", sa.Float(), nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE sweep_trials DROP COLUMN value")
    else:
        op.drop_column("sweep_trials", "value")
