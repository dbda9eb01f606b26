"""alerts: monthly reports, payment and spike alerts per member; a site's spike threshold and chat webhook

Revision ID: 0016
Revises: 0012
Create Date: 2026-12-05
"""

import advanced_alchemy.types
import sqlalchemy as sa

from alembic import op

revision = "0016"
down_revision = "0012"
branch_labels = None
depends_on = None

TS = advanced_alchemy.types.DateTimeUTC(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("memberships") as batch_op:
        for column in ("monthly_report", "payment_alerts", "spike_alerts"):
            batch_op.add_column(sa.Column(column, sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("websites") as batch_op:
        batch_op.add_column(sa.Column("alert_webhook_url", sa.String(500), nullable=True))
        batch_op.add_column(sa.Column("spike_threshold", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("spike_alerted_at", TS, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("websites") as batch_op:
        for column in ("spike_alerted_at", "spike_threshold", "alert_webhook_url"):
            batch_op.drop_column(column)
    with op.batch_alter_table("memberships") as batch_op:
        for column in ("spike_alerts", "payment_alerts", "monthly_report"):
            batch_op.drop_column(column)
