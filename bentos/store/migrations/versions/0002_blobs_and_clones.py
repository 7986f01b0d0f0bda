"""blob rows, one provider clone per (file, model), upload claims, persona notices

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_blobs")),
    )
    op.create_table(
        "voice_clones",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("file_id", sa.String(length=40), nullable=False),
        sa.Column("model", sa.String(length=40), nullable=False),
        sa.Column("step_voice_id", sa.String(length=100), nullable=True),
        sa.Column("sample_text", sa.String(length=200), nullable=True),
        sa.Column("sample_blob_key", sa.String(length=100), nullable=True),
        sa.Column("billed", sa.Boolean(), nullable=False),
        sa.Column("billed_persona_id", sa.String(length=40), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["file_id"], ["files.id"], name=op.f("fk_voice_clones_file_id_files")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_voice_clones")),
        sa.UniqueConstraint("file_id", "model", name=op.f("uq_voice_clones_file_id")),
    )
    op.create_index(op.f("ix_voice_clones_file_id"), "voice_clones", ["file_id"], unique=False)
    op.create_index(op.f("ix_voice_clones_step_voice_id"), "voice_clones", ["step_voice_id"], unique=False)
    with op.batch_alter_table("files") as batch:
        batch.add_column(sa.Column("step_upload_claimed_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("personas") as batch:
        batch.add_column(sa.Column("notices", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("personas") as batch:
        batch.drop_column("notices")
    with op.batch_alter_table("files") as batch:
        batch.drop_column("step_upload_claimed_at")
    op.drop_index(op.f("ix_voice_clones_step_voice_id"), table_name="voice_clones")
    op.drop_index(op.f("ix_voice_clones_file_id"), table_name="voice_clones")
    op.drop_table("voice_clones")
    op.drop_table("blobs")
