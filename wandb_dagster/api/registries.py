"""Registries: ``api.registries(filter=...).collections(filter=...).versions(filter=...)``, as in W&B.

A registry is a project named ``wandb-registry-<name>``. W&B puts registries under an *organization*; here
an organization is an entity: ``api.registries(organization="my-team")`` lists the registry projects of
entity ``my-team`` (default: the Api's entity, which is also where ``run.link_artifact(...,
"wandb-registry-model/...")`` links by default). Every organization has the core registries ``model`` and
``dataset``; they are created the first time its registries are listed.

Each step narrows one SQL query: ``versions()`` at the end of a chain is a single ``SELECT`` joining
memberships, versions, collections and projects with all three filters compiled in, paginated by keyset.

Example::

    >>> api.registries(filter={"name": {"$regex": "model"}}).versions(
    ...     filter={"$or": [{"tag": "prod"}, {"alias": "best"}]})          # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from wandb_dagster.store.filters import COLLECTION_FIELDS, REGISTRY_FIELDS, VERSION_FIELDS, compile_filter
from wandb_dagster.api.objects import ArtifactCollection, artifact_from_record, collections_paginator
from wandb_dagster.api.paginator import Paginator
from wandb_dagster.store import queries
from wandb_dagster.store import schema as db

if TYPE_CHECKING:
    from wandb_dagster.api.objects import Artifact
    from wandb_dagster.sdk.workspace import Workspace


class _Scope:
    """Conditions accumulated along a registries -> collections -> versions chain."""

    def __init__(
        self, ws: "Workspace", organization: str, where: list[Any], drivers: tuple[queries.Driver, ...] = ()
    ) -> None:
        self.ws, self.organization, self.where, self.drivers = ws, organization, where, drivers

    def narrowed(self, filter: Mapping[str, Any] | None, fields: Any) -> "_Scope":
        if filter is None:
            return self
        where = [*self.where, compile_filter(filter, fields, self.ws.store.dialect)]
        return _Scope(self.ws, self.organization, where, (*self.drivers, *_required_values(filter, fields)))


def _required_values(filter: Mapping[str, Any], fields: Any) -> list[queries.Driver]:
    """The alias or tag values a versions filter requires (each entry: the version holds one of ``values``),
    read from its top level and ``$and``s. The store may start from their index (migration 0003)."""
    if fields is not VERSION_FIELDS:
        return []
    found: list[queries.Driver] = []
    for key, value in filter.items():
        if key == "$and" and isinstance(value, (list, tuple)):
            for sub in value:
                if isinstance(sub, Mapping):
                    found += _required_values(sub, fields)
        elif key in ("alias", "tag"):
            if isinstance(value, str):
                found.append(queries.Driver(key, (value,)))
            elif isinstance(value, Mapping):
                for op, arg in value.items():
                    if op in ("$eq", "$contains") and isinstance(arg, str):
                        found.append(queries.Driver(key, (arg,)))
                    elif op in ("$in", "$all") and isinstance(arg, (list, tuple)) and arg and all(isinstance(a, str) for a in arg):
                        # $in: one of them; $all: each of them (any one is a valid driver).
                        found += [queries.Driver(key, tuple(arg))] if op == "$in" else [queries.Driver(key, (a,)) for a in arg]
    return found


def _registry_scope(ws: "Workspace", organization: str) -> _Scope:
    return _Scope(ws, organization, [db.entities.c.name == organization, queries.registry_projects_condition()])


class Registry:
    """One registry (``wandb-registry-<name>``). ``description`` can be changed and saved."""

    def __init__(self, ws: "Workspace", record: queries.ProjectRecord) -> None:
        self._ws, self._record = ws, record
        self.description: str | None = record.description

    @property
    def name(self) -> str:
        """The registry's name without the prefix, e.g. ``"model"``."""
        return self._record.name[len(queries.REGISTRY_PREFIX) :]

    @property
    def full_name(self) -> str:
        """The project name, e.g. ``"wandb-registry-model"``."""
        return self._record.name

    @property
    def organization(self) -> str:
        return self._record.entity

    entity = organization

    @property
    def created_at(self) -> datetime:
        return self._record.created_at

    @property
    def updated_at(self) -> datetime:
        return self._record.updated_at

    def _scope(self) -> _Scope:
        return _Scope(self._ws, self.organization, [db.projects.c.id == self._record.pk])

    def collections(self, filter: Mapping[str, Any] | None = None, per_page: int = 100) -> "Collections":
        return Collections(self._scope().narrowed(filter, COLLECTION_FIELDS), per_page)

    def versions(self, filter: Mapping[str, Any] | None = None, per_page: int = 100) -> "Paginator[Artifact]":
        return Versions(self._scope().narrowed(filter, VERSION_FIELDS), per_page)

    def save(self) -> None:
        """Persist ``description``."""
        queries.update_project(self._ws.store, self._record.pk, description=self.description)

    def __repr__(self) -> str:
        return f"<Registry {self.full_name} of {self.organization}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Registry) and other._record.pk == self._record.pk

    def __hash__(self) -> int:
        return hash(("registry", self._record.pk))


class Registries(Paginator[Registry]):
    """The registries of an organization matching a filter; narrow further with collections()/versions()."""

    def __init__(self, scope: _Scope, per_page: int = 100) -> None:
        self._scope = scope
        store = scope.ws.store

        def fetch(after: Any, limit: int) -> tuple[list[Registry], Any]:
            records, last = queries.project_page(store, scope.where, after=after, limit=limit)
            return [Registry(scope.ws, r) for r in records], last

        super().__init__(fetch, lambda: queries.project_count(store, scope.where), per_page)

    def collections(self, filter: Mapping[str, Any] | None = None, per_page: int = 100) -> "Collections":
        return Collections(self._scope.narrowed(filter, COLLECTION_FIELDS), per_page)

    def versions(self, filter: Mapping[str, Any] | None = None, per_page: int = 100) -> "Versions":
        return Versions(self._scope.narrowed(filter, VERSION_FIELDS), per_page)


class Collections(Paginator[ArtifactCollection]):
    """Registry collections matching the chain's filters; ``versions(filter)`` narrows to their versions."""

    def __init__(self, scope: _Scope, per_page: int = 100) -> None:
        self._scope = scope
        inner = collections_paginator(scope.ws, scope.where, per_page)
        super().__init__(inner._fetch, inner._count, per_page)

    def versions(self, filter: Mapping[str, Any] | None = None, per_page: int = 100) -> "Versions":
        return Versions(self._scope.narrowed(filter, VERSION_FIELDS), per_page)


class Versions(Paginator["Artifact"]):
    """Artifact versions (registry links) matching the chain's filters, ordered by registry name,
    collection name and index."""

    def __init__(self, scope: _Scope, per_page: int = 100) -> None:
        ws, where, drivers = scope.ws, scope.where, scope.drivers

        def fetch(after: Any, limit: int) -> tuple[list["Artifact"], Any]:
            records, last = queries.version_page(ws.store, where, after=after, limit=limit, drivers=drivers)
            return [artifact_from_record(ws, r) for r in records], last

        super().__init__(fetch, lambda: queries.version_count(ws.store, where), per_page)


def registries(ws: "Workspace", organization: str, filter: Mapping[str, Any] | None, per_page: int = 100) -> Registries:
    queries.ensure_core_registries(ws.store, organization)
    return Registries(_registry_scope(ws, organization).narrowed(filter, REGISTRY_FIELDS), per_page)
