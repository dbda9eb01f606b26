"""payment connections: a read API key and the state of the history import on connect

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05
"""

import sqlalchemy as sa

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payment_connections") as batch_op:
        batch_op.add_column(sa.Column("api_key_encrypted", sa.String(1000), nullable=True))
        batch_op.add_column(sa.Column("history", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("payment_connections") as batch_op:
        batch_op.drop_column("history")
        batch_op.drop_column("api_key_encrypted")
