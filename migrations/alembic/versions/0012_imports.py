"""imports: jobs bringing a site's history from Plausible, Umami or GA4

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

import advanced_alchemy.types
import sqlalchemy as sa

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

GUID = advanced_alchemy.types.GUID(length=16)
TS = advanced_alchemy.types.DateTimeUTC(timezone=True)


def upgrade() -> None:
    op.create_table(
        "imports",
        sa.Column("id", GUID, nullable=False),
        sa.Column("website_id", GUID, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("first_day", sa.Date(), nullable=True),
        sa.Column("last_day", sa.Date(), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.Column("requested_by", sa.String(320), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["website_id"], ["websites.id"], name=op.f("fk_imports_website_id_websites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imports")),
    )
    with op.batch_alter_table("imports") as batch_op:
        batch_op.create_index(batch_op.f("ix_imports_website_id"), ["website_id"], unique=False)


def downgrade() -> None:
    op.drop_table("imports")
