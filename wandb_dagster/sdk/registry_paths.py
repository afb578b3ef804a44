"""Where a registry path points: registries belong to an organization, not to the entity of a run or Api.

``wandb-registry-model/bike-models`` resolves to the default organization (the settings' organization,
else the workspace's default), whatever entity the run or Api uses. A first part, as in
``ORG/wandb-registry-model/bike-models``, may name an organization, its entity, or a user or team (then
that entity's organization). W&B's legacy model-registry path ``entity/model-registry/<name>`` is the core
model registry. docs/behaviour.md section 6.

Example::

    >>> registry_location(ws, "my-team", "wandb-registry-model", explicit=False, organization=None)  # doctest: +SKIP
    ('default', 'wandb-registry-model')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wandb_dagster.sdk.names import REGISTRY_PREFIX, is_registry_project

if TYPE_CHECKING:
    from wandb_dagster.sdk.workspace import Workspace

LEGACY_MODEL_REGISTRY = "model-registry"


def has_entity(path: str) -> bool:
    """Whether ``[[entity/]project/]name[:selector]`` names its entity (three parts)."""
    return path.partition(":")[0].count("/") == 2


def registry_location(
    ws: Workspace, entity: str, project: str, *, explicit: bool, organization: str | None
) -> tuple[str, str]:
    """(entity, project) where ``entity/project`` is: for a registry, the organization's entity; other
    projects are returned as they are. ``explicit``: the path named ``entity`` (else it is a default)."""
    if project == LEGACY_MODEL_REGISTRY:
        project = REGISTRY_PREFIX + "model"
    if not is_registry_project(project):
        return entity, project
    return organization_entity(ws, entity if explicit else None, organization), project


def organization_entity(ws: Workspace, qualifier: str | None, organization: str | None) -> str:
    """The entity holding the registries of the organization that ``qualifier`` (an organization, its
    entity, or a user or team) names; without one, of ``organization`` or the workspace's default."""
    store = ws.store
    if qualifier is not None:
        org = store.organization(qualifier) or store.entity_organization(qualifier)
        if org is None:
            names = [o.name for o in store.organizations()]
            raise ValueError(
                f"{qualifier!r} is neither an organization nor a user or team entity of this workspace, so it "
                f"does not say whose registry to use; organizations: {names}. Leave it out to use the default "
                f"organization ({store.default_organization!r}), or name one of those."
            )
        return org.entity
    name = organization or store.default_organization
    org = store.organization(name, create=True)
    if org is None:  # a read-only workspace that lacks it: nothing can be in its registries
        return name
    return org.entity
