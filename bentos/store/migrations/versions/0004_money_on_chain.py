"""money on chain: crypto deposits and their cursor, payout-wallet challenges, settlement cycles, settlement chain facts

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "chain_cursors",
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_chain_cursors")),
    )
    op.create_table(
        "chain_deposits",
        sa.Column("id", _ID, nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("contract", sa.String(length=42), nullable=False),
        sa.Column("sender", sa.String(length=42), nullable=False),
        sa.Column("reference", sa.String(length=66), nullable=False),
        sa.Column("value_wei", sa.String(length=80), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_chain_deposits_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chain_deposits")),
        sa.UniqueConstraint("tx_hash", "log_index", name=op.f("uq_chain_deposits_tx_hash")),
    )
    with op.batch_alter_table("chain_deposits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chain_deposits_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_chain_deposits_reference"), ["reference"], unique=False)

    op.create_table(
        "wallet_challenges",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_wallet_challenges_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallet_challenges")),
    )
    with op.batch_alter_table("wallet_challenges", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wallet_challenges_account_id"), ["account_id"], unique=False)

    op.create_table(
        "settlement_cycles",
        sa.Column("period", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("period_days", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("settlements", sa.Integer(), nullable=False),
        sa.Column("creator_amount", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("period", name=op.f("pk_settlement_cycles")),
    )

    with op.batch_alter_table("settlements", schema=None) as batch_op:
        batch_op.add_column(sa.Column("block_number", sa.BigInteger(), nullable=True))
        # The chain settlement (outbox intent) paying this row: a cycle pays many creators in one.
        batch_op.add_column(sa.Column("chain_settlement_id", sa.String(length=40), nullable=True))
        # The part of creator_amount moved creator → payout in the ledger (earnings older than the ledger
        # have no entries, so a settlement moves only what the creator book holds).
        batch_op.add_column(sa.Column("ledger_amount", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.create_index(
            batch_op.f("ix_settlements_chain_settlement_id"), ["chain_settlement_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("settlements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_settlements_chain_settlement_id"))
        batch_op.drop_column("ledger_amount")
        batch_op.drop_column("chain_settlement_id")
        batch_op.drop_column("block_number")
    op.drop_table("settlement_cycles")
    with op.batch_alter_table("wallet_challenges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wallet_challenges_account_id"))
    op.drop_table("wallet_challenges")
    with op.batch_alter_table("chain_deposits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chain_deposits_reference"))
        batch_op.drop_index(batch_op.f("ix_chain_deposits_account_id"))
    op.drop_table("chain_deposits")
    op.drop_table("chain_cursors")
