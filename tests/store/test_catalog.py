"""Projects, registries and collections through the Store, and the reads the query API compiles (scopes
and filter documents): what they return and how they refuse. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from wandb_dagster.store import NotFoundError, Store
from wandb_dagster.store.engine import create_engine
from wandb_dagster.store.scope import Scope

from ._helpers import ENTITY, PROJECT, commit


def test_update_project_on_a_missing_key_raises_as_update_collection_does(store: Store) -> None:
    pk = store.ensure_project(ENTITY, PROJECT)
    store.update_project(pk, description="described")
    assert store.get_project(ENTITY, PROJECT).description == "described"
    missing = pk + 1000
    with pytest.raises(NotFoundError, match=rf"no project with pk {missing}; nothing was saved"):
        store.update_project(missing, description="lost")
    with pytest.raises(NotFoundError, match=rf"no collection with pk {missing} \(deleted\?\); nothing was saved"):
        store.update_collection(missing, description="lost")
    assert store.get_project(ENTITY, PROJECT).description == "described"


def test_core_registries_are_created_once_then_not_looked_up_again(store: Store) -> None:
    statements: list[str] = []
    event.listen(store._engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    store.ensure_core_registries("org")
    assert statements, "the first call looks and creates"
    first = len(statements)
    store.ensure_core_registries("org")
    assert len(statements) == first  # remembered by this Store
    records, _ = store.page(store.query("projects", Scope(entity="org", registries=True)), after=None, limit=10)
    assert sorted(r.name for r in records) == ["wandb-registry-dataset", "wandb-registry-model"]
    assert all(r.description for r in records)
    # Another Store on the same database finds them and creates nothing more.
    other = Store.open(store.url, storage_root=store.storage_root)
    try:
        other.ensure_core_registries("org")
        assert other.count(other.query("projects", Scope(entity="org", registries=True))) == 2
    finally:
        other.close()


def test_query_pages_versions_of_a_scope_with_filters(store: Store) -> None:
    for i in range(5):
        commit(store, collection="c", digest=f"d{i}", tags=["even"] if i % 2 == 0 else [])
    scope = Scope(entity=ENTITY, project=PROJECT, collection="c")
    query = store.query("versions", scope, [("version", {"tag": "even"})])
    first, after = store.page(query, after=None, limit=2)
    rest, _ = store.page(query, after=after, limit=2)
    assert [v.index for v in first + rest] == [0, 2, 4]
    assert store.count(query) == 3
    # A scope field that is falsy but given (pk 0, an empty name) narrows to nothing, never to everything.
    assert store.count(store.query("versions", Scope(collection_pk=0))) == 0
    assert store.count(store.query("versions", Scope(entity=ENTITY, collection=""))) == 0
    assert store.count(store.query("versions", Scope(entity=ENTITY))) == 5


@pytest.mark.parametrize(
    ("target", "scope", "filters", "order", "message"),
    [
        ("runs", Scope(collection="c"), [], None, r"a scope of runs cannot name \['collection'\]"),
        ("projects", Scope(), [("version", {"tag": "x"})], None, r"a 'version' filter cannot narrow projects"),
        ("collections", Scope(), [], "+created_at", r"only runs can be sorted"),
        ("runs", Scope(), [], "+colour", r"order '\+colour' is invalid"),
        ("runs", Scope(), [("run", {"colour": 1})], None, r"unknown filter field 'colour' for runs"),
        ("artifacts", Scope(), [], None, r"unknown query target 'artifacts'; valid targets: \['projects'"),
    ],
)
def test_query_refuses_what_its_target_cannot_read(store: Store, target, scope, filters, order, message) -> None:
    with pytest.raises(ValueError, match=message):
        store.query(target, scope, filters, order=order)


def test_display_url_hides_the_password(tmp_path) -> None:
    # A Store of a URL with a password (the engine is only there to build it; nothing is read).
    store = Store(create_engine(f"sqlite:///{tmp_path / 'ws.db'}"), "postgresql://me:secret@db.example/ws", "/r")
    try:
        assert store.display_url == "postgresql://me:***@db.example/ws"
        assert store.url == "postgresql://me:secret@db.example/ws"
    finally:
        store.close()


def test_narrow_reads_a_query_as_a_narrower_target_with_more_filters(store: Store) -> None:
    for i in range(3):
        version = commit(store, collection="src", digest=f"d{i}", tags=["keep"] if i else []).version
        store.link_version(version.pk, "org", "wandb-registry-model", "linked", aliases=["best"] if i == 2 else [])
    registries = store.query("projects", Scope(entity="org", registries=True), [("registry", {"name": "model"})])
    narrowed = store.narrow(registries, "versions", [("version", {"tag": "keep"})])
    both = [("registry", {"name": "model"}), ("version", {"tag": "keep"})]
    direct = store.query("versions", Scope(entity="org", registries=True), both)
    assert [v.index for v in store.page(narrowed, after=None, limit=10)[0]] == [1, 2]
    assert store.page(narrowed, after=None, limit=10)[0] == store.page(direct, after=None, limit=10)[0]
    # The drivers (required alias/tag values) travel with the narrowed query.
    assert store.narrow(narrowed, "versions", [("version", {"alias": "best"})]).drivers[-1].values == ("best",)
    with pytest.raises(ValueError, match=r"a query of versions cannot be narrowed into projects"):
        store.narrow(narrowed, "projects")
    with pytest.raises(ValueError, match=r"a 'run' filter cannot narrow collections"):
        store.narrow(registries, "collections", [("run", {"state": "running"})])
