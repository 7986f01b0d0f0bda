"""passwords, sessions, reset tokens and named, scoped API keys

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _token_table(
    name: str,
    *extra: sa.Column,
    constraints: tuple[sa.ForeignKeyConstraint, ...] = (),  # type: ignore[type-arg]
) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        *extra,
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f(f"fk_{name}_account_id_accounts")),
        *constraints,
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
        sa.UniqueConstraint("token_hash", name=op.f(f"uq_{name}_token_hash")),
    )
    with op.batch_alter_table(name, schema=None) as batch_op:
        batch_op.create_index(batch_op.f(f"ix_{name}_account_id"), ["account_id"], unique=False)


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name", sa.String(length=60), nullable=False, server_default=""))

    op.create_table(
        "account_passwords",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_account_passwords_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_account_passwords")),
    )
    _token_table(
        "sign_in_sessions",
        sa.Column("api_key_id", sa.String(length=40), nullable=True),
        sa.Column("scopes", sa.String(length=200), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        constraints=(
            sa.ForeignKeyConstraint(
                ["api_key_id"], ["api_keys.id"], name=op.f("fk_sign_in_sessions_api_key_id_api_keys")
            ),
        ),
    )
    _token_table("password_resets", sa.Column("used_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "mail_outbox",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("to_email", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_outbox")),
    )
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mail_outbox_to_email"), ["to_email"], unique=False)
    op.create_table(
        "sign_in_failures",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_failures")),
    )
    with op.batch_alter_table("sign_in_failures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sign_in_failures_email"), ["email"], unique=False)
        batch_op.create_index(batch_op.f("ix_sign_in_failures_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    for table in (
        "sign_in_failures",
        "mail_outbox",
        "password_resets",
        "sign_in_sessions",
        "account_passwords",
    ):
        op.drop_table(table)
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("name")
