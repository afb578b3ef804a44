"""The artifact pages over HTTP (Starlette's TestClient), on SQLite and PostgreSQL: types and collections, a
collection's versions, a version's metadata, files (downloads verified, missing and damaged blobs, path
traversal) and lineage graph."""

from __future__ import annotations

import hashlib
import os
import re
from datetime import timedelta
from pathlib import Path

import pytest

import wandb_dagster as wandb


def _log_tree(run, aliases=None):
    Path("d/sub").mkdir(parents=True, exist_ok=True)
    Path("d/a.txt").write_text("aaa")
    Path("d/sub/b.bin").write_bytes(b"12345")
    Path("page.html").write_text("<script>alert(1)</script>")
    art = wandb.Artifact("tree", type="dataset", description="a <b>tree</b>", metadata={"rows": 3, "src": "x<y"})
    art.add_dir("d", name="data")
    art.add_file("page.html")
    art.add_reference("https://user:secret@example.invalid/x.csv?X-Amz-Signature=abc", checksum=False)
    art.ttl = timedelta(days=30)
    logged = run.log_artifact(art, aliases=aliases or [], tags=["golden"])
    logged.wait()
    return logged


def _pipeline():
    with wandb.init(project="p", id="prep", job_type="prep") as run:
        _log_tree(run, aliases=["best"])
    with wandb.init(project="p", id="train", job_type="train") as run:
        run.use_artifact("tree:latest")
        Path("m.txt").write_text("m")
        model = wandb.Artifact("model", type="model")
        model.add_file("m.txt")
        run.log_artifact(model).wait()
    with wandb.init(project="p", id="eval") as run:
        run.use_artifact("model:latest")


def _blob_path(hexdigest: str) -> Path:
    api = wandb.Api()
    return Path(api._ws.blobs.blob_path(hexdigest))


def test_project_artifacts_page_lists_types_and_collections(app_env, client) -> None:
    _pipeline()
    page = client.get("/tester/p/artifacts")
    assert page.status_code == 200
    assert 'href="/tester/p/artifacts/dataset/tree"' in page.text
    assert 'href="/tester/p/artifacts/model/model"' in page.text
    assert re.search(r'<h2 class="artifact-type">dataset</h2>', page.text)
    assert 'href="/tester/p/sweeps"' in page.text and 'href="/tester/p"' in page.text  # the project's other pages
    assert client.get("/tester/nope/artifacts").status_code == 404
    assert client.get("/tester/%2e%2e/artifacts").status_code == 404


def test_collection_page_shows_versions_aliases_and_tags(app_env, client) -> None:
    with wandb.init(project="p", id="maker") as run:
        for i in range(3):
            Path("f.txt").write_text(str(i))
            art = wandb.Artifact("data", type="dataset")
            art.add_file("f.txt")
            run.log_artifact(art, aliases=["prod"] if i == 1 else [], tags=["t1"] if i == 2 else []).wait()
    page = client.get("/tester/p/artifacts/dataset/data")
    assert page.status_code == 200
    for i in range(3):
        assert f'href="/tester/p/artifacts/dataset/data/v{i}"' in page.text
    rows = page.text.split('id="versions"')[1]
    assert "<span>prod</span>" in rows and "<span>latest</span>" in rows and "<span>t1</span>" in rows
    assert "maker" in rows
    assert client.get("/tester/p/artifacts/model/data").status_code == 404  # wrong type
    assert client.get("/tester/p/artifacts/dataset/nope").status_code == 404
    assert client.get("/tester/p/artifacts/dataset/data?start=garbage").status_code == 400


def test_types_and_aliases_with_spaces_have_pages(app_env, client) -> None:
    with wandb.init(project="p") as run:
        Path("f.txt").write_text("f")
        art = wandb.Artifact("data", type="raw data")
        art.add_file("f.txt")
        run.log_artifact(art, aliases=["best model"]).wait()
    listing = client.get("/tester/p/artifacts")
    assert 'href="/tester/p/artifacts/raw%20data/data"' in listing.text
    collection = client.get("/tester/p/artifacts/raw%20data/data")
    assert collection.status_code == 200 and 'href="/tester/p/artifacts/raw%20data/data/v0"' in collection.text
    assert client.get("/tester/p/artifacts/raw%20data/data/best%20model").status_code == 200
    assert client.get("/tester/p/artifacts/raw%20data/data/v0/files/f.txt").content == b"f"
    for bad in ("/tester/p/artifacts/raw%3Adata/data", "/tester/p/artifacts/raw%00data/data/v0",
                "/tester/p/artifacts/raw%20data/data/a%3Ab", "/tester/p/artifacts/%2e%2e/data/v0"):  # fmt: skip
        assert client.get(bad).status_code == 404, bad


