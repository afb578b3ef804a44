"""Lazy, paginated results: one SQL query per page of ``per_page`` rows, fetched as iteration reaches it.

Example::

    >>> runs = api.runs("my-project", per_page=100)   # doctest: +SKIP  (no query yet)
    >>> len(runs)                                      # doctest: +SKIP  (one COUNT)
    >>> first = runs[0]                                # doctest: +SKIP  (the first page)

As in W&B, ``cursor`` marks where the next page starts; pass it as ``start=`` to the same query later (another
process too) to go on from there::

    >>> versions = api.artifacts("dataset", "bike-dataset", per_page=10)   # doctest: +SKIP
    >>> first_page = list(itertools.islice(versions, 10))                  # doctest: +SKIP
    >>> rest = api.artifacts("dataset", "bike-dataset", per_page=10, start=versions.cursor)  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

if TYPE_CHECKING:
    from wandb_dagster.store import Store
    from wandb_dagster.store.scope import Query

T = TypeVar("T")

# fetch(after, limit) -> (objects, the keyset of the last one); `after` is None for the first page.
Fetch = Callable[[Any, int], "tuple[list[T], Any]"]


def encode_cursor(keyset: Any) -> str:
    """A keyset (an int, a string, a datetime or a tuple of them) as an opaque, URL-safe cursor string."""
    return base64.urlsafe_b64encode(json.dumps(_plain(keyset), separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str) -> Any:
    """The keyset :func:`encode_cursor` made ``cursor`` from; ValueError for anything else."""
    try:
        return _typed(json.loads(base64.urlsafe_b64decode(cursor.encode())))
    except (AttributeError, binascii.Error, UnicodeDecodeError, ValueError, TypeError):
        raise ValueError(
            f"start={cursor!r} is not a cursor; pass the .cursor of an earlier result of the same query"
        ) from None


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"dt": value.isoformat()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def _typed(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"dt"}:
        return datetime.fromisoformat(value["dt"])
    if isinstance(value, list):
        return tuple(_typed(v) for v in value)
    return value


class Paginator(Generic[T]):
    """A lazy sequence of query results, loaded ``per_page`` at a time (keyset pagination in SQL).

    Iterating twice reuses the pages already loaded (call :meth:`refresh` to query again, as W&B's
    ``api.flush()``); ``len()`` is one ``COUNT`` query (of every result, also with ``start``, as W&B's
    total count); indexing loads pages up to the index. ``cursor``: where the next page starts (W&B's
    ``.cursor``); ``start``: a cursor to begin after, from an earlier result of the same query.
    """

    def __init__(
        self, fetch: Fetch[T], count: Callable[[], int], per_page: int | None = 50, start: str | None = None
    ) -> None:
        per_page = 50 if per_page is None else per_page
        if not isinstance(per_page, int) or isinstance(per_page, bool) or per_page < 1:
            raise ValueError(f"per_page must be a positive integer, got {per_page!r}")
        if start is not None and not isinstance(start, str):
            raise ValueError(f"start must be a cursor string (a paginator's .cursor) or None, got {start!r}")
        self._fetch, self._count, self.per_page = fetch, count, per_page
        self._start = start
        self.objects: list[T] = []
        self._after: Any = None if start is None else decode_cursor(start)
        self._done = False

    @classmethod
    def over(
        cls, store: Store, query: Query, wrap: Callable[[Any], T], per_page: int | None, start: str | None = None
    ) -> Paginator[T]:
        """The records of ``query`` (:meth:`Store.query`), each passed through ``wrap``."""

        def fetch(after: Any, limit: int) -> tuple[list[T], Any]:
            try:
                records, last = store.page(query, after=after, limit=limit)
            except (TypeError, ValueError) as exc:
                if after is None:
                    raise
                # A cursor of another query has a keyset of another shape.
                raise ValueError(f"start={start!r} is not a cursor of this query ({exc})") from None
            return [wrap(record) for record in records], last

        return cls(fetch, lambda: store.count(query), per_page, start)

    @classmethod
    def of_list(cls, items: list[T], per_page: int | None = 50, start: str | None = None) -> Paginator[T]:
        """``items`` (already small and in memory), with the paginator's interface and cursors."""

        def fetch(after: Any, limit: int) -> tuple[list[T], Any]:
            if after is not None and not isinstance(after, int):
                raise ValueError(f"start={start!r} is not a cursor of this query")
            begin = 0 if after is None else after
            page = items[begin : begin + limit]
            return page, (begin + len(page) if page else None)

        return cls(fetch, lambda: len(items), per_page, start)

    @property
    def cursor(self) -> str | None:
        """Where the next page starts (None before the first page of a result without ``start``); pass it
        as ``start=`` to the same query to continue from there, as with W&B's paginators."""
        return None if self._after is None else encode_cursor(self._after)

    @property
    def more(self) -> bool:
        """True until a page came back shorter than ``per_page``."""
        return not self._done

    def _load_page(self) -> bool:
        if self._done:
            return False
        objects, after = self._fetch(self._after, self.per_page)
        self.objects.extend(objects)
        if len(objects) < self.per_page:
            self._done = True
        if after is not None:
            self._after = after
        return bool(objects)

    def refresh(self) -> None:
        """Forget loaded pages; the next access queries again (from ``start``, when one was given)."""
        self.objects, self._done = [], False
        self._after = None if self._start is None else decode_cursor(self._start)

    def __iter__(self) -> Iterator[T]:
        index = 0
        while True:
            while index < len(self.objects):
                yield self.objects[index]
                index += 1
            if not self._load_page():
                return

    def __len__(self) -> int:
        if self._done and self._start is None:
            return len(self.objects)
        return self._count()

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            if (index.start or 0) < 0 or (index.stop is not None and index.stop < 0) or index.stop is None:
                self._load_all()
            else:
                while len(self.objects) < index.stop and self._load_page():
                    pass
            return self.objects[index]
        if index < 0:
            self._load_all()
        else:
            while len(self.objects) <= index and self._load_page():
                pass
        return self.objects[index]

    def _load_all(self) -> None:
        while self._load_page():
            pass

    def __bool__(self) -> bool:
        return bool(self.objects) or self._load_page()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} loaded={len(self.objects)} more={self.more}>"
