"""accounts: API key scopes, and who created each share link (revoked with that user's credentials)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

import advanced_alchemy.types
import sqlalchemy as sa

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

GUID = advanced_alchemy.types.GUID(length=16)


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch_op:
        batch_op.add_column(sa.Column("scopes", sa.JSON(), nullable=True))
    with op.batch_alter_table("share_links") as batch_op:
        batch_op.add_column(sa.Column("created_by_id", GUID, nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_share_links_created_by_id_users"),
            "users",
            ["created_by_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index(batch_op.f("ix_share_links_created_by_id"), ["created_by_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("share_links") as batch_op:
        batch_op.drop_index(batch_op.f("ix_share_links_created_by_id"))
        batch_op.drop_constraint(batch_op.f("fk_share_links_created_by_id_users"), type_="foreignkey")
        batch_op.drop_column("created_by_id")
    with op.batch_alter_table("api_keys") as batch_op:
        batch_op.drop_column("scopes")
