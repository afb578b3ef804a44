"""Registries: ``api.registries(filter=...).collections(filter=...).versions(filter=...)``, as in W&B.

A registry is a project named ``wandb-registry-<name>`` of an organization's own entity (W&B's org entity):
``api.registries(organization="acme")`` lists the registries of organization ``acme`` (its name or its
entity's; default: the Api's organization, else the workspace's default, which is also where
``run.link_artifact(..., "wandb-registry-model/...")`` links, whatever the run's entity). Every organization
has the core registries ``model`` and ``dataset``; they are created the first time they are needed. Other
registries are created with ``Api().create_registry``.

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


class ArtifactTypes(list[str]):
    """The artifact types a registry accepts. As in W&B, types can be added; a saved type cannot be removed
    (``draft`` holds the ones added since the last save)."""

    def __init__(self, saved: list[str]) -> None:
        super().__init__(saved)
        self._saved = frozenset(saved)

    @property
    def draft(self) -> list[str]:
        return [t for t in self if t not in self._saved]

    def append(self, artifact_type: str) -> None:
        from wandb_dagster.sdk.names import validate_type

        if artifact_type not in self:
            super().append(validate_type(artifact_type))

    def remove(self, artifact_type: str) -> None:
        if artifact_type in self._saved:
            raise ValueError(
                f"artifact type {artifact_type!r} was saved in this registry and cannot be removed (as in W&B); "
                "only types added since the last save() can"
            )
        super().remove(artifact_type)


class Registry:
    """One registry (``wandb-registry-<name>``) of an organization. ``name``, ``description``,
    ``visibility``, ``allow_all_artifact_types`` and ``artifact_types`` can be changed and saved.

    >>> registry = api.registry("demo-models")                               # doctest: +SKIP
    >>> registry.description = "Models we ship"; registry.save()            # doctest: +SKIP
    >>> [c.name for c in registry.collections()]                             # doctest: +SKIP
    """

    def __init__(self, ws: Workspace, record: ProjectRecord) -> None:
        self._ws = ws
        self._load(record)

    def _load(self, record: ProjectRecord) -> None:
        self._record = record
        self.name: str = record.name[len(REGISTRY_PREFIX) :]
        self.description: str | None = record.description
        visibility, accepted, used = self._ws.store.registry_settings(record.pk)
        self.visibility: str = visibility
        self.allow_all_artifact_types: bool = accepted is None
        self._artifact_types = ArtifactTypes(used if accepted is None else accepted)

    @property
    def full_name(self) -> str:
        """The project name, e.g. ``"wandb-registry-model"`` (as last saved)."""
        return self._record.name

    @property
    def entity(self) -> str:
        """The organization's entity, which holds its registries."""
        return self._record.entity

    @property
    def organization(self) -> str:
        """The organization's name."""
        org = self._ws.store.organization(self._record.entity)
        return org.name if org is not None else self._record.entity

    @property
    def artifact_types(self) -> ArtifactTypes:
        """The accepted types; with ``allow_all_artifact_types``, the types its collections hold."""
        return self._artifact_types

    @property
    def path(self) -> list[str]:
        return [self.entity, self.full_name]

    @property
    def id(self) -> str:
        return f"registry-{self._record.pk}"

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
        """The collections of this registry matching ``filter`` (lazy)."""
        return Collections(self._chain().narrowed("collections", "collection", filter), per_page)

    def versions(self, filter: Mapping[str, Any] | None = None, per_page: int = 100) -> Paginator[Artifact]:
        """The linked versions of this registry matching ``filter`` (lazy)."""
        return Versions(self._chain().narrowed("versions", "version", filter), per_page)

    def save(self) -> None:
        """Persist ``name`` (a rename: collections, links and aliases follow), ``description``,
        ``visibility`` and the accepted types, in one transaction."""
        draft = self._artifact_types.draft
        if draft and self.allow_all_artifact_types:
            raise ValueError(
                f"Cannot add artifact types {draft} while allow_all_artifact_types is True; set it to False first."
            )
        name = _check_registry_name(self.name)
        _check_visibility(self.visibility)
        types = None if self.allow_all_artifact_types else list(self._artifact_types)
        self._ws.store.update_registry(
            self._record.pk, name=name, description=self.description, visibility=self.visibility, artifact_types=types
        )
        self.load()

    def load(self) -> None:
        """Read this registry's saved state again."""
        found = self._ws.store.query("projects", Scope(project_pk=self._record.pk))
        records, _ = self._ws.store.page(found, after=None, limit=1)
        if not records:
            raise ValueError(f"registry {self.full_name!r} of {self.entity!r} no longer exists (deleted?)")
        self._load(records[0])

    def delete(self) -> None:
        """Delete this registry and its collections (irreversible). The linked versions stay in the projects
        they were logged to. The core ``model`` and ``dataset`` registries cannot be deleted."""
        self._ws.store.delete_registry(self._record.pk)

    def __repr__(self) -> str:
        return f"<Registry {self.full_name} of {self.organization}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Registry) and other._record.pk == self._record.pk

    def __hash__(self) -> int:
        return hash(("registry", self._record.pk))


def _check_registry_name(name: Any) -> str:
    from wandb_dagster.sdk.names import validate_artifact_name

    if not isinstance(name, str) or name.lower().startswith(REGISTRY_PREFIX):
        raise ValueError(f"registry name {name!r} is invalid: give the name without {REGISTRY_PREFIX!r}, e.g. 'models'")
    return validate_artifact_name(name).lower()


def _check_visibility(visibility: Any) -> None:
    if visibility not in ("organization", "restricted"):
        raise ValueError(f"registry visibility {visibility!r} is invalid: use 'organization' or 'restricted'")


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
    """The registries of organization entity ``organization`` matching ``filter``."""
    ws.store.ensure_core_registries(organization)
    filters: list[Filter] = [] if filter is None else [("registry", filter)]
    query = ws.store.query("projects", Scope(entity=organization, registries=True), filters)
    return Registries(_Chain(ws, query), per_page, start)


def create_registry(
    ws: Workspace,
    org_entity: str,
    name: str,
    *,
    visibility: str,
    description: str | None,
    artifact_types: list[str] | None,
) -> Registry:
    """Api.create_registry: a new registry of organization entity ``org_entity``."""
    from wandb_dagster.sdk.names import validate_type

    name = _check_registry_name(name)
    _check_visibility(visibility)
    types = None if not artifact_types else [validate_type(t) for t in artifact_types]
    return Registry(
        ws, ws.store.create_registry(
            org_entity, name, description=description, visibility=visibility, artifact_types=types
        ),
    )  # fmt: skip
