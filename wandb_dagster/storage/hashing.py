"""MD5 digests in W&B's two spellings: padded base64 (manifests) and lowercase hex (blob and cache names).

Example::

    >>> from wandb_dagster.storage.hashing import md5_b64, b64_to_hex
    >>> md5_b64(b"hello\\n")
    'sZRqySSS0jR8YjW00mERhA=='
    >>> b64_to_hex("sZRqySSS0jR8YjW00mERhA==")
    'b1946ac92492d2347c6235b4d2611184'
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re

from .errors import is_a_directory

CHUNK = 1024 * 1024
"""Streaming read size: few syscalls per file, bounded memory."""

EMPTY_MD5_B64 = "1B2M2Y8AsgTpgAmY7PhCfg=="
EMPTY_MD5_HEX = "d41d8cd98f00b204e9800998ecf8427e"

_HEX_RE = re.compile(r"[0-9a-f]{32}")


def new_md5(data: bytes = b""):
    """An MD5 object. MD5 names content here and is no security check; saying so keeps FIPS builds of
    OpenSSL from refusing it."""
    return hashlib.md5(data, usedforsecurity=False)


def check_hex(hexdigest: str) -> str:
    """Return ``hexdigest`` if it is 32 lowercase hex characters, else raise ValueError naming it.

    Every storage or cache path built from a digest goes through here, so a digest can never smuggle
    ``/`` or ``..`` into a path.
    """
    if not isinstance(hexdigest, str) or _HEX_RE.fullmatch(hexdigest) is None:
        raise ValueError(
            f"{hexdigest!r} is not an MD5 hex digest: expected 32 lowercase hex characters "
            "(convert a W&B base64 digest with b64_to_hex)"
        )
    return hexdigest


def b64_to_hex(b64: str) -> str:
    """W&B's base64 digest -> the lowercase hex digest that names blobs."""
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raw = b""
    if len(raw) != 16:
        raise ValueError(f"{b64!r} is not a base64 MD5 digest: expected 24 characters encoding 16 bytes")
    return raw.hex()


def hex_to_b64(hexstr: str) -> str:
    """Lowercase hex digest -> W&B's padded base64 digest."""
    return base64.b64encode(bytes.fromhex(check_hex(hexstr))).decode("ascii")


def md5_b64(data: bytes) -> str:
    """W&B's digest of in-memory bytes."""
    return base64.b64encode(new_md5(data).digest()).decode("ascii")


def hash_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """(hex MD5, size) of a file, read in at most CHUNK pieces: bounded memory whatever the size.

    A small file is read with a single call (one byte more than its size, to notice growth) rather than
    through a CHUNK buffer, whose allocation would cost more than hashing a few KiB.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        size = os.fstat(fd).st_size
        if size < CHUNK:
            data = os.read(fd, size + 1)
            if len(data) == size:
                return new_md5(data).hexdigest(), size
            h, total = new_md5(data), len(data)  # grew meanwhile, or a short read: go on streaming
        else:
            h, total = new_md5(), 0
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        while n := os.readv(fd, [buf]):
            h.update(view[:n])
            total += n
        return h.hexdigest(), total
    except IsADirectoryError:
        # Opening a folder works, reading it fails: said clearly here, at no cost per file.
        raise is_a_directory(path) from None
    finally:
        os.close(fd)
