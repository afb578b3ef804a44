"""Lazy, paginated results: one SQL query per page of ``per_page`` rows, fetched as iteration reaches it.

Example::

    >>> runs = api.runs("my-project", per_page=100)   # doctest: +SKIP  (no query yet)
    >>> len(runs)                                      # doctest: +SKIP  (one COUNT)
    >>> first = runs[0]                                # doctest: +SKIP  (the first page)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

if TYPE_CHECKING:
    from wandb_dagster.store import Store
    from wandb_dagster.store.scope import Query

T = TypeVar("T")

# fetch(after, limit) -> (objects, the keyset of the last one); `after` is None for the first page.
Fetch = Callable[[Any, int], "tuple[list[T], Any]"]


class Paginator(Generic[T]):
    """A lazy sequence of query results, loaded ``per_page`` at a time (keyset pagination in SQL).

    Iterating twice reuses the pages already loaded (call :meth:`refresh` to query again, as W&B's
    ``api.flush()``); ``len()`` is one ``COUNT`` query; indexing loads pages up to the index.
    """

    def __init__(self, fetch: Fetch[T], count: Callable[[], int], per_page: int | None = 50) -> None:
        per_page = 50 if per_page is None else per_page
        if not isinstance(per_page, int) or isinstance(per_page, bool) or per_page < 1:
            raise ValueError(f"per_page must be a positive integer, got {per_page!r}")
        self._fetch, self._count, self.per_page = fetch, count, per_page
        self.objects: list[T] = []
        self._after: Any = None
        self._done = False

    @classmethod
    def over(cls, store: Store, query: Query, wrap: Callable[[Any], T], per_page: int | None) -> Paginator[T]:
        """The records of ``query`` (:meth:`Store.query`), each passed through ``wrap``."""

        def fetch(after: Any, limit: int) -> tuple[list[T], Any]:
            records, last = store.page(query, after=after, limit=limit)
            return [wrap(record) for record in records], last

        return cls(fetch, lambda: store.count(query), per_page)

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
        """Forget loaded pages; the next access queries again."""
        self.objects, self._after, self._done = [], None, False

    def __iter__(self) -> Iterator[T]:
        index = 0
        while True:
            while index < len(self.objects):
                yield self.objects[index]
                index += 1
            if not self._load_page():
                return

    def __len__(self) -> int:
        if self._done:
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
