"""Read queries for the public query API: keyset-paginated pages, counts, and registry bookkeeping.

The API layer compiles user filters (Mongo style) into SQLAlchemy expressions over the tables of
:mod:`.schema`; the functions here put them into a keyset-paginated ``SELECT`` (``WHERE key > :last
ORDER BY key LIMIT n``; the page's records, aliases and tags are then read by primary key), so nothing is
ever loaded to be filtered in Python and a page does not get slower with the page number. Scopes should
name collections through ``collections.c.id`` (not ``memberships.c.collection_id``): on PostgreSQL a
version page walks the collections in batches, and only collection-level conditions narrow that walk. Every function takes the :class:`~wandb_dagster.store.Store` first.

Example::

    >>> from wandb_dagster.store import queries, schema as db
    >>> records, last = queries.version_page(store, [db.collections.c.id == 3], after=None, limit=50)  # doctest: +SKIP
    >>> more, last = queries.version_page(store, [db.collections.c.id == 3], after=last, limit=50)    # doctest: +SKIP

Scopes. ``FROM`` clauses are fixed per kind of object, so a compiled filter may refer to these tables:

- versions: ``memberships``, ``versions``, ``collections``, ``projects``, ``entities`` (the membership's
  collection, project and entity); order and keyset: (project name, collection name, index), so a
  ``where`` must stay within one entity (every caller's does).
- collections: ``collections``, ``projects``, ``entities``; keyset: ``collections.id``.
- projects (registries are projects named ``wandb-registry-*``): ``projects``, ``entities``; keyset ``id``.
- runs: ``runs``, ``projects``, ``entities``; keyset: the caller's sort key plus ``runs.id``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.selectable import Join

from wandb_dagster.store import schema as db
from wandb_dagster.store.records import CollectionRecord, RunRecord, VersionRecord

REGISTRY_PREFIX = "wandb-registry-"
# The registries every organization has (spec section 6, "Ours").
CORE_REGISTRIES = ("model", "dataset")
_CORE_DESCRIPTIONS = {
    "model": "The core model registry: models promoted for use across the organization.",
    "dataset": "The core dataset registry: datasets promoted for use across the organization.",
}


@dataclasses.dataclass(frozen=True)
class ProjectRecord:
    pk: int
    entity: str
    name: str
    description: str | None
    created_at: datetime
    updated_at: datetime


# --------------------------------------------------------------------------------------- regex support


def _regexp(pattern: str | None, value: Any) -> bool:
    # SQLite's `x REGEXP y` calls regexp(y, x); Python's re.search semantics (unanchored), as PostgreSQL's ~.
    if pattern is None or value is None or not isinstance(value, str):
        return False
    return _compiled(pattern, 0).search(value) is not None


def _iregexp(pattern: str | None, value: Any) -> bool:
    if pattern is None or value is None or not isinstance(value, str):
        return False
    return _compiled(pattern, re.IGNORECASE).search(value) is not None


_PATTERNS: dict[tuple[str, int], re.Pattern[str]] = {}


def _compiled(pattern: str, flags: int) -> re.Pattern[str]:
    key = (pattern, flags)
    found = _PATTERNS.get(key)
    if found is None:
        if len(_PATTERNS) > 256:
            _PATTERNS.clear()
        found = _PATTERNS[key] = re.compile(pattern, flags)
    return found


def _prepare(conn: sa.Connection) -> None:
    """Give an SQLite connection the REGEXP functions compiled filters use (once per pooled connection).

    ``Connection.info`` lives as long as the DBAPI connection, so the functions are registered once, on
    whichever connection the pool hands out first, without touching the engine's configuration.
    """
    if conn.dialect.name != "sqlite" or conn.info.get("wd_regexp"):
        return
    dbapi = conn.connection.dbapi_connection
    dbapi.create_function("regexp", 2, _regexp, deterministic=True)
    dbapi.create_function("wd_iregexp", 2, _iregexp, deterministic=True)
    conn.info["wd_regexp"] = True


def read(store: Any) -> Any:
    """A read connection of ``store``, ready for compiled filters (a context manager)."""
    return _Reader(store)


class _Reader:
    def __init__(self, store: Any) -> None:
        self._cm = store._read()

    def __enter__(self) -> sa.Connection:
        conn = self._cm.__enter__()
        _prepare(conn)
        return conn

    def __exit__(self, *exc: Any) -> Any:
        return self._cm.__exit__(*exc)


# --------------------------------------------------------------------------------------- versions

_VERSIONS_FROM = (
    db.memberships.join(db.versions, db.versions.c.id == db.memberships.c.version_id)
    .join(db.collections, db.collections.c.id == db.memberships.c.collection_id)
    .join(db.projects, db.projects.c.id == db.collections.c.project_id)
    .join(db.entities, db.entities.c.id == db.projects.c.entity_id)
)


class Driver(NamedTuple):
    """``where`` requires the version to hold one of ``values`` as a ``field`` (``"tag"`` or ``"alias"``)."""

    field: str
    values: tuple[str, ...]


# SQLite: a driver with fewer rows than this starts the versions query (see _sqlite_driver).
_SQLITE_DRIVER_MAX_ROWS = 1_000


class _CrossJoin(Join):
    """``left CROSS JOIN right ON ...``: SQLite keeps ``left`` as the outer loop (its documented manual
    control of join order); SQLAlchemy has no spelling for it."""

    inherit_cache = True


@compiles(_CrossJoin)
def _compile_cross_join(join: _CrossJoin, compiler: Any, from_linter: Any = None, **kw: Any) -> str:
    kw.pop("asfrom", None)
    left = join.left._compiler_dispatch(compiler, asfrom=True, from_linter=from_linter, **kw)
    right = join.right._compiler_dispatch(compiler, asfrom=True, from_linter=from_linter, **kw)
    return f"{left} CROSS JOIN {right} ON {join.onclause._compiler_dispatch(compiler, from_linter=from_linter, **kw)}"


def _sqlite_driver(conn: sa.Connection, drivers: Sequence[Driver]) -> Any:
    """The FROM clause that makes SQLite start from the rarest required tag/alias value, or None.

    SQLite plans without statistics (nothing runs ANALYZE; and ANALYZE did not change these plans when
    tried), so it walks members in page order and tests each one: fine when matches are common, a scan of
    every member for a needle (a tag held by 10 versions: ~100 ms at 100,000 versions). Starting instead
    from the (tag, version_id) or (alias, membership_id) index (migration 0003) and sorting the matches
    costs the matches, not the workspace. Which is cheaper depends on how many rows hold the value, so they
    are counted first (an index range, stopped at the cap): a walk takes about limit x members / matches
    steps, the driven form one per match and a sort; below the cap it is never the slower by much.
    """
    best, best_rows = None, _SQLITE_DRIVER_MAX_ROWS
    for driver in drivers:
        if driver.field == "tag":
            value, owner, target = db.version_tags.c.tag, db.version_tags.c.version_id, db.memberships.c.version_id
        else:
            value, owner, target = db.aliases.c.alias, db.aliases.c.membership_id, db.memberships.c.id
        held = sa.select(owner).where(value.in_(driver.values))
        rows = conn.execute(
            sa.select(sa.func.count()).select_from(held.limit(_SQLITE_DRIVER_MAX_ROWS).subquery())
        ).scalar_one()
        if rows < best_rows:
            # DISTINCT: a version holding two of the values is still one row of the page.
            start = held.distinct().subquery("driver")
            best, best_rows = _CrossJoin(start, _VERSIONS_FROM, start.c[owner.name] == target), rows
    return best


def version_page(
    store: Any,
    where: Sequence[Any],
    *,
    after: tuple[str, str, int] | None,
    limit: int,
    selective: bool = False,
    drivers: Sequence[Driver] = (),
) -> tuple[list[VersionRecord], tuple[str, str, int] | None]:
    """Up to ``limit`` members matching ``where`` after keyset ``after``; only committed versions.

    Order: project name, collection name, index (within an entity). That is the order in which the joins
    walk their unique indexes (projects by (entity, name), collections by (project, name), memberships by
    (collection, index)), so the database stops after ``limit`` matches instead of sorting every match: a
    first page costs what it takes to find ``limit`` matches, whatever the workspace's size.
    ``drivers``: alias or tag values ``where`` requires (indexed: migration 0003); on PostgreSQL the planner
    is then left to start from that index rather than walking collections (as with ``selective``), on
    SQLite the rarest one drives the query when it is rare enough (:func:`_sqlite_driver`).
    Returns (records, the keyset of the last one, or None when the page is empty).
    """
    project, collection, index = db.projects.c.name, db.collections.c.name, db.memberships.c.version_index
    conditions = [*where, db.versions.c.state == "COMMITTED"]
    if after is not None:
        last_project, last_collection, last_index = after
        conditions += [
            # The full keyset condition, plus its consequences on the outer tables, so that collections
            # before the keyset are skipped at their own loop instead of member by member.
            project >= last_project,
            sa.or_(project > last_project, collection >= last_collection),
            sa.or_(
                project > last_project,
                collection > last_collection,
                index > last_index,
            ),
        ]
    query = (
        sa.select(db.memberships.c.id, project, collection, index)
        .select_from(_VERSIONS_FROM)
        .where(*conditions)
        .order_by(project, collection, index)
        .limit(limit)
    )
    with read(store) as conn:
        if conn.dialect.name == "sqlite" and drivers:
            driver = _sqlite_driver(conn, drivers)
            if driver is not None:
                # Only versions ``where`` requires anyway, so the result is the same either way.
                query = query.select_from(driver)
        if conn.dialect.name == "postgresql" and not (selective or drivers):
            rows = _walk_collections(conn, query, conditions, limit)
        else:
            rows = conn.execute(query).all()
        if not rows:
            return [], None
        # The page is known: read the full records by primary key (with their aliases and tags).
        found = store._versions(conn, db.memberships.c.id.in_([row[0] for row in rows]))
    position = {(r.project, r.collection, r.index): r for r in found}
    keys = [(row[1], row[2], row[3]) for row in rows]
    return [position[key] for key in keys], keys[-1]


_COLLECTION_LEVEL = {"collections", "projects", "entities", "collection_tags"}


def _tables(condition: Any) -> set[str | None]:
    # None for anything unnamed (a table-valued function): never taken for a collection-level condition.
    found = sa.sql.util.find_tables(condition, check_columns=True, include_aliases=True)
    return {getattr(table, "name", None) for table in found}


def _walk_collections(conn: sa.Connection, query: Any, conditions: list[Any], limit: int) -> list[Any]:
    """PostgreSQL: run ``query`` over growing batches of collections, in page order, until ``limit`` rows.

    PostgreSQL's planner cannot estimate how selective JSON or EXISTS filters are, so for "first 100
    matches in (project, collection, index) order" it picks a plan that evaluates the filter on every
    member and sorts them all (hundreds of ms at 100,000 versions). Restricting each query to a batch of
    collections (found by the collection-level conditions alone, in order) bounds the work to the members
    of the collections the page actually reaches. Batches are sized from the matches seen so far and grow
    fourfold while there are none, so a sparse filter costs a logarithmic number of queries.
    """
    outer = [c for c in conditions if _tables(c) <= _COLLECTION_LEVEL]
    ordered = (
        sa.select(db.collections.c.id, db.projects.c.name, db.collections.c.name)
        .select_from(_COLLECTIONS_FROM)
        .where(*outer)
        .order_by(db.projects.c.name, db.collections.c.name)
    )
    rows: list[Any] = []
    batch, last = 8, None
    while len(rows) < limit:
        page = ordered
        if last is not None:
            page = page.where(sa.tuple_(db.projects.c.name, db.collections.c.name) > sa.tuple_(*last))
        collections = conn.execute(page.limit(batch)).all()
        if not collections:
            break
        last = (collections[-1][1], collections[-1][2])
        ids = [row[0] for row in collections]
        members = sa.select(db.memberships.c.version_id).where(db.memberships.c.collection_id.in_(ids))
        # Naming the versions too (redundant for the result) keeps the planner from hashing the whole
        # versions table: it then looks up just the batch's versions by primary key.
        batch_query = query.where(db.memberships.c.collection_id.in_(ids), db.versions.c.id.in_(members))
        found = conn.execute(batch_query.limit(limit - len(rows))).all()
        rows += found
        if len(collections) < batch:
            break
        # Size the next batch from the matches per collection seen so far (half as many again, for luck),
        # so that a page needs few queries without evaluating the filter on many more members than needed.
        if found:
            per_collection = len(found) / len(collections)
            batch = max(4, min(1024, int((limit - len(rows)) / per_collection * 1.5) + 1))
        else:
            batch = min(batch * 4, 1024)
    return rows


def version_count(store: Any, where: Sequence[Any]) -> int:
    query = (
        sa.select(sa.func.count())
        .select_from(_VERSIONS_FROM)
        .where(*where, db.versions.c.state == "COMMITTED")
    )
    with read(store) as conn:
        return int(conn.execute(query).scalar_one())


# --------------------------------------------------------------------------------------- collections

_COLLECTIONS_FROM = db.collections.join(db.projects, db.projects.c.id == db.collections.c.project_id).join(
    db.entities, db.entities.c.id == db.projects.c.entity_id
)


def collection_page(
    store: Any, where: Sequence[Any], *, after: int | None, limit: int
) -> tuple[list[CollectionRecord], int | None]:
    conditions = list(where)
    if after is not None:
        conditions.append(db.collections.c.id > after)
    query = (
        sa.select(db.collections, db.entities.c.name.label("entity"), db.projects.c.name.label("project"))
        .select_from(_COLLECTIONS_FROM)
        .where(*conditions)
        .order_by(db.collections.c.id)
        .limit(limit)
    )
    with read(store) as conn:
        rows = conn.execute(query).all()
        if not rows:
            return [], None
        tags: dict[int, list[str]] = {}
        for collection_id, tag in conn.execute(
            sa.select(db.collection_tags.c.collection_id, db.collection_tags.c.tag).where(
                db.collection_tags.c.collection_id.in_([row.id for row in rows])
            )
        ):
            tags.setdefault(collection_id, []).append(tag)
    return [CollectionRecord.from_row(row, tags.get(row.id, [])) for row in rows], rows[-1].id


def collection_count(store: Any, where: Sequence[Any]) -> int:
    with read(store) as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(_COLLECTIONS_FROM).where(*where)).scalar_one())


def collection_by_id(store: Any, collection_id: int) -> CollectionRecord | None:
    records, _ = collection_page(store, [db.collections.c.id == collection_id], after=None, limit=1)
    return records[0] if records else None


def collection_aliases(store: Any, collection_id: int) -> list[str]:
    """Every alias used in collection ``collection_id`` (sorted)."""
    with read(store) as conn:
        return sorted(
            conn.execute(sa.select(db.aliases.c.alias).where(db.aliases.c.collection_id == collection_id)).scalars()
        )


def update_collection(
    store: Any, collection_id: int, *, description: Any = ..., tags: Sequence[str] | None = None
) -> CollectionRecord:
    """Set a collection's description (``...`` leaves it) and its complete set of tags (None leaves them)."""
    now = datetime.now(timezone.utc)
    with store._write() as conn:
        values: dict[str, Any] = {"updated_at": now}
        if description is not ...:
            values["description"] = description
        updated = conn.execute(
            sa.update(db.collections).where(db.collections.c.id == collection_id).values(values)
        ).rowcount
        if not updated:
            from wandb_dagster.store.errors import NotFoundError

            raise NotFoundError(f"no collection with pk {collection_id} (deleted?); nothing was saved")
        if tags is not None:
            wanted = list(dict.fromkeys(tags))
            conn.execute(
                sa.delete(db.collection_tags).where(
                    db.collection_tags.c.collection_id == collection_id, db.collection_tags.c.tag.not_in(wanted)
                )
            )
            if wanted:
                from wandb_dagster.store.store import _insert

                conn.execute(
                    _insert(conn, db.collection_tags)
                    .values([{"collection_id": collection_id, "tag": tag} for tag in sorted(wanted)])
                    .on_conflict_do_nothing()
                )
    found = collection_by_id(store, collection_id)
    assert found is not None
    return found


