"""Mail the platform sends (password reset tokens): written to the `mail_outbox` table in the transaction that
needs it; a `Mailer` delivers what is unsent. The embedded setup delivers nothing — `python -m scripts.outbox`
shows the outbox to the operator; at scale a worker calls `deliver_pending` with `SmtpMailer`."""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bentos.core.ids import new_id
from bentos.store.models import utcnow
from bentos.store.session_models import MailMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Mail:
    id: str
    to: str
    subject: str
    body: str


class Mailer(Protocol):
    def send(self, mail: Mail) -> None: ...


def queue_mail(session: Session, to: str, subject: str, body: str) -> str:
    """Add a message to the outbox (committed with the caller's transaction); its body is never logged."""
    mail_id = new_id("mail")
    session.add(MailMessage(id=mail_id, to_email=to, subject=subject, body=body))
    log.info("mail %s queued in the outbox: %r", mail_id, subject)
    return mail_id


def unsent(sessions: sessionmaker[Session], to: str | None = None, limit: int = 50) -> list[Mail]:
    """The oldest unsent messages (all, or those to one address)."""
    with sessions() as session:
        query = select(MailMessage).where(MailMessage.sent_at.is_(None))
        if to is not None:
            query = query.where(MailMessage.to_email == to.strip().lower())
        rows = session.scalars(query.order_by(MailMessage.created_at).limit(limit))
        return [Mail(r.id, r.to_email, r.subject, r.body) for r in rows]


def deliver_pending(sessions: sessionmaker[Session], mailer: Mailer, limit: int = 50) -> int:
    """Send unsent messages with `mailer`, marking each sent after it went; a failure stops the batch (the rest
    is tried next time). → how many were sent."""
    sent = 0
    for mail in unsent(sessions, limit=limit):
        mailer.send(mail)
        with sessions.begin() as session:
            row = session.get(MailMessage, mail.id)
            if row is not None:
                row.sent_at = utcnow()
        sent += 1
    return sent


@dataclass(frozen=True)
class SmtpMailer:
    """Delivery through an SMTP relay (STARTTLS when `starttls`); credentials come from the deployment's secrets.
    Not used by the embedded setup or the tests."""

    host: str
    port: int = 587
    sender: str = "VoxPersona <no-reply@voxpersona.local>"
    username: str | None = None
    password: str | None = None
    starttls: bool = True
    timeout_s: float = 20.0

    def send(self, mail: Mail) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, mail.to, mail.subject
        message.set_content(mail.body)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)
