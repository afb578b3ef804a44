from __future__ import annotations

import pytest
import sqlalchemy as sa

from wandb_dagster.store import AliasInUseError, NotFoundError, Store, TypeMismatchError, schema

from ._helpers import ENTITY, PROJECT, commit


def _latest_holders(store: Store, collection_id: int, alias: str = "latest") -> list[int]:
    return [v.index for v in store.collection_versions(collection_id) if alias in v.aliases]


def test_first_commit_creates_collection_and_v0(store: Store) -> None:
    run = store.create_run(ENTITY, PROJECT, "r1")
    result = commit(
        store,
        "d0",
        manifest='{"contents": {"a.txt": {"digest": "x"}}}',
        size=6,
        file_count=1,
        metadata={"rows": 3, "nested": {"ü": [1, None, True]}},
        description="first",
        aliases=["latest", "best"],
        tags=["raw", "daily-run"],
        run_pk=run.pk,
    )
    v = result.version
    assert result.created
    assert (v.entity, v.project, v.collection, v.type, v.index, v.version) == (
        ENTITY, PROJECT, "dataset", "dataset", 0, "v0"
    )
    assert (v.digest, v.size, v.file_count, v.description, v.state) == ("d0", 6, 1, "first", "COMMITTED")
    assert v.metadata == {"rows": 3, "nested": {"ü": [1, None, True]}}
    assert (v.aliases, v.tags, v.created_by) == (["best", "latest"], ["daily-run", "raw"], "r1")
    assert len(v.id) == 16 and v.created_at == v.updated_at and v.created_at.tzinfo is not None
    assert v.source_collection_id == v.collection_id
    # The record commit_version builds equals what a read returns.
    assert store.resolve(ENTITY, PROJECT, "dataset", "v0") == v
    assert store.manifest(v.pk) == '{"contents": {"a.txt": {"digest": "x"}}}'
    coll = store.collection(ENTITY, PROJECT, "dataset")
    assert (coll.pk, coll.type, coll.kind, coll.next_index, coll.tags) == (
        v.collection_id, "dataset", "sequence", 1, []
    )


def test_same_digest_reuses_the_version_and_records_every_producer(store: Store) -> None:
    r1 = store.create_run(ENTITY, PROJECT, "r1")
    r2 = store.create_run(ENTITY, PROJECT, "r2")
    first = commit(store, "same", aliases=["latest"], tags=["a"], run_pk=r1.pk).version
    commit(store, "other", aliases=["latest"])
    again = commit(store, "same", aliases=["latest", "prod"], tags=["b"], run_pk=r2.pk, description="ignored")
    assert not again.created
    v = again.version
    assert (v.pk, v.id, v.index, v.description) == (first.pk, first.id, 0, None)
    assert (v.aliases, v.tags) == (["latest", "prod"], ["a", "b"])
    assert store.producers(v.pk) == ["r1", "r2"]
    assert store.collection(ENTITY, PROJECT, "dataset").next_index == 2
    assert _latest_holders(store, v.collection_id) == [0]


def test_new_digests_get_consecutive_indices_and_latest_follows(store: Store) -> None:
    indices = [commit(store, f"d{i}").version.index for i in range(5)]
    assert indices == [0, 1, 2, 3, 4]
    coll = store.collection(ENTITY, PROJECT, "dataset")
    assert _latest_holders(store, coll.pk) == [4]
    assert [v.index for v in store.collection_versions(coll.pk)] == indices


def test_store_moves_only_the_aliases_it_is_given(store: Store) -> None:
    commit(store, "d0", aliases=["latest"])
    v1 = commit(store, "d1", aliases=[]).version
    assert v1.aliases == []
    assert store.resolve(ENTITY, PROJECT, "dataset", "latest").index == 0


def test_an_alias_names_at_most_one_version(store: Store) -> None:
    v0 = commit(store, "d0", aliases=["latest", "prod"]).version
    v1 = commit(store, "d1", aliases=["latest"]).version
    moved = store.update_version(v1.pk, v1.collection_id, aliases=["latest", "prod"])
    assert moved.aliases == ["latest", "prod"]
    assert store.resolve(ENTITY, PROJECT, "dataset", "v0").aliases == []
    assert store.resolve(ENTITY, PROJECT, "dataset", "prod").pk == v1.pk
    # Aliases are per collection: another collection's "prod" is untouched.
    other = commit(store, "d0", collection="other", aliases=["prod"]).version
    assert store.resolve(ENTITY, PROJECT, "other", "prod").pk == other.pk != v0.pk
    with store._engine.connect() as conn:
        count = conn.execute(
            sa.select(sa.func.count()).select_from(schema.aliases).where(
                schema.aliases.c.collection_id == v1.collection_id, schema.aliases.c.alias == "prod"
            )
        ).scalar()
    assert count == 1


