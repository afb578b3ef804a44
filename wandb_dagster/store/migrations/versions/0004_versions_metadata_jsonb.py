"""``versions.metadata`` becomes ``jsonb`` on PostgreSQL (SQLite: unchanged).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

The query API filters versions on ``metadata.<path>``; PostgreSQL re-parses a ``json`` value on every JSON
function call (a typed comparison makes three), ``jsonb`` is stored parsed. jsonb keeps neither key order nor
duplicate keys: metadata still round-trips equal as a dict (the SDK writes dicts, so no duplicates), and
neither the digest nor the manifest is derived from it. Written out in full (a migration is a snapshot).
"""
from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE versions ALTER COLUMN metadata TYPE jsonb USING metadata::jsonb")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Key order is not restored (jsonb did not keep it); values are.
        op.execute("ALTER TABLE versions ALTER COLUMN metadata TYPE json USING metadata::json")
