"""Fixtures for the storage layer: a blob store on every backend, with an independent view of what it stored.

``backend`` runs a test once per implementation of the blob protocol: the local folder (unnamed O_TMPFILE
temp files, and the named-temp fallback), fsspec's in-memory filesystem (the generic fsspec store), S3 on
moto's server and GCS on fake-gcs-server. What a store holds is checked through another client (plain
files, a second fsspec handle, boto3 / a fresh gcsfs), not through the store under test.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from wandb_dagster.storage.backend import open_blob_store
from wandb_dagster.storage.blobs import BlobStore
from wandb_dagster.storage.fsspec_blobs import FsspecBlobStore

BACKENDS = ["local", "named_tmp", "memory", "s3", "gcs"]


class Backend:
    """A store on a fresh root of one backend, plus ways to look at (and damage) the root behind its back."""

    def __init__(self, kind: str, root: str, options: dict | None = None, server=None, bucket: str | None = None):
        self.kind = kind
        self.root = root
        self.options = options
        self.server = server
        self.bucket = bucket
        self.store = self.new_store()

    @property
    def is_bucket(self) -> bool:
        return self.kind in ("s3", "gcs")

    @property
    def streamed_size(self) -> int:
        """A size that takes the store's streamed path (several reads / parts) rather than one buffer."""
        if self.is_bucket:
            from wandb_dagster.storage import remote_blobs

            return remote_blobs.SMALL_MAX + 5
        from wandb_dagster.storage.hashing import CHUNK

        return 2 * CHUNK + 123

    def new_store(self):
        """Another client on the same root (as a second process would open it)."""
        store = open_blob_store(self.root, self.options)
        if self.kind == "named_tmp":
            store._use_tmpfile = False  # as where O_TMPFILE or /proc is missing
        return store

    def key(self, hexdigest: str) -> str:
        """The blob's name relative to the root."""
        return f"{hexdigest[:2]}/{hexdigest[2:]}"

    def objects(self) -> dict[str, int]:
        """name relative to the root -> size, of everything under the root (blobs and anything else)."""
        if self.kind in ("local", "named_tmp"):
            base = Path(self.root)
            if not base.exists():
                return {}
            return {str(p.relative_to(base)): p.stat().st_size for p in base.rglob("*") if p.is_file()}
        if self.kind == "memory":
            fs, path = self.store._fs, self.store._fsroot
            return {p[len(path) + 1 :]: info["size"] for p, info in fs.find(path, detail=True).items()}
        if self.kind == "s3":
            pages = self.server.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix="blobs/")
            return {o["Key"][len("blobs/") :]: o["Size"] for page in pages for o in page.get("Contents", [])}
        fs = self.server.filesystem()
        prefix = f"{self.bucket}/blobs/"
        return {p[len(prefix) :]: info["size"] for p, info in fs.find(f"{self.bucket}/blobs", detail=True).items()}

    def leftovers(self) -> list[str]:
        """Whatever under the root is not a blob (temp files): there must never be any once a call returned."""
        return sorted(k for k in self.objects() if not re.fullmatch(r"[0-9a-f]{2}/[0-9a-f]{30}", k))

    def write_raw(self, hexdigest: str, data: bytes) -> None:
        """Put ``data`` under the blob's name behind the store's back (damage, or another writer)."""
        if self.kind in ("local", "named_tmp"):
            blob = Path(self.root) / self.key(hexdigest)
            blob.parent.mkdir(parents=True, exist_ok=True)
            if blob.exists():
                blob.chmod(0o644)
            blob.write_bytes(data)
        elif self.kind == "memory":
            self.store._fs.pipe_file(f"{self.store._fsroot}/{self.key(hexdigest)}", data)
        elif self.kind == "s3":
            self.server.client().put_object(Bucket=self.bucket, Key=f"blobs/{self.key(hexdigest)}", Body=data)
        else:
            self.server.filesystem().pipe_file(f"{self.bucket}/blobs/{self.key(hexdigest)}", data)


def _backend(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> Iterator[Backend]:
    if kind in ("local", "named_tmp"):
        yield Backend(kind, str(tmp_path / "blobs"))
    elif kind == "memory":
        # fsspec's memory filesystem is process-global: give each test its own root and clear it afterwards.
        backend = Backend(kind, f"memory://blobs-{uuid.uuid4().hex}")
        yield backend
        fs, path = backend.store._fs, backend.store._fsroot
        if fs.exists(path):
            fs.rm(path, recursive=True)
    elif kind == "s3":
        server, bucket = request.getfixturevalue("s3_server"), request.getfixturevalue("s3_bucket")
        yield Backend(kind, f"s3://{bucket}/blobs", server.storage_options, server, bucket)
    elif kind == "gcs":
        server, bucket = request.getfixturevalue("gcs_server"), request.getfixturevalue("gcs_bucket")
        yield Backend(kind, f"gs://{bucket}/blobs", server.storage_options, server, bucket)
    else:
        raise ValueError(kind)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The same case on every implementation of the blob protocol."""
    yield from _backend(request, request.param, tmp_path)


@pytest.fixture(params=["s3", "gcs"])
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The object-store backends only (S3 on moto, GCS on fake-gcs-server)."""
    yield from _backend(request, request.param, tmp_path)


@pytest.fixture
def local_store(tmp_path: Path) -> BlobStore:
    return BlobStore(str(tmp_path / "blobs"))


@pytest.fixture
def named_tmp_store(tmp_path: Path) -> BlobStore:
    """A local store that uses named temp files + rename, as where O_TMPFILE or /proc is missing."""
    store = BlobStore(str(tmp_path / "blobs"))
    store._use_tmpfile = False
    return store


@pytest.fixture
def memory_store() -> Iterator[FsspecBlobStore]:
    root = f"memory://blobs-{uuid.uuid4().hex}"
    store = open_blob_store(root)
    assert isinstance(store, FsspecBlobStore)
    yield store
    if store._fs.exists(store._fsroot):
        store._fs.rm(store._fsroot, recursive=True)

