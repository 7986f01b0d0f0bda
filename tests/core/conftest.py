"""The core without HTTP, BentoML, a chain node or the emulator: SQLite, local blobs, a seeded encoder and an
in-memory provider. Each test gets a fresh database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bentos.billing.pricing import PriceBook
from bentos.core.accounts import sign_up
from bentos.core.embedder import LocalEmbedder
from bentos.core.intake import accept_upload
from bentos.core.jobs import QueueSettings
from bentos.core.personas import PersonaDraft, create_persona
from bentos.core.pipeline import PersonaPipeline
from bentos.store.blobs import LocalBlobStore
from bentos.store.db import DatabaseSettings, make_engine, migrate, session_factory
from bentos.store.models import Account, Persona
from encoders import AudioSettings
from encoders.seeded import SeededEncoder
from tests.core.fakes import FakeProvider

CONSENT = "This is my own voice and I consent."

PRICES = PriceBook(
    list_price_per_10k={"step-tts-mini": 1_800_000, "step-tts-2": 5_600_000, "stepaudio-2.5-tts": 11_600_000},
    provider_cost_per_10k={"step-tts-mini": 900_000, "step-tts-2": 2_800_000, "stepaudio-2.5-tts": 5_800_000},
    multiplier_bps_min=7000,
    clone_cost=9_900_000,
    clone_fee=12_000_000,
)


@dataclass
class Core:
    sessions: sessionmaker[Session]
    blobs: LocalBlobStore
    provider: FakeProvider
    pipeline: PersonaPipeline
    audio: AudioSettings = field(default_factory=AudioSettings)

    def account(self, role: str = "creator") -> Account:
        with self.sessions.begin() as session:
            n = len(session.query(Account).all())
            account, _ = sign_up(session, f"Creator {n}", f"c{n}@example.com", role, None)
        return account

    def upload(self, owner: Account, audio: bytes) -> str:
        embedder = self.pipeline.embedder
        return accept_upload(
            self.sessions, self.blobs, embedder, self.audio, owner, audio, "v.wav", None
        ).file.id

    def persona(self, owner: Account, file_id: str, **fields: object) -> str:
        draft = PersonaDraft(file_id=file_id, name="P", consent_attested=True, consent_statement=CONSENT)
        for name, value in fields.items():
            setattr(draft, name, value)
        with self.sessions.begin() as session:
            persona, _ = create_persona(session, owner, draft, PRICES)
            return persona.id

    def get(self, persona_id: str) -> Persona:
        with self.sessions() as session:
            persona = session.get(Persona, persona_id)
            assert persona is not None
            return persona


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    engine = make_engine(DatabaseSettings(url=f"sqlite:///{tmp_path}/core.db"))
    migrate(engine)
    sessions = session_factory(engine)
    blobs = LocalBlobStore(tmp_path / "blobs")
    provider = FakeProvider()
    queue = QueueSettings(
        max_attempts=2, retry_base_seconds=0.1, claim_lease_s=60, revive_after_s=0, max_revivals=2
    )
    pipeline = PersonaPipeline(
        sessions,
        blobs,
        AudioSettings(),
        LocalEmbedder(SeededEncoder()),
        provider,
        queue,  # type: ignore[arg-type]
        PRICES,
    )
    yield Core(sessions, blobs, provider, pipeline)
    engine.dispose()
