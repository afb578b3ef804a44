"""Registry query benchmark (issue 4). Prints times and ratios measured in the same run; not pass/fail.

    .venv/bin/python bench/bench_registry.py                      # SQLite and PostgreSQL, + MLflow if installed
    .venv/bin/python bench/bench_registry.py --backends sqlite --skip-mlflow

A workspace with 100,000 registry versions (links) in 1,000 registry collections of ``wandb-registry-model``,
each linking the 100 versions of a source collection in project ``train`` (so 100,000 logged versions,
200,000 memberships), with aliases (``latest``, ``production``, ``staging``, a few custom ones), version
tags, collection tags and descriptions, metadata (accuracy, epochs, framework, task), producer runs.

The rows are bulk-inserted (one transaction per table) exactly as ``commit_version`` / ``link_version``
would write them (public ids, gapless indices, ``next_index``, one alias per collection...); the load then
commits and links one more version through the real store functions and resolves aliases, to show the
bulk data is what the real code reads and extends. Events are not generated for the bulk rows (the
versions query does not read the event feed).

Timed: the first page (``per_page=100``, W&B's default for registry versions) of several filtered
``api.registries(...).collections(...).versions(...)`` queries, median of ``--repeat`` runs after one
warm-up, in this process. Goal: at most 50 ms on SQLite and on PostgreSQL. Also shown: the 10th page
(versions 900-999, where there are that many matches), median of 3: keyset pagination should make it cost
what the first does.

MLflow: if ``bench/.venvs/mlflow`` exists (``python3 -m venv bench/.venvs/mlflow &&
bench/.venvs/mlflow/bin/pip install mlflow``), the same shape of data goes into an MLflow model registry
(SQLite backend: 1,000 registered models x 100 model versions, tags and aliases, bulk-inserted into
MLflow's own tables after MLflow created them) and ``MlflowClient.search_model_versions`` is timed on the
equivalent filters, in a child process of that virtualenv.
"""

from __future__ import annotations

import argparse
import base64
import gc
import hashlib
import json
import os
import random
import secrets
import shutil
import statistics
import string
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import sqlalchemy as sa  # noqa: E402

from wandb_dagster.store import Store  # noqa: E402
from wandb_dagster.store import schema as db  # noqa: E402

WORK = HERE / ".work" / "registry"
MLFLOW_PYTHON = HERE / ".venvs" / "mlflow" / "bin" / "python"
ENTITY = "bench"
TAG_POOL = ["prod", "nlp", "vision", "candidate", "baseline", "distilled", "quantized", "text-classification"]
FRAMEWORKS = ["torch", "tensorflow", "jax", "sklearn"]
TASKS = ["text-classification", "ner", "detection", "segmentation", "ranking"]
ALPHABET = string.ascii_lowercase + string.digits

# name -> (registries filter, collections filter, versions filter). Comments give the matches.
QUERIES: dict[str, tuple[Any, Any, Any]] = {
    # seed 000's query: names matching "model", versions tagged text-classification or holding latest
    "seed 000: $or tag / alias latest": (
        {"name": {"$regex": "model"}}, None, {"$or": [{"tag": "text-classification"}, {"alias": "latest"}]}
    ),
    "alias = production (1 per collection)": (None, None, {"alias": "production"}),
    "metadata.accuracy > 0.95 (5%)": (None, None, {"metadata.accuracy": {"$gt": 0.95}}),
    "metadata.framework = jax and epochs >= 50": (
        None, None, {"metadata.framework": "jax", "metadata.epochs": {"$gte": 50}}
    ),
    "tag = rare (10 versions in all)": (None, None, {"tag": "rare"}),
    "collection name + version >= v90": (None, {"name": "reg-0500"}, {"version": {"$gte": "v90"}}),
    "collection tag + alias $in": (None, {"tag": "team-a"}, {"alias": {"$in": ["production", "staging"]}}),
}


def _public_id() -> str:
    return "".join(random.choice(ALPHABET) for _ in range(16))


