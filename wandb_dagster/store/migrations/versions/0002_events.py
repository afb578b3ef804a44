"""Event feed: the append-only ``events`` table (docs/architecture.md invariant 5).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Written out in full (a migration is a snapshot; see 0001). ``id`` has no default on purpose: the store
assigns it under a lock at the end of each writing transaction so that id order is commit order (see
wandb_dagster/store/events.py). On SQLite it is an INTEGER PRIMARY KEY (the rowid: no separate index).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False, nullable=False
        ),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entity", sa.String(), nullable=False),
        sa.Column("project", sa.String(), nullable=False),
        sa.Column("collection", sa.String(), nullable=True),
        sa.Column("collection_type", sa.String(), nullable=True),
        sa.Column("version_index", sa.Integer(), nullable=True),
        sa.Column("artifact_id", sa.String(), nullable=True),
        sa.Column("alias", sa.String(), nullable=True),
        sa.Column("tag", sa.String(), nullable=True),
        sa.Column("run_id", sa.String(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )


def downgrade() -> None:
    op.drop_table("events")
