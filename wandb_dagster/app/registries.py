"""The registry pages, at W&B's paths.

- ``/orgs/{org}/registry``: the organization's registries;
- ``/orgs/{org}/registry/{registry}``: a registry (``model`` or ``wandb-registry-model``): its collections;
- ``/orgs/{org}/registry/{registry}/{collection}``: the linked versions, their aliases and sources, and the
  alias history from the event feed (who moved ``production``, and when).
"""

from __future__ import annotations

import itertools
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wandb_dagster.api.alias_history import alias_history
from wandb_dagster.app.artifacts import collection_url, run_url, seg, version_url
from wandb_dagster.app.params import bad_request, int_param, not_found, path_names
from wandb_dagster.app.templating import render

MAX_REGISTRIES = 500
MAX_COLLECTIONS = 500
VERSIONS_PER_PAGE = 50
HISTORY = 100  # alias changes shown by default (?history= up to 5,000)


def registry_url(org: str, registry: str) -> str:
    return f"/orgs/{seg(org)}/registry/{seg(registry)}"


def _registries(api: Any, org: str) -> Any:
    try:
        return api.registries(organization=org, per_page=100)
    except (LookupError, ValueError):
        raise not_found(f"no organization {org!r} in this workspace") from None


def _registry(api: Any, org: str, name: str) -> Any:
    _registries(api, org)  # an unknown organization says so, rather than "no registry"
    try:
        return api.registry(name, organization=org)
    except (LookupError, ValueError):
        raise not_found(f"no registry {name!r} in organization {org!r}") from None


def registries_page(request: Request) -> Response:
    (org,) = path_names(request, "org")
    found = list(itertools.islice(_registries(request.app.state.api, org), MAX_REGISTRIES))
    return render(request, "registries.html", {"org_name": org, "registries": found, "registry_url": registry_url,
                                               "limit": MAX_REGISTRIES})  # fmt: skip


def registry_page(request: Request) -> Response:
    org, name = path_names(request, "org", "registry")
    registry = _registry(request.app.state.api, org, name)
    collections = list(itertools.islice(registry.collections(per_page=100), MAX_COLLECTIONS + 1))
    context = {
        "org_name": org, "registry": registry, "collections": collections[:MAX_COLLECTIONS],
        "more": len(collections) > MAX_COLLECTIONS, "here": registry_url(org, registry.name),
    }  # fmt: skip
    return render(request, "registry.html", context)


def registry_collection_page(request: Request) -> Response:
    org, name, collection_name = path_names(request, "org", "registry", "collection")
    api = request.app.state.api
    registry = _registry(api, org, name)
    found = list(itertools.islice(registry.collections(filter={"name": collection_name}, per_page=1), 1))
    if not found:
        raise not_found(f"no collection {collection_name!r} in registry {registry.name!r}")
    collection = found[0]
    start = request.query_params.get("start") or None
    try:
        versions = collection.artifacts(per_page=VERSIONS_PER_PAGE, start=start)
        shown = list(itertools.islice(versions, VERSIONS_PER_PAGE))
    except ValueError:
        raise bad_request(f"start={start!r} is not a cursor of this collection's versions") from None
    limit = int_param(request, "history", HISTORY, lo=1, hi=5_000)
    assert limit is not None
    history = alias_history(api, registry.entity, registry.full_name, collection.name, limit=limit)
    # Events name the acting run by id; the run's page and user, where the id names one run.
    actors = api._ws.store.runs_by_id([c.run_id for c in history if c.run_id])
    rows = []
    for linked in shown:
        source = linked._source_record()
        source_url = version_url(source.entity, source.project, linked.type, source.collection, f"v{source.index}")
        rows.append({
            "version": linked, "source": source, "source_url": source_url,
            "url": version_url(registry.entity, registry.full_name, linked.type, collection.name, linked.version),
        })  # fmt: skip
    context = {
        "org_name": org, "registry": registry, "collection": collection, "rows": rows, "history": history,
        "history_limit": limit, "registry_url": registry_url(org, registry.name), "actors": actors,
        "run_url": run_url,
        "next_start": versions.cursor if len(shown) == VERSIONS_PER_PAGE and versions.more else None,
        "paged": start is not None,
        "version_url": lambda v: version_url(registry.entity, registry.full_name, collection.type, collection.name, v),
        "artifacts_url": collection_url(registry.entity, registry.full_name, collection.type, collection.name),
    }  # fmt: skip
    return render(request, "registry_collection.html", context)


routes = [
    Route("/orgs/{org}/registry", registries_page, name="registries"),
    Route("/orgs/{org}/registry/{registry}", registry_page, name="registry"),
    Route("/orgs/{org}/registry/{registry}/{collection}", registry_collection_page, name="registry_collection"),
]
