"""The event feed through the query API (``Api.events`` / ``Api.event_cursor``, api/events.py): what W&B
code does produces the events a sensor needs, and cursors, types and filters behave, on SQLite and PostgreSQL.
Ordering under concurrent writers is tested in tests/store/test_events.py."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

import wandb_dagster as wandb
from wandb_dagster.api import events as api_events
from wandb_dagster.api.events import Event, EventPage, head_cursor, read_events
from wandb_dagster.store import Store
from wandb_dagster.store import events as store_events


def _log(run, content: str, name: str = "clf", type: str = "model", aliases=None, tags=None):
    Path("model.bin").write_text(content)
    art = wandb.Artifact(name, type=type)
    art.add_file("model.bin")
    return run.log_artifact(art, aliases=aliases, tags=tags)


def _commit(store: Store, digest: str, collection: str = "data", project: str = "p", **kwargs) -> None:
    values: dict = {"manifest": "{}", "size": 0, "file_count": 0, "metadata": {}, "description": None}
    values.update(aliases=["latest"], tags=[])
    values.update(kwargs)
    store.commit_version("e", project, collection, "dataset", digest=digest, run_pk=None, **values)


def test_a_training_and_promotion_walkthrough_as_a_sensor_sees_it(api_env) -> None:
    api = wandb.Api()
    cursor = api.event_cursor()
    assert list(api.events(after=cursor)) == []
    with wandb.init(project="train", id="trainer") as run:
        model = _log(run, "weights-1", tags=["nlp"])
        _log(run, "weights-1", tags=["nlp"])  # identical content: the same version, nothing new
        model.link("wandb-registry-model/Classifiers", aliases=["staging"])
    page = api.events(after=cursor)
    assert isinstance(page, EventPage) and not page.has_more
    assert [(e.type, e.artifact_name, e.alias or e.tag) for e in page] == [
        ("RUN_STATE_CHANGE", None, None),
        ("CREATE_ARTIFACT", "tester/train/clf:v0", None),
        ("ADD_ARTIFACT_TAG", "tester/train/clf:v0", "nlp"),
        ("LINK_ARTIFACT", "default/wandb-registry-model/Classifiers:v0", None),
        ("ADD_ARTIFACT_ALIAS", "default/wandb-registry-model/Classifiers:v0", "staging"),
        ("RUN_STATE_CHANGE", None, None),
    ]
    start, create, _, link, _, finish = page
    assert start.run_id == finish.run_id == create.run_id == "trainer"
    assert (start.payload, finish.payload) == (
        {"previous_state": None, "state": "running"},
        {"previous_state": "running", "state": "finished"},
    )
    assert create.collection_type == "model" and create.artifact_id == link.artifact_id == model.id
    # A sensor fetches what the event names.
    fetched = api.artifact(link.artifact_name)
    assert fetched.id == model.id and "staging" in fetched.aliases

    # Promotion: moving "production" from v0 to v1 of the registry collection, seen as one REMOVE + ADD.
    with wandb.init(project="train") as run:
        better = _log(run, "weights-2")
        better.link("wandb-registry-model/Classifiers", aliases=["production"])
        linker = run.id
    with wandb.init(project="train", id="promoter") as run:
        run.link_artifact(model, "wandb-registry-model/Classifiers", aliases=["production"])
    promoted = api.events(after=page.cursor, types=["ADD_ARTIFACT_ALIAS", "REMOVE_ARTIFACT_ALIAS"],
                          filter={"project": "wandb-registry-model", "alias": "production"})
    assert [(e.type, e.version, e.payload) for e in promoted] == [
        ("ADD_ARTIFACT_ALIAS", "v1", {}),
        ("REMOVE_ARTIFACT_ALIAS", "v1", {"moved_to": "v0"}),
        ("ADD_ARTIFACT_ALIAS", "v0", {"previous_version": "v1"}),
    ]
    assert api.artifact(promoted[-1].artifact_name).id == model.id
    # run.link_artifact names its run; so does Artifact.link inside a run.
    assert [e.run_id for e in promoted] == [linker, "promoter", "promoter"]
    # Changing aliases and tags with save(), and unlinking, are events too.
    fetched = api.artifact("default/wandb-registry-model/Classifiers:production")
    fetched.aliases.append("champion")
    fetched.tags = []
    mark = api.event_cursor()
    fetched.save()
    fetched.unlink()
    assert [(e.type, e.alias or e.tag, e.run_id) for e in api.events(after=mark)] == [
        ("ADD_ARTIFACT_ALIAS", "champion", None),  # no run active: no acting run
        ("REMOVE_ARTIFACT_TAG", "nlp", None),
        ("REMOVE_ARTIFACT_ALIAS", "champion", None),
        ("REMOVE_ARTIFACT_ALIAS", "production", None),
        ("REMOVE_ARTIFACT_ALIAS", "staging", None),
        ("UNLINK_ARTIFACT", None, None),
    ]
    # Inside a run, save() and delete() name it.
    with wandb.init(project="train", id="curator") as run:
        mark = api.event_cursor()
        kept = api.artifact("tester/train/clf:v0")
        kept.tags = ["curated"]
        kept.save()
        spare = _log(run, "weights-3")
        spare.delete(delete_aliases=True)
    assert {(e.type, e.run_id) for e in api.events(after=mark) if e.type != "CREATE_ARTIFACT"} >= {
        ("ADD_ARTIFACT_TAG", "curator"),
        ("DELETE_ARTIFACT", "curator"),
    }


def test_pages_cursors_and_has_more(store: Store) -> None:
    assert head_cursor(store) == read_events(store, after=None).cursor  # an empty feed
    for i in range(5):
        _commit(store, f"d{i}")
    page = read_events(store, after=None, limit=2)
    assert [e.id for e in page] == [1, 2] and page.has_more and len(page) == 2
    assert isinstance(page[0], Event) and page[-1].id == 2 and [e.id for e in page[:1]] == [1]
    assert "2 event(s)" in repr(page)
    ids = [e.id for e in page]
    while page.has_more:
        page = read_events(store, after=page.cursor, limit=2)
        ids += [e.id for e in page]
    assert ids == [1, 2, 3, 4, 5]
    # At the head: nothing, and the same cursor string back, as often as asked.
    again = read_events(store, after=page.cursor)
    assert list(again) == [] and again.cursor == page.cursor == head_cursor(store) and not again.has_more
    # Cursors are opaque strings, not the ids themselves.
    assert page.cursor != "5" and "5" not in page.cursor


def test_types_and_filters(store: Store) -> None:
    _commit(store, "a", collection="data", aliases=["latest", "gold"], tags=["t1"])
    _commit(store, "b", collection="other", project="q", tags=["t2"])
    _commit(store, "c", collection="data", aliases=["latest", "gold"])

    def brief(**kwargs):
        page = read_events(store, after=None, **kwargs)
        return [(e.type, e.project, e.collection, e.version, e.alias or e.tag) for e in page]

    assert brief(types="CREATE_ARTIFACT") == [
        ("CREATE_ARTIFACT", "p", "data", "v0", None),
        ("CREATE_ARTIFACT", "q", "other", "v0", None),
        ("CREATE_ARTIFACT", "p", "data", "v1", None),
    ]
    assert brief(filter={"project": "q"}) == [
        ("CREATE_ARTIFACT", "q", "other", "v0", None),
        ("ADD_ARTIFACT_TAG", "q", "other", "v0", "t2"),
    ]
    assert brief(filter={"alias": "gold", "type": {"$in": ["ADD_ARTIFACT_ALIAS"]}}) == [
        ("ADD_ARTIFACT_ALIAS", "p", "data", "v0", "gold"),
        ("ADD_ARTIFACT_ALIAS", "p", "data", "v1", "gold"),
    ]
    assert brief(filter={"tag": {"$in": ["t1", "t2"]}, "entity": {"$eq": "e"}}) == [
        ("ADD_ARTIFACT_TAG", "p", "data", "v0", "t1"),
        ("ADD_ARTIFACT_TAG", "q", "other", "v0", "t2"),
    ]
    assert brief(filter={"collection": {"$in": []}}) == []
    assert brief(types=["UNLINK_ARTIFACT"], filter={"project": "p"}) == []
    # The whole filter language of the query API works on the feed.
    assert brief(filter={"version": {"$gte": "v1"}, "type": "CREATE_ARTIFACT"}) == [
        ("CREATE_ARTIFACT", "p", "data", "v1", None)
    ]
    assert brief(filter={"$or": [{"tag": {"$regex": "^t2"}}, {"alias": "gold", "version": "v1"}]}) == [
        ("ADD_ARTIFACT_TAG", "q", "other", "v0", "t2"),
        ("ADD_ARTIFACT_ALIAS", "p", "data", "v1", "gold"),
    ]
    not_latest = {"alias": {"$nin": ["latest"]}, "collection": {"$ne": "other"}}
    assert brief(types="ADD_ARTIFACT_ALIAS", filter=not_latest) == [
        ("ADD_ARTIFACT_ALIAS", "p", "data", "v0", "gold"),
        ("ADD_ARTIFACT_ALIAS", "p", "data", "v1", "gold"),
    ]
    # payload.<key>: the moved alias's previous holder; typed JSON values.
    assert brief(filter={"payload.previous_version": "v0"}) == [("ADD_ARTIFACT_ALIAS", "p", "data", "v1", "gold")]
    assert brief(filter={"payload.digest": {"$in": ["b", "c"]}, "payload.size": 0}) == [
        ("CREATE_ARTIFACT", "q", "other", "v0", None),
        ("CREATE_ARTIFACT", "p", "data", "v1", None),
    ]
    assert brief(filter={"payload.size": "0"}) == []


def test_the_event_field_table_knows_every_event_type() -> None:
    from wandb_dagster.store.filters import EVENT_FIELDS

    assert EVENT_FIELDS.fixed["type"].choices == store_events.EVENT_TYPES  # type: ignore[attr-defined]


def test_a_filtered_reader_moves_past_what_it_skips_a_bounded_stretch_at_a_time(store: Store, monkeypatch) -> None:
    for i in range(7):
        _commit(store, f"noise{i}", collection="noise")
    _commit(store, "wanted", collection="wanted")
    head = head_cursor(store)
    page = read_events(store, after=None, filter={"collection": "wanted"})
    assert [e.collection for e in page] == ["wanted"] and page.cursor == head and not page.has_more
    page = read_events(store, after=None, filter={"collection": "nothing"})
    assert list(page) == [] and page.cursor == head and not page.has_more  # skipped, not read again later
    monkeypatch.setattr(store_events, "_SCAN_WINDOW", 3)
    pages, cursor = [], None
    while True:
        page = read_events(store, after=cursor, filter={"collection": "wanted"})
        pages.append([e.collection for e in page])
        cursor = page.cursor
        if not page.has_more:
            break
    assert pages == [[], [], ["wanted"]] and cursor == head


def test_bad_arguments_say_what_to_do(store: Store) -> None:
    _commit(store, "a")
    for bad in ["5", "garbage!", "", base64.urlsafe_b64encode(b"wdev1:x").decode(), 5]:
        with pytest.raises(ValueError, match=r"is not an event cursor; pass the \.cursor"):
            read_events(store, after=bad)  # type: ignore[arg-type]
    # A cursor of a longer feed (another workspace): refused rather than silently waiting forever.
    far = api_events._encode_cursor(1000)
    with pytest.raises(ValueError, match="past the end of this workspace's event feed"):
        read_events(store, after=far)
    # Filters are the query API's (one engine, EVENT_FIELDS): its errors name the field and what is valid.
    with pytest.raises(ValueError, match=r"unknown filter field 'name' for events; valid fields: \['alias', 'artifact"):
        read_events(store, after=None, filter={"name": "x"})
    with pytest.raises(ValueError, match=r"unknown operator '\$size' for 'alias'; valid operators for it: \['\$eq'"):
        read_events(store, after=None, filter={"alias": {"$size": 1}})
    with pytest.raises(ValueError, match="\\$in for 'alias' takes a list of values, got 'prod'"):
        read_events(store, after=None, filter={"alias": {"$in": "prod"}})
    with pytest.raises(ValueError, match="'project' holds strings; 3 is not one"):
        read_events(store, after=None, filter={"project": 3})
    with pytest.raises(ValueError, match=r"a filter is a dict such as"):
        read_events(store, after=None, filter=["project"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"unknown event type\(s\) \['CREATE'\]; valid types: \['CREATE_ARTIFACT'"):
        read_events(store, after=None, types=["CREATE"])
    with pytest.raises(ValueError, match=r"unknown value\(s\) \['NOPE'\] for 'type'; valid values: \['CREATE_"):
        read_events(store, after=None, filter={"type": "NOPE"})
    for limit in (0, -1, 10_001, 2.5, True):
        with pytest.raises(ValueError, match="limit="):
            read_events(store, after=None, limit=limit)  # type: ignore[arg-type]
