"""The Store: every database read and write of wandb_dagster, as short transactions on one engine.

Concurrency model. All writers of a collection serialise on its row: PostgreSQL takes ``SELECT ... FOR
UPDATE`` on it, SQLite's write transactions begin with ``BEGIN IMMEDIATE`` (one writer per database at a
time). Under that lock a commit reads ``collections.next_index``, uses it and increments it, so indices are
gapless and never reused without counting anything, and the "is this digest already a member?" check
cannot race with another commit of the same content. Aliases of a collection are only changed under the
same lock. Everything a commit writes is in one transaction: a crash at any point leaves no trace.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import string
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy as sa

from wandb_dagster.store import events as _events
from wandb_dagster.store import schema as db
from wandb_dagster.store.engine import (
    create_engine,
    json_dumps,
    make_url,
    relaxed_write_engine,
    sqlite_path,
    write_engine,
)
from wandb_dagster.store.errors import (
    AliasInUseError,
    NotFoundError,
    RunExistsError,
    RunNotFoundError,
    SchemaVersionError,
    TypeMismatchError,
)
from wandb_dagster.store.records import CollectionRecord, CommitResult, RunRecord, VersionRecord

# pg_advisory_xact_lock key serialising migrations of one database ("wdmigr" in ASCII). Advisory locks
# are per database, so workspaces sharing a server do not wait for each other.
_MIGRATION_LOCK_KEY = 0x77646D69677200

_VERSION_SELECTOR = re.compile(r"v(\d+)")
_ID_ALPHABET = string.ascii_lowercase + string.digits
_RESUME_MODES = (None, "never", "allow", "auto", "must")
# update_run's field names -> runs columns.
_RUN_FIELDS = {
    "state": "state",
    "display_name": "display_name",
    "config": "config",
    "summary": "summary",
    "tags": "tags",
    "group": "group_name",
    "job_type": "job_type",
    "notes": "notes",
    "heartbeat_at": "heartbeat_at",
    "finished_at": "finished_at",
}
_alembic_version = sa.table("alembic_version", sa.column("version_num", sa.String()))


def _now() -> datetime:
    return datetime.now(timezone.utc)


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

    def __init__(self, engine: sa.Engine, url: str, storage_root: str) -> None:
        self._engine = engine
        self._writer = write_engine(engine)
        self._relaxed_writer = relaxed_write_engine(engine)
        self._url = url
        self._storage_root = storage_root

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def open(cls, url: str, *, storage_root: str) -> Store:
        """Open the workspace database at ``url``, creating and migrating it as needed.

        ``storage_root`` is recorded when the database is created; later opens use the recorded root and
        ignore the argument. Concurrent opens of a fresh database (several processes or machines) are safe.
        """
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            path = sqlite_path(parsed)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed)
        try:
            root = _recorded_storage_root(engine)
            if root is None:
                root = _migrate(engine, storage_root)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, url, root)

    @property
    def url(self) -> str:
        return self._url

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
        return f"Store({self._engine.url.render_as_string(hide_password=True)!r})"

    # ------------------------------------------------------------------ entities / projects

    def ensure_project(self, entity: str, project: str) -> int:
        """The primary key of ``entity/project``, creating both if missing (safe under races)."""
        with self._write() as conn:
            return self._project_id(conn, entity, project, _now())

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
    ) -> RunRecord:
        """Create run ``entity/project/run_id`` or, depending on ``resume``, continue the existing one.

        ``resume`` None or "never": the id must be new. "allow"/"auto": continue the run if it exists, else
        create it. "must": the run must exist. A continued run goes back to state "running"; its other
        fields are left as they were (change them with :meth:`update_run`).
        """
        if resume not in _RESUME_MODES:
            raise ValueError(f"resume={resume!r} is not one of {list(_RESUME_MODES)}")
        now = _now()
        with self._write() as conn:
            project_id = self._project_id(conn, entity, project, now)
            if resume != "must":
                # Insert first: a new run (every Dagster step, most init() calls) costs no lookup before and
                # no read-back after; an existing id (a conflict, nothing written) continues below.
                config, tags = json.loads(json_dumps(config or {})), list(tags or [])
                run_pk = conn.execute(
                    _insert(conn, db.runs)
                    .values(
                        project_id=project_id,
                        run_id=run_id,
                        display_name=display_name,
                        state="running",
                        config=config,
                        summary={},
                        tags=tags,
                        group_name=group,
                        job_type=job_type,
                        notes=notes,
                        host=host,
                        username=username,
                        created_at=now,
                        heartbeat_at=now,
                    )
                    .on_conflict_do_nothing()
                    .returning(db.runs.c.id)
                ).scalar()
                if run_pk is not None:
                    self._run_state_event(conn, entity, project, run_id, None, "running", now)
                    # What a read-back would return (config decoded afresh, so the caller owns it).
                    return RunRecord(
                        pk=run_pk, id=run_id, entity=entity, project=project, display_name=display_name,
                        state="running", config=config, summary={}, tags=tags, group=group, job_type=job_type,
                        notes=notes, host=host, username=username, created_at=now, heartbeat_at=now,
                        finished_at=None,
                    )
            run_pk = self._locked_run_pk(conn, project_id, run_id)
            path = f"{entity}/{project}/{run_id}"
            if run_pk is None:
                raise RunNotFoundError(
                    f"run {path!r} does not exist and resume='must'; "
                    "check the run id, or pass resume='allow' to create it"
                )
            if resume in (None, "never"):
                raise RunExistsError(
                    f"run {path!r} already exists; pass resume='allow' to continue it, "
                    "or leave the id out to get a new one"
                )
            previous = conn.execute(sa.select(db.runs.c.state).where(db.runs.c.id == run_pk)).scalar_one()
            conn.execute(
                sa.update(db.runs)
                .where(db.runs.c.id == run_pk)
                .values(state="running", heartbeat_at=now, finished_at=None)
            )
            if previous != "running":
                self._run_state_event(conn, entity, project, run_id, previous, "running", now)
            return self._run(conn, run_pk)

    def get_run(self, entity: str, project: str, run_id: str) -> RunRecord | None:
        with self._read() as conn:
            row = conn.execute(
                _RUNS.where(
                    db.entities.c.name == entity, db.projects.c.name == project, db.runs.c.run_id == run_id
                )
            ).first()
        return None if row is None else _run_record(row)

    def update_run(
        self, run_pk: int, *, history: Sequence[dict[str, Any]] = (), durable: bool = True, **fields: Any
    ) -> None:
        """Set the given fields of run ``run_pk``; JSON fields (config, summary, tags) are replaced whole.

        A change of ``state`` appends a RUN_STATE_CHANGE event (previous and new state) in the same transaction.
        ``history`` rows (as for :meth:`append_history`) are appended in that transaction too, so that a run's
        last metrics, its summary and its final state are one commit, all or none. ``durable=False`` is for a
        running run's own periodic flush: on SQLite a power cut may then take the commit back (store/engine.py
        says why that is acceptable there); it cannot be combined with a change of ``state``.

        Example::

            >>> store.update_run(run.pk, history=[{"_step": 0, "loss": 0.5}], summary={"loss": 0.5},
            ...     state="finished")                                                  # doctest: +SKIP
        """
        unknown = sorted(set(fields) - set(_RUN_FIELDS))
        if unknown:
            raise ValueError(f"update_run() got unknown field(s) {unknown}; valid fields: {sorted(_RUN_FIELDS)}")
        params = _history_params(run_pk, history)
        if not fields:
            self._insert_history(run_pk, params, durable)
            return
        values = {_RUN_FIELDS[name]: value for name, value in fields.items()}
        for name, empty in (("config", {}), ("summary", {}), ("tags", [])):
            if name in values and values[name] is None:
                values[name] = empty
        try:
            with self._write(durable) as conn:
                before = None
                if "state" in values:
                    # Locked, so that two concurrent state changes report consistent previous states. Before
                    # the history insert: on PostgreSQL its foreign key takes a share lock on the run, and two
                    # transactions upgrading their share locks would deadlock.
                    before = conn.execute(
                        _RUNS.with_only_columns(
                            db.runs.c.state, db.entities.c.name, db.projects.c.name, db.runs.c.run_id
                        )
                        .where(db.runs.c.id == run_pk)
                        .with_for_update(of=db.runs)
                    ).first()
                if params:
                    conn.execute(sa.insert(db.run_history), params)
                updated = conn.execute(sa.update(db.runs).where(db.runs.c.id == run_pk).values(values)).rowcount
                if before is not None and before[0] != values["state"]:
                    self._run_state_event(conn, before[1], before[2], before[3], before[0], values["state"], _now())
        except sa.exc.IntegrityError:
            if not params:
                raise
            raise self._history_conflict(run_pk, [p["step"] for p in params]) from None
        if not updated:
            raise NotFoundError(f"no run with pk {run_pk}; create it with create_run() first")

    def append_history(self, run_pk: int, rows: Sequence[dict[str, Any]], *, durable: bool = True) -> None:
        """Append history rows (each with an integer ``_step`` not yet used by this run), all or none.
        ``durable`` as for :meth:`update_run`."""
        self._insert_history(run_pk, _history_params(run_pk, rows), durable)

    def _insert_history(self, run_pk: int, params: list[dict[str, Any]], durable: bool) -> None:
        if not params:
            return
        try:
            with self._write(durable) as conn:
                conn.execute(sa.insert(db.run_history), params)
        except sa.exc.IntegrityError:
            raise self._history_conflict(run_pk, [p["step"] for p in params]) from None

    def history(self, run_pk: int) -> list[dict[str, Any]]:
        """Every history row of run ``run_pk``, ordered by ``_step``."""
        with self._read() as conn:
            return list(
                conn.execute(
                    sa.select(db.run_history.c.row)
                    .where(db.run_history.c.run_pk == run_pk)
                    .order_by(db.run_history.c.step)
                ).scalars()
            )

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
    ) -> CommitResult:
        """Log content ``digest`` into collection ``entity/project/collection`` (created if missing).

        If a member of the collection already has this digest, that version is reused (``created=False``);
        otherwise a new version gets the next index. Either way the given aliases move to it (only those:
        pass "latest" explicitly), the tags are added and ``run_pk`` is recorded as a producer.
        """
        aliases = _unique(aliases)
        tags = _unique(tags)
        _check_aliases(aliases)
        now = _now()
        with self._write() as conn:
            coll = self._lock_collection_by_name(conn, entity, project, collection)
            if coll is None:
                coll = self._create_collection(conn, entity, project, collection, type, now)
            path = f"{entity}/{project}/{collection}"
            if coll.type != type:
                raise TypeMismatchError(
                    f"artifact collection {path!r} has type {coll.type!r}, not {type!r}; "
                    f"log it with type={coll.type!r}, or use another name for {type!r} artifacts"
                )
            if coll.kind != "sequence":
                raise ValueError(
                    f"{path!r} is a registry collection: versions are linked into it, not logged; "
                    "log the artifact to a project, then link that version"
                )
            created_by = self._run_id(conn, run_pk) if run_pk is not None else None
            # next_index counts every member ever added and the collection is locked: at 0 (a collection
            # just created) no member can hold the digest, and the lookup is skipped.
            existing = None if coll.next_index == 0 else conn.execute(
                sa.select(
                    db.memberships.c.id,
                    db.memberships.c.version_id,
                    db.memberships.c.version_index,
                    db.versions.c.public_id,
                )
                .join(db.versions, db.versions.c.id == db.memberships.c.version_id)
                .where(
                    db.versions.c.source_collection_id == coll.id,
                    db.versions.c.digest == digest,
                    db.memberships.c.collection_id == coll.id,
                )
            ).first()
            if existing is not None:
                membership_id, version_pk, index, public_id = existing
                new_tags = self._missing_tags(conn, version_pk, tags)
            else:
                public_id = _new_public_id()
                version_pk = conn.execute(
                    sa.insert(db.versions)
                    .values(
                        public_id=public_id,
                        source_collection_id=coll.id,
                        digest=digest,
                        size=size,
                        file_count=file_count,
                        metadata=metadata or {},
                        description=description,
                        state="COMMITTED",
                        created_by_run_pk=run_pk,
                        created_at=now,
                        updated_at=now,
                        manifest=manifest,
                    )
                    .returning(db.versions.c.id)
                ).scalar_one()
                index, new_tags = coll.next_index, tags
                membership_id = self._add_membership(conn, coll, version_pk, now)
            where = _Where(entity, project, collection, coll.type)
            member = _Member(membership_id, index, public_id)
            if existing is None:
                self._event(
                    conn, _events.CREATE_ARTIFACT, where, member, now, run_id=created_by,
                    payload={"digest": digest, "size": size, "file_count": file_count},
                )
            before = self._alias_holders(conn, coll.id, aliases)
            self._alias_events(conn, where, member, aliases, before, created_by, now)
            self._move_aliases(conn, coll.id, membership_id, aliases)
            self._add_tags(conn, version_pk, tags)
            for tag in new_tags:
                self._event(conn, _events.ADD_ARTIFACT_TAG, where, member, now, tag=tag, run_id=created_by)
            if run_pk is not None:
                self._link_run(conn, run_pk, version_pk, "output")
            if existing is not None:
                version = self._versions(conn, db.memberships.c.id == membership_id)[0]
            else:
                # Everything is known: build the record instead of reading back what was just written, to
                # keep the common path to a handful of statements.
                version = VersionRecord(
                    pk=version_pk,
                    id=public_id,
                    entity=entity,
                    project=project,
                    collection=collection,
                    collection_id=coll.id,
                    type=type,
                    index=coll.next_index,
                    digest=digest,
                    size=size,
                    file_count=file_count,
                    metadata=metadata or {},
                    description=description,
                    state="COMMITTED",
                    created_at=now,
                    updated_at=now,
                    aliases=sorted(aliases),
                    tags=sorted(tags),
                    source_collection_id=coll.id,
                    created_by=created_by,
                )
            self._fault("commit_version")
        return CommitResult(version=version, created=existing is None)

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
        aliases = _unique(aliases)
        _check_aliases(aliases)
        now = _now()
        path = f"{entity}/{project}/{collection}"
        with self._write() as conn:
            version_type = conn.execute(
                sa.select(db.collections.c.type)
                .join(db.versions, db.versions.c.source_collection_id == db.collections.c.id)
                .where(db.versions.c.id == version_pk)
            ).scalar()
            if version_type is None:
                raise NotFoundError(f"no version with pk {version_pk}; link a version returned by commit_version()")
            coll = self._lock_collection_by_name(conn, entity, project, collection)
            if coll is None:
                coll = self._create_collection(conn, entity, project, collection, version_type, now, kind="portfolio")
            if coll.kind != "portfolio":
                raise ValueError(
                    f"{path!r} is a collection where artifacts are logged, not a registry collection; "
                    "link into another collection name (e.g. 'wandb-registry-model/<name>')"
                )
            if coll.type != version_type:
                raise TypeMismatchError(
                    f"registry collection {path!r} has type {coll.type!r}, but version pk {version_pk} has type "
                    f"{version_type!r}; link {version_type!r} artifacts into another collection"
                )
            # Lock the version after the collection (the order delete_version uses), so a concurrent delete
            # either sees this link or makes us see the version as deleted.
            state = conn.execute(
                sa.select(db.versions.c.state).where(db.versions.c.id == version_pk).with_for_update(read=True)
            ).scalar_one()
            if state != "COMMITTED":
                raise NotFoundError(f"version pk {version_pk} was deleted; link another version")
            membership_id = self._membership_id(conn, coll.id, version_pk)
            created = membership_id is None
            if created:
                membership_id = self._add_membership(conn, coll, version_pk, now)
            else:
                newest = conn.execute(
                    sa.select(sa.func.max(db.memberships.c.version_index)).where(
                        db.memberships.c.collection_id == coll.id
                    )
                ).scalar()
                index = conn.execute(
                    sa.select(db.memberships.c.version_index).where(db.memberships.c.id == membership_id)
                ).scalar_one()
                if index != newest:
                    aliases = [alias for alias in aliases if alias != "latest"]
            before = self._alias_holders(conn, coll.id, aliases)
            self._move_aliases(conn, coll.id, membership_id, aliases)
            version = self._versions(conn, db.memberships.c.id == membership_id)[0]
            where = _Where(entity, project, collection, coll.type)
            member = _Member(membership_id, version.index, version.id)
            run_id = self._run_id(conn, run_pk) if run_pk is not None else None
            if created:
                self._event(
                    conn, _events.LINK_ARTIFACT, where, member, now, run_id=run_id,
                    payload={"source": self._source_name(conn, version_pk)},
                )
            self._alias_events(conn, where, member, aliases, before, run_id, now)
            self._fault("link_version")
        return CommitResult(version=version, created=created)

    def unlink_version(self, version_pk: int, collection_id: int, *, run_pk: int | None = None) -> None:
        """Remove version ``version_pk`` from registry collection ``collection_id``, with its aliases there.

        Where it held "latest", "latest" moves to the newest remaining member. The version itself and its
        other memberships are untouched; the index is never reused. ``run_pk``: the acting run (events).
        """
        now = _now()
        with self._write() as conn:
            kind = conn.execute(
                sa.select(db.collections.c.kind).where(db.collections.c.id == collection_id).with_for_update()
            ).scalar()
            if kind is None:
                raise NotFoundError(f"no collection with pk {collection_id}")
            if kind != "portfolio":
                raise ValueError(
                    f"collection pk {collection_id} is where version pk {version_pk} is logged, not a registry "
                    "collection; only links can be unlinked (use delete_version to delete the version)"
                )
            membership_id = self._membership_id(conn, collection_id, version_pk)
            if membership_id is None:
                raise NotFoundError(
                    f"version pk {version_pk} is not linked into collection pk {collection_id}; nothing to unlink"
                )
            held = set(
                conn.execute(sa.select(db.aliases.c.alias).where(db.aliases.c.membership_id == membership_id)).scalars()
            )
            where, member = self._where(conn, collection_id), self._member(conn, membership_id)
            run_id = self._run_id(conn, run_pk) if run_pk is not None else None
            for alias in sorted(held - {"latest"}):
                self._event(conn, _events.REMOVE_ARTIFACT_ALIAS, where, member, now, alias=alias, run_id=run_id)
            self._event(conn, _events.UNLINK_ARTIFACT, where, member, now, run_id=run_id)
            conn.execute(sa.delete(db.aliases).where(db.aliases.c.membership_id == membership_id))
            conn.execute(sa.delete(db.memberships).where(db.memberships.c.id == membership_id))
            conn.execute(sa.update(db.collections).where(db.collections.c.id == collection_id).values(updated_at=now))
            if "latest" in held:
                self._latest_to_newest(conn, collection_id)

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
            aliases = _unique(aliases)
            _check_aliases(aliases)
        add_aliases = _unique(add_aliases)
        _check_aliases(add_aliases)
        now = _now()
        with self._write() as conn:
            if conn.execute(
                sa.select(db.collections.c.id).where(db.collections.c.id == collection_id).with_for_update()
            ).first() is None:
                raise NotFoundError(f"no collection with pk {collection_id}")
            membership_id = self._membership_id(conn, collection_id, version_pk)
            if membership_id is None:
                raise NotFoundError(
                    f"version pk {version_pk} is not a member of collection pk {collection_id} "
                    "(deleted, or never logged or linked there)"
                )
            values: dict[str, Any] = {"updated_at": now}
            if description is not ...:
                values["description"] = description
            if metadata is not ...:
                values["metadata"] = metadata
            conn.execute(sa.update(db.versions).where(db.versions.c.id == version_pk).values(values))
            # The event feed reports what changed: the holders of every alias this call can touch, and the
            # version's tags, before and after.
            touched = [*(aliases or ()), *add_aliases, *remove_aliases]
            if aliases is not None:
                touched += conn.execute(
                    sa.select(db.aliases.c.alias).where(db.aliases.c.membership_id == membership_id)
                ).scalars()
            aliases_before = self._alias_holders(conn, collection_id, touched)
            tags_changed = tags is not None or add_tags or remove_tags
            tags_before = self._version_tags(conn, version_pk) if tags_changed else set()
            if aliases is not None:
                conn.execute(
                    sa.delete(db.aliases).where(
                        db.aliases.c.membership_id == membership_id, db.aliases.c.alias.not_in(aliases)
                    )
                )
                self._move_aliases(conn, collection_id, membership_id, aliases)
            if remove_aliases:
                conn.execute(
                    sa.delete(db.aliases).where(
                        db.aliases.c.membership_id == membership_id, db.aliases.c.alias.in_(list(remove_aliases))
                    )
                )
            if add_aliases:
                self._move_aliases(conn, collection_id, membership_id, add_aliases)
            if remove_tags:
                conn.execute(
                    sa.delete(db.version_tags).where(
                        db.version_tags.c.version_id == version_pk, db.version_tags.c.tag.in_(list(remove_tags))
                    )
                )
            if add_tags:
                self._add_tags(conn, version_pk, _unique(add_tags))
            if tags is not None:
                tags = _unique(tags)
                conn.execute(
                    sa.delete(db.version_tags).where(
                        db.version_tags.c.version_id == version_pk, db.version_tags.c.tag.not_in(tags)
                    )
                )
                self._add_tags(conn, version_pk, tags)
            version = self._versions(conn, db.memberships.c.id == membership_id)[0]
            aliases_after = self._alias_holders(conn, collection_id, touched)
            tags_after = self._version_tags(conn, version_pk) if tags_changed else set()
            if aliases_before != aliases_after or tags_before != tags_after:
                where, member = self._where(conn, collection_id), _Member(membership_id, version.index, version.id)
                run_id = self._run_id(conn, run_pk) if run_pk is not None else None
                self._alias_diff_events(conn, where, aliases_before, aliases_after, run_id, now)
                for tag in sorted(tags_before - tags_after):
                    self._event(conn, _events.REMOVE_ARTIFACT_TAG, where, member, now, tag=tag, run_id=run_id)
                for tag in sorted(tags_after - tags_before):
                    self._event(conn, _events.ADD_ARTIFACT_TAG, where, member, now, tag=tag, run_id=run_id)
            return version

    def delete_version(self, version_pk: int, *, delete_aliases: bool = False, run_pk: int | None = None) -> None:
        """Remove a version from every collection and mark it DELETED; its indices are never reused.

        Refused while the version has aliases anywhere, unless ``delete_aliases``. Where it held "latest",
        "latest" moves to the newest remaining member. Deleting a deleted version does nothing.
        Events: DELETE_ARTIFACT where it was logged, UNLINK_ARTIFACT (payload ``{"reason": "deleted"}``) for
        each registry link, REMOVE_ARTIFACT_ALIAS for each alias deleted with it (``run_pk``: acting run).
        """
        now = _now()
        with self._write() as conn:
            # Lock the collections before the version row, in id order: the same order as every other
            # writer (collection, then its versions), so concurrent writers cannot deadlock.
            collection_ids = self._lock_collections(conn, self._membership_collections(conn, version_pk))
            state = conn.execute(
                sa.select(db.versions.c.state).where(db.versions.c.id == version_pk).with_for_update()
            ).scalar()
            if state is None:
                raise NotFoundError(f"no version with pk {version_pk}")
            if state == "DELETED":
                return
            # A link committed while we waited for the locks adds a collection; lock it too.
            self._lock_collections(conn, self._membership_collections(conn, version_pk) - collection_ids)
            held = conn.execute(
                sa.select(db.aliases.c.collection_id, db.aliases.c.alias, db.memberships.c.id)
                .join(db.memberships, db.memberships.c.id == db.aliases.c.membership_id)
                .where(db.memberships.c.version_id == version_pk)
                .order_by(db.aliases.c.collection_id, db.aliases.c.alias)
            ).all()
            if held and not delete_aliases:
                raise AliasInUseError(
                    f"version pk {version_pk} still has aliases {[alias for _, alias, _ in held]}; "
                    "remove them first, or pass delete_aliases=True to delete them with the version"
                )
            self._deletion_events(conn, version_pk, held, run_pk, now)
            membership_ids = [membership_id for _, _, membership_id in held]
            if membership_ids:
                conn.execute(sa.delete(db.aliases).where(db.aliases.c.membership_id.in_(membership_ids)))
            conn.execute(sa.delete(db.memberships).where(db.memberships.c.version_id == version_pk))
            conn.execute(
                sa.update(db.versions).where(db.versions.c.id == version_pk).values(state="DELETED", updated_at=now)
            )
            for collection_id, alias, _ in held:
                if alias == "latest":
                    self._latest_to_newest(conn, collection_id)

    def record_input(self, run_pk: int, version_pk: int, *, durable: bool = True) -> None:
        """Record that run ``run_pk`` used version ``version_pk`` (idempotent); ``durable`` as for
        :meth:`update_run` (a running run's ``use_artifact`` passes False)."""
        self._record_lineage(run_pk, version_pk, "input", durable)

    def record_output(self, run_pk: int, version_pk: int) -> None:
        """Record that run ``run_pk`` produced version ``version_pk`` (idempotent)."""
        self._record_lineage(run_pk, version_pk, "output")

    # ------------------------------------------------------------------ artifacts: reading

    def resolve(self, entity: str, project: str, collection: str, selector: str) -> VersionRecord | None:
        """The member of ``entity/project/collection`` named by ``selector``: "vN", an alias, or a version id."""
        named = (db.entities.c.name == entity, db.projects.c.name == project, db.collections.c.name == collection)
        with self._read() as conn:
            match = _VERSION_SELECTOR.fullmatch(selector)
            if match:
                found = self._versions(conn, *named, db.memberships.c.version_index == int(match.group(1)))
            else:
                has_alias = (
                    sa.exists()
                    .where(
                        db.aliases.c.collection_id == db.memberships.c.collection_id,
                        db.aliases.c.alias == selector,
                        db.aliases.c.membership_id == db.memberships.c.id,
                    )
                )
                found = self._versions(conn, *named, has_alias) or self._versions(
                    conn, *named, db.versions.c.public_id == selector
                )
        return found[0] if found else None

    def get_version(self, version_id: str, collection_id: int | None = None) -> VersionRecord | None:
        """Version ``version_id`` (public id) as a member of ``collection_id`` (default: where it was logged)."""
        in_collection = db.versions.c.source_collection_id if collection_id is None else collection_id
        with self._read() as conn:
            found = self._versions(
                conn, db.versions.c.public_id == version_id, db.memberships.c.collection_id == in_collection
            )
        return found[0] if found else None

    def manifest(self, version_pk: int) -> str:
        """The manifest JSON text of version ``version_pk``."""
        with self._read() as conn:
            text = conn.execute(sa.select(db.versions.c.manifest).where(db.versions.c.id == version_pk)).scalar()
        if text is None:
            raise NotFoundError(f"no version with pk {version_pk}")
        return text

    def run_outputs(self, run_pk: int) -> list[VersionRecord]:
        """Versions run ``run_pk`` logged (including reused ones), as members of their source collections."""
        return self._run_versions(run_pk, "output")

    def run_inputs(self, run_pk: int) -> list[VersionRecord]:
        """Versions run ``run_pk`` used, as members of their source collections."""
        return self._run_versions(run_pk, "input")

    def producers(self, version_pk: int) -> list[str]:
        """Ids of the runs that logged version ``version_pk``, oldest first."""
        with self._read() as conn:
            return list(
                conn.execute(
                    sa.select(db.runs.c.run_id)
                    .join(db.run_artifacts, db.run_artifacts.c.run_pk == db.runs.c.id)
                    .where(db.run_artifacts.c.version_id == version_pk, db.run_artifacts.c.direction == "output")
                    .order_by(db.runs.c.id)
                ).scalars()
            )

    def collection(self, entity: str, project: str, name: str) -> CollectionRecord | None:
        with self._read() as conn:
            row = conn.execute(
                sa.select(
                    db.collections,
                    db.entities.c.name.label("entity"),
                    db.projects.c.name.label("project"),
                )
                .join(db.projects, db.projects.c.id == db.collections.c.project_id)
                .join(db.entities, db.entities.c.id == db.projects.c.entity_id)
                .where(db.entities.c.name == entity, db.projects.c.name == project, db.collections.c.name == name)
            ).first()
            if row is None:
                return None
            tags = conn.execute(
                sa.select(db.collection_tags.c.tag).where(db.collection_tags.c.collection_id == row.id)
            ).scalars()
            return CollectionRecord.from_row(row, tags)

    def collection_versions(self, collection_id: int) -> list[VersionRecord]:
        """Every member of collection ``collection_id``, ordered by index."""
        with self._read() as conn:
            return self._versions(
                conn, db.memberships.c.collection_id == collection_id, order_by=[db.memberships.c.version_index]
            )

    # ------------------------------------------------------------------ helpers

    @contextlib.contextmanager
    def _write(self, durable: bool = True) -> Iterator[sa.Connection]:
        writer = self._writer if durable else self._relaxed_writer
        with _unwrapped_value_errors(), writer.begin() as conn:
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
    def _read(self) -> Iterator[sa.Connection]:
        with _unwrapped_value_errors(), self._engine.connect() as conn:
            yield conn
            # A read changes nothing, so COMMIT ends it as ROLLBACK would; but psycopg forgets the
            # statements it prepared on the connection at every ROLLBACK, and then every page of a query
            # API result is planned again by PostgreSQL (a few ms per statement).
            conn.commit()

    def _fault(self, point: str) -> None:
        if Store._fault_hook is not None:
            Store._fault_hook(point)

    def _project_id(self, conn: sa.Connection, entity: str, project: str, now: datetime) -> int:
        lookup = (
            sa.select(db.projects.c.id)
            .join(db.entities, db.entities.c.id == db.projects.c.entity_id)
            .where(db.entities.c.name == entity, db.projects.c.name == project)
        )
        project_id = conn.execute(lookup).scalar()
        if project_id is not None:
            return project_id
        # INSERT ... ON CONFLICT DO NOTHING, then read: a concurrent creator wins quietly (PostgreSQL waits
        # for its transaction, then sees its row).
        conn.execute(_insert(conn, db.entities).values(name=entity, created_at=now).on_conflict_do_nothing())
        entity_id = conn.execute(sa.select(db.entities.c.id).where(db.entities.c.name == entity)).scalar_one()
        conn.execute(
            _insert(conn, db.projects)
            .values(entity_id=entity_id, name=project, created_at=now, updated_at=now)
            .on_conflict_do_nothing()
        )
        return conn.execute(lookup).scalar_one()

    def _lock_collection_by_name(
        self, conn: sa.Connection, entity: str, project: str, name: str
    ) -> sa.Row[Any] | None:
        return conn.execute(
            sa.select(db.collections)
            .join(db.projects, db.projects.c.id == db.collections.c.project_id)
            .join(db.entities, db.entities.c.id == db.projects.c.entity_id)
            .where(db.entities.c.name == entity, db.projects.c.name == project, db.collections.c.name == name)
            .with_for_update(of=db.collections)
        ).first()

    def _create_collection(
        self,
        conn: sa.Connection,
        entity: str,
        project: str,
        name: str,
        type: str,
        now: datetime,
        kind: str = "sequence",
    ) -> sa.Row[Any]:
        project_id = self._project_id(conn, entity, project, now)
        inserted = conn.execute(
            _insert(conn, db.collections)
            .values(
                project_id=project_id,
                name=name,
                type=type,
                kind=kind,
                created_at=now,
                updated_at=now,
                next_index=0,
            )
            .on_conflict_do_nothing()
            .returning(*db.collections.c)
        ).first()
        if inserted is not None:
            return inserted  # a row this transaction inserted is locked by it until COMMIT
        row = self._lock_collection_by_name(conn, entity, project, name)
        assert row is not None  # inserted by a concurrent transaction that has committed
        return row

    def _lock_collections(self, conn: sa.Connection, collection_ids: set[int]) -> set[int]:
        if collection_ids:
            conn.execute(
                sa.select(db.collections.c.id)
                .where(db.collections.c.id.in_(sorted(collection_ids)))
                .order_by(db.collections.c.id)
                .with_for_update()
            ).all()
        return collection_ids

    def _membership_collections(self, conn: sa.Connection, version_pk: int) -> set[int]:
        return set(
            conn.execute(
                sa.select(db.memberships.c.collection_id).where(db.memberships.c.version_id == version_pk)
            ).scalars()
        )

    @staticmethod
    def _membership_id(conn: sa.Connection, collection_id: int, version_pk: int) -> int | None:
        return conn.execute(
            sa.select(db.memberships.c.id).where(
                db.memberships.c.collection_id == collection_id, db.memberships.c.version_id == version_pk
            )
        ).scalar()

    def _latest_to_newest(self, conn: sa.Connection, collection_id: int) -> None:
        """After a member holding "latest" left the collection, "latest" names the newest remaining one."""
        newest = conn.execute(
            sa.select(db.memberships.c.id)
            .where(db.memberships.c.collection_id == collection_id)
            .order_by(db.memberships.c.version_index.desc())
            .limit(1)
        ).scalar()
        if newest is not None:
            self._move_aliases(conn, collection_id, newest, ["latest"])

    def _add_membership(self, conn: sa.Connection, coll: Any, version_pk: int, now: datetime) -> int:
        """Give ``version_pk`` the locked collection's next index (then advance it); returns the membership."""
        membership_id = conn.execute(
            sa.insert(db.memberships)
            .values(collection_id=coll.id, version_id=version_pk, version_index=coll.next_index, created_at=now)
            .returning(db.memberships.c.id)
        ).scalar_one()
        conn.execute(
            sa.update(db.collections)
            .where(db.collections.c.id == coll.id)
            .values(next_index=db.collections.c.next_index + 1, updated_at=now)
        )
        return membership_id

    def _move_aliases(
        self, conn: sa.Connection, collection_id: int, membership_id: int, aliases: Sequence[str]
    ) -> None:
        # One upsert both adds an alias and takes it from another member: the (collection_id, alias) primary
        # key guarantees it never names two members, and the caller holds the collection lock.
        if not aliases:
            return
        stmt = _insert(conn, db.aliases).values(
            [{"collection_id": collection_id, "alias": alias, "membership_id": membership_id} for alias in aliases]
        )
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[db.aliases.c.collection_id, db.aliases.c.alias],
                set_={"membership_id": stmt.excluded.membership_id},
            )
        )

    # ------------------------------------------------------------------ event feed (store/events.py)

    @staticmethod
    def _event(
        conn: sa.Connection, type: str, where: _Where, member: _Member | None, now: datetime, **fields: Any
    ) -> None:
        """Append a ``type`` event about ``member`` of collection ``where`` to this transaction."""
        _events.append(
            conn,
            type,
            created_at=now,
            entity=where.entity,
            project=where.project,
            collection=where.collection,
            collection_type=where.type,
            version_index=None if member is None else member.index,
            artifact_id=None if member is None else member.public_id,
            **fields,
        )

    @staticmethod
    def _alias_holders(conn: sa.Connection, collection_id: int, aliases: Iterable[str]) -> dict[str, _Member]:
        """Which members of the (locked) collection hold ``aliases`` now; 'latest' is left out (no events)."""
        names = sorted({alias for alias in aliases if alias != "latest"})
        if not names:
            return {}
        rows = conn.execute(
            sa.select(db.aliases.c.alias, db.memberships.c.id, db.memberships.c.version_index, db.versions.c.public_id)
            .join(db.memberships, db.memberships.c.id == db.aliases.c.membership_id)
            .join(db.versions, db.versions.c.id == db.memberships.c.version_id)
            .where(db.aliases.c.collection_id == collection_id, db.aliases.c.alias.in_(names))
        )
        return {alias: _Member(membership_id, index, public_id) for alias, membership_id, index, public_id in rows}

    def _alias_events(
        self,
        conn: sa.Connection,
        where: _Where,
        member: _Member,
        aliases: Iterable[str],
        before: dict[str, _Member],
        run_id: str | None,
        now: datetime,
    ) -> None:
        """Events for moving ``aliases`` to ``member``, given their holders ``before`` (see _alias_holders).

        An alias the member already holds changes nothing; one held by another member moves: REMOVE on the
        old holder, then ADD with ``previous_version``. 'latest' is implicit and never reported.
        """
        for alias in aliases:
            held = before.get(alias)
            if alias == "latest" or (held is not None and held.membership_id == member.membership_id):
                continue
            payload = {}
            if held is not None:
                self._event(
                    conn, _events.REMOVE_ARTIFACT_ALIAS, where, held, now, alias=alias, run_id=run_id,
                    payload={"moved_to": f"v{member.index}"},
                )
                payload = {"previous_version": f"v{held.index}"}
            self._event(
                conn, _events.ADD_ARTIFACT_ALIAS, where, member, now, alias=alias, run_id=run_id, payload=payload
            )

    def _alias_diff_events(
        self,
        conn: sa.Connection,
        where: _Where,
        before: dict[str, _Member],
        after: dict[str, _Member],
        run_id: str | None,
        now: datetime,
    ) -> None:
        """Events for every alias whose holder differs between two _alias_holders snapshots."""
        for alias in sorted(set(before) | set(after)):
            old, new = before.get(alias), after.get(alias)
            if old == new:
                continue
            if old is not None:
                payload = {} if new is None else {"moved_to": f"v{new.index}"}
                self._event(
                    conn, _events.REMOVE_ARTIFACT_ALIAS, where, old, now, alias=alias, run_id=run_id, payload=payload
                )
            if new is not None:
                payload = {} if old is None else {"previous_version": f"v{old.index}"}
                self._event(
                    conn, _events.ADD_ARTIFACT_ALIAS, where, new, now, alias=alias, run_id=run_id, payload=payload
                )

    @staticmethod
    def _source_name(conn: sa.Connection, version_pk: int) -> str | None:
        """``entity/project/collection:vN`` where the version was logged (None once deleted there)."""
        row = conn.execute(
            sa.select(db.entities.c.name, db.projects.c.name, db.collections.c.name, db.memberships.c.version_index)
            .select_from(db.versions)
            .join(db.collections, db.collections.c.id == db.versions.c.source_collection_id)
            .join(db.projects, db.projects.c.id == db.collections.c.project_id)
            .join(db.entities, db.entities.c.id == db.projects.c.entity_id)
            .join(
                db.memberships,
                (db.memberships.c.collection_id == db.collections.c.id)
                & (db.memberships.c.version_id == db.versions.c.id),
            )
            .where(db.versions.c.id == version_pk)
        ).first()
        return None if row is None else f"{row[0]}/{row[1]}/{row[2]}:v{row[3]}"

    def _run_state_event(
        self,
        conn: sa.Connection,
        entity: str,
        project: str,
        run_id: str,
        previous: str | None,
        state: str,
        now: datetime,
    ) -> None:
        _events.append(
            conn,
            _events.RUN_STATE_CHANGE,
            created_at=now,
            entity=entity,
            project=project,
            run_id=run_id,
            payload={"previous_state": previous, "state": state},
        )

    def _deletion_events(
        self, conn: sa.Connection, version_pk: int, held: Sequence[Any], run_pk: int | None, now: datetime
    ) -> None:
        run_id = self._run_id(conn, run_pk) if run_pk is not None else None
        aliases_of: dict[int, list[str]] = {}
        for _, alias, membership_id in held:
            if alias != "latest":
                aliases_of.setdefault(membership_id, []).append(alias)
        rows = conn.execute(
            sa.select(
                db.memberships.c.id,
                db.memberships.c.version_index,
                db.versions.c.public_id,
                db.versions.c.source_collection_id,
                db.collections.c.id.label("collection_id"),
                db.entities.c.name.label("entity"),
                db.projects.c.name.label("project"),
                db.collections.c.name.label("collection"),
                db.collections.c.type,
            )
            .join(db.versions, db.versions.c.id == db.memberships.c.version_id)
            .join(db.collections, db.collections.c.id == db.memberships.c.collection_id)
            .join(db.projects, db.projects.c.id == db.collections.c.project_id)
            .join(db.entities, db.entities.c.id == db.projects.c.entity_id)
            .where(db.memberships.c.version_id == version_pk)
            .order_by(db.memberships.c.collection_id)
        )
        for row in rows:
            where, member = _Where(row.entity, row.project, row.collection, row.type), _Member(
                row.id, row.version_index, row.public_id
            )
            for alias in sorted(aliases_of.get(row.id, ())):
                self._event(conn, _events.REMOVE_ARTIFACT_ALIAS, where, member, now, alias=alias, run_id=run_id)
            if row.collection_id == row.source_collection_id:
                self._event(conn, _events.DELETE_ARTIFACT, where, member, now, run_id=run_id)
            else:
                self._event(
                    conn, _events.UNLINK_ARTIFACT, where, member, now, run_id=run_id, payload={"reason": "deleted"}
                )

    @staticmethod
    def _version_tags(conn: sa.Connection, version_pk: int) -> set[str]:
        return set(
            conn.execute(sa.select(db.version_tags.c.tag).where(db.version_tags.c.version_id == version_pk)).scalars()
        )

    @staticmethod
    def _missing_tags(conn: sa.Connection, version_pk: int, tags: Sequence[str]) -> list[str]:
        """The ``tags`` the version does not have yet, in the given order (these get ADD events)."""
        if not tags:
            return []
        have = set(
            conn.execute(
                sa.select(db.version_tags.c.tag).where(
                    db.version_tags.c.version_id == version_pk, db.version_tags.c.tag.in_(list(tags))
                )
            ).scalars()
        )
        return [tag for tag in tags if tag not in have]

    def _where(self, conn: sa.Connection, collection_id: int) -> _Where:
        row = conn.execute(
            sa.select(db.entities.c.name, db.projects.c.name, db.collections.c.name, db.collections.c.type)
            .join(db.projects, db.projects.c.id == db.collections.c.project_id)
            .join(db.entities, db.entities.c.id == db.projects.c.entity_id)
            .where(db.collections.c.id == collection_id)
        ).one()
        return _Where(*row)

    def _member(self, conn: sa.Connection, membership_id: int) -> _Member:
        index, public_id = conn.execute(
            sa.select(db.memberships.c.version_index, db.versions.c.public_id)
            .join(db.versions, db.versions.c.id == db.memberships.c.version_id)
            .where(db.memberships.c.id == membership_id)
        ).one()
        return _Member(membership_id, index, public_id)

    def _add_tags(self, conn: sa.Connection, version_pk: int, tags: Sequence[str]) -> None:
        if tags:
            # Sorted, so that concurrent writers insert in the same order and cannot deadlock.
            conn.execute(
                _insert(conn, db.version_tags)
                .values([{"version_id": version_pk, "tag": tag} for tag in sorted(tags)])
                .on_conflict_do_nothing()
            )

    def _link_run(self, conn: sa.Connection, run_pk: int, version_pk: int, direction: str) -> None:
        conn.execute(
            _insert(conn, db.run_artifacts)
            .values(run_pk=run_pk, version_id=version_pk, direction=direction)
            .on_conflict_do_nothing()
        )

    def _record_lineage(self, run_pk: int, version_pk: int, direction: str, durable: bool = True) -> None:
        try:
            with self._write(durable) as conn:
                self._link_run(conn, run_pk, version_pk, direction)
        except sa.exc.IntegrityError:
            # Duplicates are ignored, so this is a foreign key: the run or the version does not exist.
            raise NotFoundError(
                f"cannot record run pk {run_pk} as {direction} of version pk {version_pk}: "
                "no such run or no such version"
            ) from None

    def _run_id(self, conn: sa.Connection, run_pk: int) -> str:
        run_id = conn.execute(sa.select(db.runs.c.run_id).where(db.runs.c.id == run_pk)).scalar()
        if run_id is None:
            raise NotFoundError(f"no run with pk {run_pk}; pass the pk of a run from create_run(), or None")
        return run_id

    def _locked_run_pk(self, conn: sa.Connection, project_id: int, run_id: str) -> int | None:
        return conn.execute(
            sa.select(db.runs.c.id)
            .where(db.runs.c.project_id == project_id, db.runs.c.run_id == run_id)
            .with_for_update()
        ).scalar()

    def _run(self, conn: sa.Connection, run_pk: int) -> RunRecord:
        return _run_record(conn.execute(_RUNS.where(db.runs.c.id == run_pk)).one())

    def _history_conflict(self, run_pk: int, steps: list[int]) -> Exception:
        with self._read() as conn:
            if conn.execute(sa.select(db.runs.c.id).where(db.runs.c.id == run_pk)).first() is None:
                return NotFoundError(f"no run with pk {run_pk}; create it with create_run() first")
            taken = set(
                conn.execute(
                    sa.select(db.run_history.c.step).where(
                        db.run_history.c.run_pk == run_pk,
                        db.run_history.c.step.between(min(steps), max(steps)),
                    )
                ).scalars()
            )
        duplicates = sorted(step for step in set(steps) if steps.count(step) > 1 or step in taken)
        return ValueError(
            f"history of run pk {run_pk} already has step(s) {duplicates[:10]}; history is append-only: "
            "log each step once, with steps above the last one logged"
        )

    def _run_versions(self, run_pk: int, direction: str) -> list[VersionRecord]:
        linked = sa.exists().where(
            db.run_artifacts.c.run_pk == run_pk,
            db.run_artifacts.c.version_id == db.versions.c.id,
            db.run_artifacts.c.direction == direction,
        )
        with self._read() as conn:
            return self._versions(
                conn,
                linked,
                db.memberships.c.collection_id == db.versions.c.source_collection_id,
                order_by=[db.versions.c.id],
            )

    def _versions(
        self, conn: sa.Connection, *where: Any, order_by: Iterable[Any] = ()
    ) -> list[VersionRecord]:
        rows = conn.execute(_versions_query(conn.dialect.name).where(*where).order_by(*order_by)).all()
        # Positional unpacking (in _VERSIONS' column order): a page builds 100 records, and named access to
        # 20 fields of each row costs more than the rest of building them.
        return [
            VersionRecord(
                pk=pk,
                id=public_id,
                entity=entity,
                project=project,
                collection=collection,
                collection_id=collection_id,
                type=type_,
                index=index,
                digest=digest,
                size=size,
                file_count=file_count,
                metadata=metadata,
                description=description,
                state=state,
                created_at=created_at,
                updated_at=updated_at,
                aliases=_names(aliases),
                tags=_names(tags),
                source_collection_id=source_collection_id,
                created_by=created_by,
            )
            for (
                _membership_id, index, collection_id, pk, public_id, digest, size, file_count, metadata,
                description, state, created_at, updated_at, source_collection_id, entity, project, collection,
                type_, created_by, aliases, tags,
            ) in rows
        ]


