"""The Chat page, run with AppTest against the fake platform over real HTTP: a message gets a streamed reply and its
audio, the conversation is listed and can be opened and deleted, a short balance is explained in plain words, and
a creator edits the character."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamlit.testing.v1 import AppTest

from tests.frontend.fake_platform import FakePlatform
from tests.frontend.test_frontend_pages import page_text

OpenApp = Callable[..., AppTest]
PAGE = "views/chat.py"


def transcript(app: AppTest) -> list[tuple[str, str]]:
    """(role, text) of every chat bubble, in order."""
    assert not app.exception, [e.value for e in app.exception]
    return [(m.name, " ".join(str(md.value) for md in m.markdown)) for m in app.chat_message]


def say(app: AppTest, text: str) -> AppTest:
    return app.chat_input[0].set_value(text).run()


def button(app: AppTest, key_prefix: str) -> Any:
    return next(b for b in app.button if (b.key or "").startswith(key_prefix))


def conversations_of(fake: FakePlatform, key: str) -> list[str]:
    """The ids of the stored conversations of `key`'s account (the fake is shared by the session's tests)."""
    return [c["id"] for c in fake.conversations.values() if c["_owner"] == fake.keys[key]]


def consumer_and_persona(fake: FakePlatform) -> tuple[str, dict[str, Any]]:
    creator, _ = fake.new_account("Ada Creator")
    persona = fake.add_live_persona(creator["id"], "Chatty Ada")
    _, key = fake.new_account("Listener", role="consumer")
    return key, persona


def test_a_message_gets_a_streamed_reply_quoting_it_and_audio(open_app: OpenApp, fake: FakePlatform) -> None:
    key, persona = consumer_and_persona(fake)
    app = open_app(PAGE, api_key=key, voice=persona["id"])
    say(app, "Tell me about rivers")

    bubbles = transcript(app)
    assert bubbles[-2] == ("user", "Tell me about rivers")
    role, reply = bubbles[-1]
    assert role == "assistant" and "Chatty Ada here" in reply and "Tell me about rivers" in reply
    assert len(app.get("audio")) == 1  # the reply's voice, one playable file
    assert "This reply cost" in page_text(app)
    streamed = [r for r in fake.requests if r.path == "/v1/chat/completions"]
    assert len(streamed) == 1


def test_the_second_message_carries_the_first_exchange(open_app: OpenApp, fake: FakePlatform) -> None:
    key, persona = consumer_and_persona(fake)
    app = open_app(PAGE, api_key=key, voice=persona["id"])
    say(app, "first words")
    say(app, "second words")
    bubbles = transcript(app)
    assert [r for r, _ in bubbles] == ["user", "assistant", "user", "assistant"]
    assert "second words" in bubbles[-1][1] and "I remember 2 earlier messages" in bubbles[-1][1]


def test_the_conversation_is_listed_and_delete_removes_it(open_app: OpenApp, fake: FakePlatform) -> None:
    key, persona = consumer_and_persona(fake)
    app = open_app(PAGE, api_key=key, voice=persona["id"])
    say(app, "remember me")
    [conversation_id] = conversations_of(fake, key)
    assert "Chatty Ada" in page_text(app) and "open" in page_text(app)

    fresh = open_app(PAGE, api_key=key, voice=persona["id"])  # a new session: the list, not the thread
    assert transcript(fresh) == []
    button(fresh, f"open-{conversation_id}").click().run()
    assert "remember me" in transcript(fresh)[0][1]

    button(fresh, f"delete-{conversation_id}").click().run()
    assert conversations_of(fake, key) == []
    assert transcript(fresh) == []
    assert "No conversations yet." in page_text(fresh)


def test_a_short_balance_is_explained_in_plain_words(open_app: OpenApp, fake: FakePlatform) -> None:
    creator, _ = fake.new_account("Ada Creator")
    persona = fake.add_live_persona(creator["id"], "Chatty Ada")
    _, key = fake.new_account("Broke Listener", role="consumer", balance=10)
    app = open_app(PAGE, api_key=key, voice=persona["id"])
    say(app, "hello?")
    errors = " ".join(e.value for e in app.error)
    assert "Not enough balance" in errors and "<¥0.01 available" in errors
    assert "Nothing was said and nothing was charged" in errors and "Wallet" in errors
    assert conversations_of(fake, key) == [] and fake.balances[fake.keys[key]] == 10


def test_the_creator_edits_the_character_and_the_greeting_opens_a_chat(
    open_app: OpenApp, fake: FakePlatform
) -> None:
    creator, key = fake.new_account("Ada Creator")
    persona = fake.add_live_persona(creator["id"], "Chatty Ada")
    app = open_app(PAGE, api_key=key, voice=persona["id"])
    form = app.expander[0]
    form.text_area[1].input("Hello, traveller!")
    form.selectbox[0].select("高兴")
    form.button[0].click().run()
    assert "Saved as version 1" in page_text(app)
    assert fake.characters[persona["id"]][-1]["emotion"] == "高兴"
    app.run()
    assert transcript(app)[0] == ("assistant", "Hello, traveller!")

    _, listener = fake.new_account("Listener", role="consumer")
    other = open_app(PAGE, api_key=listener, voice=persona["id"])
    assert not other.expander  # only the creator edits the character
