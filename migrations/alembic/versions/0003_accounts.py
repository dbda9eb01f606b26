"""accounts: sessions, API keys, mailed tokens, OAuth identities, invitations, share links, goals

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

import advanced_alchemy.types
import sqlalchemy as sa

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

GUID = advanced_alchemy.types.GUID(length=16)
TS = advanced_alchemy.types.DateTimeUTC(timezone=True)


def _id() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("id", GUID, nullable=False)


def _sentinel() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True)


def _user_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["user_id"], ["users.id"], name=op.f(f"fk_{table}_user_id_users"), ondelete="CASCADE"
    )


def _website_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["website_id"], ["websites.id"], name=op.f(f"fk_{table}_website_id_websites"), ondelete="CASCADE"
    )


def _index(table: str, column: str) -> None:
    with op.batch_alter_table(table) as batch_op:
        batch_op.create_index(batch_op.f(f"ix_{table}_{column}"), [column], unique=False)


def upgrade() -> None:
    op.create_table(
        "auth_sessions",
        _id(),
        sa.Column("user_id", GUID, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("user_agent", sa.String(400), nullable=False),
        _sentinel(),
        _user_fk("auth_sessions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_auth_sessions_token_hash")),
    )
    _index("auth_sessions", "user_id")
    op.create_table(
        "api_keys",
        _id(),
        sa.Column("user_id", GUID, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("read_only", sa.Boolean(), nullable=False),
        sa.Column("site_ids", sa.JSON(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_used_at", TS, nullable=True),
        _sentinel(),
        _user_fk("api_keys"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    _index("api_keys", "user_id")
    op.create_table(
        "user_tokens",
        _id(),
        sa.Column("user_id", GUID, nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS, nullable=True),
        _sentinel(),
        _user_fk("user_tokens"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_user_tokens_token_hash")),
    )
    _index("user_tokens", "user_id")
    op.create_table(
        "oauth_accounts",
        _id(),
        sa.Column("user_id", GUID, nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        _sentinel(),
        _user_fk("oauth_accounts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_accounts")),
        sa.UniqueConstraint("provider", "subject", name=op.f("uq_oauth_accounts_provider")),
    )
    _index("oauth_accounts", "user_id")
    op.create_table(
        "invitations",
        _id(),
        sa.Column("website_id", GUID, nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("role", sa.Enum("owner", "admin", "viewer", name="role", native_enum=False, length=16)),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("invited_by_id", GUID, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("accepted_at", TS, nullable=True),
        _sentinel(),
        _website_fk("invitations"),
        sa.ForeignKeyConstraint(
            ["invited_by_id"],
            ["users.id"],
            name=op.f("fk_invitations_invited_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_invitations_token_hash")),
    )
    _index("invitations", "website_id")
    op.create_table(
        "share_links",
        _id(),
        sa.Column("website_id", GUID, nullable=False),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        _sentinel(),
        _website_fk("share_links"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_share_links")),
        sa.UniqueConstraint("slug", name=op.f("uq_share_links_slug")),
    )
    _index("share_links", "website_id")
    op.create_table(
        "goals",
        _id(),
        sa.Column("website_id", GUID, nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("path", sa.String(500), nullable=True),
        sa.Column("event_name", sa.String(120), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        _sentinel(),
        _website_fk("goals"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_goals")),
        sa.UniqueConstraint("website_id", "name", name=op.f("uq_goals_website_id")),
    )
    _index("goals", "website_id")


def downgrade() -> None:
    for table in (
        "goals",
        "share_links",
        "invitations",
        "oauth_accounts",
        "user_tokens",
        "api_keys",
        "auth_sessions",
    ):
        op.drop_table(table)
