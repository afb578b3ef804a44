"""Reference handlers: turn a URI into manifest entries (checksum, size, version), and fetch them back.

Example::

    >>> from wandb_dagster.storage import references
    >>> [r.path for r in references.resolve("file:///etc/hostname")]   # doctest: +SKIP
    ['hostname']

Each scheme has one handler with two operations, ``resolve`` (list + checksum) and ``download`` (fetch
the recorded content, verified). ``file://`` lives here; ``s3://`` (refs_s3), ``gs://`` (refs_gcs) and
``http(s)://`` (refs_http) are registered below and imported on first use, so that s3fs/gcsfs are only
needed by those who use them.

Credentials in a URI (userinfo, signed-URL query parameters) are used to read the object, then stripped
from every URI that is returned for the manifest (uri_credentials.strip_credentials).
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, unquote, urlparse

from wandb_dagster.storage.hashing import b64_to_hex, hash_file, hex_to_b64
from wandb_dagster.storage.uri_credentials import redact, strip_credentials
from wandb_dagster.storage.verified_write import read_chunks, write_verified

if TYPE_CHECKING:
    from wandb_dagster.storage.cache import DownloadCache

DEFAULT_MAX_OBJECTS = 10_000_000


@dataclasses.dataclass
class Reference:
    path: str
    digest: str
    size: int | None
    ref: str
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


class Handler(Protocol):
    # True when (ref, digest, versionID) names fixed bytes, so a verified download may be served from the
    # download cache next time without asking the remote (remote schemes; file:// reads locally anyway).
    cacheable: bool

    def resolve(self, uri: str, name: str | None, max_objects: int) -> list[Reference]: ...

    def download(
        self, ref: str, digest: str, size: int | None, extra: dict, dest: Path, entry_path: str
    ) -> str | None:
        """Write the recorded content to ``dest``; return the hex MD5 of what was written."""
        ...


_HANDLERS: dict[str, Callable[[], Handler]] = {}


def register(scheme: str, factory: Callable[[], Handler]) -> None:
    _HANDLERS[scheme] = factory


def _scheme(uri: str) -> str:
    if not isinstance(uri, str) or "://" not in uri:
        raise ValueError(
            f"Reference {redact(str(uri))!r} is not a URI: use file:///abs/path, s3://bucket/key, gs://bucket/key or "
            "http(s)://host/path (use add_file/add_dir for local paths)."
        )
    return uri.split("://", 1)[0].lower()


def _handler(uri: str) -> Handler:
    scheme = _scheme(uri)
    factory = _HANDLERS.get(scheme)
    if factory is None:
        raise ValueError(
            f"Reference {strip_credentials(uri)!r} has scheme {scheme!r}, which is not supported; use one of the "
            f"supported schemes: {', '.join(sorted(_HANDLERS))} (or add_file/add_dir for local files)."
        )
    return factory()


def _default_name(uri: str) -> str:
    scheme = _scheme(uri)
    if scheme in ("s3", "gs"):
        # As the handlers name a single object: "?" and "#" belong to the key (only a trailing ?versionId= /
        # #generation is not), so s3://b/d/report?sig=1.csv is "report?sig=1.csv", not "report".
        import importlib

        handler = importlib.import_module(f"wandb_dagster.storage.refs_{'s3' if scheme == 's3' else 'gcs'}")
        bucket, key, _ = handler.parse(uri)
        return posixpath.basename(key.rstrip("/")) or bucket
    parsed = urlparse(uri)
    path = parsed.path.rstrip("/")
    # hostname, not netloc: netloc may carry user:password@
    return posixpath.basename(unquote(path)) or parsed.hostname or parsed.netloc.rpartition("@")[2]


def resolve(
    uri: str, name: str | None = None, checksum: bool = True, max_objects: int | None = None
) -> list[Reference]:
    """Entries for ``uri``. With ``checksum=False`` one entry whose digest and ref are the URI itself."""
    limit = DEFAULT_MAX_OBJECTS if max_objects is None else max_objects
    if not isinstance(limit, int) or limit < 1:
        raise ValueError(f"max_objects={max_objects!r} is invalid: give a positive integer.")
    handler = _handler(uri)
    if not checksum:
        clean = strip_credentials(uri)
        return [Reference(path=name or _default_name(uri), digest=clean, size=None, ref=clean)]
    found = handler.resolve(uri, name, limit)
    if not found:
        raise FileNotFoundError(
            f"Reference {strip_credentials(uri)!r} matches no object; check the path and that it exists."
        )
    for r in found:  # the URI as given was needed to read the object; the manifest never sees its secrets
        clean = strip_credentials(r.ref)
        if r.digest == r.ref:
            r.digest = clean
        r.ref = clean
    return found


def download(
    ref: str,
    digest: str,
    size: int | None,
    extra: dict,
    dest: Path,
    entry_path: str,
    cache: DownloadCache | None = None,
) -> None:
    """Fetch a reference entry to ``dest``, verified as its handler can (see each handler).

    With ``cache``, a tracked remote reference is kept in the download cache under (ref, digest, versionID):
    a second download of the same recorded object is a local copy, with no request to the remote.
    """
    handler = _handler(ref)
    key = None
    if cache is not None and handler.cacheable and digest != ref:
        from wandb_dagster.storage import refcache

        key = refcache.key(ref, digest, extra.get("versionID"))
        if refcache.place(cache, key, size, dest):
            return
    hexdigest = handler.download(ref, digest, size, extra, dest, entry_path)
    if cache is not None and key is not None and hexdigest is not None:
        from wandb_dagster.storage import refcache

        try:
            refcache.record(cache, key, dest, hexdigest)
        except OSError:
            pass  # the download itself succeeded; a full or read-only cache only costs the next download


def content_md5(ref: str, digest: str, extra: dict) -> str | None:
    """The base64 MD5 of the bytes a reference entry names, when its recorded checksum is one (file://, a
    gs:// md5Hash, an http(s):// entry recorded from a weak ETag); None when it is opaque (an S3 or HTTP
    ETag) or untracked. Lets Artifact.verify re-hash what can be re-hashed."""
    if unchecked(ref, digest):
        return None
    scheme = _scheme(ref)
    if scheme == "file":
        return digest
    if scheme == "gs" and _is_b64_md5(digest):
        return digest
    if scheme in ("http", "https") and str(extra.get("etag", "")).startswith(("W/", "w/")):
        return digest
    return None


def _is_b64_md5(value: str) -> bool:
    try:
        b64_to_hex(value)
        return True
    except ValueError:
        return False


def unchecked(ref: str, digest: str) -> bool:
    """True for a ``checksum=False`` entry (or an HTTP one without ETag): the content is not tracked."""
    return digest == ref


def missing_error(entry_path: str, uri: str, detail: str = "") -> FileNotFoundError:
    return FileNotFoundError(
        f"Reference entry {entry_path!r}: {redact(uri)} no longer exists{detail}; restore it or pass "
        "allow_missing_references=True to skip missing references."
    )


def changed_error(entry_path: str, uri: str, recorded: str, current: str) -> ValueError:
    return ValueError(
        f"Reference entry {entry_path!r} ({redact(uri)}) has changed since it was logged: recorded checksum "
        f"{recorded!r}, current {current!r}, and no pinned version of the recorded content is available. "
        "Log a new version to track the new content (or restore the object)."
    )


def too_many(uri: str, limit: int) -> ValueError:
    return ValueError(
        f"Reference {strip_credentials(uri)!r} expands to more than max_objects={limit} objects; "
        "pass a larger max_objects or reference a narrower prefix (nothing was truncated)."
    )


def copy_verified(
    src: Any, dest: Path, expected_b64: str | None, entry_path: str, uri: str, size: int | None = None
) -> str:
    """Stream ``src`` (anything with ``read(n)``) into a temp file beside ``dest`` while hashing; rename into
    place only if the digest matches (``expected_b64=None``: not tracked, any content) and, with ``size``,
    the byte count too. The storage layer's one verified write (verified_write.write_verified), with the
    errors of a reference entry. Returns the hex MD5 of the bytes written."""

    def check(actual_hex: str, written: int) -> None:
        if expected_b64 is not None and (actual := hex_to_b64(actual_hex)) != expected_b64:
            raise ValueError(
                f"Reference entry {entry_path!r} ({redact(uri)}) has changed since it was logged: recorded digest "
                f"{expected_b64}, current content {actual}. Log a new version to track the new content."
            )
        if size is not None and written != size:
            raise ValueError(
                f"Reference entry {entry_path!r} ({redact(uri)}) has changed since it was logged: recorded size "
                f"{size} bytes, received {written}. Log a new version to track the new content."
            )

    hexdigest, _ = write_verified(read_chunks(src), dest, check)
    return hexdigest


def file_uri_path(uri: str) -> str:
    parsed = urlparse(uri)
    if parsed.netloc not in ("", "localhost"):
        raise ValueError(
            f"Reference {strip_credentials(uri)!r} names host {parsed.hostname!r}; file:// references must be "
            "local (file:///abs/path)."
        )
    # surrogateescape: a name that is not valid UTF-8 (quoted byte by byte by resolve) comes back unchanged
    return unquote(parsed.path, errors="surrogateescape")


def file_uri_child(base_uri: str, rel: str) -> str:
    """The ``file://`` URI of ``rel`` (``/``-separated) under the directory ``base_uri``, percent-quoted so
    that file_uri_path() gives back exactly the path: ``#``, ``?`` and ``%`` in a name stay part of it."""
    parsed = urlparse(base_uri)
    base = f"{parsed.scheme}://{parsed.netloc}{parsed.path.rstrip('/')}"  # any ?query or #fragment dropped
    return f"{base}/{quote(os.fsencode(rel), safe='/')}"


