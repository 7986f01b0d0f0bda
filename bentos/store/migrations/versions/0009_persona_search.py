"""full-text search over personas (SQLite FTS5 / PostgreSQL tsvector)

Revision ID: 0009
Revises: 0008

One side table, `persona_search`, holds each persona's searchable document: name, description, persona prompt,
tags and its creator's name (denormalised — the creator's name lives in `accounts`). Triggers on both tables keep
it in step, so every writer (the API, the pipeline, an admin's SQL) is covered and discovery searches in the
database. SQLite: an FTS5 table (unicode61, diacritics folded). PostgreSQL: a `tsvector` under a GIN index,
built with the `simple` configuration (no stemming: personas are in several languages; queries match prefixes).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The columns whose change re-indexes a persona (an update of `calls` or `state` must stay cheap).
_INDEXED = "name, description, persona_prompt, tags, creator_id"

_SQLITE_ROW = """
    SELECT NEW.id, NEW.name, coalesce(NEW.description, ''), coalesce(NEW.persona_prompt, ''),
           coalesce((SELECT group_concat(value, ' ') FROM json_each(NEW.tags)), ''),
           coalesce((SELECT name FROM accounts WHERE id = NEW.creator_id), '')
"""

_SQLITE_UP = [
    """CREATE VIRTUAL TABLE persona_search USING fts5(
        persona_id UNINDEXED, name, description, persona_prompt, tags, creator_name,
        tokenize = 'unicode61 remove_diacritics 2'
    )""",
    f"""CREATE TRIGGER persona_search_insert AFTER INSERT ON personas BEGIN
        INSERT INTO persona_search (persona_id, name, description, persona_prompt, tags, creator_name)
        {_SQLITE_ROW};
    END""",
    f"""CREATE TRIGGER persona_search_update AFTER UPDATE OF {_INDEXED} ON personas BEGIN
        DELETE FROM persona_search WHERE persona_id = OLD.id;
        INSERT INTO persona_search (persona_id, name, description, persona_prompt, tags, creator_name)
        {_SQLITE_ROW};
    END""",
    """CREATE TRIGGER persona_search_delete AFTER DELETE ON personas BEGIN
        DELETE FROM persona_search WHERE persona_id = OLD.id;
    END""",
    """CREATE TRIGGER persona_search_creator AFTER UPDATE OF name ON accounts BEGIN
        UPDATE persona_search SET creator_name = coalesce(NEW.name, '')
        WHERE persona_id IN (SELECT id FROM personas WHERE creator_id = NEW.id);
    END""",
    """INSERT INTO persona_search (persona_id, name, description, persona_prompt, tags, creator_name)
       SELECT p.id, p.name, coalesce(p.description, ''), coalesce(p.persona_prompt, ''),
              coalesce((SELECT group_concat(value, ' ') FROM json_each(p.tags)), ''), coalesce(a.name, '')
       FROM personas p LEFT JOIN accounts a ON a.id = p.creator_id""",
]

_SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS persona_search_creator",
    "DROP TRIGGER IF EXISTS persona_search_delete",
    "DROP TRIGGER IF EXISTS persona_search_update",
    "DROP TRIGGER IF EXISTS persona_search_insert",
    "DROP TABLE IF EXISTS persona_search",
]

# Weights: the name counts most, then tags and the creator, then the description and the prompt.
_PG_DOCUMENT = """
    setweight(to_tsvector('simple', coalesce(p.name, '')), 'A')
    || setweight(to_tsvector('simple', coalesce(CASE WHEN json_typeof(p.tags) = 'array' THEN
           (SELECT string_agg(t, ' ') FROM json_array_elements_text(p.tags) AS t) END, '')), 'B')
    || setweight(to_tsvector('simple', coalesce(a.name, '')), 'B')
    || setweight(to_tsvector('simple', coalesce(p.description, '')), 'C')
    || setweight(to_tsvector('simple', coalesce(p.persona_prompt, '')), 'D')
"""

_PG_UP = [
    """CREATE TABLE persona_search (
        persona_id VARCHAR(40) PRIMARY KEY REFERENCES personas (id) ON DELETE CASCADE,
        document tsvector NOT NULL
    )""",
    "CREATE INDEX ix_persona_search_document ON persona_search USING GIN (document)",
    f"""CREATE FUNCTION persona_search_refresh(persona text) RETURNS void LANGUAGE sql AS $$
        INSERT INTO persona_search (persona_id, document)
        SELECT p.id, {_PG_DOCUMENT}
        FROM personas p LEFT JOIN accounts a ON a.id = p.creator_id WHERE p.id = persona
        ON CONFLICT (persona_id) DO UPDATE SET document = EXCLUDED.document
    $$""",
    """CREATE FUNCTION persona_search_on_persona() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM persona_search_refresh(NEW.id);
        RETURN NULL;
    END $$""",
    """CREATE FUNCTION persona_search_on_account() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM persona_search_refresh(p.id) FROM personas p WHERE p.creator_id = NEW.id;
        RETURN NULL;
    END $$""",
    f"""CREATE TRIGGER persona_search_persona AFTER INSERT OR UPDATE OF {_INDEXED} ON personas
        FOR EACH ROW EXECUTE FUNCTION persona_search_on_persona()""",
    """CREATE TRIGGER persona_search_creator AFTER UPDATE OF name ON accounts
        FOR EACH ROW EXECUTE FUNCTION persona_search_on_account()""",
    f"""INSERT INTO persona_search (persona_id, document)
        SELECT p.id, {_PG_DOCUMENT} FROM personas p LEFT JOIN accounts a ON a.id = p.creator_id""",
]

_PG_DOWN = [
    "DROP TRIGGER IF EXISTS persona_search_creator ON accounts",
    "DROP TRIGGER IF EXISTS persona_search_persona ON personas",
    "DROP FUNCTION IF EXISTS persona_search_on_account()",
    "DROP FUNCTION IF EXISTS persona_search_on_persona()",
    "DROP FUNCTION IF EXISTS persona_search_refresh(text)",
    "DROP TABLE IF EXISTS persona_search",
]


def _statements(up: bool) -> list[str]:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if up:
        return _SQLITE_UP if sqlite else _PG_UP
    return _SQLITE_DOWN if sqlite else _PG_DOWN


def upgrade() -> None:
    for statement in _statements(up=True):
        op.execute(statement)


def downgrade() -> None:
    for statement in _statements(up=False):
        op.execute(statement)
