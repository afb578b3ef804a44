"""Errors raised by the metadata store.

Each subclasses the builtin a caller would naturally catch (``ValueError`` for a request that cannot be
honoured as given, ``LookupError`` for a row that does not exist), so the SDK can let them surface to users
unchanged: their messages name the offending value and say what to do.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every error raised on purpose by :mod:`wandb_dagster.store`."""


class NotFoundError(StoreError, LookupError):
    """A run, version or collection referred to by primary key or id does not exist."""


class RunExistsError(StoreError, ValueError):
    """``create_run`` with ``resume`` None/"never" and a run id already used in that project."""


class RunNotFoundError(NotFoundError, ValueError):
    """``create_run`` with ``resume="must"`` and no such run."""


class TypeMismatchError(StoreError, ValueError):
    """An artifact logged into a collection of another type."""


class AliasInUseError(StoreError, ValueError):
    """``delete_version`` refused because the version still has aliases."""


class SchemaVersionError(StoreError, RuntimeError):
    """The database was migrated by a newer wandb_dagster than this one."""


class WorkspaceNotFoundError(StoreError, FileNotFoundError):
    """The SQLite database's folder does not exist and creating it was not asked for (a mistyped path would
    otherwise silently become a new, empty workspace)."""


class DatabaseUnreachableError(StoreError, ConnectionError):
    """The workspace database could not be opened: the server refused or did not answer, the credentials or
    database name are wrong, or the SQLite file cannot be read. The message names the database (password
    hidden) and the driver's own first line, not SQLAlchemy's wrapper with its SQL and link."""


class ReadOnlyWorkspaceError(StoreError, PermissionError):
    """A write to a workspace database this process may only read (a read-only mount, another user's folder)."""


class DatabaseBusyError(StoreError, TimeoutError):
    """A write waited the documented lock timeout for another process's transaction, then gave up.

    Raised instead of the driver's "database is locked" / ``LockNotAvailable`` (docs/architecture.md,
    "Concurrency and crash guarantees"): the message names the database and what to do.
    """


class PartsTakenError(NotFoundError):
    """``commit_version(parts=...)``: another ``finish_artifact`` merged some of those parts first."""


class RegistryNotFoundError(StoreError, LookupError, ValueError):
    """A link into a registry that does not exist (only the core ``model`` and ``dataset`` registries are
    created on first use): the message names the registries that exist and the closest match."""


class BlobClaimLostError(StoreError, RuntimeError):
    """A version's commit found that blobs it names are no longer claimed by its writer (the claims expired
    while it was being logged), so a garbage collector may have deleted them; the SDK claims them again,
    checks they are stored and retries (docs/architecture.md, "Garbage collection")."""

    def __init__(self, hexdigests: list[str]) -> None:
        self.hexdigests = hexdigests
        super().__init__(
            f"{len(hexdigests)} blob(s) this version names are no longer claimed by its writer (first: "
            f"{hexdigests[0]}); claim them again and check they are stored before committing"
        )