def build(store: Store, n_collections: int, per_collection: int, seed: int = 7) -> dict[str, Any]:
    """Bulk-load the workspace; returns what the MLflow side needs to mirror it."""
    random.seed(seed)
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    train_pk = store.ensure_project(ENTITY, "train")
    registry_pk = store.ensure_project(ENTITY, "wandb-registry-model")
    store.ensure_project(ENTITY, "wandb-registry-dataset")
    run = store.create_run(ENTITY, "train", "bulkload", job_type="train")
    engine = store._engine
    with engine.connect() as conn:
        next_collection = (conn.execute(sa.select(sa.func.max(db.collections.c.id))).scalar() or 0) + 1
    collections, versions, memberships, aliases, ctags, outputs = [], [], [], [], [], []
    vtags: list[dict[str, Any]] = []
    mirror: list[dict[str, Any]] = []
    version_pk = 1
    membership_pk = 1
    rare = set(random.sample(range(n_collections * per_collection), 10))
    for c in range(n_collections):
        source_id, registry_id = next_collection + 2 * c, next_collection + 2 * c + 1
        t0 = now + timedelta(minutes=c)
        collections.append(dict(id=source_id, project_id=train_pk, name=f"model-{c:04d}", type="model", kind="sequence",
                                description=None, created_at=t0, updated_at=t0, next_index=per_collection))
        collections.append(dict(id=registry_id, project_id=registry_pk, name=f"reg-{c:04d}", type="model",
                                kind="portfolio", description=f"Models for use case {c}", created_at=t0,
                                updated_at=t0, next_index=per_collection))
        for tag in random.sample(["team-a", "team-b", "team-c", "team-d", "critical"], 2):
            ctags.append(dict(collection_id=registry_id, tag=tag))
        production, staging = random.sample(range(per_collection), 2)
        model_mirror: dict[str, Any] = {"name": f"reg-{c:04d}", "versions": []}
        for i in range(per_collection):
            created = t0 + timedelta(seconds=i)
            metadata = {
                "accuracy": round(random.random(), 4),
                "epochs": random.randint(1, 100),
                "framework": random.choice(FRAMEWORKS),
                "task": random.choice(TASKS),
                "params": {"lr": random.choice([0.1, 0.01, 0.001]), "layers": random.randint(2, 48)},
            }
            content = f"{c}/{i}".encode()
            entry_digest = hashlib.md5(content).digest()
            b64 = base64.b64encode(entry_digest).decode()
            digest = hashlib.md5(f"wandb-artifact-manifest-v1\nmodel.bin:{b64}\n".encode()).hexdigest()
            manifest = json.dumps({"version": 1, "storagePolicy": "wandb-storage-policy-v1",
                                   "storagePolicyConfig": {"storageLayout": "V2"},
                                   "contents": {"model.bin": {"digest": b64, "size": len(content)}}})
            versions.append(dict(id=version_pk, public_id=_public_id(), source_collection_id=source_id, digest=digest,
                                 size=len(content), file_count=1, metadata=metadata, description=None,
                                 state="COMMITTED", created_by_run_pk=run.pk, created_at=created, updated_at=created,
                                 manifest=manifest))
            outputs.append(dict(run_pk=run.pk, version_id=version_pk, direction="output"))
            source_m, registry_m = membership_pk, membership_pk + 1
            membership_pk += 2
            for m_id, c_id in ((source_m, source_id), (registry_m, registry_id)):
                memberships.append(
                    dict(id=m_id, collection_id=c_id, version_id=version_pk, version_index=i, created_at=created)
                )
            tags = random.sample(TAG_POOL, random.choice([0, 0, 1, 1, 2]))
            if (c * per_collection + i) in rare:
                tags.append("rare")
            vtags.extend(dict(version_id=version_pk, tag=t) for t in tags)
            held: list[str] = []
            if i == per_collection - 1:
                aliases.append(dict(collection_id=source_id, alias="latest", membership_id=source_m))
                held.append("latest")
            if i == production:
                held.append("production")
            if i == staging:
                held.append("staging")
            if i % 25 == 3:
                held.append(f"exp-{i}")
            aliases.extend(dict(collection_id=registry_id, alias=a, membership_id=registry_m) for a in held)
            model_mirror["versions"].append({"tags": tags, "aliases": held, "metadata": metadata, "created": created})
            version_pk += 1
        mirror.append(model_mirror)
    started = time.perf_counter()
    with store._writer.begin() as conn:
        for table, rows in ((db.collections, collections), (db.collection_tags, ctags), (db.versions, versions),
                            (db.memberships, memberships), (db.aliases, aliases), (db.version_tags, vtags),
                            (db.run_artifacts, outputs)):
            for start in range(0, len(rows), 20_000):
                conn.execute(sa.insert(table), rows[start:start + 20_000])
        if conn.dialect.name == "postgresql":
            for table in (db.collections, db.versions, db.memberships):
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), (SELECT max(id) FROM {table.name}))"
                )
    load_s = time.perf_counter() - started
    return {"mirror": mirror, "load_s": load_s, "rows": len(versions), "memberships": len(memberships)}


