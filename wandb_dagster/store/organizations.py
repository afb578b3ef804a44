"""Organizations and the registries they own (docs/behaviour.md section 6).

An organization has a name and its own entity (W&B's "org entity"); its registries are the projects of that
entity named ``wandb-registry-<name>``. Every other entity belongs to one organization: the one its
``organization_members`` row names, else the workspace's default (workspace key ``default_organization``).
Functions take the connection of the caller's transaction.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from wandb_dagster.store import catalog
from wandb_dagster.store import schema as db
from wandb_dagster.store.errors import NotFoundError, RegistryNotFoundError
from wandb_dagster.store.records import REGISTRY_PREFIX, OrganizationRecord
from wandb_dagster.store.sql import insert

DEFAULT_ORGANIZATION = "default"
VISIBILITIES = ("organization", "restricted")

_ORGS_FROM = db.organizations.join(db.entities, db.entities.c.id == db.organizations.c.entity_id)
_ORG_COLUMNS = (
    db.organizations.c.id,
    db.organizations.c.name,
    db.entities.c.name.label("entity"),
    db.organizations.c.entity_id,
    db.organizations.c.created_at,
)


def _record(row: Any) -> OrganizationRecord:
    return OrganizationRecord(
        pk=row.id, name=row.name, entity=row.entity, entity_pk=row.entity_id, created_at=row.created_at
    )


def default_name(conn: sa.Connection) -> str:
    """The name of the workspace's default organization."""
    name = conn.execute(
        sa.select(db.workspace.c.value).where(db.workspace.c.key == "default_organization")
    ).scalar()
    return name or DEFAULT_ORGANIZATION


def find(conn: sa.Connection, name_or_entity: str) -> OrganizationRecord | None:
    """The organization named ``name_or_entity``, or whose entity is named so."""
    row = conn.execute(
        sa.select(*_ORG_COLUMNS)
        .select_from(_ORGS_FROM)
        .where(sa.or_(db.organizations.c.name == name_or_entity, db.entities.c.name == name_or_entity))
        .order_by(db.organizations.c.name != name_or_entity)  # the organization's own name wins
    ).first()
    return None if row is None else _record(row)


def every(conn: sa.Connection) -> list[OrganizationRecord]:
    rows = conn.execute(sa.select(*_ORG_COLUMNS).select_from(_ORGS_FROM).order_by(db.organizations.c.id)).all()
    return [_record(row) for row in rows]


def ensure(conn: sa.Connection, name: str, now: datetime) -> OrganizationRecord:
    """Organization ``name``, created if missing (safe under races). Its entity is named like it, unless
    that name is a user or team of the directory: then ``<name>-org``."""
    found = find(conn, name)
    if found is not None:
        return found
    entity_name = name
    taken = sa.union(sa.select(db.users.c.entity_id), sa.select(db.teams.c.entity_id)).subquery()
    while conn.execute(
        sa.select(db.entities.c.id).where(db.entities.c.name == entity_name, db.entities.c.id.in_(sa.select(taken)))
    ).first():
        entity_name += "-org"
    entity_id = entity_pk(conn, entity_name, now)
    conn.execute(
        insert(conn, db.organizations)
        .values(name=name, entity_id=entity_id, created_at=now)
        .on_conflict_do_nothing()
    )
    created = find(conn, name)
    assert created is not None
    return created


def entity_pk(conn: sa.Connection, name: str, now: datetime) -> int:
    """The primary key of entity ``name``, created if missing (safe under races)."""
    conn.execute(insert(conn, db.entities).values(name=name, created_at=now).on_conflict_do_nothing())
    found: int = conn.execute(sa.select(db.entities.c.id).where(db.entities.c.name == name)).scalar_one()
    return found


def of_entity(conn: sa.Connection, entity: str) -> OrganizationRecord | None:
    """The organization entity ``entity`` belongs to (an organization's own entity: that organization);
    None when there is no such entity."""
    entity_id = conn.execute(sa.select(db.entities.c.id).where(db.entities.c.name == entity)).scalar()
    if entity_id is None:
        return None
    row = conn.execute(
        sa.select(*_ORG_COLUMNS)
        .select_from(_ORGS_FROM)
        .where(
            sa.or_(
                db.organizations.c.entity_id == entity_id,
                db.organizations.c.id.in_(
                    sa.select(db.organization_members.c.organization_id).where(
                        db.organization_members.c.entity_id == entity_id
                    )
                ),
            )
        )
    ).first()
    if row is not None:
        return _record(row)
    return find(conn, default_name(conn))


def join(conn: sa.Connection, entity_id: int, organization_pk: int) -> None:
    """Make entity ``entity_id`` a member of organization ``organization_pk`` (replacing its membership)."""
    conn.execute(sa.delete(db.organization_members).where(db.organization_members.c.entity_id == entity_id))
    conn.execute(sa.insert(db.organization_members).values(entity_id=entity_id, organization_id=organization_pk))


# --------------------------------------------------------------------------------------- registries


def registry_names(conn: sa.Connection, org_entity: str) -> list[str]:
    """The names (without the prefix) of the registries of organization entity ``org_entity``, sorted."""
    names = conn.execute(
        sa.select(db.projects.c.name)
        .select_from(catalog.PROJECTS_FROM)
        .where(db.entities.c.name == org_entity, catalog.registry_projects_condition())
    ).scalars()
    return sorted(name[len(REGISTRY_PREFIX) :] for name in names)


