"""The metadata store: runs, artifact versions, collections, aliases, tags and lineage in SQL.

Everything the SDK reads from or writes to the database goes through one class, :class:`Store`, built on
SQLAlchemy Core 2 (no ORM) over SQLite (the embedded default) or PostgreSQL (a team's shared workspace)::

    >>> from wandb_dagster.store import Store
    >>> store = Store.open("sqlite:////tmp/ws/store.db", storage_root="/tmp/ws/blobs")  # doctest: +SKIP

- :mod:`.schema` holds the tables (one ``MetaData``); :mod:`.migrations` the Alembic environment that
  builds them. ``Store.open`` migrates a new or old database to head inside one serialised transaction, and
  skips Alembic entirely when the database is already current.
- :mod:`.engine` configures the connections: SQLite in WAL mode with a long busy timeout and write
  transactions that begin with ``BEGIN IMMEDIATE``; ``postgresql://`` through psycopg 3.
- Methods return frozen dataclasses from :mod:`.records` and raise the errors in :mod:`.errors` (subclasses
  of ``ValueError``/``LookupError`` whose messages name the offending value and what to do).
- ``Store`` is a facade: each method is one transaction over the functions of the module that owns the
  concept, which take that transaction's connection: :mod:`.runs` (runs and history), :mod:`.versions`
  (the one read path for versions; commit, update, delete), :mod:`.links` (registry links),
  :mod:`.parts` (parts of distributed artifacts), :mod:`.sweeps` (sweeps and their claimed trials),
  :mod:`.members` (memberships and aliases),
  :mod:`.catalog` (entities, projects, registries, collections), :mod:`.paging` (the query API's reads:
  :mod:`.scope` and filter documents compiled to SQL, the version-page planners), :mod:`.events` (the event
  feed), :mod:`.blob_refs` (which blobs are in use, for gc), :mod:`.retention` (TTLs), :mod:`.audit` (the
  database's own consistency, for verify), :mod:`.migrate`, and :mod:`.sql` (helpers). Only this package
  builds SQL (tests/test_layers.py).

Invariants kept here (docs/architecture.md): a version, its membership, aliases, tags and producer appear in one
transaction (1); indices in a collection are gapless and never reused, and identical content logged
concurrently yields one version (2); an alias names at most one member of a collection (3). The store moves
only the aliases it is given: the caller passes "latest" when it should move.
"""

from typing import TYPE_CHECKING, Any

# Light modules (no SQLAlchemy): the SDK imports their names at import time.
from wandb_dagster.store.errors import (
    AliasInUseError,
    DatabaseBusyError,
    DatabaseUnreachableError,
    NotFoundError,
    PartsTakenError,
    RegistryNotFoundError,
    RunExistsError,
    RunNotFoundError,
    SchemaVersionError,
    StoreError,
    TypeMismatchError,
    WorkspaceNotFoundError,
)
from wandb_dagster.store.records import (
    CollectionRecord,
    CommitResult,
    ProjectRecord,
    RunRecord,
    SweepRecord,
    TrialRecord,
    VersionRecord,
)
from wandb_dagster.store.scope import Scope

if TYPE_CHECKING:
    from wandb_dagster.store.directory import Directory
    from wandb_dagster.store.events import EVENT_TYPES
    from wandb_dagster.store.filters import RUN_FIELDS, VERSION_FIELDS
    from wandb_dagster.store.filters import Filter as CheckedFilter
    from wandb_dagster.store.filters import validate as validate_filter
    from wandb_dagster.store.store import Store

# The rest imports SQLAlchemy (a third of `import wandb_dagster`), so it is imported when first used: a
# workspace is opened by init(), not by the import (issue 17, import time).
_LAZY = {
    "Directory": ("wandb_dagster.store.directory", "Directory"),
    "EVENT_TYPES": ("wandb_dagster.store.events", "EVENT_TYPES"),
    "RUN_FIELDS": ("wandb_dagster.store.filters", "RUN_FIELDS"),
    "VERSION_FIELDS": ("wandb_dagster.store.filters", "VERSION_FIELDS"),
    "CheckedFilter": ("wandb_dagster.store.filters", "Filter"),
    "validate_filter": ("wandb_dagster.store.filters", "validate"),
    "Store": ("wandb_dagster.store.store", "Store"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'wandb_dagster.store' has no attribute {name!r}")


__all__ = [
    "EVENT_TYPES",
    "RUN_FIELDS",
    "VERSION_FIELDS",
    "AliasInUseError",
    "CheckedFilter",
    "DatabaseBusyError",
    "DatabaseUnreachableError",
    "Directory",
    "CollectionRecord",
    "CommitResult",
    "NotFoundError",
    "PartsTakenError",
    "ProjectRecord",
    "RegistryNotFoundError",
    "RunExistsError",
    "RunNotFoundError",
    "RunRecord",
    "SchemaVersionError",
    "Scope",
    "Store",
    "StoreError",
    "SweepRecord",
    "TrialRecord",
    "TypeMismatchError",
    "VersionRecord",
    "WorkspaceNotFoundError",
    "validate_filter",
]
