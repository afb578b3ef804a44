"""Teams and users of the Public API reference (seed 001): ``Api().create_team``, ``team``, ``create_user``,
``user``, ``users`` and ``viewer``.

This is a directory, not access control: it records who exists and who is in which team, so that code
written against W&B's Public API runs and gives the same answers. Anyone who can reach the workspace's
database and bucket can read and write everything in it (README, "Organizations, registries, teams and
users"). There are no API keys and no service accounts; the calls that make them raise and say so.

Example::

    >>> api = wandb.Api()                                              # doctest: +SKIP
    >>> team = api.create_team("my-team")                              # the viewer is its admin  # doctest: +SKIP
    >>> team.invite("bob@example.com")                                 # doctest: +SKIP
    True
    >>> [m.username for m in team.members]                             # doctest: +SKIP
    ['tester', 'bob']
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from wandb_dagster.sdk.values import iso_timestamp
from wandb_dagster.store.records import MemberRecord, TeamRecord, UserRecord

if TYPE_CHECKING:
    from wandb_dagster.store import Directory

_NO_KEYS = (
    "wandb_dagster has no server, so there are no API keys or service accounts: whoever can reach the "
    "workspace's database and bucket can read and write it. Limit access with the database's and the bucket's "
    "own permissions (README, 'Organizations, registries, teams and users')."
)


class User:
    """A user of the directory: ``username`` (the name of its personal entity), ``email``, ``admin`` and
    ``teams`` (the names of the teams it belongs to), as in W&B's ``wandb.apis.public.User``."""

    def __init__(self, directory: Directory, record: UserRecord) -> None:
        self._directory = directory
        self._record = record

    @property
    def id(self) -> str:
        return f"user-{self._record.pk}"

    @property
    def username(self) -> str:
        return self._record.username

    @property
    def name(self) -> str:
        """W&B's display name; the username here (the directory records no other name)."""
        return self._record.username

    @property
    def entity(self) -> str:
        """The user's personal entity (its runs and projects can live under it)."""
        return self._record.username

    @property
    def email(self) -> str | None:
        return self._record.email

    @property
    def admin(self) -> bool:
        return self._record.admin

    @property
    def teams(self) -> list[str]:
        """The names of the teams this user is a member of (as last read)."""
        return list(self._record.teams)

    @property
    def created_at(self) -> str:
        """ISO 8601 text, as in W&B (``created_datetime``: the same as a datetime)."""
        return iso_timestamp(self._record.created_at)

    @property
    def created_datetime(self) -> datetime:
        return self._record.created_at

    @property
    def api_keys(self) -> list[str]:
        """Always empty: there are no API keys (see the module docstring)."""
        return []

    @property
    def user_api(self) -> None:
        """W&B returns an Api authenticated as this user; there is no authentication here."""
        raise NotImplementedError(_NO_KEYS)

    def generate_api_key(self, description: str | None = None) -> str:
        raise NotImplementedError(_NO_KEYS)

    def delete_api_key(self, api_key: str) -> bool:
        raise NotImplementedError(_NO_KEYS)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, User) and other._record.pk == self._record.pk

    def __hash__(self) -> int:
        return hash(("user", self._record.pk))

    def __repr__(self) -> str:
        return f"<User {self._record.email or self._record.username}>"


class Member:
    """A member of a team (W&B's ``wandb.apis.public.Member``); ``delete()`` removes it from the team."""

    def __init__(self, directory: Directory, team: TeamRecord, record: MemberRecord) -> None:
        self._directory = directory
        self._team = team
        self._record = record

    @property
    def id(self) -> str:
        return f"user-{self._record.pk}"

    @property
    def username(self) -> str:
        return self._record.username

    @property
    def name(self) -> str:
        return self._record.username

    @property
    def email(self) -> str | None:
        return self._record.email

    @property
    def admin(self) -> bool:
        return self._record.admin

    @property
    def pending(self) -> bool:
        """False: an invitation adds the member at once (there is no one to accept it)."""
        return False

    @property
    def account_type(self) -> str:
        return "MEMBER"

    def delete(self) -> bool:
        """Remove this member from the team; False when it was no longer a member."""
        return self._directory.remove_member(self._team.pk, self._record.pk)

    def __repr__(self) -> str:
        return f"<Member {self._record.username} (MEMBER)>"


class Team:
    """A team (an entity that several users share), as in W&B's ``wandb.apis.public.Team``.

    ``members`` is read when asked for; ``invite`` adds a user at once.
    """

    def __init__(self, directory: Directory, record: TeamRecord) -> None:
        self._directory = directory
        self._record = record

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def id(self) -> str:
        return f"team-{self._record.pk}"

    @property
    def organization(self) -> str:
        """The organization the team belongs to (where its registry paths resolve)."""
        return self._record.organization

    @property
    def created_at(self) -> str:
        return iso_timestamp(self._record.created_at)

    @property
    def created_datetime(self) -> datetime:
        return self._record.created_at

    @property
    def members(self) -> list[Member]:
        """The team's members, in the order they joined (the admin who created it first)."""
        return [Member(self._directory, self._record, m) for m in self._directory.members(self._record.pk)]

    def invite(self, username_or_email: str, admin: bool = False) -> bool:
        """Add a user to the team, as W&B's invite does once accepted; True when added.

        An email that no user has creates that user first (W&B would email an invitation). As in W&B, the
        result is False, not an error, when it cannot be done: an unknown username, or a member already.
        """
        if "@" in username_or_email and self._directory.user(username_or_email) is None:
            self._directory.create_user(username_or_email)
        return self._directory.add_member(self._record.pk, username_or_email, admin=admin)

    def create_service_account(self, description: str) -> Member | None:
        raise NotImplementedError(_NO_KEYS)

    def load(self, force: bool = False) -> None:
        """Read the team again (``members`` is always read afresh)."""
        found = self._directory.team(self._record.name)
        if found is None:
            raise ValueError(f"team {self._record.name!r} no longer exists")
        self._record = found

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Team) and other._record.pk == self._record.pk

    def __hash__(self) -> int:
        return hash(("team", self._record.pk))

    def __repr__(self) -> str:
        return f"<Team {self._record.name}>"
