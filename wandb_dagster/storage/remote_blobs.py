"""Blob storage in an S3 or GCS bucket: ``s3://bucket/prefix`` or ``gs://bucket/prefix``, through s3fs / gcsfs.

The layout is the local one, ``{root}/{hex[:2]}/{hex[2:]}``, so a root can be copied between a folder and a
bucket as is. What differs is how the bytes travel:

- Blobs are written straight to their content-addressed key. A PUT (or a completed multipart / finalized
  resumable upload) is atomic and durable once it returns, so a key only ever shows complete content and no
  temp key + copy is needed (design invariant 1); :meth:`sync` has nothing to do.
- Bytes are hashed on the way out and the upload is completed only if they hash to the key's digest: a file
  that changes while it is uploaded is never stored under a wrong name (its multipart upload is aborted).
- Many small files: read and hashed on the calling thread, their existence checked with listings (see
  :meth:`ObjectStoreBlobs._list_sizes`), the missing ones uploaded by a bounded number of concurrent
  requests on fsspec's event loop.
- Large files: streamed in parts (S3: a multipart upload with a few parts in flight; GCS: a resumable
  upload); memory stays at a few parts whatever the file size. The key is the digest, so a file whose
  digest is not known yet is hashed in a first pass (which also lets a blob already stored skip the upload).
  Downloads stream into a temp file and are verified while writing.

Endpoint and credentials come from storage options when given (``WANDB_DAGSTER_STORAGE_OPTIONS``), else from
the usual environment and config files. With a GCS emulator, set ``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false``
before gcsfs is imported, or every call waits for a 45-95 s timeout.

Example::

    >>> store = BlobStore("s3://my-bucket/blobs")          # an ObjectStoreBlobs   # doctest: +SKIP
    >>> store.check_access()                              # clear error if the bucket is unusable  # doctest: +SKIP
    >>> store.put_files(["a.bin", "b.bin"])               # [(hex, size), ...]   # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import concurrent.futures
import os
import re
from typing import Any, Awaitable, Callable, Iterable, Iterator, Sequence

from . import progress as _progress
from .blobs import BlobStore, unique_suffix
from .errors import ContentChangedError, CorruptBlobError
from .hashing import CHUNK, check_hex, hash_file, hex_to_b64, new_md5

SMALL_MAX = 16 * 1024 * 1024
"""Files below this are read whole and sent with one PUT; larger ones are streamed in parts."""
PART_SIZE = 16 * 1024 * 1024
"""Part of a large upload (S3: >= 5 MiB; GCS: a multiple of 256 KiB)."""
PARTS_IN_FLIGHT = 4
"""Parts of one large upload sent concurrently: the memory of a large upload is about (this + 1) x PART_SIZE."""
CONCURRENCY = 32
"""Requests in flight for batches of small blobs (uploads, downloads, existence checks)."""
BATCH_BYTES = 64 * 1024 * 1024
BATCH_FILES = 1000
"""put_files reads and hashes at most this many files / bytes of small files, then checks and uploads them
before reading more: memory stays bounded however many files are logged."""
HEAD_MAX = 16
"""Up to this many digests, existence is asked per blob (concurrent HEADs); beyond, listings are cheaper."""

LIST_PAGE = 1000
"""Keys per listing request (the most S3 and GCS return)."""
_PROBE_TIMEOUT_S = 5.0
_SHARD_RE = re.compile(r"([0-9a-f]{2})/([0-9a-f]{30})")


class _Backend:
    """What differs between S3 and GCS. Keys are object names inside ``bucket``."""

    def __init__(self, fs: Any, bucket: str) -> None:
        self.fs = fs
        self.bucket = bucket

    async def head(self, key: str) -> int | None:
        raise NotImplementedError

    async def list_page(self, prefix: str, start: str | None, token: str | None) -> tuple[list[tuple[str, int]], str | None]:
        """One page (<= 1,000 names) of keys under ``prefix``, from ``start`` on (or continuing ``token``)."""
        raise NotImplementedError

    async def put(self, key: str, data: bytes, hexdigest: str) -> None:
        raise NotImplementedError

    async def get(self, key: str) -> bytes:
        raise NotImplementedError

    async def delete(self, key: str) -> None:
        await self.fs._rm_file(f"{self.bucket}/{key}")


class _S3(_Backend):
    async def head(self, key: str) -> int | None:
        try:
            out = await self.fs._call_s3("head_object", Bucket=self.bucket, Key=key)
        except FileNotFoundError:
            return None
        return int(out["ContentLength"])

    async def list_page(self, prefix, start, token):
        kw: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": LIST_PAGE}
        if token:
            kw["ContinuationToken"] = token
        elif start:
            kw["StartAfter"] = start
        out = await self.fs._call_s3("list_objects_v2", **kw)
        items = [(c["Key"], int(c["Size"])) for c in out.get("Contents", ())]
        return items, (out.get("NextContinuationToken") if out.get("IsTruncated") else None)

    async def put(self, key, data, hexdigest):
        # Content-MD5 makes S3 check the bytes it received against the digest the key is named after.
        await self.fs._call_s3("put_object", Bucket=self.bucket, Key=key, Body=data, ContentMD5=hex_to_b64(hexdigest))

    async def get(self, key):
        out = await self.fs._call_s3("get_object", Bucket=self.bucket, Key=key)
        body = out["Body"]
        try:
            return await body.read()
        finally:
            body.close()

    async def open_stream(self, key: str) -> Any:
        out = await self.fs._call_s3("get_object", Bucket=self.bucket, Key=key)
        return out["Body"]

    async def create_multipart(self, key: str) -> str:
        return (await self.fs._call_s3("create_multipart_upload", Bucket=self.bucket, Key=key))["UploadId"]

    async def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> dict[str, Any]:
        # No Content-MD5 per part: it would cost a second MD5 pass over the file on the client; the whole
        # file's digest is checked before the upload completes, and botocore adds its own CRC32 per request.
        out = await self.fs._call_s3(
            "upload_part", Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
        )
        return {"PartNumber": number, "ETag": out["ETag"]}

    async def complete_multipart(self, key: str, upload_id: str, parts: list[dict[str, Any]]) -> None:
        await self.fs._call_s3(
            "complete_multipart_upload", Bucket=self.bucket, Key=key, UploadId=upload_id,
            MultipartUpload={"Parts": parts},
        )

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        await self.fs._call_s3("abort_multipart_upload", Bucket=self.bucket, Key=key, UploadId=upload_id)


class _GCS(_Backend):
    async def head(self, key):
        try:
            out = await self.fs._call("GET", "b/{}/o/{}", self.bucket, key, json_out=True)
        except FileNotFoundError:
            return None
        return int(out["size"])

    async def list_page(self, prefix, start, token):
        kw: dict[str, Any] = {"prefix": prefix, "maxResults": LIST_PAGE, "fields": "items(name,size),nextPageToken"}
        # A page token continues the query it came from, so the query (startOffset too) is sent unchanged.
        if token:
            kw["pageToken"] = token
        if start:
            kw["startOffset"] = start
        out = await self.fs._call("GET", "b/{}/o", self.bucket, json_out=True, **kw)
        items = [(i["name"], int(i["size"])) for i in out.get("items", ())]
        return items, out.get("nextPageToken")

    async def put(self, key, data, hexdigest):
        # consistency="md5": gcsfs compares the md5Hash GCS reports with the bytes sent.
        await self.fs._pipe_file(f"{self.bucket}/{key}", data, consistency="md5")

    async def get(self, key):
        return await self.fs._cat_file(f"{self.bucket}/{key}")

    async def start_resumable(self, key: str) -> str:
        from gcsfs.core import initiate_upload

        return await initiate_upload(self.fs, self.bucket, key, "application/octet-stream")

    async def upload_chunk(self, location: str, data: bytes, offset: int, size: int) -> None:
        from gcsfs.core import upload_chunk

        await upload_chunk(self.fs, location, data, offset, size, "application/octet-stream")

    async def cancel_resumable(self, location: str) -> None:
        await self.fs._call("DELETE", location)


def _backend_for(fs: Any, bucket: str) -> _Backend:
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    if "s3" in protocols:
        return _S3(fs, bucket)
    if "gs" in protocols or "gcs" in protocols:
        return _GCS(fs, bucket)
    raise ValueError(f"no object-store backend for protocol {fs.protocol!r}; use s3:// or gs://")


_UNREACHABLE_ERRORS = frozenset({
    "EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError", "ClientConnectorError",
    "ServerDisconnectedError", "ClientOSError", "ServerTimeoutError",
})


def _unreachable(exc: BaseException) -> bool:
    """A connection that could not be made or broke (botocore / aiohttp / builtin), by type, not by text."""
    return type(exc).__name__ in _UNREACHABLE_ERRORS or isinstance(exc, (ConnectionError, TimeoutError))


def _describe_error(root: str, exc: BaseException) -> str:
    """What went wrong reaching ``root``, and what to do, from the exception s3fs/gcsfs raised."""
    text = f"{type(exc).__name__}: {exc}"
    low = text.lower()
    if _unreachable(exc):  # by type first: the text of a connection error quotes URLs, which may hold "403"
        return (
            f"storage root {root!r} could not be reached ({text}); check the endpoint (AWS_ENDPOINT_URL, "
            "STORAGE_EMULATOR_HOST, or endpoint options in WANDB_DAGSTER_STORAGE_OPTIONS) and the network"
        )
    if isinstance(exc, FileNotFoundError) or "nosuchbucket" in low or "bucket does not exist" in low:
        return (
            f"the bucket of storage root {root!r} does not exist ({text}); create it, or point "
            "WANDB_DAGSTER_STORAGE (or settings storage_root) at an existing bucket"
        )
    if isinstance(exc, PermissionError) or any(
        s in low for s in ("accessdenied", "invalidaccesskeyid", "signaturedoesnotmatch", "forbidden",
                           "unauthorized", "401", "403", "credentials", "token")
    ):
        return (
            f"the credentials for storage root {root!r} were refused or are missing ({text}); set them in the "
            "usual environment or config files (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws for S3, "
            "GOOGLE_APPLICATION_CREDENTIALS for GCS) or in WANDB_DAGSTER_STORAGE_OPTIONS"
        )
    return (
        f"storage root {root!r} could not be reached ({text}); check the endpoint (AWS_ENDPOINT_URL, "
        "STORAGE_EMULATOR_HOST, or endpoint options in WANDB_DAGSTER_STORAGE_OPTIONS) and the network"
    )


class StorageAccessError(OSError):
    """The workspace's storage root cannot be used: missing bucket, refused credentials, unreachable endpoint."""


