"""Indexes for registry queries: versions by tag, members by alias, collections by tag.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

``api.registries().versions(filter={"alias": "production"})`` and ``{"tag": "prod"}`` look aliases and
tags up by value across every collection; the primary keys ((collection_id, alias), (version_id, tag),
(collection_id, tag)) only serve lookups from the owning row. Written out in full (a migration is a
snapshot; see 0001).
"""
from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The owning row's id is in each index, so that a lookup by (owner, value) is one probe of either.
    op.create_index(op.f("ix_aliases_alias_membership_id"), "aliases", ["alias", "membership_id"])
    op.create_index(op.f("ix_version_tags_tag_version_id"), "version_tags", ["tag", "version_id"])
    op.create_index(op.f("ix_collection_tags_tag_collection_id"), "collection_tags", ["tag", "collection_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_collection_tags_tag_collection_id"), table_name="collection_tags")
    op.drop_index(op.f("ix_version_tags_tag_version_id"), table_name="version_tags")
    op.drop_index(op.f("ix_aliases_alias_membership_id"), table_name="aliases")