def test_type_mismatch_names_both_types(store: Store) -> None:
    commit(store, "d0", type="dataset")
    with pytest.raises(TypeMismatchError, match=r"'ent/proj/dataset' has type 'dataset', not 'model'") as info:
        commit(store, "d1", type="model")
    assert isinstance(info.value, ValueError)
    assert store.collection(ENTITY, PROJECT, "dataset").next_index == 1


@pytest.mark.parametrize("alias", ["v3", "a/b", "a:b", ""])
def test_invalid_aliases_are_refused(store: Store, alias: str) -> None:
    with pytest.raises(ValueError, match="invalid alias"):
        commit(store, "d0", aliases=[alias])
    assert store.collection(ENTITY, PROJECT, "dataset") is None


def test_resolve_by_index_alias_and_id(store: Store) -> None:
    v0 = commit(store, "d0", aliases=["latest", "best"]).version
    v1 = commit(store, "d1").version
    elsewhere = commit(store, "d2", collection="elsewhere").version
    resolve = lambda selector: store.resolve(ENTITY, PROJECT, "dataset", selector)  # noqa: E731
    assert resolve("v0") == store.resolve(ENTITY, PROJECT, "dataset", "best")
    assert resolve("v0").pk == v0.pk and resolve("latest").pk == v1.pk
    assert resolve(v0.id).pk == v0.pk
    assert resolve("v2") is None and resolve("nope") is None
    assert resolve(elsewhere.id) is None  # an id names a version only in collections it is a member of
    assert store.resolve(ENTITY, "other-project", "dataset", "v0") is None
    assert store.get_version(v1.id) == resolve("v1")
    assert store.get_version(v1.id, v1.collection_id) == resolve("v1")
    assert store.get_version(v1.id, elsewhere.collection_id) is None
    assert store.get_version("0" * 16) is None


def test_update_version_persists_each_field(store: Store) -> None:
    v0 = commit(
        store, "d0", aliases=["latest", "old"], tags=["keep", "drop"], metadata={"a": 1}, description="d"
    ).version
    updated = store.update_version(
        v0.pk,
        v0.collection_id,
        description="new",
        metadata={"b": [2]},
        aliases=["latest", "prod"],
        tags=["keep", "add"],
    )
    assert (updated.description, updated.metadata, updated.aliases, updated.tags) == (
        "new", {"b": [2]}, ["latest", "prod"], ["add", "keep"]
    )
    assert updated.updated_at > v0.updated_at and updated.created_at == v0.created_at
    assert store.resolve(ENTITY, PROJECT, "dataset", "v0") == updated
    assert store.resolve(ENTITY, PROJECT, "dataset", "old") is None
    # Omitted fields stay; None clears the description.
    again = store.update_version(v0.pk, v0.collection_id, description=None)
    assert (again.description, again.metadata, again.aliases, again.tags) == (
        None, {"b": [2]}, ["latest", "prod"], ["add", "keep"]
    )
    cleared = store.update_version(v0.pk, v0.collection_id, aliases=[], tags=[])
    assert (cleared.aliases, cleared.tags) == ([], [])
    with pytest.raises(NotFoundError, match="no collection with pk 999"):
        store.update_version(v0.pk, 999)
    other = commit(store, "d1", collection="other").version
    not_member = f"version pk {v0.pk} is not a member of collection pk {other.collection_id}"
    with pytest.raises(NotFoundError, match=not_member):
        store.update_version(v0.pk, other.collection_id, description="x")


def test_delete_refuses_while_aliases_exist(store: Store) -> None:
    commit(store, "d0")
    v1 = commit(store, "d1", aliases=["latest", "prod"]).version
    refused = r"still has aliases \['latest', 'prod'\].*delete_aliases=True"
    with pytest.raises(AliasInUseError, match=refused) as info:
        store.delete_version(v1.pk)
    assert isinstance(info.value, ValueError)
    assert store.resolve(ENTITY, PROJECT, "dataset", "v1") == v1


