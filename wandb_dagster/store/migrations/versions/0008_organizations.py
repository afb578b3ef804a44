"""Organizations own the registries; a directory of users and teams; registry settings.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04

Until 0007 a registry (a project named ``wandb-registry-<name>``) lived under whatever entity linked into
it first, so a version linked by a run under team ``my-team`` was invisible to an ``Api()`` whose entity is
the user's. From here every registry belongs to an organization: it is a project of the organization's own
entity. This migration creates the default organization (named by ``config.attributes["organization"]``,
which Store.open passes from the settings; else ``default``), records it as the workspace's default, and
moves every registry created under another entity into it. Two entities with a registry of the same name
are merged into one; a collection whose name is taken in the merged registry is renamed
``<name>-<entity>`` (indices, aliases and links are kept: only the collection's row moves).

Downgrade drops the new tables; registries stay under the organization's entity (an ordinary entity then).
Written out in full (a migration is a snapshot; see 0001).
"""
from collections.abc import Sequence
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import context, op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REGISTRY_PREFIX = "wandb-registry-"


def _timestamp(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(["entity_id"], ["entities.id"], name=op.f("fk_organizations_entity_id_entities")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
        sa.UniqueConstraint("entity_id", name=op.f("uq_organizations_entity_id")),
        sa.UniqueConstraint("name", name=op.f("uq_organizations_name")),
    )
    op.create_table(
        "organization_members",
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entity_id"], ["entities.id"], name=op.f("fk_organization_members_entity_id_entities")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"],
            name=op.f("fk_organization_members_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("entity_id", name=op.f("pk_organization_members")),
    )
    op.create_table(
        "users",
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(), nullable=True),
        sa.Column("admin", sa.Boolean(), nullable=False),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(["entity_id"], ["entities.id"], name=op.f("fk_users_entity_id_entities")),
        sa.PrimaryKeyConstraint("entity_id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "teams",
        sa.Column("entity_id", sa.Integer(), nullable=False),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(["entity_id"], ["entities.id"], name=op.f("fk_teams_entity_id_entities")),
        sa.PrimaryKeyConstraint("entity_id", name=op.f("pk_teams")),
    )
    op.create_table(
        "team_members",
        sa.Column("team_entity_id", sa.Integer(), nullable=False),
        sa.Column("user_entity_id", sa.Integer(), nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["team_entity_id"], ["teams.entity_id"], name=op.f("fk_team_members_team_entity_id_teams")
        ),
        sa.ForeignKeyConstraint(
            ["user_entity_id"], ["users.entity_id"], name=op.f("fk_team_members_user_entity_id_users")
        ),
        sa.PrimaryKeyConstraint("team_entity_id", "user_entity_id", name=op.f("pk_team_members")),
    )
    op.create_index(op.f("ix_team_members_user_entity_id"), "team_members", ["user_entity_id"])
    op.create_table(
        "registry_settings",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("visibility", sa.String(), nullable=False),
        sa.Column("artifact_types", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_registry_settings_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_registry_settings")),
    )
    if context.is_offline_mode():
        return  # the data steps below read the database; offline mode renders the DDL only
    _create_default_organization_and_move_registries(op.get_bind())


def _create_default_organization_and_move_registries(conn: sa.Connection) -> None:
    name = context.config.attributes.get("organization") or "default"
    now = datetime.now(timezone.utc)
    if conn.dialect.name == "sqlite":
        now = now.replace(tzinfo=None)  # UTCDateTime stores naive UTC on SQLite
    meta = sa.MetaData()
    entities = sa.Table("entities", meta, autoload_with=conn)
    projects = sa.Table("projects", meta, autoload_with=conn)
    collections = sa.Table("collections", meta, autoload_with=conn)
    runs = sa.Table("runs", meta, autoload_with=conn)
    organizations = sa.Table("organizations", meta, autoload_with=conn)
    workspace = sa.Table("workspace", meta, autoload_with=conn)

    # The organization's entity is named like the organization (an existing entity of that name becomes it).
    org_entity = conn.execute(sa.select(entities.c.id).where(entities.c.name == name)).scalar()
    if org_entity is None:
        org_entity = conn.execute(
            entities.insert().values(name=name, created_at=now).returning(entities.c.id)
        ).scalar_one()
    conn.execute(organizations.insert().values(name=name, entity_id=org_entity, created_at=now))
    conn.execute(workspace.insert().values(key="default_organization", value=name))

    is_registry = sa.and_(projects.c.name >= _REGISTRY_PREFIX, projects.c.name < _REGISTRY_PREFIX[:-1] + ".")
    elsewhere = conn.execute(
        sa.select(projects.c.id, projects.c.name, entities.c.name.label("entity"))
        .join(entities, entities.c.id == projects.c.entity_id)
        .where(is_registry, projects.c.entity_id != org_entity)
        .order_by(projects.c.id)
    ).all()
    for project in elsewhere:
        target = conn.execute(
            sa.select(projects.c.id).where(projects.c.entity_id == org_entity, projects.c.name == project.name)
        ).scalar()
        if target is None:  # the first registry of this name: it moves as it is
            conn.execute(sa.update(projects).where(projects.c.id == project.id).values(entity_id=org_entity))
            continue
        # Another entity's registry of this name moved already: merge this one's collections into it.
        taken = set(conn.execute(sa.select(collections.c.name).where(collections.c.project_id == target)).scalars())
        for coll_id, coll_name in conn.execute(
            sa.select(collections.c.id, collections.c.name).where(collections.c.project_id == project.id)
        ).all():
            new_name, n = coll_name, 1
            while new_name in taken:
                new_name = f"{coll_name}-{project.entity}" + (f"-{n}" if n > 1 else "")
                n += 1
            taken.add(new_name)
            conn.execute(
                sa.update(collections).where(collections.c.id == coll_id).values(project_id=target, name=new_name)
            )
        has_runs = conn.execute(sa.select(runs.c.id).where(runs.c.project_id == project.id).limit(1)).first()
        if has_runs is None:
            conn.execute(sa.delete(projects).where(projects.c.id == project.id))


def downgrade() -> None:
    op.execute("DELETE FROM workspace WHERE key = 'default_organization'")
    op.drop_table("registry_settings")
    op.drop_index(op.f("ix_team_members_user_entity_id"), table_name="team_members")
    op.drop_table("team_members")
    op.drop_table("teams")
    op.drop_table("users")
    op.drop_table("organization_members")
    op.drop_table("organizations")
