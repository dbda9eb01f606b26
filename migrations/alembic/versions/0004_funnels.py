"""funnels: ordered steps per site

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

import advanced_alchemy.types
import sqlalchemy as sa

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "funnels",
        sa.Column("id", advanced_alchemy.types.GUID(length=16), nullable=False),
        sa.Column("website_id", advanced_alchemy.types.GUID(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("window_seconds", sa.Integer(), nullable=False),
        sa.Column("created_at", advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["website_id"], ["websites.id"], name=op.f("fk_funnels_website_id_websites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funnels")),
        sa.UniqueConstraint("website_id", "name", name=op.f("uq_funnels_website_id")),
    )
    with op.batch_alter_table("funnels") as batch_op:
        batch_op.create_index(batch_op.f("ix_funnels_website_id"), ["website_id"], unique=False)


def downgrade() -> None:
    op.drop_table("funnels")
