"""share links: the origins allowed to embed the shared dashboard in an iframe

Revision ID: 0019
Revises: 0017
Create Date: 2026-12-06
"""

import sqlalchemy as sa

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("share_links") as batch_op:
        batch_op.add_column(sa.Column("embed_origins", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("share_links") as batch_op:
        batch_op.drop_column("embed_origins")
