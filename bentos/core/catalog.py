"""What callers can read about personas: the card anyone who may see one sees, the creator's detail, discovery,
the sample, provenance (the chain read back and the hash recomputed), and pipeline job progress."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, column, func, or_, select, text
from sqlalchemy.orm import Session, sessionmaker

from bentos.chain.errors import ChainUnavailable
from bentos.chain.outbox import Outbox, OutboxStatus
from bentos.chain.registry import ChainRegistry
from bentos.core.accounts import Caller
from bentos.core.errors import from_chain_unavailable, not_found
from bentos.core.personas import (
    DiscoverySort,
    JobStatus,
    PersonaState,
    Visibility,
    embedding_row,
    visible_persona,
)
from bentos.store.blobs import BlobStore
from bentos.store.models import (
    Account,
    Job,
    OutboxItem,
    Persona,
    StoredFile,
)
from encoders import embedding_hash


@dataclass(frozen=True)
class CreatorRef:
    id: str
    name: str | None


@dataclass(frozen=True)
class Failure:
    """Why a pipeline step failed, and whether it is retried (or revived later)."""

    step: PersonaState | None
    code: str
    message: str | None
    retryable: bool


@dataclass(frozen=True)
class EmbeddingInfo:
    encoder: str
    version: str
    pretrained: bool
    dim: int
    hash: str


@dataclass(frozen=True)
class ChainIntent:
    """An outbox intent as its owner follows it: pending → sent → confirmed (or failed, with a reason)."""

    status: OutboxStatus
    tx_hash: str | None
    block_number: int | None
    error: str | None

    @classmethod
    def of(cls, item: OutboxItem | None) -> ChainIntent | None:
        if item is None:
            return None
        return cls(OutboxStatus(item.status), item.tx_hash, item.block_number, item.error_code)


@dataclass(frozen=True)
class LookAlike:
    """The other creator's persona an upload sounded like (cosine of the embeddings)."""

    persona_id: str
    cosine: float | None


@dataclass(frozen=True)
class PersonaCard:
    """What anyone who may see a persona sees (discovery, GET /voices/{id})."""

    id: str
    name: str
    description: str
    tags: list[str]
    language: str
    visibility: Visibility
    status: PersonaState
    model: str
    price_per_10k_chars: int
    price_multiplier_bps: int
    calls: int
    creator: CreatorRef
    sample_text: str | None
    sample_audio_url: str | None
    created_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class PersonaDetail(PersonaCard):
    """The card plus what only its creator sees: prompt, pipeline failure, embedding, chain, provider voice."""

    persona_prompt: str
    notices: list[str]
    failure: Failure | None
    embedding: EmbeddingInfo | None
    chain: ChainIntent | None
    step_voice_id: str | None
    step_file_id: str | None  # the provider ids it uses, so a revocation's deletions can be checked
    clone_duplicated: bool
    impersonation: LookAlike | None


def failure_of(p: Persona) -> Failure | None:
    if not p.failure_code:
        return None
    step = PersonaState(p.failure_step) if p.failure_step else None
    return Failure(step, p.failure_code, p.failure_message, bool(p.failure_retryable))


def _card(p: Persona, creator_name: str | None) -> PersonaCard:
    return PersonaCard(
        id=p.id,
        name=p.name,
        description=p.description,
        tags=list(p.tags or []),
        language=p.language,
        visibility=Visibility(p.visibility),
        status=PersonaState(p.state),
        model=p.model,
        price_per_10k_chars=p.price_per_10k_chars,
        price_multiplier_bps=p.price_multiplier_bps,
        calls=p.calls,
        creator=CreatorRef(p.creator_id, creator_name),
        sample_text=p.sample_text,
        sample_audio_url=f"/voices/{p.id}/sample" if p.sample_blob_key else None,
        created_at=p.created_at,
        revoked_at=p.revoked_at,
    )


def _detail(session: Session, p: Persona, creator_name: str | None) -> PersonaDetail:
    emb = embedding_row(session, p.id)
    return PersonaDetail(
        **vars(_card(p, creator_name)),
        persona_prompt=p.persona_prompt,
        notices=list(p.notices or []),
        failure=failure_of(p),
        embedding=EmbeddingInfo(emb.encoder, emb.version, emb.pretrained, emb.dim, emb.hash) if emb else None,
        chain=ChainIntent.of(Outbox.get(session, f"register:{p.id}")),
        step_voice_id=p.step_voice_id,
        step_file_id=session.scalar(select(StoredFile.step_file_id).where(StoredFile.id == p.file_id)),
        clone_duplicated=p.clone_duplicated,
        impersonation=LookAlike(p.impersonation_of, p.impersonation_cosine) if p.impersonation_of else None,
    )


