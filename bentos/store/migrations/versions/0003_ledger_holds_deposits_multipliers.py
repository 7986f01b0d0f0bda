"""the double-entry ledger, holds, deposit references, persona price multipliers, usage provider cost

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ledger_balances",
        sa.Column("book", sa.String(length=80), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("book", name=op.f("pk_ledger_balances")),
    )
    op.create_table(
        "ledger_transactions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("reference", sa.String(length=160), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=True),
        sa.Column("memo", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transactions")),
        sa.UniqueConstraint("reference", name=op.f("uq_ledger_transactions_reference")),
    )
    with op.batch_alter_table("ledger_transactions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_transactions_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ledger_transactions_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_ledger_transactions_kind"), ["kind"], unique=False)

    op.create_table(
        "holds",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("api_key_id", sa.String(length=40), nullable=True),
        sa.Column("purpose", sa.String(length=12), nullable=False),
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_holds_account_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holds")),
    )
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_holds_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_holds_api_key_id"), ["api_key_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_holds_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_holds_subject"), ["subject"], unique=False)

    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("transaction_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("book", sa.String(length=80), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_ledger_entries_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
    )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_entries_book"), ["book"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_ledger_entries_transaction_id"), ["transaction_id"], unique=False
        )

    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deposit_reference", sa.String(length=66), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_accounts_deposit_reference"), ["deposit_reference"])

    with op.batch_alter_table("personas", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("price_multiplier_bps", sa.Integer(), nullable=False, server_default="10000")
        )

    with op.batch_alter_table("usage", schema=None) as batch_op:
        batch_op.add_column(sa.Column("provider_cost", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("api_key_id", sa.String(length=40), nullable=True))
        batch_op.create_index(batch_op.f("ix_usage_api_key_id"), ["api_key_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_usage_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("usage", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_usage_created_at"))
        batch_op.drop_index(batch_op.f("ix_usage_api_key_id"))
        batch_op.drop_column("api_key_id")
        batch_op.drop_column("provider_cost")

    with op.batch_alter_table("personas", schema=None) as batch_op:
        batch_op.drop_column("price_multiplier_bps")

    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_accounts_deposit_reference"), type_="unique")
        batch_op.drop_column("deposit_reference")

    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_entries_transaction_id"))
        batch_op.drop_index(batch_op.f("ix_ledger_entries_book"))

    op.drop_table("ledger_entries")
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_holds_subject"))
        batch_op.drop_index(batch_op.f("ix_holds_status"))
        batch_op.drop_index(batch_op.f("ix_holds_api_key_id"))
        batch_op.drop_index(batch_op.f("ix_holds_account_id"))

    op.drop_table("holds")
    with op.batch_alter_table("ledger_transactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_transactions_kind"))
        batch_op.drop_index(batch_op.f("ix_ledger_transactions_created_at"))
        batch_op.drop_index(batch_op.f("ix_ledger_transactions_account_id"))

    op.drop_table("ledger_transactions")
    op.drop_table("ledger_balances")
