"""sites: whether tracker (unverified) revenue counts, and its per-event cap

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

import sqlalchemy as sa

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("websites") as batch_op:
        batch_op.add_column(
            sa.Column("count_client_revenue", sa.String(8), nullable=False, server_default="auto")
        )
        batch_op.add_column(
            sa.Column("client_revenue_cap", sa.Integer(), nullable=False, server_default="10000")
        )


def downgrade() -> None:
    with op.batch_alter_table("websites") as batch_op:
        batch_op.drop_column("client_revenue_cap")
        batch_op.drop_column("count_client_revenue")
