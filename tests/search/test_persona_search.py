"""Discovery search in the database (migration 0009's index), on SQLite (FTS5) and PostgreSQL (tsvector)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from bentos.core.accounts import Caller, Role
from bentos.core.catalog import DiscoveryQuery, discover, search_words
from bentos.core.personas import DiscoverySort
from bentos.devkit.harness import pg_schema
from bentos.store.db import MIGRATIONS, DatabaseSettings, make_engine, migrate, session_factory
from bentos.store.models import Account, Persona

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    if request.param == "sqlite":
        engine = make_engine(DatabaseSettings(f"sqlite:///{tmp_path / 'search.db'}"))
        migrate(engine)
        yield session_factory(engine)
        engine.dispose()
        return
    with pg_schema() as url:
        engine = make_engine(DatabaseSettings(url, pool_size=2))
        migrate(engine)
        yield session_factory(engine)
        engine.dispose()


def account(sessions: sessionmaker[Session], name: str) -> str:
    account_id = "acc_" + secrets.token_hex(6)
    with sessions.begin() as session:
        session.add(Account(id=account_id, name=name, email=f"{account_id}@example.com", role="creator"))
    return account_id


def persona(sessions: sessionmaker[Session], creator_id: str, name: str, **fields: Any) -> str:
    persona_id = "vp_" + secrets.token_hex(6)
    values: dict[str, Any] = {
        "visibility": "public",
        "state": "live",
        "price_per_10k_chars": 1_800_000,
        "consent_statement": "mine",
        "model": "step-tts-mini",
        **fields,
    }
    with sessions.begin() as session:
        session.add(Persona(id=persona_id, creator_id=creator_id, name=name, **values))
    return persona_id


def names(sessions: sessionmaker[Session], caller: Caller | None = None, **query: Any) -> list[str]:
    return [card.name for card in discover(sessions, caller, DiscoveryQuery(**query)).data]


@pytest.fixture
def catalog(sessions: sessionmaker[Session]) -> dict[str, str]:
    ada, bo = account(sessions, "Ada Lovelace"), account(sessions, "Bo Chen")
    return {
        "ada": ada,
        "bo": bo,
        "narrator": persona(
            sessions,
            ada,
            "Harbour Narrator",
            description="Evening stories by the sea",
            persona_prompt="Speak in a calm, unhurried voice.",
            tags=["story"],
            calls=5,
            created_at=T0,
        ),
        "coach": persona(
            sessions,
            bo,
            "Morning Coach",
            description="Wakes you up",
            tags=["calm", "sport"],
            language="zh",
            calls=50,
            created_at=T0 + timedelta(days=1),
        ),
        "loud": persona(
            sessions, bo, "Stadium Announcer", tags=["sport"], calls=9, created_at=T0 + timedelta(2)
        ),
        "hidden": persona(sessions, ada, "Calm Secret", visibility="private", created_at=T0),
    }


def test_calm_finds_the_prompt_word_and_the_tag_most_called_first(
    sessions: sessionmaker[Session], catalog: dict[str, str]
) -> None:
    assert names(sessions, q="calm") == [
        "Morning Coach",
        "Harbour Narrator",
    ]  # tag, prompt; not the private one


def test_search_finds_creator_names_descriptions_and_word_prefixes(
    sessions: sessionmaker[Session], catalog: dict[str, str]
) -> None:
    assert names(sessions, q="lovelace") == ["Harbour Narrator"]
    assert names(sessions, q="Bo Chen") == ["Morning Coach", "Stadium Announcer"]
    assert names(sessions, q="evening sea") == ["Harbour Narrator"]  # every word must match
    assert names(sessions, q="announ") == ["Stadium Announcer"]
    assert names(sessions, q="calm stadium") == []


def test_query_syntax_in_the_box_is_plain_text(
    sessions: sessionmaker[Session], catalog: dict[str, str]
) -> None:
    assert search_words('"calm" OR name:* & !') == ["calm", "or", "name"]
    assert names(sessions, q='calm" *') == ["Morning Coach", "Harbour Narrator"]
    assert names(sessions, q="*:&|!") == []


def test_renaming_a_creator_or_editing_a_persona_reindexes_it(
    sessions: sessionmaker[Session], catalog: dict[str, str]
) -> None:
    with sessions.begin() as session:
        session.execute(update(Account).where(Account.id == catalog["ada"]).values(name="Grace Hopper"))
        session.execute(update(Persona).where(Persona.id == catalog["loud"]).values(tags=["opera"]))
    assert names(sessions, q="hopper") == ["Harbour Narrator"]
    assert names(sessions, q="lovelace") == []
    assert names(sessions, tag="opera") == ["Stadium Announcer"]
    assert names(sessions, q="opera") == ["Stadium Announcer"]


def test_tag_language_sort_and_pages_are_in_the_query(
    sessions: sessionmaker[Session], catalog: dict[str, str]
) -> None:
    assert names(sessions, tag="sport") == ["Morning Coach", "Stadium Announcer"]
    assert names(sessions, tag="Sport", language="zh") == ["Morning Coach"]
    assert names(sessions, tag="spo") == []  # a tag filter is exact
    assert names(sessions, sort=DiscoverySort.NEW) == [
        "Stadium Announcer",
        "Morning Coach",
        "Harbour Narrator",
    ]
    page = discover(sessions, None, DiscoveryQuery(limit=1, offset=1))
    assert [c.name for c in page.data] == ["Stadium Announcer"] and page.total == 3
    assert page.data[0].creator.name == "Bo Chen"


def test_the_creator_also_finds_their_own_private_persona(
    sessions: sessionmaker[Session], catalog: dict[str, str]
) -> None:
    with sessions() as session:
        ada = session.get(Account, catalog["ada"])
        assert ada is not None
        caller = Caller(ada.id, ada.name, ada.email, Role.CREATOR, None, None)
    assert names(sessions, caller, q="calm") == ["Morning Coach", "Harbour Narrator", "Calm Secret"]


def test_the_index_can_be_dropped_and_rebuilt_from_the_rows(
    sessions: sessionmaker[Session], catalog: dict[str, str]
) -> None:
    engine = sessions.kw["bind"]
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0008")
    migrate(engine)  # back to head: the migration indexes the personas already there
    assert names(sessions, q="calm") == ["Morning Coach", "Harbour Narrator"]
    assert names(sessions, q="lovelace") == ["Harbour Narrator"]
