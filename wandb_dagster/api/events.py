"""Read the event feed by cursor: every artifact, registry and run-state change, in commit order, once.

Example (``Api.events`` / ``Api.event_cursor`` delegate here)::

    >>> from wandb_dagster.api.events import head_cursor, read_events
    >>> cursor = head_cursor(store)                     # "only what happens from now on"   # doctest: +SKIP
    >>> page = read_events(store, after=cursor, types=["LINK_ARTIFACT", "ADD_ARTIFACT_ALIAS"],
    ...                    filter={"project": "wandb-registry-model"})                        # doctest: +SKIP
    >>> for event in page:                                                                    # doctest: +SKIP
    ...     print(event.type, event.artifact_name, event.alias)
    >>> cursor = page.cursor       # save it (it is a plain string); pass it as after= next time

Guarantees (docs/architecture.md invariant 5): events come in one total order, the order their transactions committed;
a reader that always passes the previous page's ``cursor`` sees every event exactly once, including after
a restart from a saved cursor, and never an event of a transaction that rolled back. How the store makes
ids commit-ordered on PostgreSQL is explained in :mod:`wandb_dagster.store.events`.

Cursors are opaque strings; do not build or parse them. ``after=None`` reads from the beginning of the
feed. A page with ``has_more`` set means "call again right away"; otherwise the reader is at the head and
its cursor stays the same string until something new is committed.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, overload

from wandb_dagster.store import EVENT_TYPES

if TYPE_CHECKING:
    from wandb_dagster.store import Store


_MAX_LIMIT = 10_000
_CURSOR_PREFIX = "wdev1:"


@dataclass(frozen=True)
class Event:
    """One change: what happened (``type``), to what, when, by which run.

    ``version`` is the member's index in ``collection`` ("v3"), ``artifact_id`` the version's public id (the
    same for a version and its registry links). ``alias``/``tag`` name the alias or tag of ALIAS/TAG events.
    ``run_id`` is the acting run, when one is known. ``payload`` carries the rest (e.g.
    ``{"previous_version": "v2"}`` when an alias moved, ``{"previous_state": ..., "state": ...}`` for
    RUN_STATE_CHANGE, the source version of a link).
    """

    id: int
    type: str
    created_at: datetime
    entity: str
    project: str
    collection: str | None
    collection_type: str | None
    version: str | None
    artifact_id: str | None
    alias: str | None
    tag: str | None
    run_id: str | None
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def artifact_name(self) -> str | None:
        """``"entity/project/collection:vN"``, usable with ``Api().artifact``; None for run events."""
        if self.collection is None or self.version is None:
            return None
        return f"{self.entity}/{self.project}/{self.collection}:{self.version}"


class EventPage(Sequence[Event]):
    """Events in cursor order; ``cursor`` goes to the next call's ``after=``; ``has_more``: call again now."""

    def __init__(self, events: list[Event], cursor: str, has_more: bool) -> None:
        self._events = events
        self.cursor = cursor
        self.has_more = has_more

    @overload
    def __getitem__(self, index: int) -> Event: ...

    @overload
    def __getitem__(self, index: slice) -> list[Event]: ...

    def __getitem__(self, index: int | slice) -> Event | list[Event]:
        return self._events[index]

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[Event]:
        return iter(self._events)

    def __repr__(self) -> str:
        return f"<EventPage {len(self._events)} event(s) cursor={self.cursor!r} has_more={self.has_more}>"


def read_events(
    store: Store,
    *,
    after: str | None,
    types: str | Iterable[str] | None = None,
    filter: Mapping[str, Any] | None = None,
    limit: int = 100,
) -> EventPage:
    """Up to ``limit`` events committed after cursor ``after`` (None: from the beginning), oldest first.

    ``types``: event type names to keep (see :data:`EVENT_TYPES`). ``filter``: a Mongo-style filter, as in
    the query API, on ``type``, ``entity``, ``project``, ``collection``, ``collection_type``, ``version``,
    ``artifact_id``, ``alias``, ``tag``, ``run_id``, ``created_at`` and ``payload.<key>``, e.g.
    ``{"project": "wandb-registry-model", "alias": {"$in": ["production", "staging"]}}``.
    Events that do not match are skipped, and the returned cursor moves past them too.
    """
    after_id = _decode_cursor(after)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= _MAX_LIMIT:
        raise ValueError(f"limit={limit!r} must be an integer from 1 to {_MAX_LIMIT}")
    wanted = None if types is None else _check_types(types)
    found = store.read_events(after_id=after_id, filter=filter, types=wanted, limit=limit)
    if after_id > found.head:
        raise ValueError(
            f"cursor {after!r} points past the end of this workspace's event feed (event {after_id}, newest "
            f"{found.head}): it comes from another workspace or a database that was recreated; start again with "
            "after=None (everything) or head_cursor() (only new events)"
        )
    events = [_event(row) for row in found.rows]
    return EventPage(events, _encode_cursor(found.examined), has_more=found.examined < found.head)


def newest_events(
    store: Store,
    *,
    types: str | Iterable[str] | None = None,
    filter: Mapping[str, Any] | None = None,
    limit: int = 100,
) -> list[Event]:
    """The newest ``limit`` events matching ``types`` and ``filter`` (as :func:`read_events`), newest first: a
    history to show, not a feed to follow (it has no cursor).

    >>> [e.alias for e in newest_events(store, types="ADD_ARTIFACT_ALIAS", limit=5)]   # doctest: +SKIP
    """
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= _MAX_LIMIT:
        raise ValueError(f"limit={limit!r} must be an integer from 1 to {_MAX_LIMIT}")
    wanted = None if types is None else _check_types(types)
    return [_event(row) for row in store.newest_events(filter=filter, types=wanted, limit=limit)]


def head_cursor(store: Store) -> str:
    """A cursor at the newest committed event: reading after it returns only what is committed later."""
    return _encode_cursor(store.events_head())


def _event(row: Any) -> Event:
    return Event(
        id=row.id,
        type=row.type,
        created_at=row.created_at,
        entity=row.entity,
        project=row.project,
        collection=row.collection,
        collection_type=row.collection_type,
        version=None if row.version_index is None else f"v{row.version_index}",
        artifact_id=row.artifact_id,
        alias=row.alias,
        tag=row.tag,
        run_id=row.run_id,
        payload=row.payload,
    )


def _encode_cursor(event_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{event_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if isinstance(cursor, str):
        try:
            text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            text = ""
        digits = text[len(_CURSOR_PREFIX) :] if text.startswith(_CURSOR_PREFIX) else ""
        if digits.isdigit() and digits.isascii():
            return int(digits)
    raise ValueError(
        f"after={cursor!r} is not an event cursor; pass the .cursor of a page returned by read_events() "
        "(Api.events()) or a value from head_cursor() (Api.event_cursor()), unchanged, or None to read from "
        "the beginning"
    )


def _check_types(types: str | Iterable[str]) -> list[str]:
    wanted = [types] if isinstance(types, str) else list(types)
    if not wanted:
        raise ValueError(f"types={types!r} selects no event; pass None for every type, or some of {list(EVENT_TYPES)}")
    unknown = [t for t in wanted if t not in EVENT_TYPES]
    if unknown:
        raise ValueError(f"unknown event type(s) {unknown!r}; valid types: {list(EVENT_TYPES)}")
    return wanted