def persona_view(sessions: sessionmaker[Session], persona_id: str, caller: Caller | None) -> PersonaCard:
    """The persona as `caller` may see it: the detail for its creator, the card for anyone else."""
    with sessions() as session:
        persona = visible_persona(session, persona_id, caller)
        creator_name = session.scalar(select(Account.name).where(Account.id == persona.creator_id))
        if caller is not None and caller.id == persona.creator_id:
            return _detail(session, persona, creator_name)
        return _card(persona, creator_name)


def persona_sample(
    sessions: sessionmaker[Session], blobs: BlobStore, persona_id: str, caller: Caller | None
) -> bytes:
    """The persona's preview audio (WAV); gone once it is revoked."""
    with sessions() as session:
        persona = visible_persona(session, persona_id, caller)
    if persona.revoked_at is not None or not persona.sample_blob_key:
        raise not_found(f"a sample of voice {persona_id}")
    return blobs.get(persona.sample_blob_key)


@dataclass(frozen=True)
class DiscoveryQuery:
    q: str | None = None
    tag: str | None = None
    language: str | None = None
    sort: DiscoverySort = DiscoverySort.POPULAR
    limit: int = 20
    offset: int = 0


@dataclass(frozen=True)
class PersonaPage:
    data: list[PersonaCard]
    total: int


_WORD = re.compile(r"[^\W_]+")  # letters and digits: what both full-text tokenizers keep as one token
MAX_QUERY_WORDS = 8


def search_words(q: str | None) -> list[str]:
    """The words of a search box, lowercased: punctuation and query syntax (quotes, `*`, `:`, `&`) are dropped,
    so user text can never be read as FTS5 or tsquery operators."""
    return _WORD.findall((q or "").lower())[:MAX_QUERY_WORDS]


def _matching(dialect: str, words: list[str]) -> ColumnElement[bool]:
    """Personas whose search document (name, description, prompt, tags, creator's name) holds every word as a
    word prefix ("calm" finds "calm" and "calming"). The index is kept by migration 0009's triggers."""
    if dialect == "sqlite":
        fts = " ".join(f'"{w}"*' for w in words)
        found = text("SELECT persona_id FROM persona_search WHERE persona_search MATCH :fts").bindparams(
            fts=fts
        )
    else:
        tsq = " & ".join(f"{w}:*" for w in words)
        found = text(
            "SELECT persona_id FROM persona_search WHERE document @@ to_tsquery('simple', :tsq)"
        ).bindparams(tsq=tsq)
    return Persona.id.in_(found.columns(column("persona_id")))


def _tagged(dialect: str, tag: str) -> ColumnElement[bool]:
    """Tags are a JSON list of lowercase words; the exact tag is matched in the database."""
    if dialect == "sqlite":
        clause = "EXISTS (SELECT 1 FROM json_each(personas.tags) WHERE json_each.value = :tag)"
    else:
        clause = (
            "json_typeof(personas.tags) = 'array' AND EXISTS "
            "(SELECT 1 FROM json_array_elements_text(personas.tags) AS t WHERE t = :tag)"
        )
    return text(clause).bindparams(tag=tag.strip().lower())  # type: ignore[return-value]


