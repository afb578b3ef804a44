"""Registry links: link_version / unlink_version on both backends (issue 4, registry slice)."""

from __future__ import annotations

import pytest

from wandb_dagster.store import NotFoundError, Store, TypeMismatchError

from . import _helpers
from ._helpers import ENTITY, PROJECT, commit

REG = "wandb-registry-model"


def _model(store: Store, digest: str, **kwargs):
    return commit(store, digest, collection="my-model", type="model", **kwargs).version


def test_link_creates_portfolio_collection_and_shares_the_version(store: Store) -> None:
    _model(store, "a")
    b = commit(
        store, "b", collection="my-model", type="model", metadata={"acc": 0.9}, description="second", tags=["t1"]
    ).version
    assert b.index == 1
    result = store.link_version(b.pk, ENTITY, REG, "Demo", aliases=["latest", "staging"])
    assert result.created
    linked = result.version
    assert (linked.project, linked.collection, linked.index) == (REG, "Demo", 0)
    assert linked.id == b.id and linked.pk == b.pk and linked.digest == "b"
    assert (linked.metadata, linked.description, linked.tags, linked.type) == ({"acc": 0.9}, "second", ["t1"], "model")
    assert linked.aliases == ["latest", "staging"]
    assert linked.collection_id != b.collection_id and linked.source_collection_id == b.collection_id
    coll = store.collection(ENTITY, REG, "Demo")
    assert (coll.kind, coll.type, coll.next_index) == ("portfolio", "model", 1)
    # Aliases are per collection: the source membership keeps its own.
    assert store.get_version(b.id).aliases == ["latest"]
    assert store.resolve(ENTITY, REG, "Demo", "v0").id == b.id
    assert store.resolve(ENTITY, REG, "Demo", "staging").id == b.id
    assert store.resolve(ENTITY, REG, "Demo", b.id).index == 0
    assert store.manifest(linked.pk) == store.manifest(b.pk)


def test_link_indices_latest_and_relink(store: Store) -> None:
    a, b, c = (_model(store, d) for d in "abc")
    assert store.link_version(c.pk, ENTITY, REG, "Demo", aliases=["latest"]).version.index == 0
    assert store.link_version(a.pk, ENTITY, REG, "Demo", aliases=["latest", "prod"]).version.index == 1
    coll = store.collection(ENTITY, REG, "Demo")
    members = store.collection_versions(coll.pk)
    assert [(m.digest, m.index, m.aliases) for m in members] == [("c", 0, []), ("a", 1, ["latest", "prod"])]
    # Relinking a member applies the aliases only; 'latest' does not move back to an older member.
    again = store.link_version(c.pk, ENTITY, REG, "Demo", aliases=["latest", "prod"])
    assert not again.created and again.version.index == 0 and again.version.aliases == ["prod"]
    assert store.collection(ENTITY, REG, "Demo").next_index == 2
    assert store.resolve(ENTITY, REG, "Demo", "latest").digest == "a"
    store.link_version(b.pk, ENTITY, REG, "Demo", aliases=["latest"])
    assert store.resolve(ENTITY, REG, "Demo", "latest").index == 2


def test_link_refusals(store: Store) -> None:
    model = _model(store, "m")
    data = commit(store, "d", collection="ds", type="dataset").version
    store.link_version(model.pk, ENTITY, REG, "Demo", aliases=[])
    with pytest.raises(TypeMismatchError, match="'dataset'"):
        store.link_version(data.pk, ENTITY, REG, "Demo", aliases=[])
    with pytest.raises(ValueError, match="not a registry collection"):
        store.link_version(model.pk, ENTITY, PROJECT, "ds", aliases=[])
    with pytest.raises(ValueError, match="registry collection"):
        store.commit_version(
            ENTITY, REG, "Demo", "model", digest="x", manifest="{}", size=0, file_count=0, metadata={},
            description=None, aliases=[], tags=[], run_pk=None,
        )
    with pytest.raises(ValueError, match="invalid alias 'v3'"):
        store.link_version(model.pk, ENTITY, REG, "Demo", aliases=["v3"])
    with pytest.raises(NotFoundError):
        store.link_version(10**6, ENTITY, REG, "Demo", aliases=[])
    # A project that is not a registry may hold links too (legacy portfolios).
    assert store.link_version(model.pk, ENTITY, "other", "portfolio", aliases=[]).version.index == 0


def test_unlink_moves_latest_and_keeps_the_version(store: Store) -> None:
    a, b = _model(store, "a"), _model(store, "b")
    store.link_version(a.pk, ENTITY, REG, "Demo", aliases=["latest"])
    store.link_version(b.pk, ENTITY, REG, "Demo", aliases=["latest", "prod"])
    coll = store.collection(ENTITY, REG, "Demo")
    store.unlink_version(b.pk, coll.pk)
    assert [(m.digest, m.index, m.aliases) for m in store.collection_versions(coll.pk)] == [("a", 0, ["latest"])]
    assert store.resolve(ENTITY, REG, "Demo", "prod") is None
    assert store.get_version(b.id).aliases == ["latest"]  # the source membership is untouched
    with pytest.raises(NotFoundError, match="not linked"):
        store.unlink_version(b.pk, coll.pk)
    with pytest.raises(ValueError, match="only links can be unlinked"):
        store.unlink_version(a.pk, a.collection_id)
    # Indices are never reused.
    assert store.link_version(b.pk, ENTITY, REG, "Demo", aliases=["latest"]).version.index == 2


def test_delete_version_removes_its_links(store: Store) -> None:
    a, b = _model(store, "a"), _model(store, "b")
    store.link_version(a.pk, ENTITY, REG, "Demo", aliases=["latest"])
    store.link_version(b.pk, ENTITY, REG, "Demo", aliases=["latest"])
    store.delete_version(b.pk, delete_aliases=True)
    coll = store.collection(ENTITY, REG, "Demo")
    assert [(m.digest, m.aliases) for m in store.collection_versions(coll.pk)] == [("a", ["latest"])]
    with pytest.raises(NotFoundError, match="deleted"):
        store.link_version(b.pk, ENTITY, REG, "Other", aliases=[])


@pytest.mark.slow
def test_concurrent_links_get_gapless_indices(store: Store) -> None:
    workers, per_worker = 4, 8
    results = dict(_helpers.run_processes(_helpers.link_distinct, [(store.url, w, per_worker) for w in range(workers)]))
    coll = store.collection(ENTITY, REG, "shared")
    members = store.collection_versions(coll.pk)
    total = workers * per_worker
    assert [m.index for m in members] == list(range(total))
    assert coll.next_index == total and coll.kind == "portfolio"
    assert {m.digest for m in members} == {f"l{w}-{i}" for w in range(workers) for i in range(per_worker)}
    reported = [item for out in results.values() for item in out]
    assert sorted((pk, index) for pk, index, _ in reported) == sorted((m.pk, m.index) for m in members)
    assert all(created for _, _, created in reported)
    assert [m.index for m in members if "latest" in m.aliases] == [total - 1]