def check_real_code_extends_it(store: Store, per_collection: int) -> None:
    """The real store functions read and extend the bulk data: resolve aliases, commit, link."""
    prod = store.resolve(ENTITY, "wandb-registry-model", "reg-0000", "production")
    assert prod is not None and "production" in prod.aliases
    latest = store.resolve(ENTITY, "train", "model-0000", "latest")
    assert latest is not None and latest.index == per_collection - 1
    result = store.commit_version(ENTITY, "train", "model-0000", "model", digest=secrets.token_hex(16), manifest="{}",
                                  size=0, file_count=0, metadata={"accuracy": 0.5}, description=None,
                                  aliases=["latest"], tags=[], run_pk=None)
    assert result.created and result.version.index == per_collection
    linked = store.link_version(
        result.version.pk, ENTITY, "wandb-registry-model", "reg-0000", aliases=["latest", "production"]
    )
    assert linked.version.index == per_collection and sorted(linked.version.aliases) == ["latest", "production"]


def time_queries(url: str, repeat: int) -> dict[str, dict[str, Any]]:
    from itertools import islice

    import wandb_dagster as wandb

    api = wandb.Api(overrides={"base_url": url, "entity": ENTITY})
    results = {}
    for name, (rf, cf, vf) in QUERIES.items():
        def once(rf: Any = rf, cf: Any = cf, vf: Any = vf) -> tuple[float, int]:  # bound per query
            t0 = time.perf_counter()
            chain: Any = api.registries(filter=rf)
            chain = chain.collections(filter=cf) if cf is not None else chain
            page = list(islice(chain.versions(filter=vf), 100))
            return time.perf_counter() - t0, len(page)

        once()  # warm-up: imports, statement caches, connection
        times, count = [], 0
        for _ in range(repeat):
            elapsed, count = once()
            times.append(elapsed)
        total = len(api.registries(filter=rf).collections(filter=cf).versions(filter=vf)) if cf is not None else len(
            api.registries(filter=rf).versions(filter=vf))

        def tenth(rf: Any = rf, cf: Any = cf, vf: Any = vf) -> float | None:
            # Keyset pagination: page 10 continues the walk where page 9 ended, so it should cost page 1.
            chain: Any = api.registries(filter=rf)
            chain = chain.collections(filter=cf) if cf is not None else chain
            versions = chain.versions(filter=vf)
            if len(list(islice(versions, 900))) < 900:
                return None
            t0 = time.perf_counter()
            list(islice(versions, 900, 1000))
            return time.perf_counter() - t0

        later = [tenth() for _ in range(3)]
        results[name] = {
            "median_ms": statistics.median(times) * 1000, "max_ms": max(times) * 1000, "page": count, "matches": total,
            "tenth_ms": None if later[0] is None else statistics.median(t for t in later if t is not None) * 1000,
        }
    return results


