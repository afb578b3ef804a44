"""Keyset-paginated reads of the query API: compiling a scope and filters into SQL, and the version-page
planners.

:func:`compile_query` turns a :class:`~wandb_dagster.store.scope.Scope` and filter documents into the
conditions of a ``SELECT`` over a fixed ``FROM`` per target, so a compiled filter may refer to these tables:

- versions: ``memberships``, ``versions``, ``collections``, ``projects``, ``entities`` (the membership's
  collection, project and entity); order and keyset: (project name, collection name, index), so a
  ``where`` must stay within one entity (every scope the API builds does).
- collections: ``collections``, ``projects``, ``entities``; keyset: ``collections.id`` (store/catalog.py).
- projects (registries are projects named ``wandb-registry-*``): ``projects``, ``entities``; keyset ``id``.
- runs: ``runs``, ``projects``, ``entities``; keyset: the sort key plus ``runs.id`` (store/runs.py).

The page is found by a keyset query (``WHERE key > :last ORDER BY key LIMIT n``); its records, aliases and
tags are then read by primary key (store/versions.py's one read path), so nothing is ever loaded to be
filtered in Python and a page does not get slower with the page number. Scopes name collections through
``collections.c.id`` (not ``memberships.c.collection_id``): on PostgreSQL a version page walks the
collections in batches, and only collection-level conditions narrow that walk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.selectable import Join

from wandb_dagster.store import catalog, runs, versions
from wandb_dagster.store import schema as db
from wandb_dagster.store.catalog import COLLECTIONS_FROM, PROJECTS_FROM
from wandb_dagster.store.filters import (
    COLLECTION_FIELDS,
    REGISTRY_FIELDS,
    RUN_FIELDS,
    VERSION_FIELDS,
    _Ctx,
    compile_filter,
)
from wandb_dagster.store.records import VersionRecord
from wandb_dagster.store.scope import FILTER_KINDS, TARGETS, Filter, Query, Scope
from wandb_dagster.store.sql import one_of

# --------------------------------------------------------------------------------------- compiling


class Driver(NamedTuple):
    """``where`` requires the version to hold one of ``values`` as a ``field`` (``"tag"`` or ``"alias"``)."""

    field: str
    values: tuple[str, ...]


_FIELDS = {"run": RUN_FIELDS, "registry": REGISTRY_FIELDS, "collection": COLLECTION_FIELDS, "version": VERSION_FIELDS}
# The filter kinds and scope fields each target can use (its FROM clause has their tables).
_KINDS = {
    "projects": ("registry",),
    "collections": ("registry", "collection"),
    "versions": ("registry", "collection", "version"),
    "runs": ("run",),
}
_SCOPE_FIELDS = {
    "projects": ("entity", "project", "project_pk", "registries"),
    "collections": ("entity", "project", "project_pk", "registries", "collection", "collection_pk", "type"),
    "versions": ("entity", "project", "project_pk", "registries", "collection", "collection_pk", "type"),
    "runs": ("entity", "project"),
}


def compile_query(
    target: str, scope: Scope, filters: Sequence[Filter], order: str | None, dialect: str
) -> Query:
    """Store.query: ``scope`` and ``filters`` as SQL conditions for ``target`` (raises ValueError for a bad
    filter or order, naming what is valid)."""
    if target not in TARGETS:
        raise ValueError(f"unknown query target {target!r}; valid targets: {list(TARGETS)}")
    where, drivers = _filter_conditions(target, filters, dialect)
    where[:0] = _scope_conditions(target, scope)
    if target != "runs":
        if order is not None:
            raise ValueError(f"order={order!r}: only runs can be sorted; {target} come in a fixed order")
        return Query(target, tuple(where), tuple(drivers))
    sort_keys, descending = runs.order_keys("+created_at" if order is None else order, dialect)
    return Query(target, tuple(where), (), tuple(sort_keys), descending)


# What a query of each target may be narrowed into (Store.narrow): every table of its FROM is in theirs.
_NARROWER = {"projects": ("projects", "collections", "versions"), "collections": ("collections", "versions"),
             "versions": ("versions",), "runs": ()}


def narrow_query(query: Query, target: str, filters: Sequence[Filter], dialect: str) -> Query:
    """Store.narrow: ``query``'s conditions, as a read of ``target``, and ``filters`` compiled too."""
    if target not in _NARROWER.get(query.target, ()):
        raise ValueError(
            f"a query of {query.target} cannot be narrowed into {target}; "
            f"it narrows into {list(_NARROWER.get(query.target, ()))}"
        )
    where, drivers = _filter_conditions(target, filters, dialect)
    return Query(target, (*query.where, *where), (*query.drivers, *drivers))