def test_collection_page_pages_through_versions(app_env, client, monkeypatch) -> None:
    from wandb_dagster.app import artifacts

    monkeypatch.setattr(artifacts, "VERSIONS_PER_PAGE", 2)
    with wandb.init(project="p") as run:
        for i in range(3):
            Path("f.txt").write_text(str(i))
            art = wandb.Artifact("data", type="dataset")
            art.add_file("f.txt")
            run.log_artifact(art).wait()
    first = client.get("/tester/p/artifacts/dataset/data")
    assert "data/v1" in first.text and "data/v2" not in first.text
    start = re.search(r'href="\?start=([^"]+)"', first.text)
    assert start is not None
    second = client.get(f"/tester/p/artifacts/dataset/data?start={start.group(1)}")
    assert "data/v2" in second.text and "data/v0" not in second.text


def test_version_page_shows_metadata_aliases_tags_ttl_and_files(app_env, client) -> None:
    _pipeline()
    page = client.get("/tester/p/artifacts/dataset/tree/v0")
    assert page.status_code == 200
    text = page.text
    assert "<span>best</span>" in text and "<span>latest</span>" in text and "<span>golden</span>" in text
    assert "30 days" in text
    assert "&#34;rows&#34;: 3" in text or "&quot;rows&quot;: 3" in text
    assert "x&lt;y" in text and "a &lt;b&gt;tree&lt;/b&gt;" in text  # names and values are escaped
    assert 'href="/tester/p/runs/prep"' in text  # logged by
    # The browser: top level first, then a folder.
    browser = text.split('id="file-browser"')[1].split("</table>")[0]
    assert 'data-path="data"' in browser and 'data-path="page.html"' in browser
    assert 'href="/tester/p/artifacts/dataset/tree/v0/files/page.html"' in browser
    # A reference is shown without its credentials or signature.
    assert "example.invalid/x.csv" in browser and "secret" not in browser and "abc" not in browser
    sub = client.get("/tester/p/artifacts/dataset/tree/v0?dir=data")
    listing = sub.text.split('id="file-browser"')[1].split("</table>")[0]
    assert 'data-path="data/sub"' in listing and 'data-path="data/a.txt"' in listing
    assert client.get("/tester/p/artifacts/dataset/tree/v0?dir=data/sub").status_code == 200
    # Aliases resolve too, and unknown things are 404s.
    assert client.get("/tester/p/artifacts/dataset/tree/best").status_code == 200
    assert client.get("/tester/p/artifacts/dataset/tree/latest").status_code == 200
    assert client.get("/tester/p/artifacts/dataset/tree/v9").status_code == 404
    assert client.get("/tester/p/artifacts/model/tree/v0").status_code == 404
    assert client.get("/tester/p/artifacts/dataset/tree/v0?dir=nope").status_code == 404
    assert client.get("/tester/p/artifacts/dataset/tree/v0?dir=page.html").status_code == 404
    assert client.get("/tester/p/artifacts/dataset/tree/v0?hops=99").status_code == 400


def test_a_large_folder_is_listed_a_page_at_a_time(app_env, client, monkeypatch) -> None:
    from wandb_dagster.app import artifacts

    monkeypatch.setattr(artifacts, "FILES_PER_PAGE", 2)
    _pipeline()
    first = client.get("/tester/p/artifacts/dataset/tree/v0?dir=data")
    assert 'data-path="data/sub"' in first.text and 'data-path="data/a.txt"' in first.text
    top = client.get("/tester/p/artifacts/dataset/tree/v0").text.split('id="file-browser"')[1]
    assert 'data-path="data"' in top and 'data-path="page.html"' in top and 'data-path="x.csv"' not in top
    assert "offset=2" in top
    rest = client.get("/tester/p/artifacts/dataset/tree/v0?dir=&offset=2").text.split('id="file-browser"')[1]
    assert 'data-path="x.csv"' in rest and 'data-path="data"' not in rest.split("</table>")[0]
    assert client.get("/tester/p/artifacts/dataset/tree/v0?offset=-1").status_code == 400


