"""The Store: every database read and write of wandb_dagster, as short transactions on one engine.

:class:`Store` is a facade: each method opens one transaction and calls the functions of the module that
owns the concept (``runs``, ``versions``, ``links``, ``catalog``, ``paging``, ``migrate``), which take the
transaction's connection, so that one transaction can combine them (a version, its membership, aliases,
lineage and feed rows).

Concurrency model. All writers of a collection serialise on its row: PostgreSQL takes ``SELECT ... FOR
UPDATE`` on it, SQLite's write transactions begin with ``BEGIN IMMEDIATE`` (one writer per database at a
time). Under that lock a commit reads ``collections.next_index``, uses it and increments it, so indices are
gapless and never reused without counting anything, and the "is this digest already a member?" check
cannot race with another commit of the same content. Aliases of a collection are only changed under the
same lock. Everything a commit writes is in one transaction: a crash at any point leaves no trace.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from wandb_dagster.storage.uri_credentials import redact
from wandb_dagster.store import (
    audit,
    blob_refs,
    catalog,
    collection_removal,
    directory,
    links,
    members,
    migrate,
    organizations,
    paging,
    retention,
    runs,
    versions,
)
from wandb_dagster.store import events as _events
from wandb_dagster.store import history_buckets as _history_buckets
from wandb_dagster.store import launch as _launch
from wandb_dagster.store import lineage as _lineage
from wandb_dagster.store import parts as _parts
from wandb_dagster.store import reports as _reports
from wandb_dagster.store import run_files as _run_files
from wandb_dagster.store import schema as db
from wandb_dagster.store import sweeps as _sweeps
from wandb_dagster.store.engine import (
    LOCK_TIMEOUT_ENV,
    create_engine,
    is_lock_timeout,
    lock_timeout_s,
    make_url,
    relaxed_write_engine,
    sqlite_path,
    sqlite_read_only,
    write_engine,
)
from wandb_dagster.store.errors import (
    DatabaseBusyError,
    DatabaseUnreachableError,
    NotFoundError,
    ReadOnlyWorkspaceError,
    WorkspaceNotFoundError,
)
from wandb_dagster.store.filters import prepare_connection
from wandb_dagster.store.records import (
    REGISTRY_PREFIX,
    CollectionRecord,
    CommitResult,
    LineageEdge,
    LineageRun,
    LineageVersion,
    OrganizationRecord,
    PartRecord,
    ProjectRecord,
    ReportRecord,
    RunFileRecord,
    RunQueueItemRecord,
    RunQueueRecord,
    RunRecord,
    SweepRecord,
    TrialRecord,
    VersionRecord,
)
from wandb_dagster.store.schema import SCHEMA_REVISION
from wandb_dagster.store.scope import Filter, Query, Scope
from wandb_dagster.store.sql import display_url, translated_errors
from wandb_dagster.store.sql import now as _now


def _unreachable(url: str, exc: sa.exc.DBAPIError) -> str:
    """Why ``url`` could not be opened, for :class:`DatabaseUnreachableError`: the driver's own first line
    (refused, unknown host, bad password, no such database); SQLAlchemy's wrapper adds the SQL and a link to
    its docs, which say nothing to whoever configured the URL. Drivers may echo the URL: the password is hidden."""
    parsed = sa.engine.make_url(url)  # as given (the engine's URL names the driver too)
    cause = exc.orig if exc.orig is not None else exc
    lines = str(cause).strip().splitlines()
    first = lines[0].strip() if lines else ""
    if parsed.password:
        first = first.replace(str(parsed.password), "***")
    return f"cannot open the workspace database {display_url(url)!r}: {type(cause).__name__}: {redact(first)}"


class Store:
    """Metadata of one workspace (a database URL). Build it with :meth:`open`; safe to share across threads.

    Example::

        >>> store = Store.open("sqlite:////tmp/ws/store.db", storage_root="/tmp/ws/blobs")  # doctest: +SKIP
        >>> result = store.commit_version("me", "demo", "dataset", "dataset", digest=..., manifest=...,
        ...     size=0, file_count=0, metadata={}, description=None, aliases=["latest"], tags=[],
        ...     run_pk=None)                                                                   # doctest: +SKIP
        >>> result.version.index, result.created                                             # doctest: +SKIP
        (0, True)
    """

    # Test hook: called with a point name ("commit_version") inside the transaction, after every write and
    # before COMMIT, so crash tests can raise or hang exactly there. Never set outside tests.
    _fault_hook: Callable[[str], None] | None = None

    def __init__(self, engine: sa.Engine, url: str, storage_root: str, read_only: bool = False) -> None:
        self._engine = engine
        self._read_only = read_only
        self._writer = write_engine(engine)
        self._relaxed_writer = relaxed_write_engine(engine)
        self._url = url
        self._storage_root = storage_root
        # Entities whose core registries this Store has seen exist (projects are never deleted).
        self._core_registries_ensured: set[str] = set()
        # Organizations by name and by entity name (they are never renamed or deleted), and the default's name.
        self._organizations: dict[str, OrganizationRecord] = {}
        self._default_organization: str | None = None

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def open(cls, url: str, *, storage_root: str, create: bool = False, organization: str | None = None) -> Store:
        """Open the workspace database at ``url``, creating (its tables) and migrating it as needed.

        ``storage_root`` is recorded when the database is created, and ``organization`` (default
        ``default``) names its default organization when that is created (a new workspace, or one migrated
        to schema 0008); later opens use what is recorded and ignore the arguments. Concurrent opens of a
        fresh database (several processes or machines) are safe. An SQLite file whose folder does not exist
        is :class:`WorkspaceNotFoundError` unless ``create``: then the folders are made (a mistyped path must
        not silently become a new, empty workspace).
        """
        parsed = make_url(url)
        read_only = False
        if parsed.get_backend_name() == "sqlite":
            path = sqlite_path(parsed)
            if path is not None:
                read_only = sqlite_read_only(path)
                if not read_only and not path.parent.is_dir():
                    if not create:
                        raise WorkspaceNotFoundError(
                            f"The workspace database folder {str(path.parent)!r} does not exist (database URL "
                            f"{parsed.render_as_string(hide_password=True)!r}). Fix the path, create the folder, or "
                            "ask for a new workspace there with create=True."
                        )
                    path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, read_only=read_only)
        try:
            with translated_errors(url):
                root = migrate.recorded_storage_root(engine)
                if root is None and read_only:
                    raise ReadOnlyWorkspaceError(
                        f"The workspace database {parsed.database!r} needs creating or upgrading to this "
                        f"version of wandb_dagster (schema {SCHEMA_REVISION}), and this process may only "
                        "read it (no write permission on its folder, or a read-only filesystem). Open it once "
                        "with write access, or use the wandb_dagster version that wrote it."
                    )
                if root is None:
                    root = migrate.migrate(engine, storage_root, organization)
        except sa.exc.DBAPIError as exc:
            engine.dispose()
            if is_lock_timeout(exc):  # another opener holds the migration lock: the usual busy error
                raise
            raise DatabaseUnreachableError(_unreachable(url, exc)) from None
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, url, root, read_only=read_only)

    @property
    def read_only(self) -> bool:
        """True when this process may only read the database (store/engine.py ``sqlite_read_only``)."""
        return self._read_only

    @property
    def url(self) -> str:
        return self._url

    def read_events(
        self, *, after_id: int, filter: Mapping[str, Any] | None, types: Sequence[str] | None, limit: int
    ) -> _events.FeedRead:
        """At most ``limit`` events after ``after_id`` that match (see store/events.py ``read``)."""
        return _events.read(self, after_id=after_id, filter=filter, types=types, limit=limit)

    def newest_events(
        self, *, filter: Mapping[str, Any] | None, types: Sequence[str] | None, limit: int
    ) -> list[Any]:
        """The newest ``limit`` events that match, newest first (see store/events.py ``newest``)."""
        return _events.newest(self, filter=filter, types=types, limit=limit)

    def events_head(self) -> int:
        """The id of the newest committed event (0 for an empty feed)."""
        return _events.head(self)

    HEAD_REVISION = SCHEMA_REVISION
    """The schema revision this wandb_dagster creates and expects (``wandb-dagster db current``)."""

    @staticmethod
    def schema_revision(url: str) -> str | None:
        """The schema revision of the database at ``url``, read without changing anything (None: no schema
        yet, or no SQLite file)."""
        return migrate.current_revision(url)

    @staticmethod
    def shown_url(url: str) -> str:
        """``url`` with any password hidden (``***``), for output and messages."""
        return sa.engine.make_url(url).render_as_string(hide_password=True)

    @property
    def display_url(self) -> str:
        """:attr:`url` as given, with any password hidden (``***``), for messages and logs."""
        return display_url(self._url)

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._engine.dialect.name

    @property
    def storage_root(self) -> str:
        """The blob storage root recorded in this database."""
        return self._storage_root

    def close(self) -> None:
        """Close pooled connections. The Store must not be used afterwards."""
        self._engine.dispose()

    def __repr__(self) -> str:
        return f"Store({display_url(self._engine.url)!r})"

    # ------------------------------------------------------------------ entities, projects, collections

    def ensure_project(self, entity: str, project: str) -> int:
        """The primary key of ``entity/project``, creating both if missing (safe under races)."""
        with self._write() as conn:
            return catalog.project_id(conn, entity, project, _now())

    def get_project(self, entity: str, name: str) -> ProjectRecord | None:
        records, _ = self.page(self.query("projects", Scope(entity=entity, project=name)), after=None, limit=1)
        return records[0] if records else None

    def update_project(self, project_pk: int, *, description: str | None) -> None:
        """Set project ``project_pk``'s description; NotFoundError if there is no such project."""
        with self._write() as conn:
            catalog.update_project(conn, project_pk, description=description, now=_now())

    def ensure_core_registries(self, entity: str) -> None:
        """Make sure ``entity`` (the organization) has the core registries ``model`` and ``dataset``.

        A read first, so that the common case (they exist) takes no write lock; once seen, never again.
        """
        if entity in self._core_registries_ensured:
            return
        with self._read() as conn:
            missing = catalog.missing_core_registries(conn, entity)
        if self._read_only:
            return  # a reader sees the registries that exist; creating the others is a writer's job
        for core in missing:
            with self._write() as conn:
                catalog.create_core_registry(conn, entity, core, _now())
        self._core_registries_ensured.add(entity)

    # ------------------------------------------------------------------ organizations and registries

    @property
    def default_organization(self) -> str:
        """The name of the workspace's default organization (recorded when the workspace was created)."""
        if self._default_organization is None:
            with self._read() as conn:
                self._default_organization = organizations.default_name(conn)
        return self._default_organization

    def organization(self, name_or_entity: str, *, create: bool = False) -> OrganizationRecord | None:
        """The organization named ``name_or_entity`` (or whose entity is named so); with ``create``, a
        missing one is created (its entity named like it)."""
        found = self._organizations.get(name_or_entity)
        if found is None:
            with self._read() as conn:
                found = organizations.find(conn, name_or_entity)
            if found is None and create and not self._read_only:
                with self._write() as conn:
                    found = organizations.ensure(conn, name_or_entity, _now())
            if found is not None:
                self._organizations[found.name] = self._organizations[found.entity] = found
        return found

    def organizations(self) -> list[OrganizationRecord]:
        """Every organization of the workspace, oldest first."""
        with self._read() as conn:
            return organizations.every(conn)

    def entity_organization(self, entity: str) -> OrganizationRecord | None:
        """The organization entity ``entity`` belongs to; None when there is no such entity."""
        with self._read() as conn:
            return organizations.of_entity(conn, entity)

    def registry_names(self, org_entity: str) -> list[str]:
        """The registries of organization entity ``org_entity`` (names without ``wandb-registry-``), sorted."""
        with self._read() as conn:
            return organizations.registry_names(conn, org_entity)

    def create_registry(
        self,
        org_entity: str,
        name: str,
        *,
        description: str | None = None,
        visibility: str = "organization",
        artifact_types: Sequence[str] | None = None,
    ) -> ProjectRecord:
        """Create registry ``wandb-registry-<name>`` of organization entity ``org_entity``; ValueError if
        it exists. ``artifact_types`` None accepts every type."""
        with self._write() as conn:
            organizations.create_registry(
                conn, org_entity, name, description=description, visibility=visibility,
                artifact_types=artifact_types, now=_now(),
            )  # fmt: skip
        found = self.get_project(org_entity, REGISTRY_PREFIX + name)
        if found is None:
            raise NotFoundError(f"registry {name!r} was deleted just after it was created")
        return found

    def registry_settings(self, project_pk: int) -> tuple[str, list[str] | None, list[str]]:
        """(visibility, accepted artifact types or None for every type, types used in its collections)."""
        with self._read() as conn:
            return organizations.registry_settings(conn, project_pk)

    def update_registry(
        self,
        project_pk: int,
        *,
        name: str,
        description: str | None,
        visibility: str,
        artifact_types: Sequence[str] | None,
    ) -> None:
        """Rename registry ``project_pk`` to ``wandb-registry-<name>`` and set its description, visibility
        and accepted types (None: every type), in one transaction."""
        with self._write() as conn:
            organizations.update_registry(
                conn, project_pk, name=name, description=description, visibility=visibility,
                artifact_types=artifact_types, now=_now(),
            )  # fmt: skip

    def delete_registry(self, project_pk: int) -> None:
        """Delete registry ``project_pk`` and its collections, in one transaction. The linked versions stay
        where they were logged; each link is unlinked (UNLINK_ARTIFACT events, as for unlink_version)."""
        now = _now()
        with self._write() as conn:
            name = conn.execute(sa.select(db.projects.c.name).where(db.projects.c.id == project_pk)).scalar()
            if name is None:
                raise NotFoundError(f"no registry with pk {project_pk} (deleted already?); nothing was deleted")
            if name[len(REGISTRY_PREFIX) :] in catalog.CORE_REGISTRIES:
                raise ValueError(
                    f"{name!r} is a core registry, which every organization has; it cannot be deleted (unlink or "
                    "delete its collections instead)"
                )
            # As ArtifactCollection.delete() does, collection by collection (store/collection_removal.py).
            for collection_id in organizations.registry_collections(conn, project_pk):
                collection_removal.delete(conn, collection_id, run_pk=None, now=now)
            conn.execute(sa.delete(db.registry_settings).where(db.registry_settings.c.project_id == project_pk))
            conn.execute(sa.delete(db.reports).where(db.reports.c.project_id == project_pk))
            conn.execute(sa.delete(db.projects).where(db.projects.c.id == project_pk))
        self._core_registries_ensured.clear()

    # ------------------------------------------------------------------ the directory of users and teams

    def directory(self) -> directory.Directory:
        """Reads and writes of the users and teams directory, each one transaction (store/directory.py)."""
        return directory.Directory(self._read, self._write)

    def collection(self, entity: str, project: str, name: str) -> CollectionRecord | None:
        with self._read() as conn:
            return catalog.collection(conn, entity, project, name)

    def collection_by_id(self, collection_id: int) -> CollectionRecord | None:
        records, _ = self.page(self.query("collections", Scope(collection_pk=collection_id)), after=None, limit=1)
        return records[0] if records else None

    def collection_aliases(self, collection_id: int) -> list[str]:
        """Every alias used in collection ``collection_id`` (sorted)."""
        with self._read() as conn:
            return catalog.collection_aliases(conn, collection_id)

    def update_collection(
        self,
        collection_id: int,
        *,
        description: Any = ...,
        tags: Sequence[str] | None = None,
        name: str | None = None,
    ) -> CollectionRecord:
        """Set a collection's description (``...`` leaves it), its complete set of tags (None leaves
        them) and its name (None leaves it; a name the project already uses -> ValueError); NotFoundError if
        there is no such collection. Returns the collection as saved."""
        with self._write() as conn:
            catalog.update_collection(conn, collection_id, description=description, tags=tags, now=_now(), name=name)
        found = self.collection_by_id(collection_id)
        if found is None:
            raise NotFoundError(f"collection pk {collection_id} was deleted just after it was saved")
        return found

    def delete_collection(self, collection_id: int, *, run_pk: int | None = None) -> None:
        """Delete collection ``collection_id`` with everything in it, in one transaction (see
        store/collection_removal.py): its versions with their aliases and registry links, or, for a registry
        collection, its links. NotFoundError if there is no such collection."""
        with self._write() as conn:
            collection_removal.delete(conn, collection_id, run_pk=run_pk, now=_now())

    def artifact_types(self, entity: str, project: str) -> list[str]:
        """The artifact types used by collections of ``entity/project``, sorted."""
        with self._read() as conn:
            return catalog.artifact_types(conn, entity, project)

    # ------------------------------------------------------------------ runs

    def create_run(
        self,
        entity: str,
        project: str,
        run_id: str,
        *,
        display_name: str | None = None,
        config: dict[str, Any] | None = None,
        tags: Sequence[str] | None = None,
        group: str | None = None,
        job_type: str | None = None,
        notes: str | None = None,
        host: str | None = None,
        username: str | None = None,
        resume: str | None = None,
        sweep_pk: int | None = None,
    ) -> RunRecord:
        """Create run ``entity/project/run_id`` or, depending on ``resume``, continue the existing one.

        ``resume`` None or "never": the id must be new. "allow"/"auto": continue the run if it exists, else
        create it. "must": the run must exist. A continued run goes back to state "running"; its other
        fields are left as they were (change them with :meth:`update_run`). ``sweep_pk``: the sweep a new
        run is a trial of (:meth:`claim_sweep_trial`).
        """
        if resume not in runs.RESUME_MODES:
            raise ValueError(f"resume={resume!r} is not one of {list(runs.RESUME_MODES)}")
        fields: dict[str, Any] = {
            "display_name": display_name, "config": config, "tags": tags, "group": group, "job_type": job_type,
            "notes": notes, "host": host, "username": username,
        }
        now = _now()
        with self._write() as conn:
            project_id = catalog.project_id(conn, entity, project, now)
            if sweep_pk is not None:
                sweep = _sweeps.by_pk(conn, sweep_pk)
                if sweep is None or (sweep.entity, sweep.project) != (entity, project):
                    raise NotFoundError(
                        f"no sweep with pk {sweep_pk} in {entity}/{project}; a run joins a sweep of its own project"
                    )
                fields.update(sweep_pk=sweep_pk, sweep=sweep.id)
            return runs.create(conn, project_id, entity, project, run_id, fields, resume, now)

    def get_run(self, entity: str, project: str, run_id: str) -> RunRecord | None:
        with self._read() as conn:
            return runs.get(conn, entity, project, run_id)

    def update_run(
        self,
        run_pk: int,
        *,
        history: Sequence[dict[str, Any]] = (),
        durable: bool = True,
        media: Sequence[str] = (),
        claim: str | None = None,
        **fields: Any,
    ) -> None:
        """Set the given fields of run ``run_pk``; JSON fields (config, summary, tags) are replaced whole.

        A change of ``state`` appends a RUN_STATE_CHANGE event (previous and new state) in the same transaction.
        ``history`` rows (as for :meth:`append_history`) are appended in that transaction too, so that a run's
        last metrics, its summary and its final state are one commit, all or none. ``durable=False`` is for a
        running run's own periodic flush: on SQLite a power cut may then take the commit back (store/engine.py
        says why that is acceptable there); it cannot be combined with a change of ``state``.
        ``media``: the blobs (hex) the rows and the summary name, recorded for gc in the same transaction;
        ``claim``: the token that claimed them (:meth:`claim_blobs`), checked and released there
        (:class:`~wandb_dagster.store.errors.BlobClaimLostError` if a claim expired).

        Example::

            >>> store.update_run(run.pk, history=[{"_step": 0, "loss": 0.5}], summary={"loss": 0.5},
            ...     state="finished")                                                  # doctest: +SKIP
        """
        values = runs.update_values(fields)
        params = runs.history_params(run_pk, history)
        if not fields:
            self._insert_history(run_pk, params, durable, media, claim)
            return
        try:
            with self._write(durable) as conn:
                if claim is not None:
                    blob_refs.check_and_release(conn, claim, media)
                runs.update(conn, run_pk, values, params, _now())
                # After the update: on PostgreSQL a state change locks the run row first (store/runs.py).
                blob_refs.record_run(conn, run_pk, media)
        except sa.exc.IntegrityError:
            if not params:
                raise
            raise self._history_conflict(run_pk, [p["step"] for p in params]) from None

    def delete_run(self, run_pk: int, *, delete_artifacts: bool = False) -> None:
        """Delete run ``run_pk`` with its history and lineage, in one transaction.

        Versions the run created stay (without a producing run) unless ``delete_artifacts``: then they are
        deleted first, aliases included, under the rules of :meth:`delete_version`.
        """
        now = _now()
        with self._write() as conn:
            if delete_artifacts:
                for version_pk in runs.logged_versions(conn, run_pk):
                    versions.delete(conn, version_pk, delete_aliases=True, run_pk=None, now=now)
            runs.delete(conn, run_pk)

    def append_history(self, run_pk: int, rows: Sequence[dict[str, Any]], *, durable: bool = True) -> None:
        """Append history rows (each with an integer ``_step`` not yet used by this run), all or none.
        ``durable`` as for :meth:`update_run`."""
        self._insert_history(run_pk, runs.history_params(run_pk, rows), durable)

    def history(self, run_pk: int) -> list[dict[str, Any]]:
        """Every history row of run ``run_pk``, ordered by ``_step``."""
        with self._read() as conn:
            return runs.history(conn, run_pk)

    def history_page(self, run_pk: int, *, after_step: int | None, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` history rows of run ``run_pk`` with ``_step`` above ``after_step``, in step order."""
        with self._read() as conn:
            return runs.history(conn, run_pk, after_step=after_step, limit=limit)

    def history_keys(self, run_pk: int) -> list[str]:
        """The keys holding a number in some history row of run ``run_pk`` (what its charts show), sorted."""
        with self._read() as conn:
            return _history_buckets.numeric_keys(conn, run_pk)

    def history_buckets(
        self,
        run_pk: int,
        keys: Sequence[str] | None,
        *,
        min_step: int | None = None,
        max_step: int | None = None,
        buckets: int = 1500,
    ) -> tuple[tuple[int, int] | None, dict[str, list[tuple[float, float, float, float]]]]:
        """Run ``run_pk``'s history of each key downsampled for a chart: the steps found within [min_step,
        max_step] (None: no row there), and per key at most ``buckets`` points (mean step, mean, min, max) of
        equal-width step buckets, in step order (store/history_buckets.py). ``keys`` None: every key that
        holds a number there, except W&B's own (``_step``, ``_runtime``, ``_timestamp``)."""
        if buckets < 1:
            raise ValueError(f"buckets must be at least 1, got {buckets}")
        with self._read(snapshot=True) as conn:
            found = _history_buckets.step_range(conn, run_pk, min_step, max_step)
            if found is None:
                return None, {key: [] for key in keys or ()}
            chosen = None if keys is None else list(keys)
            return found, _history_buckets.buckets(conn, run_pk, chosen, found[0], found[1], buckets)

    def history_sample(
        self,
        run_pk: int,
        keys: Sequence[str] | None,
        *,
        min_step: int | None = None,
        max_step: int | None = None,
        rows: int = 1500,
    ) -> tuple[tuple[int, int] | None, dict[str, list[tuple[float, float, float, float]]], bool]:
        """As :meth:`history_buckets`, quickly: the values of ``rows`` evenly spaced rows of the range, for a
        first drawing of a long run (store/history_buckets.py ``sample``); the last item says whether that
        was every row (the view is then exact)."""
        if rows < 1:
            raise ValueError(f"rows must be at least 1, got {rows}")
        with self._read(snapshot=True) as conn:
            found = _history_buckets.step_range(conn, run_pk, min_step, max_step)
            if found is None:
                return None, {key: [] for key in keys or ()}, True
            points, exact = _history_buckets.sample(conn, run_pk, keys, found[0], found[1], rows)
            return found, points, exact

    def history_media(self, run_pk: int, limit: int = 100) -> list[dict[str, Any]]:
        """The newest ``limit`` history rows of run ``run_pk`` that hold a media value, newest first."""
        with self._read() as conn:
            return _history_buckets.media_rows(conn, run_pk, limit)

    def run_names_blob(self, run_pk: int, hexdigest: str) -> bool:
        """Whether run ``run_pk``'s history, summary or files name blob ``hexdigest`` (MD5 hex)."""
        with self._read() as conn:
            return _history_buckets.names_blob(conn, run_pk, hexdigest)

    def system_metric_buckets(
        self, run_pk: int, *, buckets: int = 1500
    ) -> dict[str, list[tuple[float, float, float, float]]]:
        """Run ``run_pk``'s system metrics downsampled as :meth:`history_buckets`, along ``_runtime``
        (seconds; the samples are few, so this is done in Python over them)."""
        rows = self.system_metrics(run_pk)
        times = [r["_runtime"] for r in rows if isinstance(r.get("_runtime"), (int, float))]
        if not times:
            return {}
        keys = sorted({k for r in rows for k, v in r.items() if not k.startswith("_")
                       and isinstance(v, (int, float)) and not isinstance(v, bool)})
        lo, hi = math.floor(min(times)), math.ceil(max(times))
        return _history_buckets.bucket_rows(rows, keys, lo, hi, buckets, x_key="_runtime")

    def _insert_history(
        self,
        run_pk: int,
        params: list[dict[str, Any]],
        durable: bool,
        media: Sequence[str] = (),
        claim: str | None = None,
    ) -> None:
        if not params and not media:
            return
        try:
            with self._write(durable) as conn:
                if claim is not None:
                    blob_refs.check_and_release(conn, claim, media)
                if params:
                    runs.append_history(conn, params)
                blob_refs.record_run(conn, run_pk, media)
        except sa.exc.IntegrityError:
            if not params:
                raise
            raise self._history_conflict(run_pk, [p["step"] for p in params]) from None

    def _history_conflict(self, run_pk: int, steps: list[int]) -> Exception:
        with self._read() as conn:
            return runs.history_conflict(conn, run_pk, steps)

    # ------------------------------------------------------------------ runs: files and system metrics

    def put_run_files(
        self, run_pk: int, files: Sequence[tuple[str, str, int]], *, durable: bool = True, claim: str | None = None
    ) -> None:
        """Record files of run ``run_pk``: (name, blob MD5 hex, size) each, replacing the content of a name
        already there. The caller makes the blobs durable first (docs/architecture.md invariant 1). ``claim``:
        the token that claimed the blobs (:meth:`claim_blobs`), checked and released in the same transaction
        (:class:`~wandb_dagster.store.errors.BlobClaimLostError` if a claim expired)."""
        with self._write(durable) as conn:
            if claim is not None:
                blob_refs.check_and_release(conn, claim, [digest for _, digest, _ in files])
            _run_files.put(conn, run_pk, files, _now())
            self._fault("put_run_files")

    def run_files(self, run_pk: int) -> list[RunFileRecord]:
        """The files of run ``run_pk`` (``run.save``, ``output.log``), by name."""
        with self._read() as conn:
            return _run_files.of_run(conn, run_pk)

    def run_file_digests(self) -> set[str]:
        """Every blob (MD5 hex) that a file of any run names: a garbage collector counts them as live."""
        with self._read() as conn:
            return _run_files.digests(conn)

    def append_system_metrics(self, run_pk: int, rows: Sequence[dict[str, Any]], *, durable: bool = False) -> None:
        """Append samples of run ``run_pk``'s system metrics stream (W&B's ``events``), after the last one.
        Not durable by default: a sample lost to a power cut is as a crashed W&B run's last samples."""
        with self._write(durable) as conn:
            _run_files.append_system(conn, run_pk, rows)

    def system_metrics(self, run_pk: int) -> list[dict[str, Any]]:
        """The system metrics samples of run ``run_pk``, oldest first."""
        with self._read() as conn:
            return _run_files.system(conn, run_pk)

    # ------------------------------------------------------------------ reports

    def create_report(
        self,
        entity: str,
        project: str,
        *,
        title: str,
        description: str,
        width: str,
        spec: dict[str, Any],
        username: str | None = None,
    ) -> ReportRecord:
        """Record a new report in ``entity/project`` (created if missing); its id is assigned here."""
        now = _now()
        with self._write() as conn:
            project_pk = catalog.project_id(conn, entity, project, now)
            return _reports.create(
                conn, project_pk, title=title, description=description, width=width, spec=spec, username=username,
                now=now,
            )  # fmt: skip

    def update_report(
        self, report_id: str, *, title: str, description: str, width: str, spec: dict[str, Any]
    ) -> ReportRecord:
        """Replace what report ``report_id`` holds; a report that does not exist -> NotFoundError."""
        with self._write() as conn:
            return _reports.update(conn, report_id, title=title, description=description, width=width, spec=spec,
                                   now=_now())  # fmt: skip

    def get_report(self, report_id: str) -> ReportRecord | None:
        with self._read() as conn:
            return _reports.get(conn, report_id)

    def project_reports(self, entity: str, project: str, title: str | None = None) -> list[ReportRecord]:
        """The reports of ``entity/project`` (titled ``title`` when given), newest first."""
        with self._read() as conn:
            return _reports.in_project(conn, entity, project, title)

    def delete_report(self, report_id: str) -> bool:
        """Delete report ``report_id``; False when there was none."""
        with self._write() as conn:
            return _reports.delete(conn, report_id)

    # ------------------------------------------------------------------ sweeps

    def create_sweep(
        self, entity: str, project: str, sweep_id: str, *, name: str | None, method: str, config: dict[str, Any]
    ) -> SweepRecord:
        """Record sweep ``entity/project/sweep_id`` (RUNNING) with its validated W&B ``config``."""
        now = _now()
        with self._write() as conn:
            project_pk = catalog.project_id(conn, entity, project, now)
            return _sweeps.create(conn, project_pk, sweep_id, name=name, method=method, config=config, now=now)

    def get_sweep(self, entity: str, project: str, sweep_id: str) -> SweepRecord | None:
        with self._read() as conn:
            return _sweeps.get(conn, entity, project, sweep_id)

    def project_sweeps(self, entity: str, project: str) -> list[SweepRecord]:
        """The sweeps of ``entity/project``, oldest first."""
        with self._read() as conn:
            return _sweeps.in_project(conn, entity, project)

    def set_sweep_state(self, sweep_pk: int, state: str) -> None:
        """Set the sweep's state: RUNNING, PAUSED, FINISHED or CANCELED (W&B's)."""
        with self._write() as conn:
            _sweeps.set_state(conn, sweep_pk, state, _now())

    def claim_sweep_trial(
        self,
        sweep_pk: int,
        suggest: _sweeps.Suggest,
        *,
        run_cap: int | None,
        run_id: str,
        heartbeat_timeout_s: float | None = None,
    ) -> TrialRecord | None:
        """Claim the next trial of sweep ``sweep_pk`` in one transaction (store/sweeps.py ``claim``):
        ``suggest`` sees the live trials under the sweep's lock; running trials whose heartbeat is older
        than ``heartbeat_timeout_s`` are crashed first. None: nothing to run now (the sweep's state says
        whether it is FINISHED or a running trial may still free a point)."""
        now = _now()
        stale = None if heartbeat_timeout_s is None else now - timedelta(seconds=heartbeat_timeout_s)
        with self._write() as conn:
            return _sweeps.claim(conn, sweep_pk, suggest, run_cap=run_cap, run_id=run_id, now=now, stale_before=stale)

    def beat_sweep_trial(self, trial_pk: int) -> bool:
        """Renew a running trial's heartbeat; False if it was crashed meanwhile."""
        with self._write() as conn:
            return _sweeps.beat(conn, trial_pk, _now())

    def end_sweep_trial(
        self, trial_pk: int, *, metric: tuple[str, str] | None = None, run_state: str | None = None
    ) -> None:
        """Mark a trial finished (its function returned or raised; its run holds the outcome). ``metric``
        (name, goal): record the run's extremum of it as the trial's value, and append SWEEP_BEST_RUN when
        the trial's run is the sweep's new best on it. ``run_state``: the run's end state if it is still
        running, or ``"killed"`` (stopped early) whatever it recorded (store/sweeps.py ``end``)."""
        with self._write() as conn:
            _sweeps.end(conn, trial_pk, _now(), metric, run_state)

    def poll_sweep_trial(self, trial_pk: int) -> tuple[str, str]:
        """(the trial's state, its sweep's state), read while the trial runs."""
        with self._read() as conn:
            return _sweeps.poll(conn, trial_pk)

    def sweep_metric_histories(self, sweep_pk: int, name: str) -> list[tuple[str, str, list[float]]]:
        """(run id, run state, finite values of metric ``name`` in step order) for each run of the sweep."""
        with self._read() as conn:
            return _sweeps.metric_histories(conn, sweep_pk, name)

    def stop_sweep_trials(self, sweep_pk: int, name: str, decide: _sweeps.Decide) -> set[str]:
        """Early termination in one transaction under the sweep's lock (store/sweeps.py ``stop``): the
        running trials ``decide`` names become ``stopping``; returns the run ids of every stopping trial."""
        with self._write() as conn:
            return _sweeps.stop(conn, sweep_pk, name, decide, _now())

    def add_runs_to_sweep(self, sweep_pk: int, run_pks: Sequence[int]) -> None:
        """Make existing runs runs of sweep ``sweep_pk`` (W&B's ``prior_runs``), all or none."""
        with self._write() as conn:
            _sweeps.add_runs(conn, sweep_pk, list(run_pks))

    def sweep_trials(self, sweep_pk: int) -> list[TrialRecord]:
        with self._read() as conn:
            return _sweeps.trials(conn, sweep_pk)

    def sweep_runs(self, sweep_pk: int) -> list[RunRecord]:
        """The runs of sweep ``sweep_pk``, oldest first."""
        with self._read() as conn:
            return runs.of_sweep(conn, sweep_pk)

    # ------------------------------------------------------------------ launch (store/launch.py)

    def put_run_queue(
        self,
        entity: str,
        name: str,
        *,
        resource_type: str,
        prioritization_mode: str | None,
        config: dict[str, Any],
        template_variables: dict[str, Any],
        external_links: dict[str, Any],
        create: bool,
    ) -> RunQueueRecord:
        """Create run queue ``entity/name`` (``create``; an existing one -> ValueError) or replace its settings."""
        now = _now()
        with self._write() as conn:
            return _launch.put_queue(
                conn, entity, name, resource_type=resource_type, prioritization_mode=prioritization_mode,
                config=config, template_variables=template_variables, external_links=external_links, now=now,
                create=create,
            )

    def get_run_queue(self, entity: str, name: str) -> RunQueueRecord | None:
        with self._read() as conn:
            return _launch.get_queue(conn, entity, name)

    def run_queues(self, entity: str) -> list[RunQueueRecord]:
        with self._read() as conn:
            return _launch.queues(conn, entity)

    def delete_run_queue(self, queue_pk: int) -> None:
        with self._write() as conn:
            _launch.delete_queue(conn, queue_pk)

    def enqueue_run(
        self,
        queue_pk: int,
        item_id: str,
        *,
        entity: str,
        project: str,
        job: str,
        launch: dict[str, Any],
        template_values: dict[str, Any],
        priority: int,
    ) -> RunQueueItemRecord:
        """Add a pending item (its config already resolved and validated) to queue ``queue_pk``."""
        with self._write() as conn:
            return _launch.enqueue(
                conn, queue_pk, item_id, entity=entity, project=project, job=job, launch=launch,
                template_values=template_values, priority=priority, now=_now(),
            )

    def get_queue_item(self, item_id: str) -> RunQueueItemRecord | None:
        with self._read() as conn:
            return _launch.get_item(conn, item_id)

    def queue_items(self, queue_pk: int, states: Sequence[str] | None = None) -> list[RunQueueItemRecord]:
        with self._read() as conn:
            return _launch.items(conn, queue_pk, states)

    def lease_queue_items(
        self,
        queue_pk: int,
        owner: str,
        *,
        max_concurrent: int,
        lease_seconds: float,
        max_attempts: int,
        prioritized: bool,
    ) -> list[RunQueueItemRecord]:
        """Lease the queue's next pending items in one transaction (store/launch.py ``lease``)."""
        with self._write() as conn:
            return _launch.lease(
                conn, queue_pk, owner, max_concurrent=max_concurrent, lease_seconds=lease_seconds,
                max_attempts=max_attempts, prioritized=prioritized, now=_now(),
            )

    def update_queue_item(
        self,
        item_id: str,
        *,
        state: str,
        dagster_run_id: str | None = None,
        run_path: str | None = None,
        error: str | None = None,
    ) -> bool:
        """Move a queued run to ``state``; False when it is done already or deleted."""
        with self._write() as conn:
            return _launch.update_item(
                conn, item_id, state=state, now=_now(), dagster_run_id=dagster_run_id, run_path=run_path,
                error=error,
            )

    def set_queue_item_run(self, item_id: str, run_path: str) -> None:
        with self._write() as conn:
            _launch.set_run_path(conn, item_id, run_path, _now())

    def delete_queue_item(self, item_id: str) -> bool:
        with self._write() as conn:
            return _launch.delete_item(conn, item_id)

    # ------------------------------------------------------------------ artifacts: writing

    def commit_version(
        self,
        entity: str,
        project: str,
        collection: str,
        type: str,
        *,
        digest: str,
        manifest: str,
        size: int,
        file_count: int,
        metadata: dict[str, Any],
        description: str | None,
        aliases: Sequence[str],
        tags: Sequence[str],
        run_pk: int | None,
        parts: Sequence[int] = (),
        producers: Sequence[int] = (),
        blobs: Sequence[str] | None = None,
        claim: str | None = None,
        claimed: Sequence[str] | None = None,
    ) -> CommitResult:
        """Log content ``digest`` into collection ``entity/project/collection`` (created if missing).

        If a member of the collection already has this digest, that version is reused (``created=False``);
        otherwise a new version gets the next index. Either way the given aliases move to it (only those:
        pass "latest" explicitly), the tags are added and ``run_pk`` is recorded as a producer.
        ``parts``: the distributed-artifact parts (:meth:`artifact_parts`) this content was merged from,
        deleted in the same transaction (PartsTakenError, and nothing committed, if one is gone already);
        ``producers``: more runs recorded as producers (the runs that upserted those parts).

        ``blobs``: the hex digests of the blobs the content names, recorded for gc; ``claim``: the token that
        claimed them (:meth:`claim_blobs`), checked and released in the same transaction
        (:class:`~wandb_dagster.store.errors.BlobClaimLostError` if a claim expired); ``claimed``: those of
        ``blobs`` the claim must cover (default: all).
        """
        aliases = members.unique(aliases)
        tags = members.unique(tags)
        members.check_aliases(aliases)
        content = {
            "digest": digest, "manifest": manifest, "size": size, "file_count": file_count, "metadata": metadata,
            "description": description,
        }
        now = _now()
        with self._write() as conn:
            _parts.take(conn, parts)
            result = versions.commit(
                conn, entity, project, collection, type, content=content, aliases=aliases, tags=tags,
                run_pk=run_pk, now=now, blobs=blobs, claim=claim, claimed=claimed,
            )
            for producer in sorted(set(producers) - {run_pk}):
                versions.link_run(conn, producer, result.version.pk, "output")
            self._fault("commit_version")
        return result

    def add_artifact_part(
        self,
        entity: str,
        project: str,
        collection: str,
        type: str,
        distributed_id: str,
        *,
        manifest: str,
        metadata: dict[str, Any],
        description: str | None,
        aliases: Sequence[str],
        run_pk: int | None,
        blobs: Sequence[str] = (),
        claim: str | None = None,
    ) -> int:
        """Record one part of the distributed artifact ``entity/project/collection`` (``distributed_id``),
        for a later commit of the merged parts. A collection or other parts of another type ->
        TypeMismatchError. Returns the part's id. ``blobs`` and ``claim``: as for :meth:`commit_version`
        (the part's blobs are recorded for gc until a finish merges it)."""
        aliases = members.unique(aliases)
        members.check_aliases(aliases)
        content = {"manifest": manifest, "metadata": metadata or {}, "description": description, "aliases": aliases}
        with self._write() as conn:
            if claim is not None:
                blob_refs.check_and_release(conn, claim, blobs)
            part_pk = _parts.add(
                conn, entity, project, collection, type, distributed_id, content=content, run_pk=run_pk, now=_now()
            )
            blob_refs.record_part(conn, part_pk, blobs)
            return part_pk

    def artifact_parts(self, entity: str, project: str, collection: str, distributed_id: str) -> list[PartRecord]:
        """The parts waiting under ``distributed_id`` in ``entity/project/collection``, in upsert order."""
        with self._read() as conn:
            return _parts.pending(conn, entity, project, collection, distributed_id)

    # ------------------------------------------------------------------ blobs in use (gc; store/blob_refs.py)

    def claim_blobs(self, token: str, hexes: Iterable[str], *, durable: bool = True) -> set[str]:
        """Claim blobs for a draft (``token``) before relying on them being stored; returns those a gc
        deleted since it marked them (store them again). ``durable=False``: SQLite may skip the fsync (a
        claim a power cut takes back belonged to a writer the power cut stopped too)."""
        hexes = list(hexes)
        if not hexes:
            return set()
        with self._write(durable=durable) as conn:
            return blob_refs.claim(conn, token, hexes)

    def gc_scan(self) -> tuple[set[str], set[str], dict[str, tuple[datetime, datetime | None]], datetime]:
        """(blobs committed versions name, blobs live claims name, gc's marks, the database's clock), read
        in one snapshot."""
        with self._read(snapshot=True) as conn:
            return blob_refs.referenced(conn), blob_refs.claimed(conn), blob_refs.marks(conn), blob_refs.db_now(conn)

    def gc_mark(self, mark: Iterable[str], unmark: Iterable[str]) -> int:
        """Mark blobs gc found unused (now, on the database's clock) and drop the marks of blobs in use
        again or gone; returns how many were marked."""
        with self._write() as conn:
            blob_refs.unmark(conn, unmark)
            return blob_refs.mark(conn, mark)

    @contextlib.contextmanager
    def gc_deleting(self, hexes: Sequence[str], grace_s: float) -> Iterator[list[str]]:
        """A transaction in which gc deletes blobs: yields those of ``hexes`` still unused and marked more
        than ``grace_s`` ago, with every claim excluded until it ends; delete them from storage inside the
        block. On a normal exit they are recorded as deleted; on an exception nothing is."""
        with self._write() as conn:
            doomed = blob_refs.lock_for_delete(conn, hexes, grace_s)
            yield doomed
            blob_refs.set_deleted(conn, doomed)

    def gc_expire(self) -> int:
        """Drop expired claims and old deletion records; returns the claims dropped."""
        with self._write() as conn:
            return blob_refs.expire(conn)

    def committed_manifests(self, batch: int = 200) -> Iterator[tuple[int, str]]:
        """(version pk, manifest JSON) of every committed version, read a batch at a time."""
        v = db.versions.c
        yield from self._manifests(db.versions, v.state == "COMMITTED", batch)

    def part_manifests(self, batch: int = 200) -> Iterator[tuple[int, str]]:
        """(part pk, manifest JSON) of every distributed-artifact part not merged yet."""
        yield from self._manifests(db.artifact_parts, sa.true(), batch)

    def _manifests(self, table: sa.Table, where: Any, batch: int) -> Iterator[tuple[int, str]]:
        with self._read() as conn:
            ids = list(conn.execute(sa.select(table.c.id).where(where).order_by(table.c.id)).scalars())
        for i in range(0, len(ids), batch):  # a few manifests in memory at a time
            with self._read() as conn:
                query = sa.select(table.c.id, table.c.manifest).where(table.c.id.in_(ids[i : i + batch]))
                rows = conn.execute(query.order_by(table.c.id)).all()
            yield from ((pk, text) for pk, text in rows)

    def version_names(self) -> dict[int, str]:
        """version pk -> ``entity/project/collection:vN`` (its source collection) of every committed version."""
        with self._read(snapshot=True) as conn:
            return audit.version_names(conn)

    def audit(self) -> list[dict[str, Any]]:
        """The database's own inconsistencies (store/audit.py): ``{"kind", "where", "detail"}`` each."""
        with self._read(snapshot=True) as conn:
            return audit.problems(conn)

    def counts(self) -> dict[str, int]:
        """Rows of the main tables and the bytes of committed versions (``workspace info``)."""
        with self._read(snapshot=True) as conn:
            return audit.counts(conn)

    def release_claims(self, token: str) -> None:
        """Drop the claims of ``token`` (a repair that is done with its blobs)."""
        with self._write(durable=False) as conn:
            conn.execute(sa.delete(db.blob_claims).where(db.blob_claims.c.token == token))

    def version_blob_map(self) -> dict[int, set[str]]:
        """version pk -> the blobs recorded for it (``version_blobs``), for every committed version."""
        vb, v = db.version_blobs.c, db.versions.c
        out: dict[int, set[str]] = {}
        with self._read() as conn:
            query = sa.select(vb.version_id, vb.hex).join_from(db.version_blobs, db.versions, v.id == vb.version_id)
            # All rows at once (10,000 blobs: fetchall is a few ms, SQLAlchemy's row-by-row iteration 20-30).
            for pk, h in conn.execute(query.where(v.state == "COMMITTED")).all():
                if (held := out.get(pk)) is None:
                    held = out[pk] = set()
                held.add(h)
        return out

    def link_version(
        self,
        version_pk: int,
        entity: str,
        project: str,
        collection: str,
        *,
        aliases: Sequence[str],
        run_pk: int | None = None,
    ) -> CommitResult:
        """Link version ``version_pk`` into the registry ("portfolio") collection ``entity/project/collection``.

        ONE transaction: the collection is created if missing (safe under races; its type is the version's);
        a collection of another type -> TypeMismatchError; a collection where artifacts are logged ->
        ValueError. Under the collection lock: if the version is already a member, only the given aliases are
        applied (``created=False``; "latest" is not moved back to an older member); else the version gets
        the collection's own next index (gapless, never reused) and the given aliases move to it (pass
        "latest" explicitly). Nothing is copied: the link shares the version's files, metadata and tags.
        ``run_pk``: the acting run, named in the events (LINK_ARTIFACT, alias changes).
        """
        aliases = members.unique(aliases)
        members.check_aliases(aliases)
        now = _now()
        with self._write() as conn:
            result = links.link(conn, version_pk, entity, project, collection, aliases=aliases, run_pk=run_pk, now=now)
            self._fault("link_version")
        return result

    def unlink_version(self, version_pk: int, collection_id: int, *, run_pk: int | None = None) -> None:
        """Remove version ``version_pk`` from registry collection ``collection_id``, with its aliases there.

        Where it held "latest", "latest" moves to the newest remaining member. The version itself and its
        other memberships are untouched; the index is never reused. ``run_pk``: the acting run (events).
        """
        now = _now()
        with self._write() as conn:
            links.unlink(conn, version_pk, collection_id, run_pk=run_pk, now=now)

    def update_version(
        self,
        version_pk: int,
        collection_id: int,
        *,
        description: str | None = ...,  # type: ignore[assignment]
        metadata: dict[str, Any] = ...,  # type: ignore[assignment]
        aliases: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        add_aliases: Sequence[str] = (),
        remove_aliases: Sequence[str] = (),
        add_tags: Sequence[str] = (),
        remove_tags: Sequence[str] = (),
        run_pk: int | None = None,
    ) -> VersionRecord:
        """Change what may change after commit; returns the version as seen in ``collection_id``.

        ``description``/``metadata``: left alone when not passed (``...``). ``aliases``: the complete new
        set of this version's aliases in ``collection_id`` (aliases held by other members move here; None
        leaves them alone). ``tags``: the complete new set of the version's tags (None leaves them alone).
        ``add_*``/``remove_*``: changes applied to the current sets inside the same transaction, so that an
        update made from an out-of-date copy does not undo what other clients did in the meantime.
        Every alias and tag that actually changes is reported in the event feed (``run_pk``: the acting run).
        """
        if aliases is not None:
            aliases = members.unique(aliases)
            members.check_aliases(aliases)
        add_aliases = members.unique(add_aliases)
        members.check_aliases(add_aliases)
        values: dict[str, Any] = {}
        if description is not ...:
            values["description"] = description
        if metadata is not ...:
            values["metadata"] = metadata
        now = _now()
        with self._write() as conn:
            return versions.update(
                conn, version_pk, collection_id, values=values,
                aliases=None if aliases is None else list(aliases),
                tags=None if tags is None else members.unique(tags),
                add_aliases=add_aliases, remove_aliases=remove_aliases, add_tags=members.unique(add_tags),
                remove_tags=remove_tags, run_pk=run_pk, now=now,
            )

    def delete_version(self, version_pk: int, *, delete_aliases: bool = False, run_pk: int | None = None) -> None:
        """Remove a version from every collection and mark it DELETED; its indices are never reused.

        Refused while the version has aliases anywhere, unless ``delete_aliases``. Where it held "latest",
        "latest" moves to the newest remaining member. Deleting a deleted version does nothing.
        Events: DELETE_ARTIFACT where it was logged, UNLINK_ARTIFACT (payload ``{"reason": "deleted"}``) for
        each registry link, REMOVE_ARTIFACT_ALIAS for each alias deleted with it (``run_pk``: acting run).
        """
        now = _now()
        with self._write() as conn:
            versions.delete(conn, version_pk, delete_aliases=delete_aliases, run_pk=run_pk, now=now)

    # ------------------------------------------------------------------ retention (store/retention.py)

    def set_version_ttl(self, version_pk: int, seconds: int | None) -> None:
        """Give a version a time to live of ``seconds`` from its creation (None: none)."""
        with self._write() as conn:
            retention.set_ttl(conn, version_pk, seconds)

    def version_ttl(self, version_pk: int) -> int | None:
        """A version's time to live in seconds (None: none)."""
        with self._read() as conn:
            return retention.ttl_of(conn, version_pk)

    def expired_versions(self) -> list[dict[str, Any]]:
        """The committed versions whose TTL is up (store/retention.py ``expired``), with their names."""
        with self._read(snapshot=True) as conn:
            found = retention.expired(conn)
            names = audit.version_names(conn) if found else {}
        return [{**row, "version": names.get(row["pk"], f"version {row['pk']}")} for row in found]

    def record_input(self, run_pk: int, version_pk: int, *, durable: bool = True) -> None:
        """Record that run ``run_pk`` used version ``version_pk`` (idempotent); ``durable`` as for
        :meth:`update_run` (a running run's ``use_artifact`` passes False)."""
        self._record_lineage(run_pk, version_pk, "input", durable)

    def record_output(self, run_pk: int, version_pk: int) -> None:
        """Record that run ``run_pk`` produced version ``version_pk`` (idempotent)."""
        self._record_lineage(run_pk, version_pk, "output")

    def _record_lineage(self, run_pk: int, version_pk: int, direction: str, durable: bool = True) -> None:
        try:
            with self._write(durable) as conn:
                versions.link_run(conn, run_pk, version_pk, direction)
        except sa.exc.IntegrityError:
            # Duplicates are ignored, so this is a foreign key: the run or the version does not exist.
            raise NotFoundError(
                f"cannot record run pk {run_pk} as {direction} of version pk {version_pk}: "
                "no such run or no such version"
            ) from None

    # ------------------------------------------------------------------ artifacts: reading

    def resolve(self, entity: str, project: str, collection: str, selector: str) -> VersionRecord | None:
        """The member of ``entity/project/collection`` named by ``selector``: "vN", an alias, or a version id."""
        with self._read() as conn:
            return versions.resolve(conn, entity, project, collection, selector)

    def get_version(self, version_id: str, collection_id: int | None = None) -> VersionRecord | None:
        """Version ``version_id`` (public id) as a member of ``collection_id`` (default: where it was logged)."""
        with self._read() as conn:
            return versions.by_public_id(conn, version_id, collection_id)

    def manifest(self, version_pk: int) -> str:
        """The manifest JSON text of version ``version_pk``."""
        with self._read() as conn:
            return versions.manifest(conn, version_pk)

    def run_outputs(self, run_pk: int) -> list[VersionRecord]:
        """Versions run ``run_pk`` logged (including reused ones), as members of their source collections."""
        with self._read() as conn:
            return versions.of_run(conn, run_pk, "output")

    def run_inputs(self, run_pk: int) -> list[VersionRecord]:
        """Versions run ``run_pk`` used, as members of their source collections."""
        with self._read() as conn:
            return versions.of_run(conn, run_pk, "input")

    def producers(self, version_pk: int) -> list[str]:
        """Ids of the runs that logged version ``version_pk``, oldest first."""
        with self._read() as conn:
            return versions.producers(conn, version_pk)

    def version_creator(self, version_pk: int) -> RunRecord | None:
        """The run that created version ``version_pk`` (None: logged without a run, or the run was deleted)."""
        with self._read() as conn:
            return runs.creator(conn, version_pk)

    def version_runs(self, version_pk: int, direction: str) -> list[RunRecord]:
        """The runs that used (``"input"``) or logged (``"output"``) version ``version_pk``, oldest first."""
        if direction not in ("input", "output"):
            raise ValueError(f"direction {direction!r} is invalid; use 'input' or 'output'")
        with self._read() as conn:
            return runs.of_version(conn, version_pk, direction)

    def lineage_edges(
        self, *, of: str, pks: Sequence[int], direction: str, limit: int
    ) -> tuple[list[LineageEdge], dict[int, int]]:
        """Lineage edges of ``direction`` at many nodes in one statement: at most ``limit`` per node (``of``:
        ``"run"`` or ``"version"``, ``pks`` their pks), oldest neighbour first, and each node's total count
        (store/lineage.py)."""
        with self._read() as conn:
            return _lineage.edges(conn, of=of, pks=pks, direction=direction, limit=limit)

    def lineage_nodes(
        self, *, run_pks: Sequence[int], version_pks: Sequence[int]
    ) -> tuple[list[LineageRun], list[LineageVersion]]:
        """The names a lineage graph shows for these runs and versions (deleted versions included), in one
        snapshot."""
        with self._read(snapshot=True) as conn:
            return _lineage.run_nodes(conn, run_pks), _lineage.version_nodes(conn, version_pks)

    def runs_by_id(self, run_ids: Sequence[str]) -> dict[str, LineageRun]:
        """The runs named by these ids, for each id that names exactly one run (store/lineage.py)."""
        with self._read() as conn:
            return _lineage.runs_by_id(conn, run_ids)

    def version_memberships(self, version_pk: int) -> list[VersionRecord]:
        """Version ``version_pk`` in every collection it is a member of: its own and each registry link."""
        with self._read() as conn:
            return _lineage.memberships(conn, version_pk)

    def collection_versions(self, collection_id: int) -> list[VersionRecord]:
        """Every member of collection ``collection_id``, ordered by index."""
        with self._read() as conn:
            return versions.in_collection(conn, collection_id)

    # ------------------------------------------------------------------ the query API's reads

    def query(
        self, target: str, scope: Scope, filters: Sequence[Filter] = (), *, order: str | None = None
    ) -> Query:
        """A read of ``target`` ("projects", "collections", "versions" or "runs") within ``scope``, narrowed
        by ``filters`` (``(kind, document)`` pairs; see :mod:`.scope`), for :meth:`page` and :meth:`count`.

        Compiled now, so a bad filter or ``order`` (runs only, e.g. ``"-summary_metrics.loss"``) raises
        ValueError here, before any page is read.
        """
        return paging.compile_query(target, scope, filters, order, self.dialect)

    def narrow(self, query: Query, target: str, filters: Sequence[Filter] = ()) -> Query:
        """``query`` read as ``target`` (projects -> their collections -> their versions) and narrowed by
        ``filters``: a chain of reads compiles each filter once. Bad filters raise ValueError here."""
        return paging.narrow_query(query, target, filters, self.dialect)

    def page(self, query: Query, *, after: Any, limit: int) -> tuple[list[Any], Any]:
        """Up to ``limit`` records of ``query`` after keyset ``after`` (None: from the start); returns
        (records, the keyset of the last one, or None for an empty page).

        Versions come in (project, collection, index) order, runs in the query's order, projects and
        collections in creation (id) order.
        """
        with self._read(snapshot=query.target == "versions") as conn:
            if query.target == "versions":
                return paging.version_page(conn, query.where, after=after, limit=limit, drivers=query.drivers)
            if query.target == "collections":
                return catalog.collection_page(conn, query.where, after=after, limit=limit)
            if query.target == "projects":
                return catalog.project_page(conn, query.where, after=after, limit=limit)
            return runs.page(
                conn, query.where, sort_keys=query.sort_keys, descending=query.descending, after=after, limit=limit
            )

    def count(self, query: Query) -> int:
        """How many records ``query`` reads in all (one COUNT)."""
        counts: Mapping[str, Callable[[sa.Connection, Sequence[Any]], int]] = {
            "versions": paging.version_count,
            "collections": catalog.collection_count,
            "projects": catalog.project_count,
            "runs": runs.count,
        }
        with self._read() as conn:
            return counts[query.target](conn, query.where)

    # ------------------------------------------------------------------ transactions

    @contextlib.contextmanager
    def _write(self, durable: bool = True) -> Iterator[sa.Connection]:
        if self._read_only:
            raise ReadOnlyWorkspaceError(
                f"The workspace database {self.display_url!r} is read-only for this process (no write permission "
                "on its folder, or a read-only filesystem): reading works, writing needs write access to the "
                "folder (SQLite writes the database and its -wal/-shm files there)."
            )
        writer = self._writer if durable else self._relaxed_writer
        with self._bounded_lock_wait(), translated_errors(self._url), writer.begin() as conn:
            # Events appended by the mutation are written last, just before COMMIT (store/events.py says
            # why); an exception skips the flush and the rollback takes the change and its events away.
            _events.begin(conn)
            try:
                yield conn
                if not durable and conn.info.get(_events._PENDING):
                    # A commit a power cut may take back must not carry events: the ids could be handed out
                    # again after a sensor has read them (invariant 5; store/engine.py).
                    raise RuntimeError("a non-durable store write appended events; write it with durable=True")
                _events.flush(conn)
            finally:
                _events.discard(conn)

    @contextlib.contextmanager
    def _read(self, snapshot: bool = False) -> Iterator[sa.Connection]:
        """A read connection, ready for compiled filters. ``snapshot``: every statement sees the same
        snapshot on PostgreSQL too (SQLite's read transaction has one anyway), e.g. for the queries of one
        page: a member unlinked between them must not vanish from the page."""
        with self._bounded_lock_wait(), translated_errors(self._url), self._engine.connect() as conn:
            if snapshot and conn.dialect.name == "postgresql":
                conn.execution_options(isolation_level="REPEATABLE READ")
            prepare_connection(conn)
            yield conn
            # A read changes nothing, so COMMIT ends it as ROLLBACK would; but psycopg forgets the
            # statements it prepared on the connection at every ROLLBACK, and then every page of a query
            # API result is planned again by PostgreSQL (a few ms per statement).
            conn.commit()

    @contextlib.contextmanager
    def _bounded_lock_wait(self) -> Iterator[None]:
        # Every transaction of the store passes here, so this is the one place where a backend giving up on
        # a lock (SQLite busy_timeout, PostgreSQL lock_timeout; store/engine.py) becomes an error that
        # names the database and what to do (docs/architecture.md, "Concurrency and crash guarantees").
        try:
            yield
        except sa.exc.DBAPIError as exc:
            if not is_lock_timeout(exc):
                raise
            raise DatabaseBusyError(
                f"the database {self.display_url} stayed locked by another process's transaction for "
                f"{lock_timeout_s():g} s, so this operation gave up and changed nothing; find and end the "
                "process holding it (a stuck writer, an open psql/sqlite3 session), then retry, or set "
                f"{LOCK_TIMEOUT_ENV} (seconds) to wait longer"
            ) from None

    def _fault(self, point: str) -> None:
        if Store._fault_hook is not None:
            Store._fault_hook(point)
