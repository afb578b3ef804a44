"""``s3://`` references (docs/behaviour.md section 3): ETag + size + versionID, prefix expansion in one listing.

Example::

    >>> from wandb_dagster.storage import references
    >>> [r.path for r in references.resolve("s3://my-bucket/images")]          # doctest: +SKIP
    ['cat.png', 'dog.png']
    >>> references.resolve("s3://my-bucket/model.h5?versionId=3HL4kqtJ")[0].extra   # doctest: +SKIP
    {'etag': '9a0364b9e99bb480dd25e1f0284c8555', 'versionID': '3HL4kqtJ'}

Endpoint and credentials come from the usual AWS environment and config files (``AWS_ACCESS_KEY_ID``,
``AWS_PROFILE``, ``AWS_ENDPOINT_URL``, ``~/.aws/config`` ...), read by botocore through s3fs: pointing
``AWS_ENDPOINT_URL`` at MinIO or moto needs no code change.

Why one listing: ``ListObjectVersions`` gives key, ETag, size and VersionId of every object under a prefix
(1,000 per page), on versioned and unversioned buckets alike, so re-logging an unchanged prefix costs one
request per 1,000 objects and none per object. Where that call is denied (it needs
``s3:ListBucketVersions``), ``ListObjectsV2`` is used, plus one HEAD per object only if the bucket is versioned.
The ETag is kept as an opaque string: a multipart or SSE-KMS ETag is not an MD5 of the bytes, so a download
is checked by comparing the ETag S3 sends with the bytes against the recorded one (same response: no race).
"""

from __future__ import annotations

import os
import posixpath
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from wandb_dagster.storage import references
from wandb_dagster.storage.references import Reference, changed_error, copy_verified, missing_error, too_many
from wandb_dagster.storage.uri_credentials import redact

_HEAD_WORKERS = 16
_ENV_KEYS = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_REGION",
    "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
)
_fs_lock = threading.Lock()
_fs_cache: dict[tuple, Any] = {}


def _filesystem() -> Any:
    """One s3fs filesystem per AWS environment. Never s3fs's shared instance (skip_instance_cache) and we
    never read its listing cache (all calls below are direct API calls), so no ETag can come from a stale
    listing; a changed environment (another endpoint or profile) gets a new filesystem."""
    try:
        import s3fs
    except ImportError:
        raise ImportError(
            "s3:// references need s3fs: pip install 'wandb-dagster[s3]'."
        ) from None
    env = tuple(os.environ.get(k) for k in _ENV_KEYS)
    with _fs_lock:
        fs = _fs_cache.get(env)
        if fs is None:
            _fs_cache.clear()  # keep only the current environment's client
            fs = _fs_cache[env] = s3fs.S3FileSystem(skip_instance_cache=True, version_aware=True)
        return fs


def parse(uri: str) -> tuple[str, str, str | None]:
    """(bucket, key, versionId). Only a trailing ``?versionId=`` is a query: any other ``?`` or ``#`` is
    part of the key (S3 keys may contain them). ``user:password@`` before the bucket is ignored."""
    rest = uri.split("://", 1)[1]
    version = None
    head, sep, query = rest.rpartition("?")
    if sep and query.startswith("versionId="):
        rest, version = head, query[len("versionId="):] or None
    bucket, _, key = rest.partition("/")
    bucket = bucket.rpartition("@")[2]
    if not bucket:
        raise ValueError(f"Reference {references.strip_credentials(uri)!r} names no bucket: use s3://bucket/key.")
    return bucket, key, version


class _AccessDenied(PermissionError):
    """The server refused these credentials this call (as opposed to there being no credentials at all)."""


def _endpoint() -> str:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or "AWS S3 (default endpoint)"


