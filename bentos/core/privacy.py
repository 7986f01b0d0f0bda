"""An account's own data: everything we hold about it as one zip (GET /accounts/me/export), and its erasure
(DELETE /accounts/me): personas revoked completely, uploads and texts deleted, name and email pseudonymised.

What the ledger must keep stays, under the account id only: usage rows, ledger transactions, holds and
settlements (amounts, times, tx hashes), so balances, statements of the other party and the chain still add up.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from bentos.core.accounts import Caller
from bentos.core.personas import revoke
from bentos.core.provider_cleanup import retire_voices, schedule_file_deletion
from bentos.store import blob_refs
from bentos.store.blobs import BlobStore
from bentos.store.models import (
    Account,
    ApiKey,
    Conversation,
    ConversationTurn,
    LedgerEntry,
    LedgerTransaction,
    Persona,
    PersonaCharacter,
    Settlement,
    StoredFile,
    UsageEvent,
    utcnow,
)
from bentos.store.notify_models import ConsentChallenge, Notification, Webhook, WebhookDelivery
from bentos.store.session_models import AccountPassword, MailMessage, PasswordReset, SignInSession
from bentos.store.trust_models import PersonaVersion

ERASED_NAME = "erased account"
ERASED_PERSONA = "erased persona"
USAGE_COLUMNS = [
    "id",
    "request_id",
    "as",
    "persona_id",
    "model",
    "chars",
    "amount",
    "creator_share",
    "created_at",
]


def _row(obj: Any, *names: str) -> dict[str, Any]:
    out = {}
    for name in names:
        value = getattr(obj, name)
        out[name] = value.isoformat() if hasattr(value, "isoformat") else value
    return out


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str).encode()


def export_account(sessions: sessionmaker[Session], blobs: BlobStore, caller: Caller) -> bytes:
    """A zip of the caller's data: account, uploads (with their audio), personas, usage, statements
    (settlements and ledger), conversations, consent challenges, webhooks (no secrets) and notifications."""
    out = io.BytesIO()
    with sessions() as session, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        account = session.get_one(Account, caller.id)
        z.writestr(
            "account.json", _json(_row(account, "id", "name", "email", "role", "payout_wallet", "created_at"))
        )
        files = list(session.scalars(select(StoredFile).where(StoredFile.owner_id == caller.id)))
        z.writestr("uploads.json", _json([
            _row(f, "id", "name", "format", "duration", "sha256", "step_file_id", "created_at") for f in files
        ]))  # fmt: skip
        for f in files:
            if f.blob_key and blobs.exists(f.blob_key):
                z.writestr(f"uploads/{f.id}.{f.format}", blobs.get(f.blob_key))
        personas = session.scalars(select(Persona).where(Persona.creator_id == caller.id))
        z.writestr("personas.json", _json([
            _row(p, "id", "name", "description", "persona_prompt", "tags", "language", "visibility", "state",
                 "model", "price_per_10k_chars", "consent_statement", "consent_at", "consent_recording_sha256",
                 "step_voice_id", "file_id", "calls", "created_at", "revoked_at")
            for p in personas
        ]))  # fmt: skip
        z.writestr("usage.csv", _usage_csv(session, caller.id))
        settlements = session.scalars(select(Settlement).where(Settlement.creator_id == caller.id))
        z.writestr("statements/settlements.json", _json([
            _row(s, "id", "period_start", "period_end", "usage_count", "amount", "creator_amount", "status",
                 "payout_wallet", "tx_hash", "created_at", "confirmed_at")
            for s in settlements
        ]))  # fmt: skip
        z.writestr("statements/ledger.json", _json(_ledger(session, caller.id)))
        z.writestr("conversations.json", _json(_conversations(session, caller.id)))
        z.writestr("consent_challenges.json", _json([
            _row(c, "id", "file_id", "language", "sentence", "cosine", "recording_sha256", "verified_at", "created_at")
            for c in session.scalars(select(ConsentChallenge).where(ConsentChallenge.account_id == caller.id))
        ]))  # fmt: skip
        z.writestr("webhooks.json", _json([
            _row(w, "id", "url", "events", "created_at", "deleted_at")
            for w in session.scalars(select(Webhook).where(Webhook.account_id == caller.id))
        ]))  # fmt: skip
        z.writestr("notifications.json", _json([
            _row(n, "event_id", "event", "data", "created_at", "read_at")
            for n in session.scalars(select(Notification).where(Notification.account_id == caller.id))
        ]))  # fmt: skip
    return out.getvalue()


def _usage_csv(session: Session, account_id: str) -> str:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(USAGE_COLUMNS)
    rows = session.scalars(
        select(UsageEvent)
        .where(or_(UsageEvent.caller_id == account_id, UsageEvent.creator_id == account_id))
        .order_by(UsageEvent.id)
    )
    for u in rows:
        role = "caller" if u.caller_id == account_id else "creator"
        request = (
            u.request_id if role == "caller" else ""
        )  # a caller's request id names them: not the creator's
        writer.writerow([u.id, request, role, u.persona_id, u.model, u.chars, u.amount, u.creator_share,
                         u.created_at.isoformat()])  # fmt: skip
    return text.getvalue()


def _ledger(session: Session, account_id: str) -> list[dict[str, Any]]:
    txs = session.scalars(
        select(LedgerTransaction)
        .where(LedgerTransaction.account_id == account_id)
        .order_by(LedgerTransaction.id)
    )
    out = []
    for tx in txs:
        entries = session.scalars(select(LedgerEntry).where(LedgerEntry.transaction_id == tx.id))
        out.append({**_row(tx, "reference", "kind", "memo", "created_at"),
                    "entries": [{"book": e.book, "amount": e.amount} for e in entries]})  # fmt: skip
    return out


def _conversations(session: Session, account_id: str) -> list[dict[str, Any]]:
    out = []
    for c in session.scalars(select(Conversation).where(Conversation.caller_id == account_id)):
        turns = session.scalars(
            select(ConversationTurn)
            .where(ConversationTurn.conversation_id == c.id)
            .order_by(ConversationTurn.seq)
        )
        out.append({**_row(c, "id", "persona_id", "created_at"),
                    "turns": [_row(t, "seq", "role", "content", "created_at") for t in turns]})  # fmt: skip
    return out


@dataclass(frozen=True)
class Erasure:
    account_id: str
    personas_revoked: int
    uploads_deleted: int


def _erase_persona_texts(session: Session, account_id: str) -> None:
    """The creator's words in their (now revoked) personas, their edit history and their characters."""
    personas = select(Persona.id).where(Persona.creator_id == account_id)
    session.execute(
        update(Persona)
        .where(Persona.creator_id == account_id)
        .values(name=ERASED_PERSONA, description="", persona_prompt="", consent_statement="", tags=[],
                transcript=None, sample_text=None, notices=None)
    )  # fmt: skip
    session.execute(update(PersonaVersion).where(PersonaVersion.persona_id.in_(personas)).values(fields={}))
    session.execute(
        update(PersonaCharacter)
        .where(PersonaCharacter.persona_id.in_(personas))
        .values(persona_prompt="", greeting=None)
    )