class _Where(NamedTuple):
    """The collection an event is about."""

    entity: str
    project: str
    collection: str
    type: str


class _Member(NamedTuple):
    """A member of a collection, as events name it: index (``vN``) and the version's public id."""

    membership_id: int
    index: int
    public_id: str


# A member of a collection, joined with everything a VersionRecord shows. The version's type is its source
# collection's: a registry link shows the linked version's own type.
_source = db.collections.alias("source_collection")
_VERSIONS = sa.select(
    db.memberships.c.id.label("membership_id"),
    db.memberships.c.version_index,
    db.memberships.c.collection_id,
    db.versions.c.id,
    db.versions.c.public_id,
    db.versions.c.digest,
    db.versions.c.size,
    db.versions.c.file_count,
    db.versions.c.metadata,
    db.versions.c.description,
    db.versions.c.state,
    db.versions.c.created_at,
    db.versions.c.updated_at,
    db.versions.c.source_collection_id,
    db.entities.c.name.label("entity"),
    db.projects.c.name.label("project"),
    db.collections.c.name.label("collection"),
    _source.c.type,
    db.runs.c.run_id.label("created_by"),
).select_from(
    db.memberships.join(db.versions, db.versions.c.id == db.memberships.c.version_id)
    .join(db.collections, db.collections.c.id == db.memberships.c.collection_id)
    .join(db.projects, db.projects.c.id == db.collections.c.project_id)
    .join(db.entities, db.entities.c.id == db.projects.c.entity_id)
    .join(_source, _source.c.id == db.versions.c.source_collection_id)
    .outerjoin(db.runs, db.runs.c.id == db.versions.c.created_by_run_pk)
)