def _call(fs: Any, uri: str, method: str, **kwargs: Any) -> dict:
    """fs.call_s3 with every failure turned into one clear error naming the URI and what to do."""
    clean = references.strip_credentials(uri)
    try:
        return fs.call_s3(method, **kwargs)
    except FileNotFoundError as exc:
        code = _code(exc)
        if code == "NoSuchBucket" or "bucket does not exist" in str(exc).lower():
            raise FileNotFoundError(
                f"Reference {clean!r}: bucket {kwargs.get('Bucket')!r} does not exist at {_endpoint()}; check the "
                "bucket name (and AWS_ENDPOINT_URL / AWS_PROFILE if it exists elsewhere)."
            ) from None
        raise
    except PermissionError as exc:
        raise _AccessDenied(
            f"Reference {clean!r}: access denied by {_endpoint()} ({redact(str(exc))}); check the credentials "
            "(AWS_ACCESS_KEY_ID / AWS_PROFILE) and that they allow s3:ListBucket and s3:GetObject on it."
        ) from None
    except Exception as exc:
        name = type(exc).__name__
        if name in ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"):
            raise PermissionError(
                f"Reference {clean!r}: no AWS credentials found ({redact(str(exc))}); set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or configure ~/.aws/credentials."
            ) from None
        unreachable = (
            "EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError", "ConnectionClosedError"
        )
        if name in unreachable or isinstance(exc, (ConnectionError, TimeoutError)):
            raise ConnectionError(
                f"Reference {clean!r}: cannot reach the S3 endpoint {_endpoint()} ({redact(str(exc))}); check "
                "AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3) and that the server is up and reachable."
            ) from None
        raise


def _code(exc: BaseException) -> str | None:
    cause = exc.__cause__
    response = getattr(cause, "response", None)
    return (response or {}).get("Error", {}).get("Code") if isinstance(response, dict) else None


def _etag(value: str) -> str:
    return value.strip('"')


def _reference(bucket: str, key: str, path: str, etag: str, size: int, version: str | None) -> Reference:
    extra: dict[str, Any] = {"etag": etag}
    if version and version != "null":  # "null": the object was written while versioning was off
        extra["versionID"] = version
    return Reference(path=path, digest=etag, size=size, ref=f"s3://{bucket}/{key}", extra=extra)