def test_a_version_s_manifest_is_read_once_for_its_pages_and_downloads(app_env, client, monkeypatch) -> None:
    from wandb_dagster.app import artifacts

    _pipeline()
    built: list[int] = []
    real = artifacts.file_tree
    monkeypatch.setattr(artifacts, "file_tree", lambda manifest: built.append(len(manifest)) or real(manifest))
    for url in ("", "?dir=data", "?dir=data/sub", "/files/data/a.txt", "/files/page.html"):
        assert client.get(f"/tester/p/artifacts/dataset/tree/v0{url}").status_code == 200, url
    assert built == [4]
    assert client.get("/tester/p/artifacts/model/model/v0").status_code == 200 and built == [4, 1]


def test_downloads_are_the_verified_bytes_and_never_rendered(app_env, client) -> None:
    _pipeline()
    got = client.get("/tester/p/artifacts/dataset/tree/v0/files/data/sub/b.bin")
    assert got.status_code == 200 and got.content == b"12345"
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["content-disposition"].startswith("attachment;")
    html = client.get("/tester/p/artifacts/dataset/tree/v0/files/page.html")
    assert html.content == b"<script>alert(1)</script>"
    assert html.headers["content-type"] == "application/octet-stream" and html.headers["x-content-type-options"] == "nosniff"
    assert client.get("/tester/p/artifacts/dataset/tree/v0/files/nope.txt").status_code == 404
    ref = client.get("/tester/p/artifacts/dataset/tree/v0/files/x.csv")
    assert ref.status_code == 404 and "reference" in ref.text and "secret" not in ref.text


def test_a_missing_or_damaged_blob_shows_as_missing_not_as_a_500(app_env, client) -> None:
    _pipeline()
    missing_hex = hashlib.md5(b"aaa").hexdigest()
    damaged_hex = hashlib.md5(b"12345").hexdigest()
    gone = _blob_path(missing_hex)
    os.chmod(gone, 0o644)
    gone.unlink()
    damaged = _blob_path(damaged_hex)
    os.chmod(damaged, 0o644)
    damaged.write_bytes(b"54321")  # same size: only hashing finds it
    page = client.get("/tester/p/artifacts/dataset/tree/v0?dir=data")
    assert page.status_code == 200
    row = page.text.split('data-path="data/a.txt"')[1].split("</tr>")[0]
    assert '<span class="missing">missing</span>' in row
    lost = client.get("/tester/p/artifacts/dataset/tree/v0/files/data/a.txt")
    assert lost.status_code == 404 and "missing or damaged" in lost.text
    bad = client.get("/tester/p/artifacts/dataset/tree/v0/files/data/sub/b.bin")
    assert bad.status_code == 404 and "missing or damaged" in bad.text and b"54321" not in bad.content
    # A truncated blob counts as missing in the listing already.
    damaged.write_bytes(b"123")
    sub = client.get("/tester/p/artifacts/dataset/tree/v0?dir=data/sub")
    assert '<span class="missing">missing</span>' in sub.text.split('data-path="data/sub/b.bin"')[1].split("</tr>")[0]


def test_a_tampered_manifest_leaves_the_page_up_and_serves_no_file(app_env, client) -> None:
    import json

    import sqlalchemy as sa

    from wandb_dagster.store import schema as db

    _pipeline()
    api = wandb.Api()
    version_id = api.artifact("tester/p/tree:v0").id
    with api._ws.store._engine.begin() as conn:  # damage it as an edit by hand would
        query = sa.select(db.versions.c.id, db.versions.c.manifest).where(db.versions.c.public_id == version_id)
        pk, text = conn.execute(query).one()
        manifest = json.loads(text)
        manifest["contents"] = list(manifest["contents"].items())
        conn.execute(sa.update(db.versions).where(db.versions.c.id == pk).values(manifest=json.dumps(manifest)))
    page = client.get("/tester/p/artifacts/dataset/tree/v0")
    assert page.status_code == 200 and "cannot be read" in page.text and 'id="lineage-graph"' in page.text
    got = client.get("/tester/p/artifacts/dataset/tree/v0/files/page.html")
    assert got.status_code == 404 and "cannot be read" in got.text