# ---------------------------------------------------------------------------------------------- MLflow

MLFLOW_CHILD = r'''
import json, sys, time, statistics, random
from datetime import datetime
import sqlalchemy as sa
import mlflow
from mlflow.tracking import MlflowClient

db_path, mirror_path, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
uri = f"sqlite:///{db_path}"
client = MlflowClient(tracking_uri=uri, registry_uri=uri)
client.search_registered_models(max_results=1)   # creates MLflow's tables (its own migrations)
mirror = json.load(open(mirror_path))
engine = sa.create_engine(uri)
meta = sa.MetaData()
meta.reflect(engine)
rm, mv, mvt, rma, rmt = (meta.tables[t] for t in ("registered_models", "model_versions", "model_version_tags",
                                                  "registered_model_aliases", "registered_model_tags"))
t_load = time.perf_counter()
models, versions, vtags, aliases = [], [], [], []
ms = 1767225600000
for m in mirror:
    models.append(dict(name=m["name"], creation_time=ms, last_updated_time=ms, description="Models"))
    for i, v in enumerate(m["versions"], start=1):
        versions.append(dict(name=m["name"], version=i, creation_time=ms + i, last_updated_time=ms + i,
                             description=None, user_id=None, current_stage="None", source=f"models:/{m['name']}/{i}",
                             run_id=None, run_link=None, status="READY", status_message=None, storage_location=None))
        vtags.extend(dict(key=t, value="true", name=m["name"], version=i) for t in v["tags"])
        for key in ("accuracy", "epochs", "framework", "task"):
            vtags.append(dict(key=key, value=str(v["metadata"][key]), name=m["name"], version=i))
        aliases.extend(dict(alias=a, version=i, name=m["name"]) for a in v["aliases"])
cols = {c.name for c in mv.columns}
versions = [{k: val for k, val in row.items() if k in cols} for row in versions]
with engine.begin() as conn:
    conn.execute(sa.insert(rm), models)
    for table, rows in ((mv, versions), (mvt, vtags), (rma, aliases)):
        for s in range(0, len(rows), 20000):
            conn.execute(sa.insert(table), rows[s:s + 20000])
load_s = time.perf_counter() - t_load
queries = {
    "tag = text-classification": "tags.`text-classification` = 'true'",
    "tag = rare (10 versions in all)": "tags.rare = 'true'",
    "name = reg-0500 (one model)": "name = 'reg-0500'",
    "tag framework = jax": "tags.framework = 'jax'",
}
out = {"load_s": load_s, "mlflow": mlflow.__version__, "queries": {}}
for name, flt in queries.items():
    client.search_model_versions(flt, max_results=100)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        page = client.search_model_versions(flt, max_results=100)
        times.append(time.perf_counter() - t0)
    out["queries"][name] = {"median_ms": statistics.median(times) * 1000, "page": len(page)}
print(json.dumps(out))
'''

OURS_EQUIVALENT = {
    "tag = text-classification": (None, None, {"tag": "text-classification"}),
    "tag = rare (10 versions in all)": (None, None, {"tag": "rare"}),
    "name = reg-0500 (one model)": (None, {"name": "reg-0500"}, None),
    "tag framework = jax": (None, None, {"metadata.framework": "jax"}),
}