class S3Handler:
    cacheable = True

    def resolve(self, uri: str, name: str | None, max_objects: int) -> list[Reference]:
        bucket, key, version = parse(uri)
        fs = _filesystem()
        if version is not None:
            head = self._head(fs, uri, bucket, key, version)
            return [_reference(bucket, key, name or posixpath.basename(key), _etag(head["ETag"]),
                               head["ContentLength"], head.get("VersionId") or version)]
        # A key is a prefix when it is empty, ends in "/", or names no object; one listing (Prefix=key)
        # tells which, and lists the prefix at the same time.
        folder = key if key == "" or key.endswith("/") else key + "/"
        found: list[Reference] = []
        for obj in self._latest(fs, uri, bucket, key):
            k = obj["Key"]
            if k == key and folder != key:
                return [_reference(bucket, k, name or posixpath.basename(k), _etag(obj["ETag"]), obj["Size"],
                                   obj.get("VersionId"))]
            if not k.startswith(folder) or k.endswith("/"):  # a sibling (images-old/...) or a folder marker
                continue
            if len(found) >= max_objects:
                raise too_many(uri, max_objects)
            rel = k[len(folder):]
            found.append(_reference(bucket, k, f"{name}/{rel}" if name else rel, _etag(obj["ETag"]), obj["Size"],
                                    obj.get("VersionId")))
        if not found:
            raise FileNotFoundError(
                f"Reference {references.strip_credentials(uri)!r} matches no object in bucket {bucket!r}; "
                "check the key (a prefix lists everything under 'key/')."
            )
        return found

    def _head(self, fs: Any, uri: str, bucket: str, key: str, version: str | None) -> dict:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version:
            kwargs["VersionId"] = version
        try:
            return _call(fs, uri, "head_object", **kwargs)
        except FileNotFoundError as exc:
            if "bucket" in str(exc) and "does not exist" in str(exc):
                raise
            what = f"version {version!r} of " if version else ""
            raise FileNotFoundError(
                f"Reference {references.strip_credentials(uri)!r}: {what}object {key!r} does not exist in "
                f"bucket {bucket!r}; check the key{' and versionId' if version else ''}."
            ) from None

    def _latest(self, fs: Any, uri: str, bucket: str, prefix: str) -> Iterator[dict]:
        """The current version of every object whose key starts with ``prefix``, in key order."""
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        try:
            page = _call(fs, uri, "list_object_versions", **kwargs)
        except _AccessDenied:  # s3:ListBucketVersions not granted: list without versions
            yield from self._latest_without_versions(fs, uri, bucket, prefix)
            return
        while True:
            for v in page.get("Versions", []):
                if v.get("IsLatest"):  # older versions and deleted objects (latest = delete marker) are skipped
                    yield v
            if not page.get("IsTruncated"):
                return
            kwargs["KeyMarker"] = page["NextKeyMarker"]
            if page.get("NextVersionIdMarker"):
                kwargs["VersionIdMarker"] = page["NextVersionIdMarker"]
            page = _call(fs, uri, "list_object_versions", **kwargs)

    def _latest_without_versions(self, fs: Any, uri: str, bucket: str, prefix: str) -> Iterator[dict]:
        # ListObjectsV2 has no VersionId: ask for it per object, and only when the bucket keeps versions.
        try:
            versioned = _call(fs, uri, "get_bucket_versioning", Bucket=bucket).get("Status") in ("Enabled", "Suspended")
        except _AccessDenied:
            versioned = True  # cannot tell: ask per object rather than lose the pin
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        while True:
            page = _call(fs, uri, "list_objects_v2", **kwargs)
            objects = page.get("Contents", [])
            if versioned and objects:

                def head_of(obj: dict) -> dict:
                    return _call(fs, uri, "head_object", Bucket=bucket, Key=obj["Key"])

                with ThreadPoolExecutor(_HEAD_WORKERS) as pool:
                    heads = list(pool.map(head_of, objects))
                for obj, head in zip(objects, heads, strict=True):
                    obj["VersionId"] = head.get("VersionId")
            yield from objects
            if not page.get("IsTruncated"):
                return
            kwargs["ContinuationToken"] = page["NextContinuationToken"]

    def download(self, ref: str, digest: str, size: int | None, extra: dict, dest: Path, entry_path: str) -> str:
        bucket, key, _ = parse(ref)
        fs = _filesystem()
        if references.unchecked(ref, digest):  # checksum=False: whatever is there now, not verified
            live = self._get(fs, ref, bucket, key, None, entry_path)
            return self._stream(fs, live, dest, None, entry_path, ref)
        response: dict | None = None
        version = extra.get("versionID")
        if version:
            try:
                response = self._get(fs, ref, bucket, key, str(version), entry_path)
            except FileNotFoundError:
                response = None  # the pinned version is gone: the live object may still be the same
        if response is None:
            response = self._get(fs, ref, bucket, key, None, entry_path)
        current = _etag(response.get("ETag", ""))
        if current != digest:
            response["Body"].close()
            raise changed_error(entry_path, ref, digest, current)
        return self._stream(fs, response, dest, size, entry_path, ref)

    def _get(self, fs: Any, ref: str, bucket: str, key: str, version: str | None, entry_path: str) -> dict:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version:
            kwargs["VersionId"] = version
        try:
            return _call(fs, ref, "get_object", **kwargs)
        except FileNotFoundError as exc:
            detail = f" (version {version})" if version else ""
            if "bucket" in str(exc) and "does not exist" in str(exc):
                detail = f": {redact(str(exc))}"
            raise missing_error(entry_path, ref, detail) from None

    @staticmethod
    def _stream(fs: Any, response: dict, dest: Path, size: int | None, entry_path: str, ref: str) -> str:
        body = _SyncBody(fs, response["Body"])
        try:
            return copy_verified(body, dest, None, entry_path, ref, size=size)
        finally:
            body.close()


class _SyncBody:
    """A blocking ``read(n)`` over aiobotocore's streaming body, run on s3fs's event loop: the object is
    streamed in one GET (never whole in memory), and the ETag checked above belongs to these very bytes."""

    def __init__(self, fs: Any, body: Any) -> None:
        self._fs = fs
        self._body = body

    def read(self, n: int = -1) -> bytes:
        from fsspec.asyn import sync

        return sync(self._fs.loop, self._body.read, n)

    def close(self) -> None:
        try:
            self._body.close()
        except Exception:
            pass
