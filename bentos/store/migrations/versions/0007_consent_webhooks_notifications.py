"""consent challenges, webhooks and their deliveries, the notification feed

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _index(table: str, *columns: str, unique: bool = False) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        for column in columns:
            batch_op.create_index(batch_op.f(f"ix_{table}_{column}"), [column], unique=unique)


def upgrade() -> None:
    op.create_table(
        "consent_challenges",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("file_id", sa.String(length=40), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("sentence", sa.Text(), nullable=False),
        _ts("expires_at"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("cosine", sa.Float(), nullable=True),
        sa.Column("recording_sha256", sa.String(length=64), nullable=True),
        _ts("verified_at", nullable=True),
        _ts("created_at"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_consent_challenges_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(["file_id"], ["files.id"], name=op.f("fk_consent_challenges_file_id_files")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_challenges")),
    )
    _index("consent_challenges", "account_id", "file_id")

    op.create_table(
        "provider_cleanups",
        sa.Column("id", _ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("next_attempt_at"),
        _ts("claimed_at", nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        _ts("created_at"),
        _ts("done_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_cleanups")),
        sa.UniqueConstraint("kind", "target", name=op.f("uq_provider_cleanups_kind")),
    )
    _index("provider_cleanups", "status")

    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(length=80), nullable=False),
        _ts("created_at"),
        _ts("deleted_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_webhooks_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
    )
    _index("webhooks", "account_id")

    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("webhook_id", sa.String(length=40), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("next_attempt_at"),
        _ts("claimed_at", nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("replay_of", sa.String(length=40), nullable=True),
        _ts("created_at"),
        _ts("delivered_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["webhook_id"], ["webhooks.id"], name=op.f("fk_webhook_deliveries_webhook_id_webhooks")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    _index("webhook_deliveries", "webhook_id", "status")

    op.create_table(
        "webhook_attempts",
        sa.Column("id", _ID, nullable=False),
        sa.Column("delivery_id", sa.String(length=40), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        _ts("created_at"),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["webhook_deliveries.id"],
            name=op.f("fk_webhook_attempts_delivery_id_webhook_deliveries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
    )
    _index("webhook_attempts", "delivery_id")

    op.create_table(
        "notifications",
        sa.Column("id", _ID, nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        _ts("created_at"),
        _ts("read_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_notifications_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("event_id", name=op.f("uq_notifications_event_id")),
    )
    _index("notifications", "account_id")

    with op.batch_alter_table("personas", schema=None) as batch_op:
        batch_op.add_column(sa.Column("consent_challenge_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("consent_recording_sha256", sa.String(length=64), nullable=True))
    with op.batch_alter_table("voice_clones", schema=None) as batch_op:
        batch_op.add_column(_ts("provider_voice_retired_at", nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("voice_clones", schema=None) as batch_op:
        batch_op.drop_column("provider_voice_retired_at")
    with op.batch_alter_table("personas", schema=None) as batch_op:
        batch_op.drop_column("consent_recording_sha256")
        batch_op.drop_column("consent_challenge_id")
    for table in ("notifications", "webhook_attempts", "webhook_deliveries", "webhooks", "provider_cleanups"):
        op.drop_table(table)
    op.drop_table("consent_challenges")
