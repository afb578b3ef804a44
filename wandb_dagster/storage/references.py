"""Reference handlers: turn a URI into manifest entries (checksum, size, version), and fetch them back.

Example::

    >>> from wandb_dagster.storage import references
    >>> [r.path for r in references.resolve("file:///etc/hostname")]   # doctest: +SKIP
    ['hostname']

Each scheme has one handler with two operations, ``resolve`` (list + checksum) and ``download`` (fetch
the recorded content, verified). ``file://`` lives here; remote schemes register themselves the same way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import posixpath
import tempfile
from pathlib import Path
from typing import Any, Callable, Protocol
from urllib.parse import unquote, urlparse

from wandb_dagster.storage.hashing import b64_to_hex, hex_to_b64

DEFAULT_MAX_OBJECTS = 10_000_000
_CHUNK = 1024 * 1024


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


def copy_verified(read_chunk: Callable[[int], bytes], dest: Path, expected_b64: str | None, entry_path: str, uri: str) -> None:
    """Stream into a temp file beside ``dest`` while hashing; rename into place only if the digest matches."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    md5 = hashlib.md5()
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := read_chunk(_CHUNK):
                md5.update(chunk)
                out.write(chunk)
        actual = hex_to_b64(md5.hexdigest())
        if expected_b64 is not None and actual != expected_b64:
            raise ValueError(
                f"Reference entry {entry_path!r} ({uri}) has changed since it was logged: recorded digest "
                f"{expected_b64}, current content {actual}. Log a new version to track the new content."
            )
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def file_uri_path(uri: str) -> str:
    parsed = urlparse(uri)
    if parsed.netloc not in ("", "localhost"):
        raise ValueError(f"Reference {uri!r} names host {parsed.netloc!r}; file:// references must be local (file:///abs/path).")
    return unquote(parsed.path)


class FileHandler:
    """``file://`` references: a file, or a directory walked recursively; digest = MD5 of the content."""

    def resolve(self, uri: str, name: str | None, max_objects: int) -> list[Reference]:
        from wandb_dagster.storage.hashing import hash_file

        root = file_uri_path(uri)
        if os.path.isfile(root):
            hexdigest, size = hash_file(root)
            return [Reference(path=name or os.path.basename(root), digest=hex_to_b64(hexdigest), size=size, ref=uri)]
        if not os.path.isdir(root):
            raise FileNotFoundError(f"Reference {uri!r}: {root!r} does not exist.")
        found: list[Reference] = []
        base = uri.rstrip("/")
        for dirpath, _dirs, filenames in os.walk(root, followlinks=True):
            for filename in sorted(filenames):
                full = os.path.join(dirpath, filename)
                if not os.path.isfile(full):
                    continue
                if len(found) >= max_objects:
                    raise too_many(uri, max_objects)
                rel = os.path.relpath(full, root).replace(os.sep, "/")
                hexdigest, size = hash_file(full)
                found.append(
                    Reference(
                        path=f"{name}/{rel}" if name else rel,
                        digest=hex_to_b64(hexdigest),
                        size=size,
                        ref=f"{base}/{rel}",
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
            copy_verified(src.read, dest, expected, entry_path, ref)


register("file", FileHandler)
