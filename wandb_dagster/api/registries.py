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

from wandb_dagster.api.objects import ArtifactCollection, artifact_from_record, collections_paginator
from wandb_dagster.api.paginator import Paginator
from wandb_dagster.store.records import REGISTRY_PREFIX, ProjectRecord
from wandb_dagster.store.scope import Filter, Scope

if TYPE_CHECKING:
    from wandb_dagster.api.objects import Artifact
    from wandb_dagster.sdk.workspace import Workspace


class _Chain:
    """What a registries -> collections -> versions chain has narrowed to: a scope and its filters."""

    def __init__(self, ws: Workspace, organization: str, scope: Scope, filters: tuple[Filter, ...] = ()) -> None:
        self.ws, self.organization, self.scope, self.filters = ws, organization, scope, filters

    def narrowed(self, filter: Mapping[str, Any] | None, kind: str) -> _Chain:
        if filter is None:
            return self
        return _Chain(self.ws, self.organization, self.scope, (*self.filters, (kind, filter)))

    def query(self, target: str) -> Any:
        """The store's compiled read of ``target`` (a bad filter raises here, when the chain is built)."""
        return self.ws.store.query(target, self.scope, self.filters)


class Registry:
    """One registry (``wandb-registry-<name>``). ``description`` can be changed and saved."""

    def __init__(self, ws: Workspace, record: ProjectRecord) -> None:
        self._ws, self._record = ws, record
        self.description: str | None = record.description

    @property
    def name(self) -> str:
        """The registry's name without the prefix, e.g. ``"model"``."""
        return self._record.name[len(REGISTRY_PREFIX) :]

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

    def _chain(self) -> _Chain:
        return _Chain(self._ws, self.organization, Scope(project_pk=self._record.pk))

    def collections(self, filter: Mapping[str, Any] | None = None, per_page: int = 100) -> Collections:
        return Collections(self._chain().narrowed(filter, "collection"), per_page)

    def versions(self, filter: Mapping[str, Any] | None = None, per_page: int = 100) -> Paginator[Artifact]:
        return Versions(self._chain().narrowed(filter, "version"), per_page)

    def save(self) -> None:
        """Persist ``description``."""
        self._ws.store.update_project(self._record.pk, description=self.description)

    def __repr__(self) -> str:
        return f"<Registry {self.full_name} of {self.organization}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Registry) and other._record.pk == self._record.pk

    def __hash__(self) -> int:
        return hash(("registry", self._record.pk))


class Registries(Paginator[Registry]):
    """The registries of an organization matching a filter; narrow further with collections()/versions()."""

    def __init__(self, chain: _Chain, per_page: int = 100) -> None:
        self._chain = chain
        inner = Paginator.over(chain.ws.store, chain.query("projects"), lambda r: Registry(chain.ws, r), per_page)
        super().__init__(inner._fetch, inner._count, per_page)

    def collections(self, filter: Mapping[str, Any] | None = None, per_page: int = 100) -> Collections:
        return Collections(self._chain.narrowed(filter, "collection"), per_page)

    def versions(self, filter: Mapping[str, Any] | None = None, per_page: int = 100) -> Versions:
        return Versions(self._chain.narrowed(filter, "version"), per_page)


class Collections(Paginator[ArtifactCollection]):
    """Registry collections matching the chain's filters; ``versions(filter)`` narrows to their versions."""

    def __init__(self, chain: _Chain, per_page: int = 100) -> None:
        self._chain = chain
        inner = collections_paginator(chain.ws, chain.scope, chain.filters, per_page)
        super().__init__(inner._fetch, inner._count, per_page)

    def versions(self, filter: Mapping[str, Any] | None = None, per_page: int = 100) -> Versions:
        return Versions(self._chain.narrowed(filter, "version"), per_page)


class Versions(Paginator["Artifact"]):
    """Artifact versions (registry links) matching the chain's filters, ordered by registry name,
    collection name and index."""

    def __init__(self, chain: _Chain, per_page: int = 100) -> None:
        ws = chain.ws
        inner = Paginator.over(ws.store, chain.query("versions"), lambda r: artifact_from_record(ws, r), per_page)
        super().__init__(inner._fetch, inner._count, per_page)


def registries(ws: Workspace, organization: str, filter: Mapping[str, Any] | None, per_page: int = 100) -> Registries:
    ws.store.ensure_core_registries(organization)
    chain = _Chain(ws, organization, Scope(entity=organization, registries=True)).narrowed(filter, "registry")
    return Registries(chain, per_page)