def discover(sessions: sessionmaker[Session], caller: Caller | None, query: DiscoveryQuery) -> PersonaPage:
    """Public live personas (plus the caller's own of any visibility and state), found by full text over name,
    description, prompt, tags and creator name, filtered by tag and language, sorted and paged — all in one
    query, and one count, in the database; the creators' names come with the personas."""
    visible: ColumnElement[bool] = (Persona.visibility == Visibility.PUBLIC) & (
        Persona.state == PersonaState.LIVE
    )
    if caller is not None:
        visible = or_(visible, Persona.creator_id == caller.id)
    with sessions() as session:
        dialect = session.get_bind().dialect.name
        where: list[ColumnElement[bool]] = [visible, Persona.revoked_at.is_(None)]
        words = search_words(query.q)
        if words:
            where.append(_matching(dialect, words))
        elif query.q and query.q.strip():
            return PersonaPage([], 0)  # only punctuation: nothing can match it
        if query.tag and query.tag.strip():
            where.append(_tagged(dialect, query.tag))
        if query.language:
            where.append(Persona.language == query.language)
        order: tuple[Any, ...]
        if query.sort == DiscoverySort.NEW:
            order = (Persona.created_at.desc(), Persona.id)
        else:
            order = (Persona.calls.desc(), Persona.created_at.desc(), Persona.id)
        total = session.scalar(select(func.count()).select_from(Persona).where(*where)) or 0
        stmt = (
            select(Persona, Account.name)
            .outerjoin(Account, Account.id == Persona.creator_id)
            .where(*where)
            .order_by(*order)
            .limit(query.limit)
            .offset(query.offset)
        )
        rows = list(session.execute(stmt).tuples())
    return PersonaPage([_card(p, name) for p, name in rows], total)


# --- provenance --------------------------------------------------------------------------------------------


class ProvenanceStatus(enum.StrEnum):
    PENDING = "pending"  # not embedded yet, or its registration not mined yet
    REGISTERED = "registered"
    REVOKED = "revoked"
    MISMATCH = "mismatch"  # the stored embedding is not what was registered
    UNREGISTERED = "unregistered"


@dataclass(frozen=True)
class ChainRecord:
    contract: str
    onchain_hash: str | None
    creator: str | None
    registered_at: int | None
    revoked_at: int | None
    tx_hash: str | None


@dataclass(frozen=True)
class Provenance:
    """Is this persona's embedding what was registered on chain, and is it revoked? Before the embedding
    exists only status, embedding_hash (None) and chain (None) are known."""

    status: ProvenanceStatus
    embedding_hash: str | None
    chain: ChainRecord | None


@dataclass(frozen=True)
class VerifiedProvenance(Provenance):
    encoder: str
    encoder_version: str


def provenance(
    sessions: sessionmaker[Session],
    chain: Callable[[], ChainRegistry],
    persona_id: str,
    caller: Caller | None,
) -> Provenance:
    """Read the chain and recompute the hash from the stored vector, so a tampered row shows up as a mismatch.
    `chain` connects on first use (a persona without an embedding never needs it). While the chain node can't
    be reached the answer is a retryable 503 `chain_unavailable`."""
    with sessions() as session:
        persona = visible_persona(session, persona_id, caller)
        emb = embedding_row(session, persona.id)
        intent = Outbox.get(session, f"register:{persona.id}")
    if emb is None:
        return Provenance(ProvenanceStatus.PENDING, None, None)
    current = embedding_hash(np.frombuffer(emb.vector, "<f4")) if emb.vector else emb.hash
    try:
        result = chain().verify(persona.id, current)
    except ChainUnavailable as err:
        raise from_chain_unavailable(err) from None
    status = ProvenanceStatus(result.status)
    in_flight = intent is not None and intent.status in (OutboxStatus.PENDING, OutboxStatus.SENT)
    if status == ProvenanceStatus.UNREGISTERED and in_flight:
        status = ProvenanceStatus.PENDING
    record = ChainRecord(
        result.contract,
        result.onchain_hash,
        result.creator,
        result.registered_at,
        result.revoked_at,
        intent.tx_hash if intent else None,
    )
    return VerifiedProvenance(status, current, record, emb.encoder, emb.version)


# --- the pipeline job --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobProgress:
    id: str
    persona_id: str
    status: JobStatus
    state: PersonaState | None
    attempts: int
    failure: Failure | None
    created_at: datetime | None
    updated_at: datetime | None


def job_progress(sessions: sessionmaker[Session], job_id: str, caller: Caller) -> JobProgress:
    """A pipeline run of one of the caller's personas (404 for anyone else's)."""
    with sessions() as session:
        job = session.get(Job, job_id)
        persona = session.get(Persona, job.persona_id) if job else None
        if job is None or persona is None or persona.creator_id != caller.id:
            raise not_found(f"job {job_id}")
        return JobProgress(
            job.id,
            job.persona_id,
            JobStatus(job.status),
            PersonaState(persona.state),
            job.attempts,
            failure_of(persona),
            job.created_at,
            job.updated_at,
        )
