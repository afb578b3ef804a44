"""Reference handlers: turn a URI into manifest entries (checksum, size, version), and fetch them back.

Example::

    >>> from wandb_dagster.storage import references
    >>> [r.path for r in references.resolve("file:///etc/hostname")]   # doctest: +SKIP
    ['hostname']

Each scheme has one handler with two operations, ``resolve`` (list + checksum) and ``download`` (fetch
the recorded content, verified). ``file://`` lives here; remote schemes register themselves the same way.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import stat
from pathlib import Path
from typing import Any, BinaryIO, Callable, Protocol
from urllib.parse import quote, unquote, urlparse

from wandb_dagster.storage.blobs import unique_suffix
from wandb_dagster.storage.hashing import CHUNK, b64_to_hex, hash_file, hex_to_b64, new_md5

DEFAULT_MAX_OBJECTS = 10_000_000
_O_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


@dataclasses.dataclass
class Reference:
    path: str
    digest: str
    size: int | None
    ref: str
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


class Handler(Protocol):
    def resolve(self, uri: str, name: str | None, max_objects: int) -> list[Reference]: ...

    def download(self, ref: str, digest: str, size: int | None, extra: dict, dest: Path, entry_path: str) -> None: ...


_HANDLERS: dict[str, Callable[[], Handler]] = {}


def register(scheme: str, factory: Callable[[], Handler]) -> None:
    _HANDLERS[scheme] = factory


def _scheme(uri: str) -> str:
    if not isinstance(uri, str) or "://" not in uri:
        raise ValueError(
            f"Reference {uri!r} is not a URI: use file:///abs/path, s3://bucket/key, gs://bucket/key or "
            "http(s)://host/path (use add_file/add_dir for local paths)."
        )
    return uri.split("://", 1)[0].lower()


def _handler(uri: str) -> Handler:
    scheme = _scheme(uri)
    factory = _HANDLERS.get(scheme)
    if factory is None:
        raise ValueError(
            f"Reference {uri!r} has scheme {scheme!r}, which is not supported; supported schemes: "
            f"{', '.join(sorted(_HANDLERS))}."
        )
    return factory()


def _default_name(uri: str) -> str:
    path = urlparse(uri).path.rstrip("/")
    return posixpath.basename(unquote(path)) or urlparse(uri).netloc


def resolve(uri: str, name: str | None = None, checksum: bool = True, max_objects: int | None = None) -> list[Reference]:
    """Entries for ``uri``. With ``checksum=False`` one entry whose digest and ref are the URI itself."""
    limit = DEFAULT_MAX_OBJECTS if max_objects is None else max_objects
    if not isinstance(limit, int) or limit < 1:
        raise ValueError(f"max_objects={max_objects!r} is invalid: give a positive integer.")
    handler = _handler(uri)
    if not checksum:
        return [Reference(path=name or _default_name(uri), digest=uri, size=None, ref=uri)]
    found = handler.resolve(uri, name, limit)
    if not found:
        raise FileNotFoundError(f"Reference {uri!r} matches no object; check the path and that it exists.")
    return found


def download(ref: str, digest: str, size: int | None, extra: dict, dest: Path, entry_path: str) -> None:
    _handler(ref).download(ref, digest, size, extra, dest, entry_path)


def too_many(uri: str, limit: int) -> ValueError:
    return ValueError(
        f"Reference {uri!r} expands to more than max_objects={limit} objects; pass a larger max_objects or "
        "reference a narrower prefix (nothing was truncated)."
    )


def copy_verified(src: BinaryIO, dest: Path, expected_b64: str | None, entry_path: str, uri: str) -> None:
    """Stream ``src`` into a temp file beside ``dest`` while hashing; rename into place only if the digest
    matches (``expected_b64=None``: not tracked, any content). Same pattern as BlobStore.get_file, which is
    bound to a blob store and raises CorruptBlobError, so it cannot be reused for a reference."""
    dest = Path(os.path.abspath(dest))
    tmp = f"{dest.parent}/.{dest.name}.{unique_suffix()}.part"
    try:
        out = os.open(tmp, _O_NEW, 0o666)
    except FileNotFoundError:
        os.makedirs(dest.parent, exist_ok=True)
        out = os.open(tmp, _O_NEW, 0o666)
    try:
        h = new_md5()
        with os.fdopen(out, "wb") as f:
            while chunk := src.read(CHUNK):
                h.update(chunk)
                f.write(chunk)
        actual = hex_to_b64(h.hexdigest())
        if expected_b64 is not None and actual != expected_b64:
            raise ValueError(
                f"Reference entry {entry_path!r} ({uri}) has changed since it was logged: recorded digest "
                f"{expected_b64}, current content {actual}. Log a new version to track the new content."
            )
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def file_uri_path(uri: str) -> str:
    parsed = urlparse(uri)
    if parsed.netloc not in ("", "localhost"):
        raise ValueError(f"Reference {uri!r} names host {parsed.netloc!r}; file:// references must be local (file:///abs/path).")
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

    def resolve(self, uri: str, name: str | None, max_objects: int) -> list[Reference]:
        root = file_uri_path(uri)
        if os.path.isfile(root):
            hexdigest, size = hash_file(root)
            return [Reference(path=name or os.path.basename(root), digest=hex_to_b64(hexdigest), size=size, ref=uri)]
        if not os.path.isdir(root):
            raise FileNotFoundError(f"Reference {uri!r}: {root!r} does not exist.")
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

    def download(self, ref: str, digest: str, size: int | None, extra: dict, dest: Path, entry_path: str) -> None:
        source = file_uri_path(ref)
        expected = None if digest == ref else digest
        if expected is not None:
            b64_to_hex(expected)  # a malformed digest fails here, before any I/O
        try:
            src = open(source, "rb")
        except FileNotFoundError:
            raise FileNotFoundError(
                f"Reference entry {entry_path!r}: {ref} no longer exists; restore it or pass "
                "allow_missing_references=True to skip missing references."
            ) from None
        with src:
            copy_verified(src, dest, expected, entry_path, ref)


register("file", FileHandler)


def _unreadable(error: OSError) -> None:
    # os.walk skips folders it cannot list; a silently missing subtree would be lost data, so say so.
    raise ValueError(
        f"Cannot read folder {error.filename!r} ({error.strerror}); fix its permissions or remove it, so that "
        "no files are silently left out."
    ) from error

