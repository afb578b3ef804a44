"""The data behind the web app's artifact pages: lineage graphs, alias history, file trees (SQLite and
PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest

import wandb_dagster as wandb
from wandb_dagster.api.alias_history import alias_history
from wandb_dagster.api.file_tree import file_tree
from wandb_dagster.api.lineage import lineage_graph


def _log(run, name: str, content: str, type: str = "dataset"):
    Path(f"{name}.txt").write_text(content)
    art = wandb.Artifact(name, type=type)
    art.add_file(f"{name}.txt")
    logged = run.log_artifact(art)
    logged.wait()
    return logged


def _pipeline():
    """raw -(prep)-> clean -(train)-> model -(eval)-> report; a second consumer of clean (audit)."""
    with wandb.init(project="p", id="ingest", job_type="ingest") as run:
        _log(run, "raw", "r")
    with wandb.init(project="p", id="prep", job_type="prep") as run:
        run.use_artifact("raw:latest")
        _log(run, "clean", "c")
    with wandb.init(project="p", id="train", job_type="train") as run:
        run.use_artifact("clean:latest")
        _log(run, "model", "m", type="model")
    with wandb.init(project="p", id="audit") as run:
        run.use_artifact("clean:latest")
    with wandb.init(project="p", id="eval") as run:
        run.use_artifact("model:latest")
        _log(run, "report", "e", type="report")


def _names(nodes):
    """Run ids and artifact names (runs get a random display name)."""
    return sorted(n.run_id or n.name for n in nodes)


def test_lineage_walks_producers_and_consumers_several_hops_both_ways(api_env) -> None:
    _pipeline()
    api = wandb.Api(overrides={"project": "p"})
    clean = api.artifact("clean:v0")
    graph = lineage_graph(clean, hops=4)
    assert graph.node(graph.start).name == "clean:v0" and graph.node(graph.start).depth == 0
    # The same neighbours as the Api objects give.
    assert [n.run_id for n in graph.at(-1)] == [clean.logged_by().id] == ["prep"]
    assert sorted(n.run_id for n in graph.at(1)) == sorted(r.id for r in clean.used_by()) == ["audit", "train"]
    assert _names(graph.at(-2)) == ["raw:v0"] and _names(graph.at(-3)) == ["ingest"]
    assert _names(graph.at(2)) == ["model:v0"] and _names(graph.at(3)) == ["eval"] and _names(graph.at(4)) == ["report:v0"]
    assert graph.at(-4) == [] and not graph.truncated
    keys = {n.run_id or n.name: n.key for n in graph.nodes}
    # Edges point the way data flows.
    assert (keys["prep"], keys["clean:v0"]) in graph.edges and (keys["clean:v0"], keys["train"]) in graph.edges
    assert (keys["raw:v0"], keys["prep"]) in graph.edges and (keys["model:v0"], keys["eval"]) in graph.edges
    assert len(graph.edges) == 8
    model = graph.node(keys["model:v0"])
    assert (model.type, model.collection, model.version, model.entity, model.project) == (
        "model", "model", "v0", "tester", "p"
    )
    assert graph.node(keys["train"]).job_type == "train"


def test_the_hop_limit_stops_the_walk(api_env) -> None:
    _pipeline()
    api = wandb.Api(overrides={"project": "p"})
    graph = lineage_graph(api.artifact("clean:v0"), hops=1)
    assert {n.depth for n in graph.nodes} == {-1, 0, 1}
    assert _names(graph.nodes) == ["audit", "clean:v0", "prep", "train"]
    assert lineage_graph(api.artifact("clean:v0"), hops=0).nodes == [graph.node(graph.start)]
    for bad in (-1, 21, "2", True):
        with pytest.raises(ValueError, match="hops=.* must be an integer from 0 to 20"):
            lineage_graph(api.artifact("clean:v0"), hops=bad)  # type: ignore[arg-type]


def test_a_wide_graph_is_cut_per_node_and_counted(api_env) -> None:
    with wandb.init(project="p", id="maker") as run:
        _log(run, "shared", "s")
    api = wandb.Api(overrides={"project": "p"})
    shared = api.artifact("shared:v0")
    store = api._ws.store
    # 300 consumers, recorded straight through the store (300 wandb.init calls would take most of a minute).
    for i in range(300):
        record = store.create_run("tester", "p", f"user{i:03d}")
        store.record_input(record.pk, int(shared._require_logged("t").pk))
    graph = lineage_graph(shared, fanout=25)
    consumers = graph.at(1)
    assert [n.run_id for n in consumers] == [f"user{i:03d}" for i in range(25)]  # the oldest
    assert graph.node(graph.start).hidden == 275 and not graph.truncated
    small = lineage_graph(shared, fanout=1000, max_nodes=50)
    # The start, its producer (upstream is walked first) and 48 consumers.
    assert len(small.nodes) == 50 and small.truncated and small.node(small.start).hidden == 252
    assert [n.run_id for n in small.at(-1)] == ["maker"] and len(small.at(1)) == 48


def test_a_walk_costs_one_edge_query_per_hop_and_direction_whatever_the_width(api_env, monkeypatch) -> None:
    from wandb_dagster.store import Store

    with wandb.init(project="p", id="maker") as run:
        _log(run, "shared", "s")
    api = wandb.Api(overrides={"project": "p"})
    shared = api.artifact("shared:v0")
    store = api._ws.store
    pk = int(shared._require_logged("t").pk)
    for i in range(60):  # 60 consumers, each logging a version that 2 more runs use
        consumer = store.create_run("tester", "p", f"c{i}")
        store.record_input(consumer.pk, pk)
        made = store.commit_version(
            "tester", "p", f"out{i}", "dataset", digest=f"{i:032x}", manifest="{}", size=0, file_count=0,
            metadata={}, description=None, aliases=["latest"], tags=[], run_pk=consumer.pk,
        ).version
        for j in range(2):
            store.record_input(store.create_run("tester", "p", f"c{i}-{j}").pk, made.pk)
    calls: list[int] = []
    real = Store.lineage_edges
    monkeypatch.setattr(Store, "lineage_edges", lambda self, **kw: calls.append(len(kw["pks"])) or real(self, **kw))
    graph = lineage_graph(shared, hops=4, fanout=100, max_nodes=10_000)
    assert len(graph.at(1)) == 60 and len(graph.at(2)) == 60 and len(graph.at(3)) == 120
    # Upstream: the producer, then its inputs (none); downstream: hops 1, 2, 3 and 4 (nothing past 3).
    assert len(calls) == 6 and max(calls) == 120


def test_a_deleted_version_stays_in_the_lineage(api_env) -> None:
    _pipeline()
    api = wandb.Api(overrides={"project": "p"})
    api.artifact("model:v0").delete(delete_aliases=True)
    graph = lineage_graph(api.artifact("clean:v0"))
    gone = [n for n in graph.nodes if n.collection == "model"]
    assert [(n.name, n.version, n.state) for n in gone] == [("model:deleted", None, "DELETED")]
    assert _names(graph.at(3)) == ["eval"]  # the walk goes on through it


def test_alias_history_says_who_moved_production_and_when(api_env) -> None:
    with wandb.init(project="train", id="trainer") as run:
        first = _log(run, "weights-1", "1", type="model")
        first.link("wandb-registry-model/Classifiers", aliases=["staging"])
        second = _log(run, "weights-2", "2", type="model")
        second.link("wandb-registry-model/Classifiers", aliases=["production"])
    with wandb.init(project="train", id="promoter") as run:
        run.link_artifact(first, "wandb-registry-model/Classifiers", aliases=["production"])
    api = wandb.Api()
    linked = api.artifact("default/wandb-registry-model/Classifiers:staging")
    linked.aliases.remove("staging")
    linked.save()
    history = alias_history(api, "default", "wandb-registry-model", "Classifiers")
    assert [(c.action, c.alias, c.version, c.previous_version, c.run_id) for c in history] == [
        ("removed", "staging", None, "v0", None),
        ("moved", "production", "v0", "v1", "promoter"),
        ("added", "production", "v1", None, "trainer"),
        ("added", "staging", "v0", None, "trainer"),
    ]
    assert history[1].artifact_id == first.id
    assert history[0].created_at >= history[1].created_at >= history[3].created_at
    only = alias_history(api, "default", "wandb-registry-model", "Classifiers", alias="production", limit=1)
    assert [(c.alias, c.version) for c in only] == [("production", "v0")]
    assert alias_history(api, "default", "wandb-registry-model", "Other") == []
    with pytest.raises(ValueError, match="limit=0 must be an integer"):
        alias_history(api, "default", "wandb-registry-model", "Classifiers", limit=0)


def test_alias_history_reads_back_from_the_head_across_windows(api_env, monkeypatch) -> None:
    from wandb_dagster.api.events import newest_events
    from wandb_dagster.store import events as store_events

    with wandb.init(project="train", id="mover") as run:
        versions = [_log(run, f"w{i}", str(i), type="model") for i in range(4)]
        for v in versions:
            v.link("wandb-registry-model/Moving", aliases=["production"])
        _log(run, "noise", "n").link("wandb-registry-model/Other", aliases=["production"])
    api = wandb.Api()
    expected = [("moved", "v3", "v2"), ("moved", "v2", "v1"), ("moved", "v1", "v0"), ("added", "v0", None)]
    monkeypatch.setattr(store_events, "_SCAN_WINDOW", 2)  # many windows, each read newest first
    history = alias_history(api, "default", "wandb-registry-model", "Moving", alias="production")
    assert [(c.action, c.version, c.previous_version) for c in history] == expected
    assert all(c.run_id == "mover" for c in history)
    assert [(c.version) for c in alias_history(api, "default", "wandb-registry-model", "Moving", limit=2)] == ["v3", "v2"]
    newest = newest_events(api._ws.store, types="LINK_ARTIFACT", limit=2)
    assert [(e.collection, e.version) for e in newest] == [("Other", "v0"), ("Moving", "v3")]
    with pytest.raises(ValueError, match="unknown event type"):
        newest_events(api._ws.store, types="NOPE")


def test_file_tree_of_a_version(api_env) -> None:
    Path("d/sub").mkdir(parents=True)
    Path("d/a.txt").write_text("aaa")
    Path("d/sub/b.bin").write_bytes(b"12345")
    Path("top.txt").write_text("t")
    with wandb.init(project="p") as run:
        art = wandb.Artifact("tree", type="dataset")
        art.add_dir("d", name="data")
        art.add_file("top.txt")
        art.add_reference("https://example.invalid/x.csv", checksum=False)
        run.log_artifact(art).wait()
    logged = wandb.Api(overrides={"project": "p"}).artifact("tree:v0")
    root = file_tree(logged.manifest)
    assert [(c.name, c.is_dir) for c in root.children] == [("data", True), ("top.txt", False), ("x.csv", False)]
    assert (root.size, root.file_count) == (9, 4)
    data = root.find("data")
    assert (data.size, data.file_count, [c.name for c in data.children]) == (8, 2, ["sub", "a.txt"])
    b = root.find("data/sub/b.bin")
    assert (b.size, b.path, b.hex, b.ref) == (5, "data/sub/b.bin", "827ccb0eea8a706c4c34a16891f84e7b", None)
    assert b.digest == logged.manifest.get("data/sub/b.bin").digest
    ref = root.find("x.csv")
    assert ref.ref == "https://example.invalid/x.csv" and ref.hex is None
    for missing in ("nope", "data/../top.txt", "data/a.txt/more"):
        with pytest.raises(KeyError, match="no file or folder"):
            root.find(missing)


def test_runs_by_id_names_only_unambiguous_runs(api_env) -> None:
    store = wandb.Api()._ws.store
    store.create_run("tester", "a", "same")
    store.create_run("tester", "b", "same")
    store.create_run("tester", "a", "only", username="ann")
    found = store.runs_by_id(["same", "only", "nobody", "only"])
    assert list(found) == ["only"] and (found["only"].project, found["only"].username) == ("a", "ann")
    assert store.runs_by_id([]) == {}
