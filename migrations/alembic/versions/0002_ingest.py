"""extra site hostnames, daily visitor salts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import advanced_alchemy.types
import sqlalchemy as sa

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("websites") as batch_op:
        batch_op.add_column(sa.Column("hostnames", sa.JSON(), nullable=False, server_default="[]"))
    op.create_table(
        "visitor_salts",
        sa.Column("id", advanced_alchemy.types.GUID(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("salt", sa.LargeBinary(length=32), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visitor_salts")),
        sa.UniqueConstraint("day", name=op.f("uq_visitor_salts_day")),
    )


def downgrade() -> None:
    op.drop_table("visitor_salts")
    with op.batch_alter_table("websites") as batch_op:
        batch_op.drop_column("hostnames")
