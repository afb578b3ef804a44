"""The runs table, the run page, compare, the history JSON and the run's files, through Starlette's TestClient
on SQLite and PostgreSQL."""

from __future__ import annotations

import html
import json
import os
import re

import numpy as np
import pytest

import wandb_dagster as wandb
from wandb_dagster.api import history
from wandb_dagster.sdk.workspace import Workspace
from wandb_dagster.storage.hashing import b64_to_hex

from .conftest import sqlite_only


def _runs(n: int = 3) -> list[str]:
    ids = []
    for i in range(n):
        with wandb.init(project="proj", name=f"run-{i}", config={"lr": 0.1 / (i + 1), "arch": f"net{i}"},
                        tags=["t"] if i % 2 == 0 else [], group="g", job_type="train") as run:
            for step in range(5):
                run.log({"loss": 1.0 / (step + 1) + i, "acc": step * 0.1})
            ids.append(run.id)
    return ids


def test_the_runs_table_filters_sorts_and_shows_chosen_columns(app_env, client):
    ids = _runs()
    page = client.get("/tester/proj")
    assert page.status_code == 200
    assert all(f'value="{i}"' in page.text for i in ids)  # a checkbox per run
    assert page.text.index(ids[2]) < page.text.index(ids[0])  # newest first by default
    chosen = client.get("/tester/proj", params={"filters": json.dumps({"config.lr": {"$gt": 0.04}}),
                                                "order": "+summary_metrics.loss", "columns": "config.arch,summary.loss"})
    assert chosen.status_code == 200
    assert ids[0] in chosen.text and ids[1] in chosen.text and ids[2] not in chosen.text
    assert chosen.text.index(ids[0]) < chosen.text.index(ids[1])
    assert ">config.arch</a></th>" in chosen.text and "<td>net1</td>" in chosen.text
    assert "2 runs" in chosen.text
    # A column's header sorts by it: descending first, then ascending.
    link = re.search(r'<a href="(\?[^"]+)">summary.loss</a>', chosen.text).group(1).replace("&amp;", "&")
    assert "order=-summary_metrics.loss" in link
    by_loss = client.get("/tester/proj" + link)
    assert by_loss.text.index(ids[1]) < by_loss.text.index(ids[0])
    assert "order=%2Bsummary_metrics.loss" in by_loss.text or "order=+summary_metrics.loss" in html.unescape(by_loss.text)


@pytest.mark.parametrize("bad, said", [
    ("{not json", "Expecting property name"),
    ('{"colour": "red"}', "unknown filter field 'colour'"),
    ('["a"]', "must be a JSON object"),
])
def test_a_bad_filter_shows_the_error_not_a_500(app_env, client, bad, said):
    _runs(1)
    page = client.get("/tester/proj", params={"filters": bad})
    assert page.status_code == 400
    assert said in html.unescape(page.text)
    assert 'id="filter-error"' in page.text


def test_a_bad_order_or_column_is_a_400_with_the_reason(app_env, client):
    _runs(1)
    assert "order 'loss' is invalid" in html.unescape(client.get("/tester/proj?order=loss").text)
    assert client.get("/tester/proj?columns=colour.x").status_code == 400


def test_the_runs_table_pages_by_cursor(app_env, client):
    ids = _runs(5)
    first = client.get("/tester/proj?per_page=2&order=%2Bcreated_at")
    assert [i for i in ids if i in first.text] == ids[:2]
    next_url = re.search(r'href="(\?[^"]+)" id="next-page"', first.text).group(1).replace("&amp;", "&")
    second = client.get("/tester/proj" + next_url)
    assert [i for i in ids if i in second.text] == ids[2:4]
    assert "5 runs" in second.text


