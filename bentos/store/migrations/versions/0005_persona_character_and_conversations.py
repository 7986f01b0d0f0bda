"""persona character versions, conversations and their turns

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "persona_characters",
        sa.Column("id", _ID, nullable=False),
        sa.Column("persona_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("persona_prompt", sa.Text(), nullable=False),
        sa.Column("greeting", sa.Text(), nullable=True),
        sa.Column("emotion", sa.String(length=16), nullable=True),
        sa.Column("style", sa.String(length=16), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["persona_id"], ["personas.id"], name=op.f("fk_persona_characters_persona_id_personas")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_persona_characters")),
        sa.UniqueConstraint("persona_id", "version", name=op.f("uq_persona_characters_persona_id")),
    )
    with op.batch_alter_table("persona_characters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_persona_characters_persona_id"), ["persona_id"], unique=False)

    op.create_table(
        "conversations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("caller_id", sa.String(length=40), nullable=False),
        sa.Column("persona_id", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["caller_id"], ["accounts.id"], name=op.f("fk_conversations_caller_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["persona_id"], ["personas.id"], name=op.f("fk_conversations_persona_id_personas")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
    )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_conversations_caller_id"), ["caller_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_conversations_persona_id"), ["persona_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_conversations_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "conversation_turns",
        sa.Column("id", _ID, nullable=False),
        sa.Column("conversation_id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=12), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("character_version", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=100), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("chat_amount", sa.BigInteger(), nullable=False),
        sa.Column("tts_chars", sa.Integer(), nullable=False),
        sa.Column("tts_amount", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_turns_conversation_id_conversations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_turns")),
        sa.UniqueConstraint("conversation_id", "seq", name=op.f("uq_conversation_turns_conversation_id")),
        sa.UniqueConstraint("request_id", name=op.f("uq_conversation_turns_request_id")),
    )
    with op.batch_alter_table("conversation_turns", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conversation_turns_conversation_id"), ["conversation_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("conversation_turns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversation_turns_conversation_id"))
    op.drop_table("conversation_turns")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversations_updated_at"))
        batch_op.drop_index(batch_op.f("ix_conversations_persona_id"))
        batch_op.drop_index(batch_op.f("ix_conversations_caller_id"))
    op.drop_table("conversations")
    with op.batch_alter_table("persona_characters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_persona_characters_persona_id"))
    op.drop_table("persona_characters")