def check_link_target(conn: sa.Connection, org_entity: str, project: str, version_type: str, now: datetime) -> None:
    """Refuse a link into registry ``project`` of ``org_entity`` that does not exist (the core registries are
    created on first use) or does not accept ``version_type``."""
    pk = conn.execute(
        sa.select(db.projects.c.id)
        .select_from(catalog.PROJECTS_FROM)
        .where(db.entities.c.name == org_entity, db.projects.c.name == project)
    ).scalar()
    name = project[len(REGISTRY_PREFIX) :]
    if pk is None:
        if name in catalog.CORE_REGISTRIES:
            catalog.create_core_registry(conn, org_entity, name, now)
            return
        # The core registries count as existing even before their first use.
        existing = sorted(set(registry_names(conn, org_entity)) | set(catalog.CORE_REGISTRIES))
        close = difflib.get_close_matches(name, existing, n=1)
        hint = f"; did you mean {REGISTRY_PREFIX + close[0]!r}?" if close else "."
        raise RegistryNotFoundError(
            f"there is no registry {project!r} in organization entity {org_entity!r}{hint} Registries there: "
            f"{[REGISTRY_PREFIX + n for n in existing]}. Create it first with "
            f"wandb.Api().create_registry({name!r}, visibility='organization'), or link into an existing one."
        )
    accepted = conn.execute(
        sa.select(db.registry_settings.c.artifact_types).where(db.registry_settings.c.project_id == pk)
    ).scalar()
    if accepted is not None and version_type not in accepted:
        raise ValueError(
            f"registry {project!r} accepts artifact types {sorted(accepted)}, not {version_type!r}; link it into "
            "another registry, or add the type (registry.artifact_types.append(...); registry.save())"
        )


def create_registry(
    conn: sa.Connection,
    org_entity: str,
    name: str,
    *,
    description: str | None,
    visibility: str,
    artifact_types: Sequence[str] | None,
    now: datetime,
) -> int:
    """Create registry ``wandb-registry-<name>`` of ``org_entity``; ValueError if it exists. Returns its pk."""
    project = REGISTRY_PREFIX + name
    entity_id = entity_pk(conn, org_entity, now)
    inserted = conn.execute(
        insert(conn, db.projects)
        .values(entity_id=entity_id, name=project, description=description, created_at=now, updated_at=now)
        .on_conflict_do_nothing()
        .returning(db.projects.c.id)
    ).scalar()
    if inserted is None:
        raise ValueError(
            f"Registry {name!r} already exists in organization entity {org_entity!r}; use a different name, or "
            f"fetch it with wandb.Api().registry({name!r})"
        )
    conn.execute(
        sa.insert(db.registry_settings).values(
            project_id=inserted, visibility=visibility,
            artifact_types=None if artifact_types is None else sorted(set(artifact_types)),
        )
    )  # fmt: skip
    return int(inserted)


def registry_settings(conn: sa.Connection, project_pk: int) -> tuple[str, list[str] | None, list[str]]:
    """(visibility, accepted types or None for every type, the types used in the registry's collections)."""
    row = conn.execute(
        sa.select(db.registry_settings.c.visibility, db.registry_settings.c.artifact_types).where(
            db.registry_settings.c.project_id == project_pk
        )
    ).first()
    used = sorted(
        conn.execute(
            sa.select(db.collections.c.type).where(db.collections.c.project_id == project_pk).distinct()
        ).scalars()
    )
    if row is None:
        return "organization", None, used
    return row.visibility, row.artifact_types, used


def update_registry(
    conn: sa.Connection,
    project_pk: int,
    *,
    name: str,
    description: str | None,
    visibility: str,
    artifact_types: Sequence[str] | None,
    now: datetime,
) -> None:
    """Registry.save(): rename it to ``wandb-registry-<name>`` and set its description, visibility and
    accepted types (None: every type). Collections, links and aliases follow a rename."""
    row = conn.execute(
        sa.select(db.projects.c.entity_id, db.projects.c.name).where(db.projects.c.id == project_pk).with_for_update()
    ).first()
    if row is None:
        raise NotFoundError(f"registry pk {project_pk} was deleted; nothing was saved")
    new_project = REGISTRY_PREFIX + name
    if new_project != row.name:
        clash = conn.execute(
            sa.select(db.projects.c.id).where(
                db.projects.c.entity_id == row.entity_id, db.projects.c.name == new_project
            )
        ).first()
        if clash is not None:
            raise ValueError(f"cannot rename registry {row.name!r} to {new_project!r}: a registry of that name exists")
    conn.execute(
        sa.update(db.projects)
        .where(db.projects.c.id == project_pk)
        .values(name=new_project, description=description, updated_at=now)
    )
    types = None if artifact_types is None else sorted(set(artifact_types))
    updated = conn.execute(
        sa.update(db.registry_settings)
        .where(db.registry_settings.c.project_id == project_pk)
        .values(visibility=visibility, artifact_types=types)
    ).rowcount
    if not updated:
        conn.execute(
            sa.insert(db.registry_settings).values(project_id=project_pk, visibility=visibility, artifact_types=types)
        )


def registry_collections(conn: sa.Connection, project_pk: int) -> list[int]:
    """The ids of the collections of registry ``project_pk``, in id order."""
    return list(
        conn.execute(
            sa.select(db.collections.c.id)
            .where(db.collections.c.project_id == project_pk)
            .order_by(db.collections.c.id)
        ).scalars()
    )