def test_the_run_page_shows_overview_config_summary_charts_files_and_artifacts(app_env, client, tmp_path):
    with wandb.init(project="proj", name="trainer", config={"lr": 0.5}, tags=["best"], group="grp",
                    job_type="train", notes="hello <script>") as run:
        run.log({"loss": 0.5, "acc": 0.9})
        run.log({"loss": 0.25})
        art = wandb.Artifact("data", type="dataset")
        (tmp_path / "a.txt").write_text("x")
        art.add_file(str(tmp_path / "a.txt"))
        run.log_artifact(art)
        (app_env / "notes.txt").write_text("saved file")
        run.save(str(app_env / "notes.txt"), base_path=str(app_env))
    with wandb.init(project="proj", job_type="eval") as reader:
        reader.use_artifact("data:latest")
    page = client.get(f"/tester/proj/runs/{run.id}")
    assert page.status_code == 200
    text = page.text
    for expected in ("trainer", "finished", "<span>best</span>", "grp", "train", "0.5", "0.25"):
        assert expected in text
    assert "hello &lt;script&gt;" in text  # escaped
    assert 'id="charts"' in text
    # The charts' keys come with the history (found in the same pass): W&B's own _step, _runtime... are none.
    assert sorted(client.get(f"/api/runs/tester/proj/{run.id}/history").json()["keys"]) == ["acc", "loss"]
    assert 'href="/tester/proj/artifacts/dataset/data/v0"' in text
    assert f'href="/tester/proj/runs/{run.id}/files/notes.txt"' in text
    download = client.get(f"/tester/proj/runs/{run.id}/files/notes.txt")
    assert download.content == b"saved file"
    assert "attachment" in download.headers["content-disposition"]
    used = client.get(f"/tester/proj/runs/{reader.id}")
    assert 'href="/tester/proj/artifacts/dataset/data/v0"' in used.text and "used" in used.text


def test_the_history_json_downsamples_keeping_min_and_max_and_zooms(app_env, client):
    with wandb.init(project="proj") as run:
        for step in range(5000):
            run.log({"loss": 100.0 if step == 1234 else float(step % 7), "other": "text"})
    base = f"/api/runs/tester/proj/{run.id}/history"
    whole = client.get(base, params={"keys": "loss,other"}).json()
    loss = whole["keys"]["loss"]
    assert len(loss["x"]) <= 1500 and len(loss["x"]) > 1000
    assert max(loss["max"]) == 100.0 and min(loss["min"]) == 0.0  # the spike survives
    assert whole["keys"]["other"]["x"] == []  # text is no point
    assert (whole["min_step"], whole["max_step"]) == (0, 4999)
    zoom = client.get(base, params={"keys": "loss", "min_step": 1200, "max_step": 1299}).json()
    assert zoom["keys"]["loss"]["x"] == [float(s) for s in range(1200, 1300)]  # every point when few
    assert zoom["keys"]["loss"]["y"][34] == 100.0
    # The quick view for a first drawing: evenly spaced rows, each its own point, marked not exact.
    quick = client.get(base, params={"quick": "1"}).json()
    assert quick["exact"] is False and sorted(quick["keys"]) == ["loss"]
    assert 1400 <= len(quick["keys"]["loss"]["x"]) <= 1500
    assert quick["keys"]["loss"]["x"][0] == 0.0 and quick["keys"]["loss"]["x"][-1] == 4999.0
    assert quick["keys"]["loss"]["min"] is None and quick["keys"]["loss"]["max"] is None  # no band to draw
    few = client.get(base, params={"quick": "1", "min_step": 1200, "max_step": 1299}).json()
    assert few["exact"] is True and few["keys"]["loss"]["y"] == zoom["keys"]["loss"]["y"]
    assert client.get(base, params={"points": 0}).status_code == 400
    assert client.get(base, params={"min_step": "x"}).status_code == 400
    assert client.get(base, params={"min_step": 9, "max_step": 1}).status_code == 400


