"""Collection names from Dagster asset keys: the **full** key, prefixes included, and injective.

W&B artifact names allow ``[A-Za-z0-9_.-]`` and at most 128 characters. Dagster asset key parts are usually
``[A-Za-z0-9_]`` names, so the parts are joined with ``.`` (never in a Dagster name) and every other
character is escaped as ``-XX`` (or ``-uXXXXXX`` beyond Latin-1); ``-`` itself is escaped, so no two keys
map to one name::

    >>> collection_name(["warehouse", "bikes", "features"])
    'warehouse.bikes.features'
    >>> collection_name(["a", "b"]), collection_name(["a_b"]), collection_name(["a.b"])
    ('a.b', 'a_b', 'a-2eb')

A name longer than 128 characters keeps its first 110 characters and ends with ``-z`` and 16 hex digits of the
SHA-256 of the full name (a collision needs a SHA-256 prefix collision).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

_KEEP = re.compile(r"[A-Za-z0-9_]")
_MAX = 128
_HASH_CHARS = 16


def _escape_part(part: str) -> str:
    if not part:
        return "-"  # an empty part: "-" followed by "." or the end never starts an escape
    out = []
    for char in part:
        if _KEEP.match(char):
            out.append(char)
        elif ord(char) < 256:
            out.append(f"-{ord(char):02x}")
        else:
            out.append(f"-u{ord(char):06x}")
    return "".join(out)


def _key_parts(asset_key: Any) -> list[str]:
    path = getattr(asset_key, "path", asset_key)  # a dagster.AssetKey, or its path
    if isinstance(path, str):
        path = [path]
    parts = list(path) if isinstance(path, Sequence) else None
    if not parts or not all(isinstance(p, str) for p in parts):
        raise ValueError(f"Asset key {asset_key!r} is invalid: give an AssetKey or a non-empty list of strings.")
    return parts


def collection_name(asset_key: Any) -> str:
    """The artifact collection that holds the versions of ``asset_key`` (an ``AssetKey`` or its path)."""
    name = ".".join(_escape_part(p) for p in _key_parts(asset_key))
    if len(name) <= _MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:_HASH_CHARS]
    # In an escaped name "-" is always followed by a hex digit, "u", "." or the end; "-z" never occurs, so a
    # shortened name can never equal an unshortened one.
    return f"{name[: _MAX - _HASH_CHARS - 2]}-z{digest}"