@pytest.mark.parametrize(
    "path",
    [
        "../../../../etc/passwd",
        "%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "..%2f..%2f..%2fetc%2fpasswd",
        "%2fetc%2fpasswd",
        "data/%2e%2e/page.html",
        "data%5c..%5cpage.html",
        "data/sub/../../../../../../../SECRET",
        "%00page.html",
        "SECRET",
    ],
)
def test_file_names_cannot_reach_outside_the_version(app_env, client, path) -> None:
    _pipeline()
    secret = app_env.parent / "SECRET"
    secret.write_text("top secret")
    for url in (f"/tester/p/artifacts/dataset/tree/v0/files/{path}", f"/tester/p/artifacts/dataset/tree/v0?dir={path}"):
        got = client.get(url)
        assert got.status_code in (404, 400), (url, got.status_code)
        assert b"top secret" not in got.content and b"root:" not in got.content
    # Path parameters of the page itself are validated the same way.
    for url in ("/%2e%2e/p/artifacts/dataset/tree/v0", "/tester/p/artifacts/%2e%2e/tree/v0",
                "/tester/p/artifacts/dataset/..%2f..%2ftree/v0"):  # fmt: skip
        assert client.get(url).status_code == 404, url


def test_version_page_draws_the_lineage_graph_with_links(app_env, client) -> None:
    _pipeline()
    page = client.get("/tester/p/artifacts/model/model/v0")
    assert page.status_code == 200
    svg = page.text.split('id="lineage-graph"')[1].split("</svg>")[0]
    assert "<svg" in svg
    # Producer and consumer runs, and the version upstream of the producer, each a link to its page.
    assert 'href="/tester/p/runs/train"' in svg and 'data-run-id="train"' in svg
    assert 'href="/tester/p/runs/eval"' in svg and 'data-run-id="eval"' in svg
    assert 'href="/tester/p/artifacts/dataset/tree/v0"' in svg and 'href="/tester/p/runs/prep"' in svg
    assert svg.count('class="lineage-edge"') == 4
    one_hop = client.get("/tester/p/artifacts/model/model/v0?hops=1").text.split('id="lineage-graph"')[1]
    assert 'data-run-id="train"' in one_hop and "tree:v0" not in one_hop.split("</svg>")[0]


def test_run_names_in_the_lineage_graph_are_escaped(app_env, client) -> None:
    with wandb.init(project="p", id="evil", name='<img src=x onerror="alert(1)">&') as run:
        Path("f.txt").write_text("f")
        art = wandb.Artifact("data", type="dataset")
        art.add_file("f.txt")
        run.log_artifact(art).wait()
    svg = client.get("/tester/p/artifacts/dataset/data/v0").text.split('id="lineage-graph"')[1].split("</svg>")[0]
    assert "<img" not in svg and "&lt;img src=x onerror=" in svg and 'data-run-id="evil"' in svg


def test_a_registry_link_shows_its_source_version(app_env, client) -> None:
    with wandb.init(project="p") as run:
        logged = _log_tree(run)
        logged.link("wandb-registry-model/trees", aliases=["production"])
    page = client.get("/default/wandb-registry-model/artifacts/dataset/trees/v0")
    assert page.status_code == 200
    assert 'href="/tester/p/artifacts/dataset/tree/v0"' in page.text and "<span>production</span>" in page.text
    # The version where it was logged lists its registry links, with their aliases.
    source = client.get("/tester/p/artifacts/dataset/tree/v0").text
    links = source.split('id="links"')[1].split("</td>")[0]
    assert 'href="/default/wandb-registry-model/artifacts/dataset/trees/v0"' in links and "production" in links


def test_the_links_dagster_materializations_carry_open_these_pages(app_env, client) -> None:
    from wandb_dagster.dagster.io_manager import run_page, version_page

    with wandb.init(project="p", id="step") as run:
        Path("f.txt").write_text("f")
        art = wandb.Artifact("asset.one", type="raw data")
        art.add_file("f.txt")
        logged = run.log_artifact(art)
        logged.wait()
    fetched = wandb.Api().artifact("tester/p/asset.one:v0")
    assert client.get(version_page("", fetched)).status_code == 200
    assert version_page("", fetched) == "/tester/p/artifacts/raw%20data/asset.one/v0"
    assert run_page("", "tester", "p", "step") == "/tester/p/runs/step"  # the ui helper's run page


def test_a_version_number_beyond_64_bits_is_a_404(app_env, client) -> None:
    # Found by review: SQLite could not bind v9223372036854775808 (OverflowError, a 500); no version has it.
    _pipeline()
    for selector in ("v9223372036854775808", "v99999999999999999999"):
        assert client.get(f"/tester/p/artifacts/dataset/tree/{selector}").status_code == 404
    from wandb_dagster.sdk.artifact import ArtifactNotFoundError

    with pytest.raises(ArtifactNotFoundError, match="not found"):
        wandb.Api().artifact("tester/p/tree:v99999999999999999999")

