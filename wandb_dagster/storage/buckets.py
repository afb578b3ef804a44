"""The two bucket APIs behind :class:`~wandb_dagster.storage.remote_blobs.ObjectStoreBlobs`: what differs
between S3 (s3fs / aiobotocore) and GCS (gcsfs), and running their calls on fsspec's event loop.

Each bucket class has the same small set of calls (HEAD, one listing page, PUT, GET, DELETE) plus the two
streamed transfers of large blobs, which work differently on the two services: S3 sends a multipart upload
with a few parts in flight and reads back one streamed GET; GCS sends a resumable upload whose chunks go in
order and reads back ranged GETs. Either way a large upload is completed (finalized) only once the bytes
sent hash to the key's digest, so a file that changes meanwhile is never stored under a wrong name.

Example::

    >>> io = BucketIO(fs, "s3://bucket/blobs")                    # doctest: +SKIP
    >>> bucket = bucket_for(fs, "bucket", io)                     # doctest: +SKIP
    >>> io.run(bucket.head, "blobs/b1/946ac92492d2347c6235b4d2611184")   # size, or None  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import os
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

from .access import lost_midway, unreachable
from .errors import ContentChangedError, StorageAccessError
from .hashing import CHUNK, hex_to_b64, new_md5
from .uri_credentials import redact_exception

PART_SIZE = 16 * 1024 * 1024
"""Part of a large upload (S3: >= 5 MiB; GCS: a multiple of 256 KiB), and of a ranged GCS download."""
PARTS_IN_FLIGHT = 4
"""Parts of one large upload sent concurrently: the memory of a large upload is about (this + 1) x PART_SIZE."""
LIST_PAGE = 1000
"""Keys per listing request (the most S3 and GCS return)."""


class BucketIO:
    """Runs bucket calls on the filesystem's event loop from the caller's thread, counting requests by kind
    (``requests``, for tests and benchmarks that check what an operation costs). An endpoint lost in the
    middle of a transfer becomes StorageAccessError naming the root."""

    def __init__(self, fs: Any, root: str) -> None:
        self.fs = fs
        self.root = root
        self.requests: collections.Counter[str] = collections.Counter()

    def run(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        from fsspec.asyn import sync

        try:
            return sync(self.fs.loop, fn, *args)
        except Exception as exc:
            if unreachable(exc):
                raise StorageAccessError(lost_midway(self.root, exc)) from redact_exception(exc)
            raise

    def submit(self, coro: Awaitable[Any]) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(coro, self.fs.loop)  # type: ignore[arg-type]

    def wait(self, fut: concurrent.futures.Future) -> Any:
        """``fut.result()``, with a lost endpoint reported as for :meth:`run`."""
        try:
            return fut.result()
        except Exception as exc:
            if unreachable(exc):
                raise StorageAccessError(lost_midway(self.root, exc)) from redact_exception(exc)
            raise

    @staticmethod
    async def gather(coros: Iterable[Awaitable[Any]], limit: int) -> list[Any]:
        """Await ``coros`` with at most ``limit`` in flight; the first error cancels the rest."""
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


def _read_part(f: Any) -> bytes:
    parts = []
    left = PART_SIZE
    while left and (chunk := f.read(left)):
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts) if len(parts) != 1 else parts[0]


class _Bucket:
    """The calls ObjectStoreBlobs makes. Keys are object names inside ``bucket``."""

    def __init__(self, fs: Any, bucket: str, io: BucketIO) -> None:
        self.fs = fs
        self.bucket = bucket
        self.io = io

    def endpoint(self) -> str | None:
        """The URL requests go to (for the reachability probe), or None if it cannot be told."""
        raise NotImplementedError

    async def head(self, key: str) -> int | None:
        raise NotImplementedError

    async def list_page(
        self, prefix: str, start: str | None, token: str | None
    ) -> tuple[list[tuple[str, int]], str | None]:
        """One page (<= LIST_PAGE names) of keys under ``prefix``, from ``start`` on (or continuing ``token``)."""
        raise NotImplementedError

    async def put(self, key: str, data: bytes, hexdigest: str) -> None:
        raise NotImplementedError

    async def get(self, key: str) -> bytes:
        raise NotImplementedError

    async def delete(self, key: str) -> None:
        await self.fs._rm_file(f"{self.bucket}/{key}")

    async def abort_stale_uploads(self, prefix: str, older_than_s: float) -> int:
        """Abort unfinished uploads under ``prefix`` older than ``older_than_s``; how many (none by default:
        only S3 lists them)."""
        return 0

    def upload(self, f: Any, path: str | os.PathLike[str], key: str, hexdigest: str, size: int, track: Any) -> int:
        """Stream the open file ``f`` (``size`` bytes by its stat) to ``key``; completed only if the bytes
        sent hash to ``hexdigest`` (ContentChangedError otherwise, nothing stored). Returns bytes sent."""
        raise NotImplementedError

    def download(self, key: str) -> Iterator[bytes] | None:
        """The object's bytes streamed in pieces, the next requested while one is handed out; None if
        there is no such object."""
        raise NotImplementedError


class S3Bucket(_Bucket):
    def endpoint(self) -> str | None:
        try:
            self.io.run(self.fs.set_session)
            return str(self.fs.s3._endpoint.host)
        except Exception:
            return None  # the listing of check_access reports what is wrong

    async def head(self, key):
        try:
            out = await self.fs._call_s3("head_object", Bucket=self.bucket, Key=key)
        except FileNotFoundError:
            return None
        return int(out["ContentLength"])

    async def abort_stale_uploads(self, prefix: str, older_than_s: float) -> int:
        import datetime

        cutoff = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=older_than_s)
        aborted = 0
        kw: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        while True:
            out = await self.fs._call_s3("list_multipart_uploads", **kw)
            for upload in out.get("Uploads", ()):
                if upload["Initiated"] < cutoff:
                    await self.fs._call_s3(
                        "abort_multipart_upload", Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    aborted += 1
            if not out.get("IsTruncated"):
                return aborted
            kw["KeyMarker"], kw["UploadIdMarker"] = out["NextKeyMarker"], out["NextUploadIdMarker"]

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

    async def _open_stream(self, key: str) -> Any:
        out = await self.fs._call_s3("get_object", Bucket=self.bucket, Key=key)
        return out["Body"]

    async def _upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> dict[str, Any]:
        # No Content-MD5 per part: it would cost a second MD5 pass over the file on the client; the whole
        # file's digest is checked before the upload completes, and botocore adds its own CRC32 per request.
        out = await self.fs._call_s3(
            "upload_part", Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
        )
        return {"PartNumber": number, "ETag": out["ETag"]}

    async def _create_multipart(self, key: str) -> str:
        return (await self.fs._call_s3("create_multipart_upload", Bucket=self.bucket, Key=key))["UploadId"]

    async def _complete_multipart(self, key: str, upload_id: str, parts: list[dict[str, Any]]) -> None:
        await self.fs._call_s3(
            "complete_multipart_upload", Bucket=self.bucket, Key=key, UploadId=upload_id,
            MultipartUpload={"Parts": parts},
        )

    async def _abort_multipart(self, key: str, upload_id: str) -> None:
        await self.fs._call_s3("abort_multipart_upload", Bucket=self.bucket, Key=key, UploadId=upload_id)

    def upload(self, f, path, key, hexdigest, size, track):
        io = self.io
        io.requests["mpu"] += 1
        upload_id = io.run(self._create_multipart, key)
        h = new_md5()
        inflight: collections.deque[tuple[concurrent.futures.Future, int]] = collections.deque()
        parts: list[dict[str, Any]] = []
        sent = 0
        try:
            number = 0
            # The caller's thread reads and hashes; the event loop sends up to PARTS_IN_FLIGHT parts meanwhile.
            while True:
                data = _read_part(f)
                if not data and number:
                    break
                h.update(data)
                number += 1
                sent += len(data)
                io.requests["part"] += 1
                inflight.append((io.submit(self._upload_part(key, upload_id, number, data)), len(data)))
                while len(inflight) >= PARTS_IN_FLIGHT or (inflight and inflight[0][0].done()):
                    fut, n = inflight.popleft()
                    parts.append(io.wait(fut))
                    track.add(n)
                if not data:
                    break
            while inflight:
                fut, n = inflight.popleft()
                parts.append(io.wait(fut))
                track.add(n)
            if h.hexdigest() != hexdigest:
                raise ContentChangedError(path, hexdigest, h.hexdigest())
            io.run(self._complete_multipart, key, upload_id, parts)
        except BaseException:
            for fut, _ in inflight:
                fut.cancel()
            try:
                io.run(self._abort_multipart, key, upload_id)  # nothing becomes visible
            except Exception:
                pass  # best effort: an abandoned upload is invisible; bucket lifecycle rules reclaim it
            raise
        return sent

    def download(self, key):
        io = self.io
        try:
            body = io.run(self._open_stream, key)
        except FileNotFoundError:
            return None

        def chunks() -> Iterator[bytes]:
            try:
                # Ask for the next chunk before handing out this one: the network keeps going while the
                # caller hashes and writes.
                fut = io.submit(body.read(CHUNK))
                while chunk := io.wait(fut):
                    fut = io.submit(body.read(CHUNK))
                    yield chunk
            finally:
                body.close()

        return chunks()


class GCSBucket(_Bucket):
    def endpoint(self) -> str | None:
        try:
            return str(self.fs.base)
        except Exception:
            return None

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

    async def _start_resumable(self, key: str) -> str:
        from gcsfs.core import initiate_upload

        return await initiate_upload(self.fs, self.bucket, key, "application/octet-stream")

    async def _upload_chunk(self, location: str, data: bytes, offset: int, size: int) -> None:
        from gcsfs.core import upload_chunk

        await upload_chunk(self.fs, location, data, offset, size, "application/octet-stream")

    async def _cancel_resumable(self, location: str) -> None:
        await self.fs._call("DELETE", location)

    def upload(self, f, path, key, hexdigest, size, track):
        io = self.io
        io.requests["resumable"] += 1
        location = io.run(self._start_resumable, key)
        h = new_md5()
        offset = 0
        pending: concurrent.futures.Future | None = None
        try:
            # Chunks of a resumable upload go in order: read and hash the next while the last one is sent.
            # The final chunk finalizes the object, so it goes only after the whole digest matched.
            data = _read_part(f)
            while True:
                h.update(data)
                nxt = _read_part(f) if offset + len(data) < size else b""
                last = not nxt
                if last and (h.hexdigest() != hexdigest or offset + len(data) != size):
                    raise ContentChangedError(path, hexdigest, h.hexdigest())
                if pending is not None:
                    io.wait(pending)
                pending = io.submit(self._upload_chunk(location, data, offset, size))
                io.requests["part"] += 1
                offset += len(data)
                track.add(len(data))
                if last:
                    break
                data = nxt
            io.wait(pending)
        except BaseException:
            if pending is not None:
                pending.cancel()
            try:
                io.run(self._cancel_resumable, location)
            except Exception:
                pass  # an unfinished resumable upload is invisible and expires by itself
            raise
        return offset

    def download(self, key):
        io = self.io
        io.requests["head"] += 1
        size = io.run(self.head, key)
        if size is None:
            return None
        path = f"{self.bucket}/{key}"
        cat = self.fs._cat_file

        def ranges() -> Iterator[bytes]:
            # Ranged GETs of PART_SIZE, the next one requested before this one is hashed and written.
            starts = list(range(0, size, PART_SIZE))
            nxt = io.submit(cat(path, start=0, end=min(PART_SIZE, size))) if starts else None
            for i in range(len(starts)):
                fut = nxt
                if i + 1 < len(starts):
                    s2 = starts[i + 1]
                    nxt = io.submit(cat(path, start=s2, end=min(s2 + PART_SIZE, size)))
                io.requests["get"] += 1
                yield io.wait(fut)

        return ranges()


def bucket_for(fs: Any, bucket: str, io: BucketIO) -> _Bucket:
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    if "s3" in protocols:
        return S3Bucket(fs, bucket, io)
    if "gs" in protocols or "gcs" in protocols:
        return GCSBucket(fs, bucket, io)
    raise ValueError(f"no object-store backend for protocol {fs.protocol!r}; use s3:// or gs://")
