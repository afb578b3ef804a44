"""The SDK end to end on a workspace whose blob storage root is a bucket: moto S3 and fake-gcs-server GCS,
each with an SQLite and a PostgreSQL database.

The bucket is inspected with clients of its own (boto3, a fresh gcsfs), never through the store under test.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

import wandb_dagster as wandb
from wandb_dagster.sdk import run as run_mod
from wandb_dagster.sdk.workspace import Workspace
from wandb_dagster.storage import remote_blobs
from wandb_dagster.storage.hashing import b64_to_hex
from wandb_dagster.storage.progress import report_progress
from wandb_dagster.storage.remote_blobs import StorageAccessError
from wandb_dagster.store import Store

from . import test_seeds as _seeds
from . import test_versions as _versions


class Remote:
    """The bucket behind a remote workspace, seen by an independent client."""

    def __init__(self, kind: str, server, bucket: str) -> None:
        self.kind, self.server, self.bucket = kind, server, bucket
        self.root = f"{'s3' if kind == 's3' else 'gs'}://{bucket}/team-ws"

    def objects(self) -> dict[str, tuple[int, str]]:
        """hex digest -> (size, a version stamp that changes whenever the object is written again)."""
        out = {}
        if self.kind == "s3":
            client = self.server.client()
            for page in client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix="team-ws/"):
                for v in page.get("Versions", []):
                    _, shard, rest = v["Key"].split("/")
                    # Unversioned bucket: "null" versions; a rewrite shows in LastModified/ETag only, so the
                    # S3 tests count PUT requests on the server as well.
                    out.setdefault(shard + rest, (v["Size"], f"{v['VersionId']}/{v['LastModified']}"))
            return out
        for path, info in self.server.filesystem().find(f"{self.bucket}/team-ws", detail=True).items():
            _, _, shard, rest = path.split("/")
            out[shard + rest] = (info["size"], str(info["generation"]))
        return out

    def corrupt(self, hexdigest: str) -> None:
        key = f"team-ws/{hexdigest[:2]}/{hexdigest[2:]}"
        if self.kind == "s3":
            client = self.server.client()
            size = client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
            client.put_object(Bucket=self.bucket, Key=key, Body=b"\0" * size)
        else:
            fs = self.server.filesystem()
            fs.pipe_file(f"{self.bucket}/{key}", b"\0" * fs.info(f"{self.bucket}/{key}")["size"])

    def puts(self) -> int | None:
        """PUT requests the server answered since the last clear (S3 only; None for GCS)."""
        if self.kind != "s3":
            return None
        return sum(1 for m, _, _ in self.server.requests if m == "PUT")

    def clear_requests(self) -> None:
        if self.kind == "s3":
            self.server.requests.clear()


@pytest.fixture(params=["s3", "gcs"])
def remote(request: pytest.FixtureRequest) -> Remote:
    if request.param == "s3":
        # A versioned bucket: every rewrite of an object leaves a version behind, so dedup is visible.
        return Remote("s3", request.getfixturevalue("s3_server"), request.getfixturevalue("s3_versioned_bucket"))
    return Remote("gcs", request.getfixturevalue("gcs_server"), request.getfixturevalue("gcs_bucket"))


@pytest.fixture
def remote_ws(remote: Remote, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace on ``database_url`` whose storage root is the bucket; storage options from the environment."""
    for var in ("WANDB_PROJECT", "WANDB_RUN_ID", "WANDB_RUN_GROUP", "WANDB_JOB_TYPE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WANDB_DAGSTER_DIR", str(tmp_path / "workspace"))
    monkeypatch.setenv("WANDB_DAGSTER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("WANDB_ENTITY", "tester")
    monkeypatch.setenv("WANDB_DAGSTER_DATABASE_URL", database_url)
    monkeypatch.setenv("WANDB_DAGSTER_STORAGE", remote.root)
    monkeypatch.setenv("WANDB_DAGSTER_STORAGE_OPTIONS", json.dumps(remote.server.storage_options))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    yield cwd
    active = run_mod.current_run()
    if active is not None:
        active.finish()
    Workspace.close_all()


def make_tree(root: Path, n: int = 25, large: bool = False) -> dict[str, bytes]:
    files = {f"part-{i:02d}.bin": os.urandom(200 + i) for i in range(n)}
    files["sub/notes.txt"] = b"hello remote"
    if large:
        files["model.pt"] = os.urandom(remote_blobs.SMALL_MAX + 4321)  # streamed in parts
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_log_dedup_use_download_and_verify(remote: Remote, remote_ws: Path) -> None:
    files = make_tree(remote_ws / "data", large=True)
    with wandb.init(project="p") as run:
        artifact = wandb.Artifact("ds", type="dataset")
        artifact.add_dir("data")
        run.log_artifact(artifact)
    assert artifact.version == "v0"
    # Every blob the version names is in the bucket, with its size.
    stored = remote.objects()
    for entry in artifact.manifest:
        assert stored[b64_to_hex(entry.digest)][0] == entry.size
    assert len(stored) == len(files)

    # The same content again, from other files (no stat-cache help): same version, nothing re-uploaded.
    shutil.copytree(remote_ws / "data", remote_ws / "copy")
    remote.clear_requests()
    with wandb.init(project="p") as run:
        again = wandb.Artifact("ds", type="dataset")
        again.add_dir("copy")
        run.log_artifact(again)
    assert again.version == "v0"
    assert remote.objects() == stored, "no blob was written again"
    assert remote.puts() in (0, None)

    with wandb.init(project="p", job_type="eval") as run:
        used = run.use_artifact("ds:latest")
        root = Path(used.download())
    assert read_tree(root) == files
    used.verify(root)

    # Another reader through the Api: served from the download cache, no GET to the bucket.
    ws = Workspace.default()
    gets_before = ws.blobs.requests["get"]
    remote.clear_requests()
    other = Path(wandb.Api(overrides={"project": "p"}).artifact("ds:v0").download(root="other"))
    assert read_tree(other) == files
    assert ws.blobs.requests["get"] == gets_before
    if remote.kind == "s3":
        assert not [r for r in remote.server.requests if r[0] == "GET" and "list-type" not in r[2]]

    # skip_cache goes to the bucket, verified as well.
    direct = Path(wandb.Api(overrides={"project": "p"}).artifact("ds:v0").download(root="direct", skip_cache=True))
    assert read_tree(direct) == files
    assert ws.blobs.requests["get"] > gets_before


# Existing end-to-end flows of the local-root suites, run as written on a bucket-backed workspace.
_SHARED_FLOWS = [
    _seeds.test_seed_000_training_part,
    _seeds.test_seed_003_walkthrough,
    _seeds.test_seed_004_log_model_and_use_model,
    _versions.test_versions_are_gapless_and_latest_moves,
    _versions.test_identical_content_reuses_the_version_applies_aliases_and_keeps_lineage,
    _versions.test_incremental_artifacts_build_on_the_latest_version,
    _versions.test_delete_rules_and_indices_never_reused,
]


@pytest.mark.parametrize("flow", _SHARED_FLOWS, ids=lambda f: f.__name__.removeprefix("test_"))
def test_existing_sdk_flows_on_a_bucket(flow, remote: Remote, remote_ws: Path) -> None:
    flow(remote_ws)
    assert remote.objects(), "the flow's blobs went to the bucket"


def test_a_corrupted_blob_in_the_bucket_is_never_handed_out(remote: Remote, remote_ws: Path, tmp_path) -> None:
    (remote_ws / "w.bin").write_bytes(os.urandom(5000))
    with wandb.init(project="p") as run:
        logged = run.log_artifact("w.bin", name="weights", type="model")
    digest = b64_to_hex(logged.manifest.entries["w.bin"].digest)
    remote.corrupt(digest)
    with pytest.raises(ValueError, match=digest):
        wandb.Api(overrides={"project": "p"}).artifact("weights:v0").download(root="out")
    assert not (remote_ws / "out" / "w.bin").exists()


def test_every_blob_is_stored_before_the_version_commits(remote: Remote, remote_ws: Path, monkeypatch) -> None:
    files = make_tree(remote_ws / "data", n=10)
    seen: list[dict] = []
    # Inside the commit transaction, after its writes: what does the bucket hold at that moment?
    monkeypatch.setattr(Store, "_fault_hook", lambda point: seen.append(remote.objects()))
    with wandb.init(project="p") as run:
        artifact = wandb.Artifact("ds", type="dataset")
        artifact.add_dir("data")
        run.log_artifact(artifact)
    assert seen, "the commit ran"
    for entry in artifact.manifest:
        assert seen[0][b64_to_hex(entry.digest)][0] == entry.size
    assert len(seen[0]) == len(files)


def test_a_file_that_changed_before_commit_leaves_no_version_and_no_blob(remote: Remote, remote_ws: Path) -> None:
    path = remote_ws / "big.bin"
    path.write_bytes(os.urandom(remote_blobs.SMALL_MAX + 10))
    with wandb.init(project="p") as run:
        artifact = wandb.Artifact("big", type="model")
        entry = artifact.add_file(str(path), policy="immutable")  # copied at log time, not now
        path.write_bytes(os.urandom(remote_blobs.SMALL_MAX + 10))  # same size, other bytes
        with pytest.raises(ValueError, match="changed after it was added"):
            run.log_artifact(artifact)
    assert b64_to_hex(entry.digest) not in remote.objects()
    assert not wandb.Api(overrides={"project": "p"}).artifact_exists("big:v0")


def test_progress_hook_reports_uploads_and_downloads(remote: Remote, remote_ws: Path) -> None:
    files = make_tree(remote_ws / "data", n=30)
    total = sum(map(len, files.values()))
    calls: list[tuple[int, int, int, int]] = []
    with report_progress(lambda *a: calls.append(a)), wandb.init(project="p") as run:
        artifact = wandb.Artifact("ds", type="dataset")
        artifact.add_dir("data")  # uploads happen here (policy "mutable")
        run.log_artifact(artifact)
    assert calls[-1] == (total, total, len(files), len(files))
    calls.clear()
    with report_progress(lambda *a: calls.append(a)):
        wandb.Api(overrides={"project": "p"}).artifact("ds:v0").download(root="out")
    assert calls[0] == (0, total, 0, len(files)) and calls[-1] == (total, total, len(files), len(files))


def test_storage_options_never_reach_the_database(remote: Remote, remote_ws: Path, database_url: str) -> None:
    (remote_ws / "a.txt").write_text("a")
    with wandb.init(project="p") as run:
        run.log_artifact("a.txt", name="a", type="dataset")
    options_json = os.environ["WANDB_DAGSTER_STORAGE_OPTIONS"]
    secrets = [v for v in (remote.server.storage_options.get("secret"), remote.server.storage_options.get("key"))
               if v] or [remote.server.endpoint_url]
    url = database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sa.create_engine(url)
    try:
        meta = sa.MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            dump = "\n".join(str(row) for table in meta.sorted_tables for row in conn.execute(sa.select(table)))
    finally:
        engine.dispose()
    assert remote.root in dump  # the root is recorded: every client finds the blobs
    for secret in secrets:
        assert secret not in dump, f"{secret!r} from {options_json} reached the database"


def test_settings_argument_selects_the_bucket(remote: Remote, remote_ws: Path, monkeypatch, tmp_path) -> None:
    from wandb_dagster.storage.backend import open_blob_store

    monkeypatch.delenv("WANDB_DAGSTER_STORAGE_OPTIONS")
    monkeypatch.delenv("WANDB_DAGSTER_STORAGE")
    (remote_ws / "a.txt").write_text("via settings")
    root = remote.root + "-2"
    settings = {"database_url": f"sqlite:///{tmp_path / 'other.db'}", "storage_root": root,
                "storage_options": remote.server.storage_options}
    with wandb.init(project="p", settings=settings) as run:
        logged = run.log_artifact("a.txt", name="a", type="dataset")
    digest = b64_to_hex(logged.manifest.entries["a.txt"].digest)
    assert digest == hashlib.md5(b"via settings").hexdigest()
    assert open_blob_store(root, remote.server.storage_options).exists(digest, size=len("via settings"))


def test_a_missing_bucket_fails_when_the_workspace_opens(remote: Remote, remote_ws: Path, monkeypatch) -> None:
    bad = remote.root.replace(remote.bucket, "no-such-bucket-zz")
    monkeypatch.setenv("WANDB_DAGSTER_STORAGE", bad)
    with pytest.raises(StorageAccessError, match=rf"{bad}.*does not exist"):
        wandb.init(project="p")


@pytest.mark.parametrize(
    "value, message",
    [("{not json", "not valid JSON"), ('["a"]', "must be a JSON object")],
)
def test_bad_storage_options_are_named(value: str, message: str, monkeypatch) -> None:
    from wandb_dagster.settings import Settings

    monkeypatch.setenv("WANDB_DAGSTER_STORAGE_OPTIONS", value)
    with pytest.raises(ValueError, match=f"WANDB_DAGSTER_STORAGE_OPTIONS.*{message}"):
        Settings.resolve()


@pytest.mark.parametrize(
    "root, message",
    [("s3://", "does not name a bucket"), ("gs://KEY:SECRET@bucket/p", "carries credentials"),
     ("s3://bucket/p?versionId=1", "no query string"),
     ("sftp://user:SECRET@host/blobs", "carries credentials"), ("sftp://SECRET@host/blobs", "carries credentials"),
     ("https://host/blobs?X-Amz-Signature=SECRET", "carries credentials")],
)
def test_bad_storage_roots_are_named(root: str, message: str) -> None:
    from wandb_dagster.settings import Settings

    with pytest.raises(ValueError, match=message) as err:
        Settings.resolve(storage_root=root)
    assert "SECRET" not in str(err.value)


def test_storage_roots_are_normalized() -> None:
    from wandb_dagster.settings import Settings

    assert Settings.resolve(storage_root="s3://bucket/a/b/").storage_root == "s3://bucket/a/b"
    assert Settings.resolve(storage_root="gs://bucket/").storage_root == "gs://bucket"
    assert "secret" not in repr(Settings.resolve(storage_options={"secret": "xyz"}))


def test_a_draft_of_a_bucket_version_logs_into_a_local_workspace(remote: Remote, remote_ws: Path, tmp_path) -> None:
    files = make_tree(remote_ws / "data", n=3)
    with wandb.init(project="p") as run:
        run.log_artifact(str(remote_ws / "data"), name="ds", type="dataset")
    draft = wandb.Api(overrides={"project": "p"}).artifact("ds:v0").new_draft()
    local = {"database_url": f"sqlite:///{tmp_path / 'local.db'}", "storage_root": str(tmp_path / "local-blobs")}
    with wandb.init(project="copy", settings=local) as run:
        copied = run.log_artifact(draft)
        root = Path(copied.download(root=str(tmp_path / "out")))
    assert read_tree(root) == files
    assert len(list((tmp_path / "local-blobs").rglob("*"))) > len(files)  # blobs were copied, not referenced


def test_a_draft_missing_one_bucket_blob_names_that_entry(remote: Remote, remote_ws: Path, tmp_path) -> None:
    make_tree(remote_ws / "data", n=3, large=True)
    with wandb.init(project="p") as run:
        logged = run.log_artifact(str(remote_ws / "data"), name="ds", type="dataset")
    # A small blob goes missing; the large one (streamed after the small ones) must still be fetched, so the
    # error names only the entry that is really gone.
    gone = "part-00.bin"
    hexdigest = b64_to_hex(logged.manifest.entries[gone].digest)
    key = f"team-ws/{hexdigest[:2]}/{hexdigest[2:]}"
    if remote.kind == "s3":
        remote.server.client().delete_object(Bucket=remote.bucket, Key=key)
    else:
        remote.server.filesystem().rm(f"{remote.bucket}/{key}")
    draft = wandb.Api(overrides={"project": "p"}).artifact("ds:v0").new_draft()
    local = {"database_url": f"sqlite:///{tmp_path / 'local.db'}", "storage_root": str(tmp_path / "local-blobs")}
    with (
        wandb.init(project="copy", settings=local) as run,
        pytest.raises(ValueError, match=rf"stored copy of {gone!r}") as info,
    ):
        run.log_artifact(draft)
    others = [name for name in logged.manifest.entries if name != gone]
    assert not any(repr(name) in str(info.value) for name in others)
