"""What a read of the query API looks at: a :class:`Scope` (names and ids) and filter documents.

The API layer describes a read with these and the store compiles them (store/paging.py): the API never
sees SQL. Example::

    >>> from wandb_dagster.store.scope import Scope
    >>> query = store.query("versions", Scope(entity="org", registries=True),
    ...                     [("registry", {"name": "model"}), ("version", {"alias": "production"})])  # doctest: +SKIP
    >>> records, last = store.page(query, after=None, limit=50)                                      # doctest: +SKIP
    >>> more, last = store.page(query, after=last, limit=50)                                         # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

# What Store.query reads: projects (registries among them), collections, versions (members of
# collections) or runs. Each filter document names the fields it is written in: "run", "registry",
# "collection" or "version" (store/filters.py has the fields of each).
TARGETS = ("projects", "collections", "versions", "runs")
FILTER_KINDS = ("run", "registry", "collection", "version")

# A Mongo-style filter document and the kind of fields it is written in, e.g. ("version", {"tag": "x"}).
Filter = tuple[str, Mapping[str, Any]]


@dataclasses.dataclass(frozen=True)
class Scope:
    """The part of the workspace a read covers; every field left None (or False) does not narrow it.

    ``entity``, ``project``, ``collection``: names; ``project_pk``, ``collection_pk``: primary keys (from
    records); ``registries``: only projects that are registries; ``type``: collections of this type.
    """

    entity: str | None = None
    project: str | None = None
    project_pk: int | None = None
    registries: bool = False
    collection: str | None = None
    collection_pk: int | None = None
    type: str | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class Query:
    """A read compiled by :meth:`Store.query` for :meth:`Store.page` and :meth:`Store.count`; opaque
    outside the store (its fields are SQL expressions)."""

    target: str
    where: tuple[Any, ...]
    drivers: tuple[Any, ...] = ()
    sort_keys: tuple[Any, ...] = ()
    descending: bool = False
