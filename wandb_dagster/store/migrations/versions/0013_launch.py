"""W&B Launch: the ``run_queues`` and ``run_queue_items`` tables.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04

Written out in full (a migration is a snapshot; see 0001). Two new tables and nothing else changes, so the
downgrade only drops them (a workspace's queues and queued runs go with them).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "run_queues",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("resource_type", sa.String(), nullable=False),
        sa.Column("prioritization_mode", sa.String(), nullable=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("template_variables", sa.JSON(), nullable=False),
        sa.Column("external_links", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["entity_id"], ["entities.id"], name=op.f("fk_run_queues_entity_id")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_queues")),
        sa.UniqueConstraint("entity_id", "name", name=op.f("uq_run_queues_entity_id_name")),
    )
    op.create_table(
        "run_queue_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.String(), nullable=False),
        sa.Column("queue_pk", sa.Integer(), nullable=False),
        sa.Column("entity", sa.String(), nullable=False),
        sa.Column("project", sa.String(), nullable=False),
        sa.Column("job", sa.String(), nullable=False),
        sa.Column("launch", sa.JSON(), nullable=False),
        sa.Column("template_values", sa.JSON(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("lease_owner", sa.String(), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("dagster_run_id", sa.String(), nullable=True),
        sa.Column("run_path", sa.String(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["queue_pk"], ["run_queues.id"], name=op.f("fk_run_queue_items_queue_pk")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_queue_items")),
        sa.UniqueConstraint("item_id", name=op.f("uq_run_queue_items_item_id")),
    )
    op.create_index(
        op.f("ix_run_queue_items_queue_pk_state_priority_id"),
        "run_queue_items",
        ["queue_pk", "state", "priority", "id"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_run_queue_items_queue_pk_state_priority_id"), table_name="run_queue_items")
    op.drop_table("run_queue_items")
    op.drop_table("run_queues")
