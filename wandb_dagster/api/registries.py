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

from wandb_dagster.api.objects import ArtifactCollection, artifact_from_record
from wandb_dagster.api.paginator import Paginator
from wandb_dagster.sdk.values import iso_timestamp
from wandb_dagster.store.records import REGISTRY_PREFIX, ProjectRecord
from wandb_dagster.store.scope import Filter, Query, Scope

if TYPE_CHECKING:
    from wandb_dagster.api.objects import Artifact
    from wandb_dagster.sdk.workspace import Workspace


class _Chain:
    """What a registries -> collections -> versions chain has narrowed to: the store's compiled read."""

    def __init__(self, ws: Workspace, query: Query) -> None:
        self.ws, self.query = ws, query

    def narrowed(self, target: str, kind: str, filter: Mapping[str, Any] | None) -> _Chain:
        """The chain's read as ``target``, narrowed by ``filter`` (a bad one raises here)."""
        filters: list[Filter] = [] if filter is None else [(kind, filter)]
        return _Chain(self.ws, self.ws.store.narrow(self.query, target, filters))


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
    def created_at(self) -> str:
        """ISO 8601 text, as in W&B (``created_datetime``: the same as a datetime)."""
        return iso_timestamp(self._record.created_at)

    @property
    def updated_at(self) -> str:
        return iso_timestamp(self._record.updated_at)

    @property
    def created_datetime(self) -> datetime:
        return self._record.created_at

    @property
    def updated_datetime(self) -> datetime:
        return self._record.updated_at

    def _chain(self) -> _Chain:
        return _Chain(self._ws, self._ws.store.query("projects", Scope(project_pk=self._record.pk)))

    def collections(self, filter: Mapping[str, Any] | None = None, per_page: int = 100) -> Collections:
        return Collections(self._chain().narrowed("collections", "collection", filter), per_page)

    def versions(self, filter: Mapping[str, Any] | None = None, per_page: int = 100) -> Paginator[Artifact]:
        return Versions(self._chain().narrowed("versions", "version", filter), per_page)

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

    def __init__(self, chain: _Chain, per_page: int = 100, start: str | None = None) -> None:
        self._chain = chain
        inner = Paginator.over(chain.ws.store, chain.query, lambda r: Registry(chain.ws, r), per_page, start)
        super().__init__(inner._fetch, inner._count, per_page, start)

    def collections(self, filter: Mapping[str, Any] | None = None, per_page: int = 100) -> Collections:
        return Collections(self._chain.narrowed("collections", "collection", filter), per_page)

    def versions(self, filter: Mapping[str, Any] | None = None, per_page: int = 100) -> Versions:
        return Versions(self._chain.narrowed("versions", "version", filter), per_page)


class Collections(Paginator[ArtifactCollection]):
    """Registry collections matching the chain's filters; ``versions(filter)`` narrows to their versions."""

    def __init__(self, chain: _Chain, per_page: int = 100) -> None:
        self._chain = chain
        inner = Paginator.over(chain.ws.store, chain.query, lambda r: ArtifactCollection(chain.ws, r), per_page)
        super().__init__(inner._fetch, inner._count, per_page)

    def versions(self, filter: Mapping[str, Any] | None = None, per_page: int = 100) -> Versions:
        return Versions(self._chain.narrowed("versions", "version", filter), per_page)


class Versions(Paginator["Artifact"]):
    """Artifact versions (registry links) matching the chain's filters, ordered by registry name,
    collection name and index."""

    def __init__(self, chain: _Chain, per_page: int = 100) -> None:
        ws = chain.ws
        inner = Paginator.over(ws.store, chain.query, lambda r: artifact_from_record(ws, r), per_page)
        super().__init__(inner._fetch, inner._count, per_page)


def registries(
    ws: Workspace, organization: str, filter: Mapping[str, Any] | None, per_page: int = 100, start: str | None = None
) -> Registries:
    ws.store.ensure_core_registries(organization)
    filters: list[Filter] = [] if filter is None else [("registry", filter)]
    query = ws.store.query("projects", Scope(entity=organization, registries=True), filters)
    return Registries(_Chain(ws, query), per_page, start)
