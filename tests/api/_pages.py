"""Pages of raw SQL conditions, for tests of the store's planners and filters (which compose conditions the
API's scopes cannot name): the Query that Store.query would compile, read through Store.page/Store.count."""

from __future__ import annotations

from typing import Any

from wandb_dagster.store import Store
from wandb_dagster.store.catalog import registry_projects_condition
from wandb_dagster.store.paging import Driver
from wandb_dagster.store.scope import Query

__all__ = ["Driver", "project_page", "registry_projects_condition", "run_count", "run_page", "version_count",
           "version_page"]


def version_page(store: Store, where: list[Any], *, after: Any, limit: int, drivers: Any = ()) -> tuple[list, Any]:
    return store.page(Query("versions", tuple(where), tuple(drivers)), after=after, limit=limit)


def version_count(store: Store, where: list[Any]) -> int:
    return store.count(Query("versions", tuple(where)))


def project_page(store: Store, where: list[Any], *, after: Any, limit: int) -> tuple[list, Any]:
    return store.page(Query("projects", tuple(where)), after=after, limit=limit)


def run_page(
    store: Store, where: list[Any], *, sort_keys: list[Any], descending: bool, after: Any, limit: int
) -> tuple[list, Any]:
    return store.page(Query("runs", tuple(where), (), tuple(sort_keys), descending), after=after, limit=limit)


def run_count(store: Store, where: list[Any]) -> int:
    return store.count(Query("runs", tuple(where)))