_RUNS = sa.select(db.runs, db.entities.c.name.label("entity"), db.projects.c.name.label("project")).select_from(
    db.runs.join(db.projects, db.projects.c.id == db.runs.c.project_id).join(
        db.entities, db.entities.c.id == db.projects.c.entity_id
    )
)


def _held(column: Any, owner: Any, key: Any, dialect: str) -> Any:
    # All of a row's aliases or tags in one value, read in the same statement as the row (a correlated
    # subquery on the owner's index), rather than one more query and round trip per page for each.
    # NullType: the driver's list (or JSON text) as it comes, without SQLAlchemy's per-item array processing.
    gather = (sa.func.array_agg if dialect == "postgresql" else sa.func.json_group_array)(column, type_=sa.types.NullType())
    return sa.select(gather).where(owner == key).scalar_subquery()


_VERSIONS_BY_DIALECT: dict[str, Any] = {}


def _versions_query(dialect: str) -> Any:
    """``_VERSIONS`` plus each member's ``aliases`` and its version's ``tags`` (see :func:`_names`)."""
    query = _VERSIONS_BY_DIALECT.get(dialect)
    if query is None:
        query = _VERSIONS_BY_DIALECT[dialect] = _VERSIONS.add_columns(
            _held(db.aliases.c.alias, db.aliases.c.membership_id, db.memberships.c.id, dialect).label("aliases"),
            _held(db.version_tags.c.tag, db.version_tags.c.version_id, db.versions.c.id, dialect).label("tags"),
        )
        # Store._versions unpacks rows by position.
        assert [c.name for c in query.selected_columns] == list(_VERSION_COLUMNS), query.selected_columns
    return query