def test_sql_buckets_match_the_python_reference(app_env):
    # The store's SQL and store/history_buckets.bucket_rows give the same points on both databases.
    from wandb_dagster.store.history_buckets import bucket_rows

    with wandb.init(project="proj") as run:
        for step in range(0, 3000, 3):
            run.log({"a": (step * 37) % 101 / 7, "b": True, 'odd"key': step, "c": None}, step=step)
    api_run = wandb.Api().run(f"proj/{run.id}")
    rows = list(api_run.scan_history())
    for lo, hi, count in ((0, 2997, 100), (10, 500, 7), (0, 2997, 5000)):
        found = history.sampled_history(api_run, ["a", "b", 'odd"key', "c"], min_step=lo, max_step=hi, points=count)
        first, last = found["min_step"], found["max_step"]
        expected = bucket_rows(rows, ["a", "b", 'odd"key', "c"], first, last, count)
        for key in ("a", 'odd"key'):
            got = found["keys"][key]
            assert got["x"] == pytest.approx([p[0] for p in expected[key]])
            assert got["y"] == pytest.approx([p[1] for p in expected[key]])
            assert got["min"] == [p[2] for p in expected[key]] and got["max"] == [p[3] for p in expected[key]]
        assert found["keys"]["b"]["x"] == [] and found["keys"]["c"]["x"] == []  # booleans and nulls are no points


def test_compare_overlays_the_runs_and_names_them(app_env, client):
    ids = _runs(2)
    page = client.get(f"/tester/proj/compare?runs={ids[0]},{ids[1]}")
    assert page.status_code == 200
    assert ids[0] in page.text and ids[1] in page.text
    assert f"/api/runs/tester/proj/{ids[0]}/history" in page.text and f"/api/runs/tester/proj/{ids[1]}/history" in page.text
    assert client.get(f"/tester/proj/compare?run={ids[0]}&run={ids[1]}").status_code == 200  # the table's form
    assert client.get("/tester/proj/compare?runs=nosuchrun").status_code == 404
    assert client.get("/tester/proj/compare").status_code == 400


def test_an_image_is_served_from_the_blob_store_and_a_missing_one_shows_as_missing(app_env, client):
    with wandb.init(project="proj") as run:
        run.log({"sample": wandb.Image(np.full((4, 6, 3), 200, dtype=np.uint8), caption="grey")})
        run.log({"other": wandb.Image(np.zeros((2, 2, 3), dtype=np.uint8))})
        run.summary["cover"] = wandb.Image(np.full((3, 3, 3), 90, dtype=np.uint8), caption="summary only")
    api_run = wandb.Api().run(f"proj/{run.id}")
    cover_hex = b64_to_hex(api_run.summary_metrics["cover"]["digest"])
    rows = list(api_run.scan_history())
    sample_hex = b64_to_hex(rows[0]["sample"]["digest"])
    other_hex = b64_to_hex(rows[1]["other"]["digest"])
    page = client.get(f"/tester/proj/runs/{run.id}")
    assert f"/media/{sample_hex}.png" in page.text and "grey" in page.text
    assert f"/media/{cover_hex}.png" in page.text and "cover · summary · summary only" in page.text
    image = client.get(f"/tester/proj/runs/{run.id}/media/{sample_hex}.png")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content[:4] == b"\x89PNG"
    # The blob of "other" vanishes from the storage: the page says missing, the image URL is a 404.
    blobs = Workspace.default().blobs
    path = blobs.blob_path(other_hex)
    os.chmod(path, 0o644)
    os.remove(path)
    page = client.get(f"/tester/proj/runs/{run.id}")
    assert page.status_code == 200
    assert "missing: media/images/other_1_" in page.text
    gone = client.get(f"/tester/proj/runs/{run.id}/media/{other_hex}.png")
    assert gone.status_code == 404 and "missing" in gone.text
    # A damaged blob is refused too (its MD5 no longer matches), never sent.
    path = blobs.blob_path(sample_hex)
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.write(b"XXXX")
    damaged = client.get(f"/tester/proj/runs/{run.id}/media/{sample_hex}.png")
    assert damaged.status_code == 404 and "damaged" in damaged.text


