"""Blob storage in an S3 or GCS bucket: ``s3://bucket/prefix`` or ``gs://bucket/prefix``, through s3fs / gcsfs.

The object-store implementation of :class:`~wandb_dagster.storage.backend.BlobBackend` (build stores with
:func:`~wandb_dagster.storage.backend.open_blob_store`). The layout is the local one,
``{root}/{hex[:2]}/{hex[2:]}``, so a root can be copied between a folder and a bucket as is. What differs is
how the bytes travel:

- Blobs are written straight to their content-addressed key. A PUT (or a completed multipart / finalized
  resumable upload) is atomic and durable once it returns, so a key only ever shows complete content and no
  temp key + copy is needed (docs/architecture.md invariant 1); :meth:`ObjectStoreBlobs.sync` has nothing to do.
- Bytes are hashed on the way out and the upload is completed only if they hash to the key's digest: a file
  that changes while it is uploaded is never stored under a wrong name (its multipart upload is aborted).
- Many small files: read and hashed on the calling thread, their existence checked with listings (see
  :meth:`ObjectStoreBlobs._list_sizes`), the missing ones uploaded by a bounded number of concurrent
  requests on fsspec's event loop.
- Large files: streamed in parts (storage/buckets.py: S3 multipart with a few parts in flight; GCS
  resumable); memory stays at a few parts whatever the file size. The key is the digest, so a file whose
  digest is not known yet is hashed in a first pass (which also lets a blob already stored skip the upload).
  Downloads stream into a temp file and are verified while writing.

Endpoint and credentials come from storage options when given (``WANDB_DAGSTER_STORAGE_OPTIONS``), else from
the usual environment and config files. With a GCS emulator, set ``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false``
before gcsfs is imported, or every call waits for a 45-95 s timeout.

Example::

    >>> store = open_blob_store("s3://my-bucket/blobs")   # an ObjectStoreBlobs   # doctest: +SKIP
    >>> store.check_access()                              # clear error if the bucket is unusable  # doctest: +SKIP
    >>> store.put_files(["a.bin", "b.bin"])               # [(hex, size), ...]   # doctest: +SKIP
"""

from __future__ import annotations

import bisect
import collections
import concurrent.futures
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, BinaryIO

from . import access, buckets
from . import progress as _progress
from .backend import DownloadItem
from .errors import (
    ContentChangedError,
    CorruptBlobError,
    MissingBlobsError,
    StorageAccessError,
    is_a_directory,
    missing_blob,
)
from .hashing import check_hex, hash_file, new_md5
from .uri_credentials import redact, redact_exception
from .verified_write import write_verified

SMALL_MAX = 16 * 1024 * 1024
"""Files below this are read whole and sent with one PUT; larger ones are streamed in parts."""
CONCURRENCY = 32
"""Requests in flight for batches of small blobs (uploads, downloads, existence checks)."""
BATCH_BYTES = 64 * 1024 * 1024
BATCH_FILES = 1000
"""put_files reads and hashes at most this many files / bytes of small files, then checks and uploads them
before reading more: memory stays bounded however many files are logged."""
HEAD_MAX = 16
"""Up to this many digests, existence is asked per blob (concurrent HEADs); beyond, listings are cheaper."""

_SHARD_RE = re.compile(r"([0-9a-f]{2})/([0-9a-f]{30})")


