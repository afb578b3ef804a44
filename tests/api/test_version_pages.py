"""Pages of registry versions over many collections of several registries: every strategy the store may
pick for a page (PostgreSQL's collection walk, with and without an alias looked up per collection; a rare
tag or alias driving the query; SQLite's walk and its driven form) returns the same complete, ordered
result at every page size, including pages that end mid-collection and walks that cross reads of the
collection list. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from wandb_dagster.store import Store, paging, versions
from wandb_dagster.store import schema as db
from wandb_dagster.store.filters import COLLECTION_FIELDS, VERSION_FIELDS, compile_filter
from wandb_dagster.store.paging import required_values as _required_values

from . import _pages as queries

ENTITY = "org"
REGISTRIES = ("wandb-registry-alpha", "wandb-registry-model")


def _build(store: Store) -> list[dict]:
    """22 collections in two registries (and one outside any registry), 0-4 members each."""
    members = []
    store.create_registry(ENTITY, "alpha")  # registries other than the core ones exist before a link
    for r, registry in enumerate(REGISTRIES):
        for c in range(11):
            collection = f"coll-{c:02d}"
            count = (c + r) % 5  # 0..4 members: some collections are empty
            for i in range(count):
                key = f"{registry}-{c}-{i}"
                version = store.commit_version(
                    ENTITY, "train", f"src-{r}-{c}", "model", digest=key, manifest="{}", size=0, file_count=0,
                    metadata={"k": (c * 3 + i) % 7}, description=None, aliases=[], tags=[f"t{(c + i) % 3}"],
                    run_pk=None,
                ).version
                aliases = ["latest"] if i == count - 1 else []
                if i == count - 1 and c % 2 == 0:
                    aliases.append("production")
                if i == 0 and c % 3 == 0:
                    aliases.append("staging")  # with production on the same member when count == 1
                store.link_version(version.pk, ENTITY, registry, collection, aliases=aliases)
                members.append({
                    "key": (registry, collection, i), "k": (c * 3 + i) % 7, "tag": f"t{(c + i) % 3}",
                    "alias": set(aliases),
                    "collection_tag": "even" if c % 2 == 0 else None,
                })
            if count:
                pk = store.collection(ENTITY, registry, collection).pk
                store.update_collection(pk, tags=["even"] if c % 2 == 0 else ["odd"])
    return members


FILTERS = {
    "none": (None, None, lambda m: True),
    "alias $in": (None, {"alias": {"$in": ["production", "staging"]}}, lambda m: bool(m["alias"] & {"production", "staging"})),
    "alias and metadata": (None, {"alias": "production", "metadata.k": {"$gte": 2}}, lambda m: "production" in m["alias"] and m["k"] >= 2),
    "tag": (None, {"tag": "t1"}, lambda m: m["tag"] == "t1"),
    "$or tag / alias": (None, {"$or": [{"tag": "t2"}, {"alias": "latest"}]}, lambda m: m["tag"] == "t2" or "latest" in m["alias"]),
    "sparse metadata": (None, {"metadata.k": 6}, lambda m: m["k"] == 6),
    "collection tag + alias": ({"tag": "even"}, {"alias": {"$in": ["latest", "staging"]}}, lambda m: m["collection_tag"] == "even" and bool(m["alias"] & {"latest", "staging"})),
}


def _all_pages(store: Store, where: list, per_page: int, drivers=()) -> list[tuple[str, str, int]]:
    found: list[tuple[str, str, int]] = []
    after = None
    for _ in range(200):  # a keyset that does not advance must fail the test, not hang it
        records, after = queries.version_page(store, where, after=after, limit=per_page, drivers=drivers)
        found += [(r.project, r.collection, r.index) for r in records]
        if len(records) < per_page:
            return found
    raise AssertionError(f"pages never ended: {found[:10]}...")


@pytest.fixture
def built(store: Store):
    return _build(store)


@pytest.mark.parametrize("name", list(FILTERS))
@pytest.mark.parametrize("strategy", ["walk", "driven"])
def test_every_page_size_and_strategy_gives_the_same_ordered_result(store: Store, built, monkeypatch, name, strategy):
    if strategy == "walk":
        # Never start from an alias/tag index; read the collection list 2, then 3 at a time.
        monkeypatch.setattr(paging, "_PG_DRIVER_MAX_ROWS", 0)
        monkeypatch.setattr(paging, "_SQLITE_DRIVER_MAX_ROWS", 0)
        monkeypatch.setattr(paging, "_FIRST_COLLECTION_CHUNK", 2)
        monkeypatch.setattr(paging, "_COLLECTION_CHUNK", 3)
    else:
        monkeypatch.setattr(paging, "_PG_DRIVER_MAX_ROWS", 10**6)
        monkeypatch.setattr(paging, "_SQLITE_DRIVER_MAX_ROWS", 10**6)
    collection_filter, version_filter, matches = FILTERS[name]
    expected = sorted(m["key"] for m in built if matches(m))
    assert expected, "every filter here matches something"
    where = [db.entities.c.name == ENTITY, queries.registry_projects_condition()]
    if collection_filter is not None:
        where.append(compile_filter(collection_filter, COLLECTION_FIELDS, store.dialect))
    drivers: list[queries.Driver] = []
    if version_filter is not None:
        where.append(compile_filter(version_filter, VERSION_FIELDS, store.dialect))
        drivers = _required_values(version_filter, VERSION_FIELDS)
    for per_page in (1, 2, 3, 100):
        assert _all_pages(store, where, per_page, drivers) == expected, (name, strategy, per_page)
    assert queries.version_count(store, where) == len(expected)


def test_version_level_conditions_that_name_the_collection(store: Store, built, monkeypatch):
    # A condition mixing collection and version columns cannot be decided from the collection list alone.
    monkeypatch.setattr(paging, "_FIRST_COLLECTION_CHUNK", 2)
    mixed = sa.or_(db.collections.c.name == "coll-03", db.versions.c.digest == "wandb-registry-model-4-0")
    where = [db.entities.c.name == ENTITY, queries.registry_projects_condition(), mixed]
    expected = sorted(
        m["key"] for m in built if m["key"][1] == "coll-03" or m["key"] == ("wandb-registry-model", "coll-04", 0)
    )
    for per_page in (1, 100):
        assert _all_pages(store, where, per_page) == expected


def test_a_page_carries_each_members_aliases_and_its_versions_tags(store: Store, built):
    where = [db.entities.c.name == ENTITY, queries.registry_projects_condition()]
    records, _ = queries.version_page(store, where, after=None, limit=1000)
    by_key = {m["key"]: m for m in built}
    assert len(records) == len(built)
    for r in records:
        member = by_key[(r.project, r.collection, r.index)]
        assert (r.aliases, r.tags) == (sorted(member["alias"]), [member["tag"]])


def test_a_scope_without_project_conditions_walks_its_collections_in_order(store: Store, built, monkeypatch):
    # No entity or registry condition (as for one collection by id): the collection list is one ordered
    # query, not a per-project walk; pages still cross projects in order.
    monkeypatch.setattr(paging, "_FIRST_COLLECTION_CHUNK", 1)
    monkeypatch.setattr(paging, "_COLLECTION_CHUNK", 2)
    where = [db.collections.c.name.in_(["coll-01", "coll-04", "coll-07"])]
    expected = sorted(m["key"] for m in built if m["key"][1] in ("coll-01", "coll-04", "coll-07"))
    for per_page in (1, 2, 100):
        assert _all_pages(store, where, per_page) == expected


def test_a_member_unlinked_while_a_page_is_read_does_not_break_it(store: Store, built, database_url, monkeypatch):
    # Another client unlinks a member of the page between the query that finds the page and the one that
    # reads its records: the page is read from one snapshot, so it comes back whole.
    other = Store.open(database_url, storage_root=str(store.storage_root))
    real = versions.records
    where = [db.entities.c.name == ENTITY, queries.registry_projects_condition()]
    first, _ = queries.version_page(store, where, after=None, limit=3)
    victim = first[1]

    def unlink_first(conn, *args, **kwargs):
        if not other_done:
            other.unlink_version(victim.pk, victim.collection_id)
            other_done.append(True)
        return real(conn, *args, **kwargs)

    other_done: list[bool] = []
    monkeypatch.setattr(versions, "records", unlink_first)
    page, _ = queries.version_page(store, where, after=None, limit=3)
    assert other_done and [(r.collection, r.index) for r in page] == [(r.collection, r.index) for r in first]
    monkeypatch.undo()
    after, _ = queries.version_page(store, where, after=None, limit=3)
    assert (victim.collection, victim.index) not in [(r.collection, r.index) for r in after]
    other.close()


def test_an_empty_required_alias_list_matches_nothing(store: Store, built, monkeypatch):
    monkeypatch.setattr(paging, "_PG_DRIVER_MAX_ROWS", 0)
    monkeypatch.setattr(paging, "_SQLITE_DRIVER_MAX_ROWS", 0)
    flt = {"alias": {"$in": []}}
    where = [db.entities.c.name == ENTITY, compile_filter(flt, VERSION_FIELDS, store.dialect)]
    assert _all_pages(store, where, 10, _required_values(flt, VERSION_FIELDS)) == []
