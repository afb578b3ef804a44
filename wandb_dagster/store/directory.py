"""The directory of users and teams: who exists and who is in which team. Not access control.

A user's username is the name of its personal entity; a team is an entity too. Entity names are one
namespace, as in W&B: a name is a user's or a team's, never both. Each method of :class:`Directory` is one
transaction.

Example::

    >>> d = store.directory()                                              # doctest: +SKIP
    >>> alice = d.create_user("alice@example.com")                         # doctest: +SKIP
    >>> team = d.create_team("my-team", admin=alice.username, organization_pk=None)  # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa

from wandb_dagster.store import organizations
from wandb_dagster.store import schema as db
from wandb_dagster.store.records import MemberRecord, TeamRecord, UserRecord
from wandb_dagster.store.sql import now as _now

_USERS_FROM = db.users.join(db.entities, db.entities.c.id == db.users.c.entity_id)


def _username_from_email(email: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", email.partition("@")[0]).strip("-.") or "user"


class Directory:
    """Users and teams of one workspace (see the module docstring)."""

    def __init__(
        self,
        read: Callable[[], AbstractContextManager[sa.Connection]],
        write: Callable[[], AbstractContextManager[sa.Connection]],
    ) -> None:
        self._read, self._write = read, write

    # ------------------------------------------------------------------ users

    def create_user(self, email: str, *, admin: bool = False) -> UserRecord:
        """A new user for ``email``, named after its local part (``alice`` for ``alice@example.com``; a
        taken name gets ``-2``, ``-3``...). An entity of that name that no user or team holds (one runs
        used) becomes the user's personal entity. ValueError if a user has this email."""
        with self._write() as conn:
            if _user_by(conn, db.users.c.email == email) is not None:
                raise ValueError(f"a user with email {email!r} exists already; fetch it with api.user({email!r})")
            base = name = _username_from_email(email)
            n = 1
            while _held(conn, name):
                n += 1
                name = f"{base}-{n}"
            return _add_user(conn, name, email, admin)

    def ensure_user(self, username: str) -> UserRecord:
        """User ``username``, created (without an email) if missing; ValueError if a team holds the name."""
        with self._write() as conn:
            found = _user_by(conn, db.entities.c.name == username)
            if found is not None:
                return found
            if _held(conn, username):
                raise ValueError(f"{username!r} is a team, not a user; use another username")
            return _add_user(conn, username, None, False)

    def user(self, username_or_email: str) -> UserRecord | None:
        """The user of that username or email (emails compared without case), or None."""
        with self._read() as conn:
            return _user_by(
                conn,
                sa.or_(
                    db.entities.c.name == username_or_email,
                    sa.func.lower(db.users.c.email) == username_or_email.lower(),
                ),
            )

    def users(self, query: str) -> list[UserRecord]:
        """Users whose username or email contains ``query`` (without case), by username."""
        pattern = "%" + query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        with self._read() as conn:
            pks = conn.execute(
                sa.select(db.users.c.entity_id)
                .select_from(_USERS_FROM)
                .where(
                    sa.or_(
                        sa.func.lower(db.entities.c.name).like(pattern, escape="\\"),
                        sa.func.lower(db.users.c.email).like(pattern, escape="\\"),
                    )
                )
                .order_by(db.entities.c.name)
            ).scalars().all()
            return [u for pk in pks if (u := _user_by(conn, db.users.c.entity_id == pk)) is not None]

    # ------------------------------------------------------------------ teams

    def create_team(self, name: str, *, admin: str, organization_pk: int | None) -> tuple[TeamRecord, bool]:
        """Team ``name`` with user ``admin`` as its admin member; returns (team, created). An existing team
        is returned as it is. An entity of that name that runs used becomes the team. ``organization_pk``:
        the organization it joins (None: the workspace's default)."""
        with self._write() as conn:
            found = _team(conn, name)
            if found is not None:
                return found, False
            admin_user = _user_by(conn, db.entities.c.name == admin)
            if admin_user is None:
                raise ValueError(
                    f"no user {admin!r} to be the admin of team {name!r}; create it first "
                    "(api.create_user(email)) or pass admin_username= of an existing user"
                )
            if _user_by(conn, db.entities.c.name == name) is not None:
                raise ValueError(f"{name!r} is a user's name; a team needs a name no user or team has")
            now = _now()
            entity_id = organizations.entity_pk(conn, name, now)
            if conn.execute(sa.select(db.organizations.c.id).where(db.organizations.c.entity_id == entity_id)).first():
                raise ValueError(f"{name!r} is an organization's entity; a team needs another name")
            conn.execute(sa.insert(db.teams).values(entity_id=entity_id, created_at=now))
            if organization_pk is not None:
                organizations.join(conn, entity_id, organization_pk)
            conn.execute(
                sa.insert(db.team_members).values(
                    team_entity_id=entity_id, user_entity_id=admin_user.pk, admin=True, created_at=now
                )
            )
            created = _team(conn, name)
            assert created is not None
            return created, True

    def team(self, name: str) -> TeamRecord | None:
        with self._read() as conn:
            return _team(conn, name)

    def teams(self) -> list[str]:
        with self._read() as conn:
            return sorted(
                conn.execute(
                    sa.select(db.entities.c.name).join(db.teams, db.teams.c.entity_id == db.entities.c.id)
                ).scalars()
            )

    def members(self, team_pk: int) -> list[MemberRecord]:
        """The members of team ``team_pk``, in the order they joined."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(
                    db.team_members.c.user_entity_id, db.entities.c.name, db.users.c.email, db.team_members.c.admin,
                    db.team_members.c.created_at,
                )
                .select_from(db.team_members)
                .join(db.users, db.users.c.entity_id == db.team_members.c.user_entity_id)
                .join(db.entities, db.entities.c.id == db.users.c.entity_id)
                .where(db.team_members.c.team_entity_id == team_pk)
                .order_by(db.team_members.c.created_at, db.entities.c.name)
            ).all()  # fmt: skip
        return [MemberRecord(pk=r[0], username=r[1], email=r[2], admin=bool(r[3]), created_at=r[4]) for r in rows]

    def add_member(self, team_pk: int, username_or_email: str, *, admin: bool) -> bool:
        """Add a user to team ``team_pk``; False when there is no such user or it is a member already."""
        with self._write() as conn:
            user = _user_by(
                conn,
                sa.or_(
                    db.entities.c.name == username_or_email,
                    sa.func.lower(db.users.c.email) == username_or_email.lower(),
                ),
            )
            if user is None:
                return False
            inserted = conn.execute(
                sa.insert(db.team_members)
                .from_select(
                    ["team_entity_id", "user_entity_id", "admin", "created_at"],
                    sa.select(
                        sa.literal(team_pk), sa.literal(user.pk), sa.literal(admin),
                        sa.literal(_now(), db.UTCDateTime()),
                    ).where(
                        ~sa.exists().where(
                            db.team_members.c.team_entity_id == team_pk, db.team_members.c.user_entity_id == user.pk
                        )
                    ),
                )
                .returning(db.team_members.c.user_entity_id)
            ).first()  # fmt: skip
            return inserted is not None

    def remove_member(self, team_pk: int, user_pk: int) -> bool:
        with self._write() as conn:
            removed = conn.execute(
                sa.delete(db.team_members)
                .where(db.team_members.c.team_entity_id == team_pk, db.team_members.c.user_entity_id == user_pk)
                .returning(db.team_members.c.user_entity_id)
            ).first()
            return removed is not None


def _held(conn: sa.Connection, name: str) -> bool:
    """Whether a user, a team or an organization holds entity name ``name``."""
    entity_id = conn.execute(sa.select(db.entities.c.id).where(db.entities.c.name == name)).scalar()
    if entity_id is None:
        return False
    return any(
        conn.execute(sa.select(table.c[column]).where(table.c[column] == entity_id)).first() is not None
        for table, column in ((db.users, "entity_id"), (db.teams, "entity_id"), (db.organizations, "entity_id"))
    )


def _add_user(conn: sa.Connection, username: str, email: str | None, admin: bool) -> UserRecord:
    now = _now()
    entity_id = organizations.entity_pk(conn, username, now)
    conn.execute(sa.insert(db.users).values(entity_id=entity_id, email=email, admin=admin, created_at=now))
    found = _user_by(conn, db.users.c.entity_id == entity_id)
    assert found is not None
    return found


def _user_by(conn: sa.Connection, condition: Any) -> UserRecord | None:
    row = conn.execute(
        sa.select(db.users, db.entities.c.name).select_from(_USERS_FROM).where(condition).order_by(db.entities.c.name)
    ).first()
    if row is None:
        return None
    teams = sorted(
        conn.execute(
            sa.select(db.entities.c.name)
            .select_from(db.team_members)
            .join(db.entities, db.entities.c.id == db.team_members.c.team_entity_id)
            .where(db.team_members.c.user_entity_id == row.entity_id)
        ).scalars()
    )
    return UserRecord(
        pk=row.entity_id, username=row.name, email=row.email, admin=bool(row.admin), created_at=row.created_at,
        teams=teams,
    )  # fmt: skip


def _team(conn: sa.Connection, name: str) -> TeamRecord | None:
    row = conn.execute(
        sa.select(db.teams.c.entity_id, db.teams.c.created_at)
        .join(db.entities, db.entities.c.id == db.teams.c.entity_id)
        .where(db.entities.c.name == name)
    ).first()
    if row is None:
        return None
    org = organizations.of_entity(conn, name)
    return TeamRecord(pk=row.entity_id, name=name, organization=org.name if org else "", created_at=row.created_at)
