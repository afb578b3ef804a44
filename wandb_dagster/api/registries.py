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

from wandb_dagster.api.filters import COLLECTION_FIELDS, REGISTRY_FIELDS, VERSION_FIELDS, compile_filter
from wandb_dagster.api.objects import ArtifactCollection, collections_paginator, versions_paginator
from wandb_dagster.api.paginator import Paginator
from wandb_dagster.store import queries
from wandb_dagster.store import schema as db

if TYPE_CHECKING:
    from wandb_dagster.api.objects import Artifact
    from wandb_dagster.sdk.workspace import Workspace


class _Scope:
    """Conditions accumulated along a registries -> collections -> versions chain."""

    def __init__(self, ws: "Workspace", organization: str, where: list[Any], selective: bool = False) -> None:
        self.ws, self.organization, self.where, self.selective = ws, organization, where, selective

    def narrowed(self, filter: Mapping[str, Any] | None, fields: Any) -> "_Scope":
        if filter is None:
            return self
        where = [*self.where, compile_filter(filter, fields, self.ws.store.dialect)]
        return _Scope(self.ws, self.organization, where, self.selective or _requires_alias_or_tag(filter, fields))


def _requires_alias_or_tag(filter: Mapping[str, Any], fields: Any) -> bool:
    """True when a versions filter can only match versions holding given alias or tag values (so an index
    on them narrows the search, whatever else it says)."""
    if fields is not VERSION_FIELDS:
        return False
    for key, value in filter.items():
        if key == "$and" and isinstance(value, list) and any(_requires_alias_or_tag(v, fields) for v in value if isinstance(v, Mapping)):
            return True
        if key in ("alias", "tag"):
            if isinstance(value, str):
                return True
            if isinstance(value, Mapping) and any(op in ("$eq", "$in", "$all", "$contains") for op in value):
                return True
    return False


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
        inner = versions_paginator(scope.ws, scope.where, per_page, selective=scope.selective)
        super().__init__(inner._fetch, inner._count, per_page)


def registries(ws: "Workspace", organization: str, filter: Mapping[str, Any] | None, per_page: int = 100) -> Registries:
    queries.ensure_core_registries(ws.store, organization)
    return Registries(_registry_scope(ws, organization).narrowed(filter, REGISTRY_FIELDS), per_page)