class FileHandler:
    """``file://`` references: a file, or a directory walked recursively; digest = MD5 of the content."""

    cacheable = False

    def resolve(self, uri: str, name: str | None, max_objects: int) -> list[Reference]:
        root = file_uri_path(uri)
        if os.path.isfile(root):
            hexdigest, size = hash_file(root)
            return [Reference(path=name or os.path.basename(root), digest=hex_to_b64(hexdigest), size=size, ref=uri)]
        if not os.path.isdir(root):
            raise FileNotFoundError(f"Reference {strip_credentials(uri)!r}: {root!r} does not exist; check the path.")
        found: list[Reference] = []
        seen_dirs: set[tuple[int, int]] = set()
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=_unreadable):
            st_dir = os.stat(dirpath)
            if (st_dir.st_dev, st_dir.st_ino) in seen_dirs:  # a symlink cycle or a second link: walk once
                dirnames[:] = []
                continue
            seen_dirs.add((st_dir.st_dev, st_dir.st_ino))
            dirnames.sort()
            for filename in sorted(filenames):
                full = os.path.join(dirpath, filename)
                try:
                    if not stat.S_ISREG(os.stat(full).st_mode):
                        continue
                except FileNotFoundError:  # a dangling symlink, or removed meanwhile
                    continue
                if len(found) >= max_objects:  # before hashing the (max_objects + 1)-th file
                    raise too_many(uri, max_objects)
                rel = os.path.relpath(full, root).replace(os.sep, "/")
                hexdigest, size = hash_file(full)
                found.append(
                    Reference(
                        path=f"{name}/{rel}" if name else rel,
                        digest=hex_to_b64(hexdigest),
                        size=size,
                        ref=file_uri_child(uri, rel),
                    )
                )
        return found

    def download(self, ref: str, digest: str, size: int | None, extra: dict, dest: Path, entry_path: str) -> str:
        source = file_uri_path(ref)
        expected = None if digest == ref else digest
        if expected is not None:
            b64_to_hex(expected)  # a malformed digest fails here, before any I/O
        try:
            src = open(source, "rb")  # noqa: SIM115 (the except covers only the open; `with src` follows)
        except FileNotFoundError:
            raise missing_error(entry_path, ref) from None
        with src:
            return copy_verified(src, dest, expected, entry_path, ref)


def _lazy(module: str, cls: str) -> Callable[[], Handler]:
    def factory() -> Handler:
        import importlib

        return getattr(importlib.import_module(f"wandb_dagster.storage.{module}"), cls)()

    return factory


register("file", FileHandler)
register("s3", _lazy("refs_s3", "S3Handler"))
register("gs", _lazy("refs_gcs", "GCSHandler"))
register("http", _lazy("refs_http", "HTTPHandler"))
register("https", _lazy("refs_http", "HTTPHandler"))


def _unreadable(error: OSError) -> None:
    # os.walk skips folders it cannot list; a silently missing subtree would be lost data, so say so.
    raise ValueError(
        f"Cannot read folder {error.filename!r} ({error.strerror}); fix its permissions or remove it, so that "
        "no files are silently left out."
    ) from error