def erase_account(sessions: sessionmaker[Session], blobs: BlobStore, caller: Caller) -> Erasure:
    """Erase the caller's personal data. Each persona is revoked completely first (one transaction each, as
    DELETE /voices/{id} does), then the rest goes in one transaction: uploads, keys, webhooks, feed,
    conversation texts, password, sign-in sessions, reset tokens and mail, and the name, email and payout
    wallet (pseudonymised). The account id stays: the
    ledger's rows refer to it."""
    with sessions() as session:
        live = list(
            session.scalars(
                select(Persona.id).where(Persona.creator_id == caller.id, Persona.revoked_at.is_(None))
            )
        )
    for persona_id in live:
        revoke(sessions, blobs, persona_id, caller)
    released: list[str] = []
    with sessions.begin() as session:
        uploads = 0
        for f in session.scalars(select(StoredFile).where(StoredFile.owner_id == caller.id)):
            if f.blob_key:
                released.append(f.blob_key)
                f.blob_key = None
                uploads += 1
            retire_voices(session, f.id)
            if f.step_file_id:
                schedule_file_deletion(session, f.step_file_id)
            f.name = "erased"
        now = utcnow()
        session.execute(
            update(ApiKey)
            .where(ApiKey.account_id == caller.id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        for hook in session.scalars(select(Webhook).where(Webhook.account_id == caller.id)):
            hook.deleted_at, hook.secret, hook.url = hook.deleted_at or now, "", "https://erased.invalid/"
            session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.webhook_id == hook.id)
                .values(body="{}", status="failed", last_error="the account was erased")
            )
        session.query(Notification).filter(Notification.account_id == caller.id).delete()
        session.query(AccountPassword).filter(AccountPassword.account_id == caller.id).delete()
        session.query(PasswordReset).filter(PasswordReset.account_id == caller.id).delete()
        session.execute(
            update(SignInSession)
            .where(SignInSession.account_id == caller.id, SignInSession.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        conversation_ids = select(Conversation.id).where(Conversation.caller_id == caller.id)
        session.execute(
            update(ConversationTurn)
            .where(ConversationTurn.conversation_id.in_(conversation_ids))
            .values(content="")
        )
        for c in session.scalars(select(ConsentChallenge).where(ConsentChallenge.account_id == caller.id)):
            c.sentence = ""
        _erase_persona_texts(session, caller.id)
        account = session.get_one(Account, caller.id)
        session.query(MailMessage).filter(MailMessage.to_email == account.email).delete()
        account.name, account.email = ERASED_NAME, f"erased+{account.id}@erased.invalid"
        account.payout_wallet = None
        account.erased_at = now
    blob_refs.release(sessions, blobs, released)
    return Erasure(caller.id, len(live), uploads)