def test_the_files_list_the_media_files_as_run_files_does(app_env, client):
    with wandb.init(project="proj") as run:
        run.log({"table": wandb.Table(columns=["a"], data=[[1], [2]]), "page": wandb.Html("<p>hi</p>")})
    api_run = wandb.Api().run(f"proj/{run.id}")
    page = client.get(f"/tester/proj/runs/{run.id}")
    names = [f.name for f in api_run.files()]
    assert names and all(name in page.text for name in names)
    html_name = next(n for n in names if n.endswith(".html"))
    link = re.search(r'href="([^"]+)">' + re.escape(html_name), page.text).group(1)
    served = client.get(link)
    # User HTML is never served as a page of the app's origin: a download, not rendered.
    assert served.status_code == 200 and "attachment" in served.headers["content-disposition"]
    assert served.headers["content-type"] == "application/octet-stream" and b"<p>hi</p>" in served.content


def test_the_console_log_is_shown(app_env, client, monkeypatch):
    monkeypatch.setenv("WANDB_CONSOLE", "wrap")
    with wandb.init(project="proj") as run:
        print("hello from the training loop <b>")
        run.log({"loss": 1.0})
    page = client.get(f"/tester/proj/runs/{run.id}")
    assert "hello from the training loop &lt;b&gt;" in page.text
    assert 'id="console-log"' in page.text


def test_system_metrics_json(app_env, client, monkeypatch):
    monkeypatch.setenv("WANDB_X_DISABLE_STATS", "false")
    monkeypatch.setenv("WANDB_X_STATS_SAMPLING_INTERVAL", "0.1")
    import time

    with wandb.init(project="proj") as run:
        run.log({"loss": 1.0})
        time.sleep(0.5)
    found = client.get(f"/api/runs/tester/proj/{run.id}/system").json()
    assert any(k.startswith("system.") for k in found["keys"]), found
    series = next(iter(found["keys"].values()))
    assert len(series["x"]) == len(series["y"]) == len(series["min"]) >= 1


@pytest.mark.parametrize("path", [
    "/tester/proj/runs/.. ",
    "/tester/proj/runs/%2e%2e",
    "/tester/..%2f..%2fetc/runs/x",
    "/tester/proj/runs/RUN/files/../../../etc/passwd",
    "/tester/proj/runs/RUN/files/..%2f..%2fetc%2fpasswd",
    "/tester/proj/runs/RUN/files/%2e%2e/%2e%2e/pyproject.toml",
    "/tester/proj/runs/RUN/files/%00",
    "/tester/proj/runs/RUN/files/notes.txt%00.png",
    "/tester/proj/runs/RUN/media/..%2f..%2fstore.db",
    "/tester/proj/runs/RUN/media/0123456789abcdef0123456789abcdef.png",  # a valid digest the run does not name
    "/tester/proj/runs/RUN/media/ABCDEF",
    "/api/runs/tester/proj/..%2f..%2f/history",
    "/api/runs/tester/%2e%2e/RUN/history",
    "/nosuch/proj",
    "/tester/nosuch",
    "/tester/proj/runs/nosuchrun",
    "/tester/proj/runs/nosuchrun/files/x",
])
def test_every_path_parameter_is_validated_and_unknown_things_are_404(app_env, client, path):
    ids = _runs(1)
    response = client.get(path.replace("RUN", ids[0]))
    assert response.status_code == 404, (path, response.status_code, response.text[:200])
    assert "root:" not in response.text and "[project]" not in response.text and "SQLite" not in response.text


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # the URL with a password
def test_no_page_shows_the_database_password(app_env, database_url):
    from sqlalchemy import make_url
    from starlette.testclient import TestClient

    from wandb_dagster.app.server import create_app

    _runs(1)
    with_password = make_url(database_url).set(password="hunter2-secret").render_as_string(hide_password=False)
    app = create_app(database_url=with_password)  # PostgreSQL's trust auth ignores the password
    with TestClient(app, raise_server_exceptions=False) as c:
        home = c.get("/")
        assert home.status_code == 200
        assert "hunter2-secret" not in home.text and "***" in home.text
        assert "hunter2-secret" not in c.get("/tester/proj?filters={bad").text


