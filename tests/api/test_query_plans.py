"""How versions queries are shaped for the database, and that the shapes change nothing in the results:
SQLite starting from a rare required tag/alias (store.paging._rarest_driver), PostgreSQL's jsonb metadata
(migration 0004). On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event

import wandb_dagster as wandb
from wandb_dagster.store import paging


def _log(run, content: str, name: str, tags=(), metadata=None):
    Path("model.bin").write_text(content)
    art = wandb.Artifact(name, type="model", metadata=metadata or {})
    art.add_file("model.bin")
    return run.log_artifact(art, tags=list(tags))


def _populate():
    with wandb.init(project="train") as run:
        for i in range(6):
            tags = ["common"] + (["rare"] if i == 2 else []) + (["other"] if i in (2, 4) else [])
            art = _log(run, f"m{i}", f"m{i % 2}", tags=tags, metadata={"i": i})
            # Version 2 holds aliases "a" and "b" in its collection: "$in" of both must list it once.
            art.link(f"wandb-registry-model/c{i % 3}", aliases=["a", "b"] if i == 2 else (["c"] if i == 5 else []))


FILTERS = [
    {"tag": "rare"},
    {"tag": {"$in": ["rare", "other"]}},  # version 2 holds both: once
    {"tag": {"$all": ["common", "other"]}},
    {"tag": "common", "metadata.i": {"$gte": 3}},
    {"$and": [{"alias": {"$in": ["a", "b"]}}, {"tag": "common"}]},
    {"alias": {"$in": ["c", "a"]}},
    {"tag": {"$in": []}},
]


def _page(flt):
    return [(v.collection.name, v.version, v.metadata["i"]) for v in wandb.Api().registries().versions(filter=flt, per_page=2)]


def test_required_tag_or_alias_drives_sqlite_and_changes_no_result(api_env, monkeypatch, database_url):
    _populate()
    statements: list[str] = []
    engine_class = sa.engine.Engine

    def _record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine_class, "before_cursor_execute", _record)
    try:
        results = {}
        for cap in (0, 10_000):  # never driven (walk in page order), always driven
            monkeypatch.setattr(paging, "_SQLITE_DRIVER_MAX_ROWS", cap)
            statements.clear()
            results[cap] = [_page(flt) for flt in FILTERS]
            driven = sum("CROSS JOIN" in s for s in statements)
            if database_url.startswith("sqlite"):
                assert (driven > 0) == (cap > 0), (cap, driven)
            else:
                assert driven == 0  # PostgreSQL plans with statistics; no hint
    finally:
        event.remove(engine_class, "before_cursor_execute", _record)
    assert results[0] == results[10_000]
    walked = dict(zip(map(repr, FILTERS), results[0], strict=True))
    assert walked[repr({"tag": "rare"})] == [("c2", "v0", 2)]
    assert walked[repr({"tag": {"$in": ["rare", "other"]}})] == [("c1", "v1", 4), ("c2", "v0", 2)]
    assert walked[repr({"tag": {"$all": ["common", "other"]}})] == [("c1", "v1", 4), ("c2", "v0", 2)]
    assert walked[repr({"tag": "common", "metadata.i": {"$gte": 3}})] == [("c0", "v1", 3), ("c1", "v1", 4), ("c2", "v1", 5)]
    assert walked[repr({"$and": [{"alias": {"$in": ["a", "b"]}}, {"tag": "common"}]})] == [("c2", "v0", 2)]
    assert walked[repr({"alias": {"$in": ["c", "a"]}})] == [("c2", "v0", 2), ("c2", "v1", 5)]
    assert walked[repr({"tag": {"$in": []}})] == []


def test_metadata_round_trips_as_a_dict_and_digest_ignores_the_database(api_env, database_url):
    metadata = {"zeta": 1, "a": {"y": [3, {"b": None}], "x": "é"}, "big": 2**70, "f": 0.1, "t": True, "mid": "1e5"}
    with wandb.init(project="train") as run:
        logged = _log(run, "content", "meta", metadata=metadata)
        logged.wait()
    fetched = wandb.Api().artifact("train/meta:v0")
    assert fetched.metadata == metadata
    assert type(fetched.metadata["big"]) is int and type(fetched.metadata["f"]) is float
    assert fetched.digest == logged.digest
    if database_url.startswith("postgresql"):
        engine = sa.create_engine(sa.make_url(database_url).set(drivername="postgresql+psycopg"))
        try:
            with engine.connect() as conn:
                kind = conn.exec_driver_sql(
                    "SELECT data_type FROM information_schema.columns WHERE table_name = 'versions' AND column_name = 'metadata'"
                ).scalar_one()
        finally:
            engine.dispose()
        assert kind == "jsonb"
