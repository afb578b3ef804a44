"""Who moved an alias of a collection, and when: the alias history read from the event feed.

Every alias change is an event, written in the transaction that made it (docs/architecture.md invariant 5),
with the acting run and, when the alias moved, the member it left. Example::

    >>> from wandb_dagster.api.alias_history import alias_history
    >>> for change in alias_history(api, "acme", "wandb-registry-model", "classifier"):   # doctest: +SKIP
    ...     print(change.created_at, change.alias, change.previous_version, "->", change.version, change.run_id)

Events copy names in, so a renamed collection's history before the rename is under its old name.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import TYPE_CHECKING

from wandb_dagster.api.events import newest_events

if TYPE_CHECKING:
    from wandb_dagster.api.api import Api

ADD_ARTIFACT_ALIAS, REMOVE_ARTIFACT_ALIAS = "ADD_ARTIFACT_ALIAS", "REMOVE_ARTIFACT_ALIAS"  # event types
# The most changes one call returns: half of api/events.py's page limit, as a move is two events.
_PAGE = 5_000


@dataclasses.dataclass(frozen=True)
class AliasChange:
    """``alias`` was put on ``version`` (``previous_version``: the member it moved from, None when it was
    new in the collection), or taken off ``previous_version`` (``version`` None), at ``created_at`` by the
    run ``run_id`` (None when no run acted, e.g. a change made through ``Api``)."""

    event_id: int
    created_at: datetime
    alias: str
    version: str | None
    previous_version: str | None
    artifact_id: str | None
    run_id: str | None

    @property
    def action(self) -> str:
        """``"added"``, ``"moved"`` or ``"removed"``."""
        if self.version is None:
            return "removed"
        return "added" if self.previous_version is None else "moved"


def alias_history(
    api: Api, entity: str, project: str, collection: str, *, alias: str | None = None, limit: int = 100
) -> list[AliasChange]:
    """The newest ``limit`` alias changes of ``entity/project/collection`` (only ``alias``'s when given),
    newest first. ``latest`` is never reported (it follows the newest member by itself)."""
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= _PAGE:
        raise ValueError(f"limit={limit!r} must be an integer from 1 to {_PAGE}")
    wanted: dict[str, object] = {"entity": entity, "project": project, "collection": collection}
    if alias is not None:
        wanted["alias"] = alias
    changes: list[AliasChange] = []
    # A REMOVE that is half of a move is skipped, so ask for twice as many events: a history of moves only
    # still fills the page in one read.
    events = newest_events(
        api._ws.store, types=[ADD_ARTIFACT_ALIAS, REMOVE_ARTIFACT_ALIAS], filter=wanted, limit=2 * limit
    )
    for event in events:
        if event.type == REMOVE_ARTIFACT_ALIAS:
            if event.payload.get("moved_to") is not None:
                continue  # the ADD event of the same move says it, with previous_version
            change = AliasChange(event.id, event.created_at, str(event.alias), None, event.version,
                                 event.artifact_id, event.run_id)  # fmt: skip
        else:
            change = AliasChange(event.id, event.created_at, str(event.alias), event.version,
                                 event.payload.get("previous_version"), event.artifact_id, event.run_id)  # fmt: skip
        changes.append(change)
    return changes[:limit]
