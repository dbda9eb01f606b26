"""sites: a domain is unique among verified sites only; websites.verified_at

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

import advanced_alchemy.types
import sqlalchemy as sa

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

VERIFIED = sa.text("verified_at IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("websites", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("verified_at", advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=True)
        )
        batch_op.drop_index(batch_op.f("ix_websites_domain"))
        batch_op.create_index(batch_op.f("ix_websites_domain"), ["domain"], unique=False)
        batch_op.create_index(
            "uq_websites_verified_domain",
            ["domain"],
            unique=True,
            sqlite_where=VERIFIED,
            postgresql_where=VERIFIED,
        )


def downgrade() -> None:
    with op.batch_alter_table("websites", schema=None) as batch_op:
        batch_op.drop_index("uq_websites_verified_domain")
        batch_op.drop_index(batch_op.f("ix_websites_domain"))
        batch_op.create_index(batch_op.f("ix_websites_domain"), ["domain"], unique=True)
        batch_op.drop_column("verified_at")