def artifact_types(store: Any, entity: str, project: str) -> list[str]:
    """The artifact types used by collections of ``entity/project``, sorted."""
    with read(store) as conn:
        return sorted(
            conn.execute(
                sa.select(db.collections.c.type)
                .select_from(_COLLECTIONS_FROM)
                .where(db.entities.c.name == entity, db.projects.c.name == project)
                .distinct()
            ).scalars()
        )


# --------------------------------------------------------------------------------------- projects

_PROJECTS_FROM = db.projects.join(db.entities, db.entities.c.id == db.projects.c.entity_id)


def project_page(
    store: Any, where: Sequence[Any], *, after: int | None, limit: int
) -> tuple[list[ProjectRecord], int | None]:
    conditions = list(where)
    if after is not None:
        conditions.append(db.projects.c.id > after)
    query = (
        sa.select(db.projects, db.entities.c.name.label("entity"))
        .select_from(_PROJECTS_FROM)
        .where(*conditions)
        .order_by(db.projects.c.id)
        .limit(limit)
    )
    with read(store) as conn:
        rows = conn.execute(query).all()
    records = [
        ProjectRecord(
            pk=row.id,
            entity=row.entity,
            name=row.name,
            description=row.description,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
        for row in rows
    ]
    return records, (rows[-1].id if rows else None)


def project_count(store: Any, where: Sequence[Any]) -> int:
    with read(store) as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(_PROJECTS_FROM).where(*where)).scalar_one())


