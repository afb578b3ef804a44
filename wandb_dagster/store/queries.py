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


# SQLite: a required alias/tag value held by fewer rows than this starts the versions query. SQLite plans
# without statistics (nothing runs ANALYZE, and ANALYZE did not change these plans when tried), so it
# walks members in page order and tests each one: fine when matches are common, a scan of every member
# for a needle (a tag held by 10 versions: ~100 ms at 100,000 versions). Starting from the (tag,
# version_id) or (alias, membership_id) index (migration 0003) and sorting the matches costs the matches,
# not the workspace. A walk takes about limit x members / matches steps, the driven form one per match and
# a sort: below this many rows the driven form is never the slower by much.
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


def version_page(
    store: Any,
    where: Sequence[Any],
    *,
    after: tuple[str, str, int] | None,
    limit: int,
    drivers: Sequence[Driver] = (),
) -> tuple[list[VersionRecord], tuple[str, str, int] | None]:
    """Up to ``limit`` members matching ``where`` after keyset ``after``; only committed versions.

    Order: project name, collection name, index (within an entity). That is the order in which the joins
    walk their unique indexes (projects by (entity, name), collections by (project, name), memberships by
    (collection, index)), so the database can stop after ``limit`` matches instead of sorting every
    match: a first page costs what it takes to find ``limit`` matches, whatever the workspace's size.
    ``drivers``: alias or tag values ``where`` requires (indexed: migration 0003); the rarest one, when
    rare enough (:func:`_rarest_driver`), is where the query starts (SQLite: an explicit join order;
    PostgreSQL: its planner then picks that index); otherwise SQLite walks the joins in page order and
    PostgreSQL walks the collections in page order (:func:`_walk_collections`).
    Returns (records, the keyset of the last one, or None when the page is empty).
    """
    conditions = [*where, db.versions.c.state == "COMMITTED"]
    with read(store) as conn:
        if conn.dialect.name == "postgresql":
            # One snapshot for every statement of the page (SQLite's read transaction has one anyway): a
            # member unlinked between the walk and the records query must not vanish from a page.
            conn.execution_options(isolation_level="REPEATABLE READ")
        if conn.dialect.name == "postgresql" and _rarest_driver(conn, drivers, _PG_DRIVER_MAX_ROWS) is None:
            keys = _walk_collections(conn, conditions, drivers, after, limit)
        else:
            keys = _driven_page(conn, conditions, drivers, after, limit)
        if not keys:
            return [], None
        # The page is known: read the full records by primary key (with their aliases and tags).
        found = store._versions(conn, _one_of(conn, db.memberships.c.id, [key[0] for key in keys]))
    position = {(r.project, r.collection, r.index): r for r in found}
    ordered = [(key[1], key[2], key[3]) for key in keys]
    return [position[key] for key in ordered], ordered[-1]


