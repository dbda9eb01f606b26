"""billing: hosted-mode accounts mirrored from Stripe, processed billing event ids; weekly report opt-in

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

import advanced_alchemy.types
import sqlalchemy as sa

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

GUID = advanced_alchemy.types.GUID(length=16)
TS = advanced_alchemy.types.DateTimeUTC(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("memberships") as batch_op:
        batch_op.add_column(
            sa.Column("weekly_report", sa.Boolean(), nullable=False, server_default=sa.text("false"))
        )
    op.create_table(
        "billing_accounts",
        sa.Column("id", GUID, nullable=False),
        sa.Column("user_id", GUID, nullable=False),
        sa.Column("plan", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("trial_ends_at", TS, nullable=True),
        sa.Column("current_period_start", TS, nullable=True),
        sa.Column("current_period_end", TS, nullable=True),
        sa.Column("past_due_since", TS, nullable=True),
        sa.Column("canceled_at", TS, nullable=True),
        sa.Column("over_allowance_since", TS, nullable=True),
        sa.Column("usage_notice_level", sa.Integer(), nullable=False),
        sa.Column("usage_notice_period", TS, nullable=True),
        sa.Column("trial_notice_sent", sa.Boolean(), nullable=False),
        sa.Column("stripe_customer_id", sa.String(255), nullable=True),
        sa.Column("stripe_subscription_id", sa.String(255), nullable=True),
        sa.Column("subscription_event_at", sa.Integer(), nullable=False),
        sa.Column("status_event_at", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_billing_accounts_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_accounts")),
        sa.UniqueConstraint("user_id", name=op.f("uq_billing_accounts_user_id")),
        sa.UniqueConstraint("stripe_customer_id", name=op.f("uq_billing_accounts_stripe_customer_id")),
    )
    op.create_table(
        "billing_events",
        sa.Column("id", GUID, nullable=False),
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_billing_events_event_id")),
    )


def downgrade() -> None:
    with op.batch_alter_table("memberships") as batch_op:
        batch_op.drop_column("weekly_report")
    op.drop_table("billing_events")
    op.drop_table("billing_accounts")
