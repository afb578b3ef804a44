"""Initial schema: workspace, entities, projects, runs and history, collections, versions, memberships,
aliases, tags, lineage.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Written out in full rather than built from schema.py: a migration is a snapshot and must keep producing
the same tables when schema.py moves on. tests/store/test_schema_migrations.py checks that head matches
schema.py on SQLite and PostgreSQL.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "workspace",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_workspace")),
    )
    op.create_table(
        "entities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entities")),
        sa.UniqueConstraint("name", name=op.f("uq_entities_name")),
    )
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.ForeignKeyConstraint(["entity_id"], ["entities.id"], name=op.f("fk_projects_entity_id")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint("entity_id", "name", name=op.f("uq_projects_entity_id_name")),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("display_name", sa.String(), nullable=True),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("group_name", sa.String(), nullable=True),
        sa.Column("job_type", sa.String(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("host", sa.String(), nullable=True),
        sa.Column("username", sa.String(), nullable=True),
        _timestamp("created_at"),
        _timestamp("heartbeat_at", nullable=True),
        _timestamp("finished_at", nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_runs_project_id")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        sa.UniqueConstraint("project_id", "run_id", name=op.f("uq_runs_project_id_run_id")),
    )
    op.create_table(
        "run_history",
        sa.Column("run_pk", sa.Integer(), nullable=False),
        sa.Column("step", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("row", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["run_pk"], ["runs.id"], name=op.f("fk_run_history_run_pk")),
        sa.PrimaryKeyConstraint("run_pk", "step", name=op.f("pk_run_history")),
    )
    op.create_table(
        "collections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.Column("next_index", sa.Integer(), nullable=False),
        sa.CheckConstraint("kind IN ('sequence', 'portfolio')", name=op.f("ck_collections_kind")),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_collections_project_id")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collections")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_collections_project_id_name")),
    )
    op.create_table(
        "collection_tags",
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["collection_id"], ["collections.id"], name=op.f("fk_collection_tags_collection_id")),
        sa.PrimaryKeyConstraint("collection_id", "tag", name=op.f("pk_collection_tags")),
    )
    op.create_table(
        "versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(), nullable=False),
        sa.Column("source_collection_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("file_count", sa.Integer(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("created_by_run_pk", sa.Integer(), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.Column("manifest", sa.Text(), nullable=False),
        sa.CheckConstraint("state IN ('COMMITTED', 'DELETED')", name=op.f("ck_versions_state")),
        sa.ForeignKeyConstraint(["created_by_run_pk"], ["runs.id"], name=op.f("fk_versions_created_by_run_pk")),
        sa.ForeignKeyConstraint(
            ["source_collection_id"], ["collections.id"], name=op.f("fk_versions_source_collection_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_versions")),
        sa.UniqueConstraint("public_id", name=op.f("uq_versions_public_id")),
    )
    op.create_index(
        op.f("ix_versions_source_collection_id_digest"), "versions", ["source_collection_id", "digest"]
    )
    op.create_table(
        "memberships",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("version_index", sa.Integer(), nullable=False),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(["collection_id"], ["collections.id"], name=op.f("fk_memberships_collection_id")),
        sa.ForeignKeyConstraint(["version_id"], ["versions.id"], name=op.f("fk_memberships_version_id")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memberships")),
        sa.UniqueConstraint(
            "collection_id", "version_index", name=op.f("uq_memberships_collection_id_version_index")
        ),
        sa.UniqueConstraint("collection_id", "version_id", name=op.f("uq_memberships_collection_id_version_id")),
    )
    op.create_index(op.f("ix_memberships_version_id"), "memberships", ["version_id"])
    op.create_table(
        "aliases",
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(), nullable=False),
        sa.Column("membership_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["collection_id"], ["collections.id"], name=op.f("fk_aliases_collection_id")),
        sa.ForeignKeyConstraint(["membership_id"], ["memberships.id"], name=op.f("fk_aliases_membership_id")),
        sa.PrimaryKeyConstraint("collection_id", "alias", name=op.f("pk_aliases")),
    )
    op.create_index(op.f("ix_aliases_membership_id"), "aliases", ["membership_id"])
    op.create_table(
        "version_tags",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["versions.id"], name=op.f("fk_version_tags_version_id")),
        sa.PrimaryKeyConstraint("version_id", "tag", name=op.f("pk_version_tags")),
    )
    op.create_table(
        "run_artifacts",
        sa.Column("run_pk", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(), nullable=False),
        sa.CheckConstraint("direction IN ('input', 'output')", name=op.f("ck_run_artifacts_direction")),
        sa.ForeignKeyConstraint(["run_pk"], ["runs.id"], name=op.f("fk_run_artifacts_run_pk")),
        sa.ForeignKeyConstraint(["version_id"], ["versions.id"], name=op.f("fk_run_artifacts_version_id")),
        sa.PrimaryKeyConstraint("run_pk", "version_id", "direction", name=op.f("pk_run_artifacts")),
    )
    op.create_index(op.f("ix_run_artifacts_version_id"), "run_artifacts", ["version_id"])


def downgrade() -> None:
    for table in (
        "run_artifacts",
        "version_tags",
        "aliases",
        "memberships",
        "versions",
        "collection_tags",
        "collections",
        "run_history",
        "runs",
        "projects",
        "entities",
        "workspace",
    ):
        op.drop_table(table)
