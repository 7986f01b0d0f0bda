"""persona versions, impersonation review, reports, bans and the admin audit log

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)

# The audit log is append-only in the database itself, not only in the code that writes it.
_SQLITE_GUARDS = [
    f"CREATE TRIGGER admin_audit_no_{verb.lower()} BEFORE {verb} ON admin_audit "
    "BEGIN SELECT RAISE(ABORT, 'admin_audit is append-only'); END"
    for verb in ("UPDATE", "DELETE")
]
_PG_GUARD = [
    "CREATE FUNCTION admin_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'admin_audit is append-only'; END $$",
    "CREATE TRIGGER admin_audit_append_only BEFORE UPDATE OR DELETE ON admin_audit "
    "FOR EACH ROW EXECUTE FUNCTION admin_audit_append_only()",
]


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("banned_at", _TS, nullable=True))
        batch_op.add_column(sa.Column("erased_at", _TS, nullable=True))

    op.create_table(
        "persona_versions",
        sa.Column("id", _ID, nullable=False),
        sa.Column("persona_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("changed", sa.JSON(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("metadata_hash", sa.String(length=66), nullable=False),
        sa.Column("editor_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["persona_id"], ["personas.id"], name=op.f("fk_persona_versions_persona_id_personas")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_persona_versions")),
        sa.UniqueConstraint("persona_id", "version", name=op.f("uq_persona_versions_persona_id")),
    )
    op.create_index(op.f("ix_persona_versions_persona_id"), "persona_versions", ["persona_id"])

    op.create_table(
        "review_decisions",
        sa.Column("id", _ID, nullable=False),
        sa.Column("persona_id", sa.String(length=40), nullable=False),
        sa.Column("impersonation_of", sa.String(length=40), nullable=True),
        sa.Column("cosine", sa.Float(), nullable=True),
        sa.Column("decision", sa.String(length=12), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("admin_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["persona_id"], ["personas.id"], name=op.f("fk_review_decisions_persona_id_personas")
        ),
        sa.ForeignKeyConstraint(
            ["admin_id"], ["accounts.id"], name=op.f("fk_review_decisions_admin_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_decisions")),
    )
    op.create_index(op.f("ix_review_decisions_persona_id"), "review_decisions", ["persona_id"])

    op.create_table(
        "persona_reports",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("persona_id", sa.String(length=40), nullable=False),
        sa.Column("reporter_id", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("resolution_note", sa.Text(), nullable=True),
        sa.Column("resolved_by", sa.String(length=40), nullable=True),
        sa.Column("resolved_at", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["persona_id"], ["personas.id"], name=op.f("fk_persona_reports_persona_id_personas")
        ),
        sa.ForeignKeyConstraint(
            ["reporter_id"], ["accounts.id"], name=op.f("fk_persona_reports_reporter_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_persona_reports")),
    )
    for column in ("persona_id", "reporter_id", "status", "created_at"):
        op.create_index(op.f(f"ix_persona_reports_{column}"), "persona_reports", [column])

    op.create_table(
        "admin_audit",
        sa.Column("id", _ID, nullable=False),
        sa.Column("admin_id", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("subject_type", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_audit")),
    )
    for column in ("admin_id", "action", "subject_id", "created_at"):
        op.create_index(op.f(f"ix_admin_audit_{column}"), "admin_audit", [column])
    guards = _SQLITE_GUARDS if op.get_bind().dialect.name == "sqlite" else _PG_GUARD
    for statement in guards:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS admin_audit_no_update")
        op.execute("DROP TRIGGER IF EXISTS admin_audit_no_delete")
    else:
        op.execute("DROP TRIGGER IF EXISTS admin_audit_append_only ON admin_audit")
        op.execute("DROP FUNCTION IF EXISTS admin_audit_append_only()")
    op.drop_table("admin_audit")
    op.drop_table("persona_reports")
    op.drop_table("review_decisions")
    op.drop_table("persona_versions")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("erased_at")
        batch_op.drop_column("banned_at")