def _one_of(conn: sa.Connection, column: Any, ids: list[int]) -> Any:
    """``column IN ids``; on PostgreSQL ``column = ANY(:array)``: one parameter whatever the length, so the
    SQL text stays the same from page to page; psycopg then prepares the statement after a few executions
    and the server stops planning it again (planning a page's joins costs more than running them)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == sa.any_(sa.bindparam(None, ids, type_=ARRAY(column.type)))
    return column.in_(ids)


# PostgreSQL: a required alias/tag value held by fewer rows than this starts the query (the planner then
# picks that index); above it, walking the collections in page order reads fewer rows for a first page.
_PG_DRIVER_MAX_ROWS = 200


def _rarest_driver(conn: sa.Connection, drivers: Sequence[Driver], cap: int) -> tuple[Any, Any] | None:
    """(the driver's rows as a subquery, the memberships column they name) for the rarest driver held by
    fewer than ``cap`` rows, or None. Counting stops at the cap: an index range of at most ``cap`` rows."""
    best, best_rows = None, cap
    for driver in drivers:
        if driver.field == "tag":
            value, owner, target = db.version_tags.c.tag, db.version_tags.c.version_id, db.memberships.c.version_id
        else:
            value, owner, target = db.aliases.c.alias, db.aliases.c.membership_id, db.memberships.c.id
        held = sa.select(owner).where(value.in_(driver.values))
        rows = conn.execute(sa.select(sa.func.count()).select_from(held.limit(cap).subquery())).scalar_one()
        if rows < best_rows:
            # DISTINCT: a version holding two of the values is still one row of the page.
            start = held.distinct().subquery("driver")
            best, best_rows = (start, start.c[owner.name] == target), rows
    return best


def _driven_page(
    conn: sa.Connection, conditions: list[Any], drivers: Sequence[Driver], after: Any, limit: int
) -> list[Any]:
    """One query over the whole scope: (membership id, project, collection, index) rows of the page."""
    project, collection, index = db.projects.c.name, db.collections.c.name, db.memberships.c.version_index
    if after is not None:
        last_project, last_collection, last_index = after
        conditions = [
            *conditions,
            # The full keyset condition, plus its consequences on the outer tables, so that collections
            # before the keyset are skipped at their own loop instead of member by member.
            project >= last_project,
            sa.or_(project > last_project, collection >= last_collection),
            sa.or_(project > last_project, collection > last_collection, index > last_index),
        ]
    query = (
        sa.select(db.memberships.c.id, project, collection, index)
        .select_from(_VERSIONS_FROM)
        .where(*conditions)
        .order_by(project, collection, index)
        .limit(limit)
    )
    if conn.dialect.name == "sqlite":
        driver = _rarest_driver(conn, drivers, _SQLITE_DRIVER_MAX_ROWS)
        if driver is not None:
            # Only versions ``where`` requires anyway, so the result is the same either way.
            start, onclause = driver
            query = query.select_from(_CrossJoin(start, _VERSIONS_FROM, onclause))
    return conn.execute(query).all()


_COLLECTION_LEVEL = {"collections", "projects", "entities", "collection_tags"}


def _tables(condition: Any) -> set[str | None]:
    # None for anything unnamed (a table-valued function): never taken for a collection-level condition.
    found = sa.sql.util.find_tables(condition, check_columns=True, include_aliases=True)
    return {getattr(table, "name", None) for table in found}


def _walk_collections(
    conn: sa.Connection, conditions: list[Any], drivers: Sequence[Driver], after: Any, limit: int
) -> list[Any]:
    """PostgreSQL: the page, from growing batches of collections taken in page order until ``limit`` rows.

    PostgreSQL's planner cannot estimate how selective JSON or EXISTS filters are, so for "first 100
    matches in (project, collection, index) order" it picks a plan that evaluates the filter on every
    member and sorts them all (hundreds of ms at 100,000 versions). Here the collections come first, in
    order, from the collection-level conditions alone; each batch query then reads only the members of a
    few of them (by the (collection, index) index, batch order kept by ``unnest ... WITH ORDINALITY``),
    and an alias the filter requires is looked up per collection by the aliases' primary key. Batches are
    sized from the matches seen so far and grow fourfold while there are none, so a sparse filter costs a
    logarithmic number of queries.
    """
    from sqlalchemy.dialects.postgresql import ARRAY

    outer = [c for c in conditions if _tables(c) <= _COLLECTION_LEVEL]
    inner = [c for c in conditions if not _tables(c) <= _COLLECTION_LEVEL]

    ids = sa.bindparam("batch", type_=ARRAY(sa.Integer))
    batch_of = sa.func.unnest(ids).table_valued("cid", with_ordinality="ord").render_derived("walk")
    members = batch_of.join(db.memberships, db.memberships.c.collection_id == batch_of.c.cid).join(
        db.versions, db.versions.c.id == db.memberships.c.version_id
    )
    if any(_tables(c) & _COLLECTION_LEVEL for c in inner):
        members = members.join(db.collections, db.collections.c.id == db.memberships.c.collection_id).join(
            db.projects, db.projects.c.id == db.collections.c.project_id
        ).join(db.entities, db.entities.c.id == db.projects.c.entity_id)
    restrict = list(inner)
    alias_driver = next((d for d in drivers if d.field == "alias"), None)
    if alias_driver is not None:
        # At most one member per collection holds each alias: found by the aliases' primary key
        # (collection, alias) instead of testing every member of the batch.
        restrict.append(
            db.memberships.c.id.in_(
                sa.select(db.aliases.c.membership_id).where(
                    db.aliases.c.collection_id == sa.any_(ids), db.aliases.c.alias.in_(alias_driver.values)
                )
            )
        )
    if after is not None:
        # Within the keyset's own collection (the first of the walk, if it still matches), past its index.
        restrict.append(
            sa.or_(
                db.memberships.c.collection_id != sa.bindparam("first"),
                db.memberships.c.version_index > sa.bindparam("last_index"),
            )
        )
    query = (
        sa.select(db.memberships.c.id, batch_of.c.ord, db.memberships.c.version_index)
        .select_from(members)
        .where(*restrict)
        .order_by(batch_of.c.ord, db.memberships.c.version_index)
        .limit(sa.bindparam("want"))
    )

    rows: list[Any] = []
    pending: list[Any] = []  # collections fetched, not yet queried: (id, project name, collection name)
    exhausted, first_id = False, None
    # A collection has at most one member per required alias value, so a page needs at least this many.
    batch = 8
    if alias_driver is not None and alias_driver.values:
        batch = max(8, min(1024, -(-limit // len(alias_driver.values))))
    last = None
    while len(rows) < limit:
        if len(pending) < batch and not exhausted:
            want = _COLLECTION_CHUNK if last is not None else max(_FIRST_COLLECTION_CHUNK, batch)
            if last is None and after is not None:
                fetched = conn.execute(_collections_in_order(outer, tuple(after[:2]), True, want)).all()
                if fetched and (fetched[0][1], fetched[0][2]) == tuple(after[:2]):
                    first_id = fetched[0][0]
            else:
                fetched = conn.execute(_collections_in_order(outer, last, False, want)).all()
            exhausted = len(fetched) < want
            if fetched:
                last = (fetched[-1][1], fetched[-1][2])
            pending += fetched
        if not pending:
            break
        taken, pending = pending[:batch], pending[batch:]
        found = conn.execute(
            query,
            {
                "batch": [c[0] for c in taken],
                "want": limit - len(rows),
                "first": first_id if first_id is not None else -1,
                "last_index": after[2] if after is not None else -1,
            },
        ).all()
        rows += [(member_id, taken[ordinal - 1][1], taken[ordinal - 1][2], index) for member_id, ordinal, index in found]
        if not pending and exhausted:
            break
        # Size the next batch from the matches per collection seen so far (half as many again, for luck),
        # so that a page needs few queries without evaluating the filter on many more members than needed.
        if found:
            per_collection = len(found) / len(taken)
            batch = max(4, min(1024, int((limit - len(rows)) / per_collection * 1.5) + 1))
        else:
            batch = min(batch * 4, 1024)
    return rows


# Collections read per query of the walk (id and names only): a small first read, as most pages end
# within the first few collections, then larger ones.
_FIRST_COLLECTION_CHUNK = 64
_COLLECTION_CHUNK = 1024
_PROJECT_LEVEL = {"projects", "entities"}


def _collections_in_order(
    conditions: Sequence[Any], start: tuple[str, str] | None, inclusive: bool, limit: int
) -> Any:
    """(id, project name, collection name) of the first ``limit`` collections matching the collection-level
    ``conditions`` in page order, from (project, collection) names ``start`` on (or after, if not
    ``inclusive``).

    Per project (few per entity), its collections are read in order from the (project_id, name) index and
    stop at ``limit`` (a LATERAL subquery), instead of sorting every collection of the scope per read: the
    cost of a read does not grow with the number of collections. The start bound is one index condition:
    in ``start``'s project, names after its collection; in later projects, every name (all names sort
    after ''; names are never empty).
    """
    per_project = [c for c in conditions if not _tables(c) <= _PROJECT_LEVEL]
    if len(per_project) == len(conditions):
        # No condition narrows the projects (e.g. one collection by id): one LATERAL per project of the
        # database would cost more than sorting the few collections the conditions select.
        query = (
            sa.select(db.collections.c.id, db.projects.c.name, db.collections.c.name)
            .select_from(_COLLECTIONS_FROM)
            .where(*conditions)
            .order_by(db.projects.c.name, db.collections.c.name)
            .limit(limit)
        )
        if start is not None:
            position = sa.tuple_(db.projects.c.name, db.collections.c.name)
            query = query.where(position >= sa.tuple_(*start) if inclusive else position > sa.tuple_(*start))
        return query
    if start is not None:
        bound = sa.case((db.projects.c.name == start[0], start[1]), else_="")
        per_project.append(db.collections.c.name >= bound if inclusive else db.collections.c.name > bound)
    walked = (
        sa.select(db.collections.c.id, db.collections.c.name)
        .where(db.collections.c.project_id == db.projects.c.id, *per_project)
        .order_by(db.collections.c.name)
        .limit(limit)
        .lateral("walked")
    )
    query = (
        sa.select(walked.c.id, db.projects.c.name, walked.c.name)
        .select_from(_PROJECTS_FROM.join(walked, sa.true()))
        .where(*[c for c in conditions if _tables(c) <= _PROJECT_LEVEL])
        .order_by(db.projects.c.name, walked.c.name)
        .limit(limit)
    )
    if start is not None:
        query = query.where(db.projects.c.name >= start[0])
    return query


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