def run_mlflow(mirror: list[dict[str, Any]], repeat: int, url: str) -> dict[str, Any] | None:
    if not MLFLOW_PYTHON.exists():
        print(f"MLflow: not installed ({MLFLOW_PYTHON} missing); skipped")
        return None
    work = WORK / "mlflow"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    mirror_path = work / "mirror.json"
    mirror_path.write_text(json.dumps(mirror, default=str))
    command = [str(MLFLOW_PYTHON), "-c", MLFLOW_CHILD, str(work / "mlflow.db"), str(mirror_path), str(repeat)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        print("MLflow child failed:\n" + out.stderr[-3000:])
        return None
    theirs = json.loads(out.stdout.strip().splitlines()[-1])
    # Ours on the same filters, same process conditions as above.
    from itertools import islice

    import wandb_dagster as wandb

    api = wandb.Api(overrides={"base_url": url, "entity": ENTITY})
    ours = {}
    for name, (rf, cf, vf) in OURS_EQUIVALENT.items():
        def once(rf: Any = rf, cf: Any = cf, vf: Any = vf) -> float:  # bound per query
            t0 = time.perf_counter()
            chain: Any = api.registries(filter=rf)
            chain = chain.collections(filter=cf) if cf is not None else chain
            list(islice(chain.versions(filter=vf), 100))
            return time.perf_counter() - t0

        once()
        ours[name] = statistics.median(once() for _ in range(repeat)) * 1000
    theirs["ours_ms"] = ours
    return theirs


# ---------------------------------------------------------------------------------------------- main


def _postgres_url(admin_url: str, name: str) -> str:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--collections", type=int, default=1000)
    parser.add_argument("--per-collection", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--postgres", default=os.environ.get("WANDB_DAGSTER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    os.environ.setdefault("WANDB_DAGSTER_CACHE_DIR", str(WORK / "cache"))
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    mirror = None
    sqlite_url = None
    for backend in args.backends.split(","):
        if backend == "sqlite":
            url = sqlite_url = f"sqlite:///{WORK / 'store.db'}"
        else:
            url = _postgres_url(args.postgres, "wdbench_registry")
        store = Store.open(url, storage_root=str(WORK / "blobs"))
        built = build(store, args.collections, args.per_collection)
        mirror = mirror or built["mirror"]
        check_real_code_extends_it(store, args.per_collection)
        if backend == "postgresql":
            # What autovacuum does shortly after a bulk load; SQLite never gathers statistics by itself,
            # so it is measured without them. Autocommit: inside the transaction SQLAlchemy (re)opens, the
            # statistics were rolled back when the connection closed (only pg_class.reltuples survived).
            with store._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("ANALYZE")
        store.close()
        print(f"\n== {backend}: {built['rows']:,} versions, {built['memberships']:,} memberships "
              f"(bulk load {built['load_s']:.1f} s); first page of 100, median of {args.repeat} ==")
        # The bench's own 100,000-row mirror of the data would otherwise be traversed by the cyclic garbage
        # collector during some timed run (one ~350 ms outlier per run on SQLite): not the product's cost.
        gc.collect()
        gc.freeze()
        results = time_queries(url, args.repeat)
        for name, r in results.items():
            verdict = "ok" if r["median_ms"] <= 50 else "OVER 50 ms"
            tenth = "      -" if r["tenth_ms"] is None else f"{r['tenth_ms']:7.1f}"
            print(f"  {name:45s} {r['median_ms']:7.1f} ms (max {r['max_ms']:6.1f})  "
                  f"page {r['page']:3d} of {r['matches']:6,d}  {verdict:10s} 10th page {tenth} ms")
    if "postgresql" in args.backends.split(","):
        import psycopg

        with psycopg.connect(args.postgres, autocommit=True) as conn:  # 100,000 versions: do not leave them
            conn.execute("DROP DATABASE IF EXISTS wdbench_registry WITH (FORCE)")
    if not args.skip_mlflow and mirror is not None and sqlite_url is not None:
        theirs = run_mlflow(mirror, args.repeat, sqlite_url)
        if theirs is not None:
            print(f"\n== MLflow {theirs['mlflow']} search_model_versions (SQLite; bulk load {theirs['load_s']:.1f} s) "
                  f"vs ours on SQLite, max_results / per_page 100 ==")
            for name, r in theirs["queries"].items():
                ours = theirs["ours_ms"][name]
                ratio = r["median_ms"] / ours
                print(f"  {name:35s} MLflow {r['median_ms']:8.1f} ms  ours {ours:6.1f} ms  ratio {ratio:6.1f}x")


if __name__ == "__main__":
    main()