def test_delete_with_aliases_moves_latest_and_never_reuses_indices(store: Store) -> None:
    for i in range(3):
        commit(store, f"d{i}")
    v2 = store.resolve(ENTITY, PROJECT, "dataset", "v2")
    store.delete_version(v2.pk, delete_aliases=True)
    store.delete_version(v2.pk, delete_aliases=True)  # again: nothing to do
    coll = store.collection(ENTITY, PROJECT, "dataset")
    assert [v.index for v in store.collection_versions(coll.pk)] == [0, 1]
    assert store.resolve(ENTITY, PROJECT, "dataset", "latest").index == 1
    assert store.resolve(ENTITY, PROJECT, "dataset", "v2") is None
    assert store.get_version(v2.id) is None
    assert store.manifest(v2.pk)  # content stays addressable for lineage
    # The index of a deleted version is never handed out again, even to the same content.
    assert commit(store, "d2").version.index == 3
    assert coll.next_index == 3 and store.collection(ENTITY, PROJECT, "dataset").next_index == 4


def test_delete_without_aliases_needs_no_flag_and_keeps_latest(store: Store) -> None:
    v0 = commit(store, "d0").version
    commit(store, "d1")
    store.delete_version(v0.pk)
    assert store.resolve(ENTITY, PROJECT, "dataset", "latest").index == 1
    v1 = store.resolve(ENTITY, PROJECT, "dataset", "v1")
    store.delete_version(v1.pk, delete_aliases=True)
    assert store.collection_versions(v1.collection_id) == []
    assert store.resolve(ENTITY, PROJECT, "dataset", "latest") is None
    with pytest.raises(NotFoundError, match="no version with pk 999999"):
        store.delete_version(999999)


def test_lineage_inputs_outputs_and_producers(store: Store) -> None:
    producer = store.create_run(ENTITY, PROJECT, "producer")
    consumer = store.create_run(ENTITY, PROJECT, "consumer")
    v0 = commit(store, "d0", run_pk=producer.pk).version
    v1 = commit(store, "m0", collection="model", type="model", run_pk=consumer.pk).version
    for _ in range(2):  # idempotent
        store.record_input(consumer.pk, v0.pk)
        store.record_output(producer.pk, v0.pk)
    assert [v.pk for v in store.run_outputs(producer.pk)] == [v0.pk]
    assert store.run_outputs(producer.pk)[0] == store.resolve(ENTITY, PROJECT, "dataset", "v0")
    assert [v.pk for v in store.run_inputs(consumer.pk)] == [v0.pk]
    assert [v.pk for v in store.run_outputs(consumer.pk)] == [v1.pk]
    assert store.run_inputs(producer.pk) == []
    assert store.producers(v0.pk) == ["producer"]
    with pytest.raises(NotFoundError, match="no such run or no such version"):
        store.record_input(consumer.pk, 999999)
    with pytest.raises(NotFoundError, match="no run with pk 999999"):
        commit(store, "d9", run_pk=999999)


def test_commit_into_a_registry_portfolio_is_refused(store: Store) -> None:
    project_id = store.ensure_project(ENTITY, "wandb-registry-model")
    assert store.ensure_project(ENTITY, "wandb-registry-model") == project_id
    v0 = commit(store, "d0").version
    with store._engine.begin() as conn:
        conn.execute(
            sa.insert(schema.collections).values(
                project_id=project_id,
                name="DemoModels",
                type="dataset",
                kind="portfolio",
                created_at=v0.created_at,
                updated_at=v0.created_at,
                next_index=0,
            )
        )
    with pytest.raises(ValueError, match="registry collection: versions are linked into it"):
        store.commit_version(
            ENTITY, "wandb-registry-model", "DemoModels", "dataset", digest="d0", manifest="{}", size=0,
            file_count=0, metadata={}, description=None, aliases=[], tags=[], run_pk=None,
        )


def test_listing_attaches_each_versions_aliases_and_tags(store: Store) -> None:
    for i in range(4):
        commit(store, f"d{i}", aliases=["latest", f"a{i}"], tags=[f"t{i}", "all"])
    coll = store.collection(ENTITY, PROJECT, "dataset")
    assert [(v.index, v.aliases, v.tags) for v in store.collection_versions(coll.pk)] == [
        (0, ["a0"], ["all", "t0"]),
        (1, ["a1"], ["all", "t1"]),
        (2, ["a2"], ["all", "t2"]),
        (3, ["a3", "latest"], ["all", "t3"]),
    ]