_VERSION_COLUMNS = (
    "membership_id", "version_index", "collection_id", "id", "public_id", "digest", "size", "file_count",
    "metadata", "description", "state", "created_at", "updated_at", "source_collection_id", "entity", "project",
    "collection", "type", "created_by", "aliases", "tags",
)


def _names(held: Any) -> list[str]:
    """Sorted names from :func:`_held`: a list or NULL on PostgreSQL, JSON text (``[]`` for none) on SQLite."""
    if held is None:
        return []
    return sorted(json.loads(held) if isinstance(held, str) else held)


def _run_record(row: sa.Row[Any]) -> RunRecord:
    return RunRecord(
        pk=row.id,
        id=row.run_id,
        entity=row.entity,
        project=row.project,
        display_name=row.display_name,
        state=row.state,
        config=row.config,
        summary=row.summary,
        tags=row.tags,
        group=row.group_name,
        job_type=row.job_type,
        notes=row.notes,
        host=row.host,
        username=row.username,
        created_at=row.created_at,
        heartbeat_at=row.heartbeat_at,
        finished_at=row.finished_at,
    )


def _history_params(run_pk: int, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    params = []
    for row in rows:
        step = row.get("_step")
        if not isinstance(step, int) or isinstance(step, bool):
            raise ValueError(f"history row {row!r} has no integer '_step'; every row needs one")
        params.append({"run_pk": run_pk, "step": step, "row": row})
    return params


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    """The dialect's INSERT, which has ON CONFLICT on both backends."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


@contextlib.contextmanager
def _unwrapped_value_errors() -> Iterator[None]:
    # A value the driver cannot take (NaN in JSON, a naive datetime) fails while SQLAlchemy binds
    # parameters, which wraps it in StatementError; callers should get the plain ValueError/TypeError with
    # its message, as from any other argument check.
    try:
        yield
    except sa.exc.StatementError as exc:
        if not isinstance(exc, sa.exc.DBAPIError) and isinstance(exc.orig, (TypeError, ValueError)):
            raise exc.orig from None
        raise


def _unique(values: Iterable[str]) -> list[str]:
    """``values`` without repeats, in order (one upsert may not touch the same row twice)."""
    if isinstance(values, str):
        raise TypeError(f"expected a list of strings, got the string {values!r}; wrap it in a list")
    return list(dict.fromkeys(values))


def _check_aliases(aliases: Iterable[str]) -> None:
    for alias in aliases:
        valid = isinstance(alias, str) and alias and "/" not in alias and ":" not in alias
        if not valid or _VERSION_SELECTOR.fullmatch(alias):
            raise ValueError(
                f"invalid alias {alias!r}: an alias is a non-empty string without '/' or ':', "
                "and 'v<digits>' names a version, so it cannot be an alias; choose another alias"
            )


def _new_public_id() -> str:
    while True:
        public_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))
        # resolve() reads "v<digits>" as an index, so an id must never look like one.
        if not _VERSION_SELECTOR.fullmatch(public_id):
            return public_id


# ---------------------------------------------------------------------- opening and migrating


def _recorded_storage_root(engine: sa.Engine) -> str | None:
    """The recorded storage root if the schema is current; None if the database needs migrating.

    This is the path of every open but the first, so it stays at two SELECTs and does not import Alembic.
    """
    with engine.connect() as conn:
        try:
            revision = conn.execute(sa.select(_alembic_version.c.version_num)).scalar()
        except sa.exc.DBAPIError:  # no alembic_version table: a new database
            return None
        if revision != db.SCHEMA_REVISION:
            return None
        return conn.execute(sa.select(db.workspace.c.value).where(db.workspace.c.key == "storage_root")).scalar()


def _migrate(engine: sa.Engine, storage_root: str) -> str:
    """Bring the schema to head and record ``storage_root`` if none is; returns the recorded root.

    One write transaction, serialised across processes and machines (SQLite: BEGIN IMMEDIATE holds the
    database write lock; PostgreSQL: a transaction-scoped advisory lock), and transactional DDL on both
    backends: concurrent openers wait for the first, then find nothing to do; a crash leaves no half schema.
    """
    with write_engine(engine).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK_KEY)))
        _upgrade_schema(conn)
        conn.execute(
            _insert(conn, db.workspace)
            .values(
                [
                    {"key": "storage_root", "value": storage_root},
                    {"key": "created_at", "value": _now().isoformat()},
                ]
            )
            .on_conflict_do_nothing()
        )
        return conn.execute(
            sa.select(db.workspace.c.value).where(db.workspace.c.key == "storage_root")
        ).scalar_one()


def _alembic_config() -> Any:
    from alembic.config import Config

    config = Config()
    # The ini-style config interpolates '%'; escape it in case the install path has one.
    config.set_main_option("script_location", str(Path(__file__).with_name("migrations")).replace("%", "%%"))
    return config


def _upgrade_schema(conn: sa.Connection) -> None:
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    current = MigrationContext.configure(conn).get_current_revision()
    if current == db.SCHEMA_REVISION:
        return
    config = _alembic_config()
    if current is not None:
        try:
            ScriptDirectory.from_config(config).get_revision(current)
        except CommandError:
            raise SchemaVersionError(
                f"the database {conn.engine.url.render_as_string(hide_password=True)!r} has schema revision "
                f"{current!r}, which this wandb_dagster does not know (its newest is {db.SCHEMA_REVISION!r}): "
                "a newer wandb_dagster created it; upgrade wandb_dagster on this machine"
            ) from None
    config.attributes["connection"] = conn
    command.upgrade(config, "head")