def get_project(store: Any, entity: str, name: str) -> ProjectRecord | None:
    records, _ = project_page(
        store, [db.entities.c.name == entity, db.projects.c.name == name], after=None, limit=1
    )
    return records[0] if records else None


def update_project(store: Any, project_pk: int, *, description: str | None) -> None:
    with store._write() as conn:
        conn.execute(
            sa.update(db.projects)
            .where(db.projects.c.id == project_pk)
            .values(description=description, updated_at=datetime.now(timezone.utc))
        )


def registry_projects_condition() -> Any:
    """Projects that are registries: names starting with ``wandb-registry-`` (an index-friendly range:
    '.' is the character after '-')."""
    return sa.and_(db.projects.c.name >= REGISTRY_PREFIX, db.projects.c.name < REGISTRY_PREFIX[:-1] + ".")


def ensure_core_registries(store: Any, entity: str) -> None:
    """Make sure ``entity`` (the organization) has the core registries ``model`` and ``dataset``.

    A read first, so that the common case (they exist) takes no write lock.
    """
    # Projects are never deleted: once this Store has seen them, they exist.
    seen = store.__dict__.setdefault("_core_registries_seen", set())
    if entity in seen:
        return
    names = [REGISTRY_PREFIX + name for name in CORE_REGISTRIES]
    with read(store) as conn:
        present = set(
            conn.execute(
                sa.select(db.projects.c.name)
                .select_from(_PROJECTS_FROM)
                .where(db.entities.c.name == entity, db.projects.c.name.in_(names))
            ).scalars()
        )
    for core, name in zip(CORE_REGISTRIES, names):
        if name not in present:
            pk = store.ensure_project(entity, name)
            with store._write() as conn:
                # Only a registry nobody described yet gets the default description.
                conn.execute(
                    sa.update(db.projects)
                    .where(db.projects.c.id == pk, db.projects.c.description.is_(None))
                    .values(description=_CORE_DESCRIPTIONS[core])
                )
    seen.add(entity)


