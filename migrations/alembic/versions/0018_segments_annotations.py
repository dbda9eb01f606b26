"""segments and annotations: saved dashboard filter sets and notes on the chart, per site

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""

import advanced_alchemy.types
import sqlalchemy as sa

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

GUID = advanced_alchemy.types.GUID(length=16)
TS = advanced_alchemy.types.DateTimeUTC(timezone=True)


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("id", GUID, nullable=False),
        sa.Column("website_id", GUID, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("created_by_id", GUID, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["website_id"], ["websites.id"], name=op.f("fk_segments_website_id_websites"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_segments_created_by_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
        sa.UniqueConstraint("website_id", "name", name=op.f("uq_segments_website_id")),
    )
    with op.batch_alter_table("segments") as batch_op:
        batch_op.create_index(batch_op.f("ix_segments_website_id"), ["website_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_segments_created_by_id"), ["created_by_id"], unique=False)

    op.create_table(
        "annotations",
        sa.Column("id", GUID, nullable=False),
        sa.Column("website_id", GUID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("text", sa.String(200), nullable=False),
        sa.Column("created_by_id", GUID, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["website_id"],
            ["websites.id"],
            name=op.f("fk_annotations_website_id_websites"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_annotations_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_annotations")),
    )
    with op.batch_alter_table("annotations") as batch_op:
        batch_op.create_index("ix_annotations_website_id_day", ["website_id", "day"], unique=False)
        batch_op.create_index(batch_op.f("ix_annotations_created_by_id"), ["created_by_id"], unique=False)


def downgrade() -> None:
    op.drop_table("annotations")
    op.drop_table("segments")
