"""privacy: the audit trail of per-visitor export and erase requests

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

import advanced_alchemy.types
import sqlalchemy as sa

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

GUID = advanced_alchemy.types.GUID(length=16)
TS = advanced_alchemy.types.DateTimeUTC(timezone=True)


def upgrade() -> None:
    op.create_table(
        "privacy_requests",
        sa.Column("id", GUID, nullable=False),
        sa.Column("website_id", GUID, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("matched_by", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(320), nullable=False),
        sa.Column("visitors", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["website_id"],
            ["websites.id"],
            name=op.f("fk_privacy_requests_website_id_websites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_requests")),
    )
    with op.batch_alter_table("privacy_requests") as batch_op:
        batch_op.create_index(batch_op.f("ix_privacy_requests_website_id"), ["website_id"], unique=False)


def downgrade() -> None:
    op.drop_table("privacy_requests")