class ObjectStoreBlobs(BlobStore):
    """:class:`BlobStore` on an S3 or GCS bucket (see the module docstring). ``BlobStore(root)`` returns one
    for ``s3://`` and ``gs://`` roots; storage options go to s3fs / gcsfs as keyword arguments."""

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
                f"'wandb-dagster[{extra}]' ({exc})"
            ) from exc
        except TypeError as exc:  # an option the filesystem does not know
            raise ValueError(
                f"Storage options for {root!r} were refused by {root.split(':', 1)[0]}fs ({exc}); check "
                "storage_options / WANDB_DAGSTER_STORAGE_OPTIONS against the s3fs / gcsfs documentation"
            ) from exc
        except Exception as exc:  # e.g. gcsfs checking a token it was given
            raise StorageAccessError(_describe_error(root, exc)) from exc
        self.root = root.rstrip("/")
        self._fsroot = path.rstrip("/")
        self.is_local = False
        self.max_workers = CONCURRENCY
        bucket, _, prefix = self._fsroot.partition("/")
        self._bucket = bucket
        self._prefix = f"{prefix}/" if prefix else ""
        self._backend = _backend_for(self._fs, bucket)
        self._tmpdir = f"{self._fsroot}/tmp"
        self._use_tmpfile = False
        self._made = set()
        # Requests by kind, for tests and benchmarks that check how many round trips an operation costs.
        self.requests: collections.Counter[str] = collections.Counter()

    def __repr__(self) -> str:
        return f"ObjectStoreBlobs({self.root!r})"

    # -- plumbing ------------------------------------------------------------------------------------------

    def _key(self, hexdigest: str) -> str:
        return f"{self._prefix}{hexdigest[:2]}/{hexdigest[2:]}"

    def _run(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        from fsspec.asyn import sync

        try:
            return sync(self._fs.loop, fn, *args)
        except Exception as exc:
            if _unreachable(exc):
                raise self._lost(exc) from exc
            raise

    def _submit(self, coro: Awaitable[Any]) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(coro, self._fs.loop)  # type: ignore[arg-type]

    def _wait(self, fut: concurrent.futures.Future) -> Any:
        """``fut.result()``, with a lost endpoint reported as for :meth:`_run`."""
        try:
            return fut.result()
        except Exception as exc:
            if _unreachable(exc):
                raise self._lost(exc) from exc
            raise

    def _lost(self, exc: BaseException) -> StorageAccessError:
        # check_access() proved the endpoint when the workspace opened; this is the endpoint going away
        # (or the network failing) in the middle of a transfer. Nothing partial was kept.
        return StorageAccessError(
            f"storage root {self.root!r} could not be reached in the middle of a transfer "
            f"({type(exc).__name__}: {exc}); nothing partial was kept. Check that the endpoint is up and "
            "reachable (AWS_ENDPOINT_URL, STORAGE_EMULATOR_HOST, or endpoint options in "
            "WANDB_DAGSTER_STORAGE_OPTIONS) and try again."
        )

    async def _gather(self, coros: Iterable[Awaitable[Any]], limit: int = CONCURRENCY) -> list[Any]:
        sem = asyncio.Semaphore(limit)

        async def one(c: Awaitable[Any]) -> Any:
            async with sem:
                return await c

        tasks = [asyncio.ensure_future(one(c)) for c in coros]
        try:
            return await asyncio.gather(*tasks)
        except BaseException:
            for t in tasks:  # the first error ends the batch: stop sending the rest
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    def check_access(self) -> None:
        """One listing request under the root; StorageAccessError naming the root and what to do otherwise.

        Called when a workspace opens, so a missing bucket, refused credentials or an unreachable endpoint
        show up at once instead of in the middle of logging an artifact.
        """
        self._probe_endpoint()
        try:
            self.requests["list"] += 1
            self._run(self._backend.list_page, self._prefix, None, None)
        except StorageAccessError:
            raise
        except Exception as exc:
            raise StorageAccessError(_describe_error(self.root, exc)) from exc

    def _endpoint(self) -> str | None:
        try:
            if isinstance(self._backend, _S3):
                self._run(self._fs.set_session)
                return str(self._fs.s3._endpoint.host)
            return str(self._fs.base)
        except Exception:
            return None  # the listing below reports what is wrong

    def _probe_endpoint(self) -> None:
        """One TCP connection to the endpoint, with a short timeout: s3fs/gcsfs retry an unreachable
        endpoint with backoff for 6-35 s before they give up, which is far too long to say "wrong address"."""
        import socket
        import urllib.parse

        url = self._endpoint()
        if not url:
            return
        parsed = urllib.parse.urlsplit(url)
        if not parsed.hostname:
            return
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            socket.create_connection((parsed.hostname, port), timeout=_PROBE_TIMEOUT_S).close()
        except OSError as exc:
            raise StorageAccessError(
                f"storage root {self.root!r} could not be reached: no connection to its endpoint {url} "
                f"({type(exc).__name__}: {exc}); check the endpoint (AWS_ENDPOINT_URL, STORAGE_EMULATOR_HOST, "
                "or endpoint options in WANDB_DAGSTER_STORAGE_OPTIONS) and the network"
            ) from exc

    # -- existence -----------------------------------------------------------------------------------------

    def _stored_size(self, hexdigest: str) -> int | None:
        self.requests["head"] += 1
        return self._run(self._backend.head, self._key(hexdigest))

    def _remote_sizes(self, wanted: set[str]) -> dict[str, int]:
        if not wanted:
            return {}
        return self._run(self._sizes, wanted)

    async def _sizes(self, wanted: set[str]) -> dict[str, int]:
        if len(wanted) <= HEAD_MAX:
            hexes = sorted(wanted)
            self.requests["head"] += len(hexes)
            sizes = await self._gather(self._backend.head(self._key(h)) for h in hexes)
            return {h: n for h, n in zip(hexes, sizes) if n is not None}
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
            items, token = await self._backend.list_page(base, start, token)
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

    def _store_buffer(self, hexdigest: str, data: bytes) -> None:
        if self._stored_size(hexdigest) == len(data):
            return
        self.requests["put"] += 1
        self._run(self._backend.put, self._key(hexdigest), data, hexdigest)

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
            with open(path, "rb", buffering=0) as f:
                data = f.read()
            if len(data) >= SMALL_MAX:  # grew since the stat
                done(i, self._put_large(path, exp[i], track), True)
                continue
            hexdigest = new_md5(data).hexdigest()
            if exp[i] is not None and hexdigest != exp[i]:
                raise ContentChangedError(path, exp[i], hexdigest)
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
                await self._backend.put(self._key(h), data, h)
                track.add(len(data))

            self._run(self._gather, [put(h, d) for h, d in missing])
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
        with open(path, "rb", buffering=0) as f:
            if isinstance(self._backend, _S3):
                sent = self._upload_s3(f, path, expected_hex, track)
            else:
                sent = self._upload_gcs(f, path, size, expected_hex, track)
        return expected_hex, sent

    def _read_part(self, f: Any) -> bytes:
        parts = []
        left = PART_SIZE
        while left and (chunk := f.read(left)):
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts) if len(parts) != 1 else parts[0]

    def _upload_s3(self, f: Any, path: Any, hexdigest: str, track: Any) -> int:
        backend: _S3 = self._backend  # type: ignore[assignment]
        key = self._key(hexdigest)
        self.requests["mpu"] += 1
        upload_id = self._run(backend.create_multipart, key)
        h = new_md5()
        inflight: collections.deque[tuple[concurrent.futures.Future, int]] = collections.deque()
        parts: list[dict[str, Any]] = []
        size = 0
        try:
            number = 0
            # The caller's thread reads and hashes; the event loop sends up to PARTS_IN_FLIGHT parts meanwhile.
            while True:
                data = self._read_part(f)
                if not data and number:
                    break
                h.update(data)
                number += 1
                size += len(data)
                self.requests["part"] += 1
                inflight.append((self._submit(backend.upload_part(key, upload_id, number, data)), len(data)))
                while len(inflight) >= PARTS_IN_FLIGHT or (inflight and inflight[0][0].done()):
                    fut, n = inflight.popleft()
                    parts.append(self._wait(fut))
                    track.add(n)
                if not data:
                    break
            while inflight:
                fut, n = inflight.popleft()
                parts.append(self._wait(fut))
                track.add(n)
            if h.hexdigest() != hexdigest:
                raise ContentChangedError(path, hexdigest, h.hexdigest())
            self._run(backend.complete_multipart, key, upload_id, parts)
        except BaseException:
            for fut, _ in inflight:
                fut.cancel()
            try:
                self._run(backend.abort_multipart, key, upload_id)  # nothing becomes visible
            except Exception:
                pass  # best effort: an abandoned upload is invisible; bucket lifecycle rules reclaim it
            raise
        return size

    def _upload_gcs(self, f: Any, path: Any, size: int, hexdigest: str, track: Any) -> int:
        backend: _GCS = self._backend  # type: ignore[assignment]
        key = self._key(hexdigest)
        self.requests["resumable"] += 1
        location = self._run(backend.start_resumable, key)
        h = new_md5()
        offset = 0
        pending: concurrent.futures.Future | None = None
        try:
            # Chunks of a resumable upload go in order: read and hash the next while the last one is sent.
            # The final chunk finalizes the object, so it goes only after the whole digest matched.
            data = self._read_part(f)
            while True:
                h.update(data)
                nxt = self._read_part(f) if offset + len(data) < size else b""
                last = not nxt
                if last and (h.hexdigest() != hexdigest or offset + len(data) != size):
                    raise ContentChangedError(path, hexdigest, h.hexdigest())
                if pending is not None:
                    self._wait(pending)
                pending = self._submit(backend.upload_chunk(location, data, offset, size))
                self.requests["part"] += 1
                offset += len(data)
                track.add(len(data))
                if last:
                    break
                data = nxt
            self._wait(pending)
        except BaseException:
            if pending is not None:
                pending.cancel()
            try:
                self._run(backend.cancel_resumable, location)
            except Exception:
                pass  # an unfinished resumable upload is invisible and expires by itself
            raise
        return offset

    # -- reading -------------------------------------------------------------------------------------------

    def get_file(self, hexdigest: str, dest_path: str | os.PathLike[str]) -> None:
        """Copy a blob to ``dest_path`` (temp file beside it + rename), checking the MD5 while writing."""
        self.get_files([(hexdigest, None, dest_path)])

    def get_files(self, items: Sequence[tuple[str, int | None, str | os.PathLike[str]]]) -> None:
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
        window: collections.deque[tuple[concurrent.futures.Future, str, Any]] = collections.deque()
        try:
            for h, _, dest in small:
                self.requests["get"] += 1
                window.append((self._submit(self._get_small(h)), h, dest))
                while len(window) >= CONCURRENCY or (window and window[0][0].done()):
                    fut, hh, dd = window.popleft()
                    self._write_verified(hh, dd, [self._wait(fut)], track)
            while window:
                fut, hh, dd = window.popleft()
                self._write_verified(hh, dd, [self._wait(fut)], track)
        finally:
            for fut, _, _ in window:
                fut.cancel()
        for h, _, dest in large:
            self._get_large(h, dest, track)
        track.finish()

    async def _get_small(self, hexdigest: str) -> bytes:
        try:
            return await self._backend.get(self._key(hexdigest))
        except FileNotFoundError:
            raise self._missing(hexdigest) from None

    def _get_large(self, hexdigest: str, dest: Any, track: Any) -> None:
        self.requests["get"] += 1
        if isinstance(self._backend, _S3):
            backend = self._backend
            try:
                body = self._run(backend.open_stream, self._key(hexdigest))
            except FileNotFoundError:
                raise self._missing(hexdigest) from None

            def chunks() -> Iterator[bytes]:
                try:
                    # Ask for the next chunk before handing out this one: the network keeps going while the
                    # caller hashes and writes.
                    fut = self._submit(body.read(CHUNK))
                    while chunk := self._wait(fut):
                        fut = self._submit(body.read(CHUNK))
                        yield chunk
                finally:
                    body.close()

            self._write_verified(hexdigest, dest, chunks(), track)
            return
        size = self._stored_size(hexdigest)
        if size is None:
            raise self._missing(hexdigest)
        path = self._path(hexdigest)

        def ranges() -> Iterator[bytes]:
            # Ranged GETs of PART_SIZE, the next one requested before this one is hashed and written.
            starts = list(range(0, size, PART_SIZE))
            nxt = self._submit(self._fs._cat_file(path, start=0, end=min(PART_SIZE, size))) if starts else None
            for i, start in enumerate(starts):
                fut = nxt
                if i + 1 < len(starts):
                    s2 = starts[i + 1]
                    nxt = self._submit(self._fs._cat_file(path, start=s2, end=min(s2 + PART_SIZE, size)))
                self.requests["get"] += 1
                yield self._wait(fut)

        self._write_verified(hexdigest, dest, ranges(), track)

    def _write_verified(self, hexdigest: str, dest: Any, chunks: Iterable[bytes], track: Any) -> None:
        dest = os.path.abspath(os.fspath(dest))
        parent, name = os.path.split(dest)
        tmp = f"{parent}/.{name}.{unique_suffix()}.part"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileNotFoundError:
            os.makedirs(parent, exist_ok=True)
            fd = os.open(tmp, flags, 0o666)
        try:
            h = new_md5()
            try:
                for chunk in chunks:
                    h.update(chunk)
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view) :]
                    track.add(len(chunk))
            finally:
                os.close(fd)
            if h.hexdigest() != hexdigest:
                raise CorruptBlobError(hexdigest, h.hexdigest(), self.blob_path(hexdigest))
            os.replace(tmp, dest)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        track.add(0, 1)

    def open(self, hexdigest: str):  # type: ignore[override]
        """The stored bytes as a file object (unverified; prefer :meth:`get_file`)."""
        path = self._path(check_hex(hexdigest))
        try:
            return self._fs.open(path, "rb", block_size=PART_SIZE)
        except FileNotFoundError:
            raise self._missing(hexdigest) from None

    # -- maintenance ---------------------------------------------------------------------------------------

    def iter_hexes(self) -> Iterator[str]:
        token: str | None = None
        while True:
            self.requests["list"] += 1
            items, token = self._run(self._backend.list_page, self._prefix, None, token)
            for name, _ in items:
                m = _SHARD_RE.fullmatch(name[len(self._prefix) :])
                if m is not None:
                    yield m.group(1) + m.group(2)
            if token is None:
                return

    def delete(self, hexdigest: str) -> None:
        if self._stored_size(check_hex(hexdigest)) is None:
            raise self._missing(hexdigest)
        self._run(self._backend.delete, self._key(hexdigest))

    def remove_stale_temps(self, older_than_s: float = 24 * 3600) -> int:
        """Nothing to do: remote blobs are written to their final key directly, never through a temp key.
        (Multipart uploads abandoned by a crash are invisible; a bucket lifecycle rule reclaims them.)"""
        return 0