def _filter_conditions(target: str, filters: Sequence[Filter], dialect: str) -> tuple[list[Any], list[Driver]]:
    where: list[Any] = []
    drivers: list[Driver] = []
    for kind, document in filters:
        if kind not in _KINDS[target]:
            raise ValueError(
                f"a {kind!r} filter cannot narrow {target}; valid kinds for {target}: {list(_KINDS[target])} "
                f"(of {list(FILTER_KINDS)})"
            )
        if document is None:
            continue
        where.append(compile_filter(document, _FIELDS[kind], dialect))
        drivers += required_values(document, _FIELDS[kind])
    return where, drivers


def _scope_conditions(target: str, scope: Scope) -> list[Any]:
    # By identity: a pk of 0 or an empty name still narrows (to nothing), it does not widen the read.
    values = {name: getattr(scope, name) for name in _SCOPE_FIELDS["versions"]}
    given = {name for name, value in values.items() if value is not None and value is not False}
    unusable = sorted(given - set(_SCOPE_FIELDS[target]))
    if unusable:
        raise ValueError(f"a scope of {target} cannot name {unusable}; it may name {list(_SCOPE_FIELDS[target])}")
    columns = {
        "entity": db.entities.c.name,
        "project": db.projects.c.name,
        "project_pk": db.projects.c.id,
        "collection": db.collections.c.name,
        "collection_pk": db.collections.c.id,
        "type": db.collections.c.type,
    }
    where = [column == getattr(scope, name) for name, column in columns.items() if name in given]
    if scope.registries:
        where.append(catalog.registry_projects_condition())
    return where


def required_values(filter: Mapping[str, Any], fields: Any) -> list[Driver]:
    """The alias or tag values a versions filter requires (each entry: the version holds one of ``values``),
    read from its top level and ``$and``s. A page may start from their index (migration 0003)."""
    if fields is not VERSION_FIELDS:
        return []
    found: list[Driver] = []
    for key, value in filter.items():
        if key == "$and" and isinstance(value, (list, tuple)):
            for sub in value:
                if isinstance(sub, Mapping):
                    found += required_values(sub, fields)
        elif key in ("alias", "tag"):
            if isinstance(value, str):
                found.append(Driver(key, (value,)))
            elif isinstance(value, Mapping):
                found += _operator_values(key, value)
    return found


def _operator_values(key: str, value: Mapping[str, Any]) -> list[Driver]:
    found: list[Driver] = []
    for op, arg in value.items():
        if op in ("$eq", "$contains") and isinstance(arg, str):
            found.append(Driver(key, (arg,)))
        elif op in ("$in", "$all") and isinstance(arg, (list, tuple)) and arg and all(isinstance(a, str) for a in arg):
            # $in: one of them; $all: each of them (any one is a valid driver).
            found += [Driver(key, tuple(arg))] if op == "$in" else [Driver(key, (a,)) for a in arg]
    return found


# --------------------------------------------------------------------------------------- version pages

_VERSIONS_FROM = (
    db.memberships.join(db.versions, db.versions.c.id == db.memberships.c.version_id)
    .join(db.collections, db.collections.c.id == db.memberships.c.collection_id)
    .join(db.projects, db.projects.c.id == db.collections.c.project_id)
    .join(db.entities, db.entities.c.id == db.projects.c.entity_id)
)


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
    assert join.onclause is not None  # built with one (_driven_page)
    return f"{left} CROSS JOIN {right} ON {join.onclause._compiler_dispatch(compiler, from_linter=from_linter, **kw)}"