# --------------------------------------------------------------------------------------- runs

_RUNS_FROM = db.runs.join(db.projects, db.projects.c.id == db.runs.c.project_id).join(
    db.entities, db.entities.c.id == db.projects.c.entity_id
)


def run_page(
    store: Any,
    where: Sequence[Any],
    *,
    sort_keys: Sequence[Any],
    descending: bool,
    after: tuple[Any, ...] | None,
    limit: int,
) -> tuple[list[RunRecord], tuple[Any, ...] | None]:
    """Up to ``limit`` runs matching ``where`` ordered by ``sort_keys`` then ``runs.id`` (all ascending, or
    all descending). ``sort_keys`` must never be NULL (the API coalesces them) so that the keyset
    comparison ``(keys..., id) > (last...)`` is exact. Returns (records, the last row's keyset)."""
    from wandb_dagster.store.store import _run_record

    keys = [*sort_keys, db.runs.c.id]
    conditions = list(where)
    if after is not None:
        row_value = sa.tuple_(*keys)
        last = sa.tuple_(*[sa.literal(value, type_=key.type) for key, value in zip(keys, after)])
        conditions.append(row_value < last if descending else row_value > last)
    labelled = [key.label(f"_k{i}") for i, key in enumerate(keys)]
    query = (
        sa.select(db.runs, db.entities.c.name.label("entity"), db.projects.c.name.label("project"), *labelled)
        .select_from(_RUNS_FROM)
        .where(*conditions)
        .order_by(*[key.desc() if descending else key.asc() for key in keys])
        .limit(limit)
    )
    with read(store) as conn:
        rows = conn.execute(query).all()
    if not rows:
        return [], None
    last_row = rows[-1]
    return [_run_record(row) for row in rows], tuple(getattr(last_row, f"_k{i}") for i in range(len(keys)))


def run_count(store: Any, where: Sequence[Any]) -> int:
    with read(store) as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(_RUNS_FROM).where(*where)).scalar_one())


def history_page(store: Any, run_pk: int, *, after_step: int | None, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` history rows of run ``run_pk`` with ``_step`` above ``after_step``, in step order."""
    conditions = [db.run_history.c.run_pk == run_pk]
    if after_step is not None:
        conditions.append(db.run_history.c.step > after_step)
    with read(store) as conn:
        return list(
            conn.execute(
                sa.select(db.run_history.c.row).where(*conditions).order_by(db.run_history.c.step).limit(limit)
            ).scalars()
        )
