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

Invariants kept here (design.md): a version, its membership, aliases, tags and producer appear in one
transaction (1); indices in a collection are gapless and never reused, and identical content logged
concurrently yields one version (2); an alias names at most one member of a collection (3). The store moves
only the aliases it is given: the caller passes "latest" when it should move.
"""

from wandb_dagster.store.errors import (
    AliasInUseError,
    NotFoundError,
    RunExistsError,
    RunNotFoundError,
    SchemaVersionError,
    StoreError,
    TypeMismatchError,
)
from wandb_dagster.store.records import CollectionRecord, CommitResult, RunRecord, VersionRecord
from wandb_dagster.store.store import Store

__all__ = [
    "AliasInUseError",
    "CollectionRecord",
    "CommitResult",
    "NotFoundError",
    "RunExistsError",
    "RunNotFoundError",
    "RunRecord",
    "SchemaVersionError",
    "Store",
    "StoreError",
    "TypeMismatchError",
    "VersionRecord",
]