def version_page(
    conn: sa.Connection,
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
    if conn.dialect.name == "postgresql" and _rarest_driver(conn, drivers, _PG_DRIVER_MAX_ROWS) is None:
        keys = _walk_collections(conn, conditions, drivers, after, limit)
    else:
        keys = _driven_page(conn, conditions, drivers, after, limit)
    if not keys:
        return [], None
    # The page is known: read the full records by primary key (with their aliases and tags).
    found = versions.records(conn, one_of(conn, db.memberships.c.id, [key[0] for key in keys]))
    position = {(r.project, r.collection, r.index): r for r in found}
    ordered = [(key[1], key[2], key[3]) for key in keys]
    return [position[key] for key in ordered], ordered[-1]


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
        held = sa.select(owner).where(_Ctx(conn.dialect.name).in_values(value, driver.values))
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
    return list(conn.execute(query).all())


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
    outer = [c for c in conditions if _tables(c) <= _COLLECTION_LEVEL]
    inner = [c for c in conditions if not _tables(c) <= _COLLECTION_LEVEL]
    alias_driver = next((d for d in drivers if d.field == "alias"), None)
    query = _batch_members(inner, alias_driver, after)
    collections = _CollectionWalk(conn, outer, after)
    batch = _first_batch(alias_driver, limit)
    rows: list[Any] = []
    while len(rows) < limit:
        taken = collections.take(batch)
        if not taken:
            break
        found = conn.execute(
            query,
            {
                "batch": [c[0] for c in taken],
                "want": limit - len(rows),
                "first": collections.first_id if collections.first_id is not None else -1,
                "last_index": after[2] if after is not None else -1,
            },
        ).all()
        rows += [(member, taken[ordinal - 1][1], taken[ordinal - 1][2], index) for member, ordinal, index in found]
        if collections.done:
            break
        batch = _next_batch(batch, len(found), len(taken), limit - len(rows))
    return rows


def _first_batch(alias_driver: Driver | None, limit: int) -> int:
    # A collection has at most one member per required alias value, so a page needs at least this many.
    if alias_driver is not None and alias_driver.values:
        return max(8, min(1024, -(-limit // len(alias_driver.values))))
    return 8


def _next_batch(batch: int, found: int, taken: int, wanted: int) -> int:
    """Size the next batch from the matches per collection seen so far (half as many again, for luck), so
    that a page needs few queries without evaluating the filter on many more members than needed."""
    if found:
        return max(4, min(1024, int(wanted / (found / taken) * 1.5) + 1))
    return min(batch * 4, 1024)


def _batch_members(inner: list[Any], alias_driver: Driver | None, after: Any) -> Any:
    """(membership id, position of its collection in the batch, index) of the members matching ``inner`` in
    the collections bound as ``batch`` (ids in page order), at most ``want`` of them, in page order."""
    from sqlalchemy.dialects.postgresql import ARRAY

    ids = sa.bindparam("batch", type_=ARRAY(sa.Integer))
    batch_of = sa.func.unnest(ids).table_valued("cid", with_ordinality="ord").render_derived("walk")
    joined = batch_of.join(db.memberships, db.memberships.c.collection_id == batch_of.c.cid).join(
        db.versions, db.versions.c.id == db.memberships.c.version_id
    )
    if any(_tables(c) & _COLLECTION_LEVEL for c in inner):
        joined = joined.join(db.collections, db.collections.c.id == db.memberships.c.collection_id).join(
            db.projects, db.projects.c.id == db.collections.c.project_id
        ).join(db.entities, db.entities.c.id == db.projects.c.entity_id)
    restrict = list(inner)
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
    return (
        sa.select(db.memberships.c.id, batch_of.c.ord, db.memberships.c.version_index)
        .select_from(joined)
        .where(*restrict)
        .order_by(batch_of.c.ord, db.memberships.c.version_index)
        .limit(sa.bindparam("want"))
    )


class _CollectionWalk:
    """The collections of a walk in page order, as (id, project name, collection name), read in chunks."""

    def __init__(self, conn: sa.Connection, conditions: list[Any], after: Any) -> None:
        self._conn, self._conditions, self._after = conn, conditions, after
        self._pending: list[Any] = []  # read, not yet taken
        self._last: tuple[str, str] | None = None  # (project, collection) names of the last one read
        self._exhausted = False
        self.first_id: int | None = None  # the keyset's own collection, when it still matches

    @property
    def done(self) -> bool:
        return not self._pending and self._exhausted

    def take(self, count: int) -> list[Any]:
        """The next ``count`` collections (fewer at the end); reads more first when fewer are pending."""
        if len(self._pending) < count and not self._exhausted:
            self._read(_COLLECTION_CHUNK if self._last is not None else max(_FIRST_COLLECTION_CHUNK, count))
        taken, self._pending = self._pending[:count], self._pending[count:]
        return taken

    def _read(self, want: int) -> None:
        if self._last is None and self._after is not None:
            start = tuple(self._after[:2])
            fetched = self._conn.execute(_collections_in_order(self._conditions, start, True, want)).all()
            if fetched and (fetched[0][1], fetched[0][2]) == start:
                self.first_id = fetched[0][0]
        else:
            fetched = self._conn.execute(_collections_in_order(self._conditions, self._last, False, want)).all()
        self._exhausted = len(fetched) < want
        if fetched:
            self._last = (fetched[-1][1], fetched[-1][2])
        self._pending += fetched


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
            .select_from(COLLECTIONS_FROM)
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
        .select_from(PROJECTS_FROM.join(walked, sa.true()))
        .where(*[c for c in conditions if _tables(c) <= _PROJECT_LEVEL])
        .order_by(db.projects.c.name, walked.c.name)
        .limit(limit)
    )
    if start is not None:
        query = query.where(db.projects.c.name >= start[0])
    return query


def version_count(conn: sa.Connection, where: Sequence[Any]) -> int:
    query = sa.select(sa.func.count()).select_from(_VERSIONS_FROM).where(*where, db.versions.c.state == "COMMITTED")
    return int(conn.execute(query).scalar_one())

