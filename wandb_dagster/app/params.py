"""Path and query parameters of the app, validated before anything is looked up with them.

Every page takes names from the URL; a name that could not have been created (``..``, a slash smuggled in
encoded, a NUL, an overlong one) is answered with 404 naming the parameter, before any store or blob access.
So nothing outside the workspace can be reached through a URL (the blob store is only ever addressed by a
checked hex digest, see :func:`digest`).

    >>> name("my-project", "project")
    'my-project'
    >>> name("..", "project")
    Traceback (most recent call last):
    ...
    starlette.exceptions.HTTPException: 404: project '..' is not a valid name
"""

from __future__ import annotations

import re
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request

# Entity, project, run and sweep ids, collection names, artifact types: what the SDK accepts (sdk/names.py:
# letters, digits, '-', '_', '.'), at most 128 characters; ".." and "." are never names.
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_VERSION_RE = re.compile(r"^(v\d{1,18}|latest|[A-Za-z0-9_.-]{1,128})$")
_HEX_RE = re.compile(r"^[0-9a-f]{32}$")


def not_found(message: str) -> HTTPException:
    """The 404 every page raises for an unknown or invalid thing; ``message`` is shown on the 404 page."""
    return HTTPException(status_code=404, detail=message)


def bad_request(message: str) -> HTTPException:
    """A 400 (a query parameter that cannot be used); ``message`` is shown on the error page."""
    return HTTPException(status_code=400, detail=message)


def name(value: Any, what: str) -> str:
    """``value`` when it is a valid entity/project/run/collection/type name, else a 404 naming ``what``."""
    if not isinstance(value, str) or not _NAME_RE.match(value) or value in (".", ".."):
        raise not_found(f"{what} {value!r} is not a valid name")
    return value


def version(value: Any) -> str:
    """An artifact version selector: ``vN``, an alias, or a version id."""
    if not isinstance(value, str) or not _VERSION_RE.match(value) or value in (".", ".."):
        raise not_found(f"version {value!r} is not a valid version (vN or an alias)")
    return value


def digest(value: Any) -> str:
    """A blob's MD5 as 32 lowercase hex characters (the only way the app addresses the blob store)."""
    if not isinstance(value, str) or not _HEX_RE.match(value):
        raise not_found(f"digest {value!r} is not an MD5 hex digest")
    return value


def path_names(request: Request, *keys: str) -> list[str]:
    """The validated path parameters ``keys`` of ``request`` (each a name), in order.

    >>> entity, project = path_names(request, "entity", "project")   # doctest: +SKIP
    """
    return [name(request.path_params.get(key), key.replace("_", " ")) for key in keys]


def int_param(request: Request, key: str, default: int | None = None, *, lo: int | None = None,
              hi: int | None = None) -> int | None:
    """Query parameter ``key`` as an int (``default`` when absent); not an int, or outside [lo, hi]: 400."""
    raw = request.query_params.get(key)
    if raw is None or raw == "":
        return default
    try:
        number = int(raw)
    except ValueError:
        raise bad_request(f"{key}={raw!r} is not an integer") from None
    if (lo is not None and number < lo) or (hi is not None and number > hi):
        raise bad_request(f"{key}={number} is outside [{lo}, {hi}]")
    return number
