"""revenue: payment provider connections and processed webhook deliveries

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

import advanced_alchemy.types
import sqlalchemy as sa

from alembic import op

revision = "0005"
# Chained after the analytics branch's 0004 (funnels) when revenue was merged into dashboard.
down_revision = "0004"
branch_labels = None
depends_on = None

GUID = advanced_alchemy.types.GUID(length=16)
TS = advanced_alchemy.types.DateTimeUTC(timezone=True)


def upgrade() -> None:
    op.create_table(
        "payment_connections",
        sa.Column("id", GUID, nullable=False),
        sa.Column("website_id", GUID, nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("secret_encrypted", sa.String(500), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["website_id"],
            ["websites.id"],
            name=op.f("fk_payment_connections_website_id_websites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_connections")),
        sa.UniqueConstraint("website_id", "provider", name=op.f("uq_payment_connections_website_id")),
    )
    with op.batch_alter_table("payment_connections") as batch_op:
        batch_op.create_index(batch_op.f("ix_payment_connections_website_id"), ["website_id"], unique=False)
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", GUID, nullable=False),
        sa.Column("connection_id", GUID, nullable=False),
        sa.Column("delivery_id", sa.String(128), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["payment_connections.id"],
            name=op.f("fk_webhook_deliveries_connection_id_payment_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint("connection_id", "delivery_id", name=op.f("uq_webhook_deliveries_connection_id")),
    )
    with op.batch_alter_table("webhook_deliveries") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_deliveries_connection_id"), ["connection_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("payment_connections")