@pytest.mark.parametrize("raw", [
    "/tester/proj/runs/..",
    "/tester/../runs/RUN",
    "/tester/proj/runs/RUN/files/../../../../etc/passwd",
    "/tester/proj/runs/RUN/files/./notes.txt",
    "/api/runs/tester/proj/../history",
])
def test_dot_segments_sent_as_they_are_are_404(app_env, app, raw):
    # HTTP clients normalise "..", a hand-made request need not: the server itself refuses such paths.
    import asyncio
    import threading

    ids = _runs(1)
    path = raw.replace("RUN", ids[0])
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "headers": [], "server": ("127.0.0.1", 80),
             "client": ("127.0.0.1", 1234), "root_path": ""}
    # In a thread of its own: Playwright's loop may be running in this one (a session-wide browser).
    worker = threading.Thread(target=lambda: asyncio.run(app(scope, receive, send)))
    worker.start()
    worker.join()
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert status == 404, (path, status, body[:200])
    assert b"root:" not in body


def test_a_resumed_run_is_read_again_not_served_from_the_kept_view(app_env, client):
    with wandb.init(project="proj", id="resumable") as run:
        run.log({"loss": 1.0})
    url = "/api/runs/tester/proj/resumable/history"
    assert client.get(url).json()["keys"]["loss"]["y"] == [1.0]
    assert client.get(url).json()["keys"]["loss"]["y"] == [1.0]  # kept: the run is finished
    with wandb.init(project="proj", id="resumable", resume="must") as run:
        run.log({"loss": 0.5})
    assert client.get(url).json()["keys"]["loss"]["y"] == [1.0, 0.5]


@sqlite_only  # the in-Python bucketing is SQLite's path
@pytest.mark.parametrize("missing", [(), ("numpy",), ("numpy", "orjson")])
def test_sqlite_bucketing_without_numpy_or_orjson_gives_the_same_points(app_env, monkeypatch, missing):
    import sys

    with wandb.init(project="proj") as run:
        for step in range(0, 900, 3):
            run.log({"a": (step * 37) % 101 / 7, "flag": step % 2 == 0, "t": "x"}, step=step)
    api_run = wandb.Api().run(f"proj/{run.id}")
    expected = history.sampled_history(api_run, None, min_step=3, max_step=600, points=50)
    for name in missing:
        monkeypatch.setitem(sys.modules, name, None)  # import fails
    history._CACHE.clear()  # the view of this finished run was kept: compute it again, without them
    again = history.sampled_history(api_run, None, min_step=3, max_step=600, points=50)
    assert sorted(again["keys"]) == sorted(expected["keys"]) == ["a"]
    assert again["keys"]["a"]["min"] == expected["keys"]["a"]["min"]
    assert again["keys"]["a"]["y"] == pytest.approx(expected["keys"]["a"]["y"])


@pytest.mark.parametrize("query", [
    {"filters": json.dumps({"config.lr": 10**400})},                  # an int beyond a float too
    {"filters": json.dumps({"config.lr": {"$in": [1, 10**400]}})},
    {"filters": json.dumps({"config.lr\u0000": 1})},                  # NUL in a key: no JSON path can quote it
    {"order": "+config.lr\u0000"},
    {"order": '+config.l"r'},
    {"filters": "[" * 1500 + "]" * 1500},                             # nested past Python's recursion limit
])
def test_hostile_filters_and_orders_are_a_400_not_a_500(app_env, client, query):
    # Found by review: these raised OverflowError, the database's JSON path error or RecursionError (500s).
    _runs(1)
    page = client.get("/tester/proj", params=query)
    assert page.status_code == 400, page.text[:300]
    assert 'id="filter-error"' in page.text


def test_history_steps_outside_64_bits_are_a_400(app_env, client):
    [run_id] = _runs(1)
    for query in ("min_step=9223372036854775808", "max_step=-99999999999999999999999999"):
        got = client.get(f"/api/runs/tester/proj/{run_id}/history?{query}")
        assert got.status_code == 400 and "outside" in got.text