class ObjectStoreBlobs:
    """Content-addressed blobs in an S3 or GCS bucket (see the module docstring); storage options go to
    s3fs / gcsfs as keyword arguments. ``requests`` counts the requests sent, by kind."""

    is_local = False
    batched_downloads = True  # concurrent GETs of many small blobs beat fetching them one by one
    max_workers = CONCURRENCY

    def __init__(self, root: str | os.PathLike[str], storage_options: dict[str, Any] | None = None) -> None:
        import fsspec

        root = os.fspath(root)
        options = dict(storage_options or {})
        # A fresh filesystem object: fsspec's instance cache would share listing caches (stale sizes) and
        # credentials between workspaces.
        options.setdefault("skip_instance_cache", True)
        try:
            self._fs, path = fsspec.core.url_to_fs(root, **options)
        except ImportError as exc:
            extra = "s3" if root.lower().startswith("s3") else "gcs"
            raise ImportError(
                f"Storage root {root!r} needs {'s3fs' if extra == 's3' else 'gcsfs'}: pip install "
                f"'wandb-dagster[{extra}]' ({redact(str(exc))})"
            ) from redact_exception(exc)
        except TypeError as exc:  # an option the filesystem does not know
            raise ValueError(
                f"Storage options for {root!r} were refused by {root.split(':', 1)[0]}fs ({redact(str(exc))}); check "
                "storage_options / WANDB_DAGSTER_STORAGE_OPTIONS against the s3fs / gcsfs documentation"
            ) from redact_exception(exc)
        except Exception as exc:  # e.g. gcsfs checking a token it was given
            raise StorageAccessError(access.describe_error(root, exc)) from redact_exception(exc)
        self.root = root.rstrip("/")
        self._fsroot = path.rstrip("/")
        bucket, _, prefix = self._fsroot.partition("/")
        self._prefix = f"{prefix}/" if prefix else ""
        self._io = buckets.BucketIO(self._fs, self.root)
        self._bucket = buckets.bucket_for(self._fs, bucket, self._io)
        self.requests = self._io.requests

    def __repr__(self) -> str:
        return f"ObjectStoreBlobs({self.root!r})"

    def _key(self, hexdigest: str) -> str:
        return f"{self._prefix}{hexdigest[:2]}/{hexdigest[2:]}"

    def blob_path(self, hexdigest: str) -> str:
        check_hex(hexdigest)
        return f"{self.root}/{hexdigest[:2]}/{hexdigest[2:]}"

    def check_access(self) -> None:
        """One TCP connection, then one listing request under the root; StorageAccessError naming the root
        and what to do otherwise.

        Called when a workspace opens, so a missing bucket, refused credentials or an unreachable endpoint
        show up at once instead of in the middle of logging an artifact.
        """
        url = self._bucket.endpoint()
        if url:
            try:
                access.probe(url)
            except OSError as exc:
                raise StorageAccessError(redact(
                    f"storage root {self.root!r} could not be reached: no connection to its endpoint {url} "
                    f"({type(exc).__name__}: {exc}); check the endpoint (AWS_ENDPOINT_URL, STORAGE_EMULATOR_HOST, "
                    "or endpoint options in WANDB_DAGSTER_STORAGE_OPTIONS) and the network"
                )) from redact_exception(exc)
        try:
            self.requests["list"] += 1
            self._io.run(self._bucket.list_page, self._prefix, None, None)
        except StorageAccessError:
            raise
        except Exception as exc:
            raise StorageAccessError(access.describe_error(self.root, exc)) from redact_exception(exc)

    # -- existence -----------------------------------------------------------------------------------------

    def exists(self, hexdigest: str, size: int | None = None) -> bool:
        size_found = self._stored_size(check_hex(hexdigest))
        return size_found is not None and (size is None or size_found == size)

    def exists_many(self, hexes: Iterable[str], sizes: dict[str, int] | None = None) -> set[str]:
        """The subset of ``hexes`` that is stored: concurrent HEADs for a few, listings for many."""
        wanted = {check_hex(h) for h in hexes}
        found = self._remote_sizes(wanted)
        if sizes is None:
            return set(found)
        return {h for h, n in found.items() if h not in sizes or sizes[h] == n}

    def _stored_size(self, hexdigest: str) -> int | None:
        self.requests["head"] += 1
        return self._io.run(self._bucket.head, self._key(hexdigest))

    def _remote_sizes(self, wanted: set[str]) -> dict[str, int]:
        if not wanted:
            return {}
        return self._io.run(self._sizes, wanted)

    async def _sizes(self, wanted: set[str]) -> dict[str, int]:
        if len(wanted) <= HEAD_MAX:
            hexes = sorted(wanted)
            self.requests["head"] += len(hexes)
            sizes = await self._io.gather((self._bucket.head(self._key(h)) for h in hexes), CONCURRENCY)
            return {h: n for h, n in zip(hexes, sizes, strict=True) if n is not None}
        return await self._list_sizes(wanted)

    async def _list_sizes(self, wanted: set[str]) -> dict[str, int]:
        """Sizes of the wanted blobs that exist, from listings that skip the shards nobody asked for.

        Blobs live under 256 shard prefixes, in key order. One listing of the whole root costs a request per
        1,000 stored blobs; a listing per shard costs a request per shard wanted. This walks the root in key
        order but jumps (StartAfter / startOffset) to the next wanted shard whenever a page ends before it, so
        it costs about the smaller of the two: one request for a store of up to 1,000 blobs, and no more than
        a request per wanted shard (plus one per further 1,000 blobs in a shard) for a huge one.
        """
        shards = sorted({h[:2] for h in wanted})
        base = self._prefix
        found: dict[str, int] = {}
        start: str | None = f"{base}{shards[0]}/"
        token: str | None = None
        while True:
            self.requests["list"] += 1
            items, token = await self._bucket.list_page(base, start, token)
            for name, size in items:
                m = _SHARD_RE.fullmatch(name[len(base) :])
                if m is not None and (h := m.group(1) + m.group(2)) in wanted:
                    found[h] = size
            if token is None:
                return found
            last = items[-1][0][len(base) : len(base) + 2] if items else ""
            i = bisect.bisect_left(shards, last)
            if i == len(shards):
                return found  # every wanted shard is behind us
            if items and shards[i] != last:
                start, token = f"{base}{shards[i]}/", None  # jump over shards nobody wants

    # -- writing -------------------------------------------------------------------------------------------

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        hexdigest = new_md5(data).hexdigest()
        if self._stored_size(hexdigest) != len(data):
            self.requests["put"] += 1
            self._io.run(self._bucket.put, self._key(hexdigest), data, hexdigest)
        return hexdigest, len(data)

    def put_file(self, local_path: str | os.PathLike[str], expected_hex: str | None = None) -> tuple[str, int]:
        """Store a local file (a blob already present with that size is not sent again)."""
        return self.put_files([local_path], [expected_hex])[0]

    def put_files(
        self,
        paths: Sequence[str | os.PathLike[str]],
        expected: Sequence[str | None] | None = None,
        progress: Callable[[int], Any] | None = None,
    ) -> list[tuple[str, int]]:
        """Store many local files; returns (hex, size) in the order of ``paths``.

        Small files go in batches: read and hash (on this thread), one batched existence check, then
        concurrent PUTs of the missing ones. Large files are streamed one at a time, each with its parts in
        flight concurrently. ``progress(nbytes)`` is called once per file; the hook of
        :func:`~wandb_dagster.storage.progress.report_progress` gets (bytes, total, files, total).
        """
        if expected is not None and len(expected) != len(paths):
            raise ValueError(f"expected has {len(expected)} digests for {len(paths)} paths; pass one per path")
        exp = [check_hex(e) if e is not None else None for e in (expected or [None] * len(paths))]
        sizes = []
        for p in paths:
            sizes.append(os.stat(p).st_size)
        track = _progress.tracker(sum(sizes), len(paths))
        results: list[tuple[str, int] | None] = [None] * len(paths)

        def done(i: int, result: tuple[str, int], counted: bool) -> None:
            """``counted``: its bytes were reported while they were sent (else: now, e.g. a dedup skip)."""
            results[i] = result
            track.add(0 if counted else result[1], 1)
            if progress is not None:
                progress(result[1])

        batch: list[tuple[int, str, bytes]] = []
        batch_bytes = 0
        for i, path in enumerate(paths):
            if sizes[i] >= SMALL_MAX:
                done(i, self._put_large(path, exp[i], track), True)
                continue
            try:
                with open(path, "rb", buffering=0) as f:
                    data = f.read()
            except IsADirectoryError:
                raise is_a_directory(path) from None
            if len(data) >= SMALL_MAX:  # grew since the stat
                done(i, self._put_large(path, exp[i], track), True)
                continue
            hexdigest = new_md5(data).hexdigest()
            if (announced := exp[i]) is not None and hexdigest != announced:
                raise ContentChangedError(path, announced, hexdigest)
            batch.append((i, hexdigest, data))
            batch_bytes += len(data)
            if batch_bytes >= BATCH_BYTES or len(batch) >= BATCH_FILES:
                self._put_batch(batch, done, track)
                batch, batch_bytes = [], 0
        if batch:
            self._put_batch(batch, done, track)
        track.finish()
        return results  # type: ignore[return-value]

    def _put_batch(
        self, batch: list[tuple[int, str, bytes]], done: Callable[[int, tuple[str, int], bool], None], track: Any
    ) -> None:
        unique: dict[str, bytes] = {}
        for _, h, data in batch:
            unique.setdefault(h, data)
        present = self._remote_sizes(set(unique))
        # A stored blob of another size is damage (or a foreign object under our name): overwrite it.
        missing = [(h, data) for h, data in unique.items() if present.get(h) != len(data)]
        if missing:
            self.requests["put"] += len(missing)

            async def put(h: str, data: bytes) -> None:
                await self._bucket.put(self._key(h), data, h)
                track.add(len(data))

            self._io.run(self._io.gather, [put(h, d) for h, d in missing], CONCURRENCY)
        sent = {h for h, _ in missing}  # the first file with each of these digests was reported while sent
        for i, h, data in batch:
            done(i, (h, len(data)), h in sent)
            sent.discard(h)

    def _put_large(self, path: str | os.PathLike[str], expected_hex: str | None, track: Any) -> tuple[str, int]:
        """Stream a large file: if its digest is not known yet, a first pass hashes it (the key is the
        digest); a blob already stored with that size ends it there. The upload pass hashes the bytes it
        sends again and completes the upload only if they still match."""
        if expected_hex is None:
            expected_hex, size = hash_file(path)
        else:
            size = os.stat(path).st_size
        if self._stored_size(expected_hex) == size:
            track.add(size)
            return expected_hex, size
        try:
            f = open(path, "rb", buffering=0)  # noqa: SIM115 (the except covers only the open; `with f` follows)
        except IsADirectoryError:
            raise is_a_directory(path) from None
        with f:
            sent = self._bucket.upload(f, path, self._key(expected_hex), expected_hex, size, track)
        return expected_hex, sent

    # -- reading -------------------------------------------------------------------------------------------

    def open(self, hexdigest: str) -> BinaryIO:
        """The stored bytes as a file object (unverified; prefer :meth:`get_file`)."""
        path = f"{self._fsroot}/{check_hex(hexdigest)[:2]}/{hexdigest[2:]}"
        try:
            return self._fs.open(path, "rb", block_size=buckets.PART_SIZE)
        except FileNotFoundError:
            raise missing_blob(hexdigest, self.root) from None

    def get_file(self, hexdigest: str, dest_path: str | os.PathLike[str]) -> None:
        """Copy a blob to ``dest_path`` (temp file beside it + rename), checking the MD5 while writing."""
        self.get_files([(hexdigest, None, dest_path)])

    def get_files(self, items: Sequence[DownloadItem]) -> None:
        """Download many blobs: ``items`` are (hex, size or None, destination path).

        Small blobs are fetched by concurrent GETs; large (or unknown-size) ones are streamed one at a time.
        Each destination appears only once its bytes match the digest (CorruptBlobError otherwise; a
        missing blob -> FileNotFoundError naming it and the root).
        """
        for h, _, _ in items:
            check_hex(h)
        track = _progress.tracker(sum(s or 0 for _, s, _ in items), len(items))
        small = [(h, s, d) for h, s, d in items if s is not None and s < SMALL_MAX]
        large = [(h, s, d) for h, s, d in items if s is None or s >= SMALL_MAX]
        io = self._io
        window: collections.deque[tuple[concurrent.futures.Future, str, Any]] = collections.deque()
        try:
            for h, _, dest in small:
                self.requests["get"] += 1
                window.append((io.submit(self._get_small(h)), h, dest))
                while len(window) >= CONCURRENCY or (window and window[0][0].done()):
                    fut, hh, dd = window.popleft()
                    self._write_verified(hh, dd, [io.wait(fut)], track)
            while window:
                fut, hh, dd = window.popleft()
                self._write_verified(hh, dd, [io.wait(fut)], track)
        finally:
            for fut, _, _ in window:
                fut.cancel()
        for h, _, dest in large:
            self.requests["get"] += 1
            chunks = self._bucket.download(self._key(h))
            if chunks is None:
                raise missing_blob(h, self.root)
            self._write_verified(h, dest, chunks, track)
        track.finish()

    async def _get_small(self, hexdigest: str) -> bytes:
        try:
            return await self._bucket.get(self._key(hexdigest))
        except FileNotFoundError:
            raise missing_blob(hexdigest, self.root) from None

    def _write_verified(self, hexdigest: str, dest: Any, chunks: Iterable[bytes], track: Any) -> None:
        def check(actual: str, _size: int) -> None:
            if actual != hexdigest:
                raise CorruptBlobError(hexdigest, actual, self.blob_path(hexdigest))

        write_verified(chunks, dest, check, on_chunk=track.add)
        track.add(0, 1)

    # -- durability and maintenance ------------------------------------------------------------------------

    def sync(self, hexdigests: Iterable[str] | None = None, sizes: dict[str, int] | None = None) -> None:
        """Nothing to flush: a bucket acknowledges a write only once it is durable. Named blobs are proven
        present (HEADs for a few, listings for many): MissingBlobsError lists those missing or of another size."""
        if hexdigests is None:
            return
        wanted = {check_hex(h) for h in hexdigests}
        lost = wanted - self.exists_many(wanted, sizes)
        if lost:
            raise MissingBlobsError(sorted(lost), self.root)

    def iter_hexes(self) -> Iterator[str]:
        token: str | None = None
        while True:
            self.requests["list"] += 1
            items, token = self._io.run(self._bucket.list_page, self._prefix, None, token)
            for name, _ in items:
                m = _SHARD_RE.fullmatch(name[len(self._prefix) :])
                if m is not None:
                    yield m.group(1) + m.group(2)
            if token is None:
                return

    def iter_blobs(self) -> Iterator[tuple[str, int]]:
        token: str | None = None
        while True:
            self.requests["list"] += 1
            items, token = self._io.run(self._bucket.list_page, self._prefix, None, token)
            for name, size in items:
                m = _SHARD_RE.fullmatch(name[len(self._prefix) :])
                if m is not None:
                    yield m.group(1) + m.group(2), size
            if token is None:
                return

    def delete(self, hexdigest: str) -> None:
        if self._stored_size(check_hex(hexdigest)) is None:
            raise missing_blob(hexdigest, self.root)
        self._io.run(self._bucket.delete, self._key(hexdigest))

    def remove_stale_temps(self, older_than_s: float = 24 * 3600) -> int:
        """Abort unfinished uploads under the root started more than ``older_than_s`` ago: blobs are written
        to their final key directly, so a crashed writer leaves only an S3 multipart upload, whose parts are
        billed until aborted. GCS resumable uploads cannot be listed and expire by themselves (a week)."""
        return int(self._io.run(self._bucket.abort_stale_uploads, self._prefix, older_than_s))
