"""Discover finds what its box promises (name, description, prompt, tag, creator) and tags and creators filter in
one click — AppTest against the fake platform, which searches like the platform."""

from __future__ import annotations

from collections.abc import Callable

from streamlit.testing.v1 import AppTest

from tests.frontend.fake_platform import FakePlatform
from tests.frontend.test_frontend_pages import page_text

OpenApp = Callable[..., AppTest]


def shown(app: AppTest) -> list[str]:
    """The cards' names, column by column (cards fill three columns in turn)."""
    return [m.value.removeprefix("#### ").split(" :")[0] for m in app.markdown if m.value.startswith("#### ")]


def test_a_word_finds_a_prompt_word_and_a_tag(open_app: OpenApp, fake: FakePlatform) -> None:
    ada, key = fake.new_account("Ada Search")
    fake.add_live_persona(ada["id"], "Tide Reader", personaPrompt="A tranquil voice for the night.")
    fake.add_live_persona(ada["id"], "Yoga Guide", tags=["tranquil"], calls=10)
    fake.add_live_persona(ada["id"], "Drill Sergeant", tags=["loud"])
    app = open_app(api_key=key)
    app.text_input(key="vp_discover_q").input("tranquil").run()
    assert shown(app) == ["Yoga Guide", "Tide Reader"]
    assert app.text_input(key="vp_discover_q").placeholder == "name, description, prompt, tag or creator"


def test_a_tag_click_filters_and_can_be_cleared(open_app: OpenApp, fake: FakePlatform) -> None:
    bo, key = fake.new_account("Bo Tags")
    # The fake platform lives for the session: tags and call counts that put these first and alone.
    fake.add_live_persona(bo["id"], "Sea Shanty", tags=["seaside", "song"], calls=90_000)
    fake.add_live_persona(bo["id"], "Lullaby", tags=["song"], calls=80_000)
    fake.add_live_persona(bo["id"], "Harbour Master", tags=["seaside"], calls=70_000)
    app = open_app(api_key=key)
    next(b for b in app.button if b.label == "#seaside").click().run()
    assert app.text_input(key="vp_discover_tag").value == "seaside"
    assert shown(app) == ["Sea Shanty", "Harbour Master"]
    next(b for b in app.button if b.label.startswith("Tag: #seaside")).click().run()
    assert {"Sea Shanty", "Lullaby", "Harbour Master"} <= set(shown(app))


def test_a_creator_click_searches_their_name(open_app: OpenApp, fake: FakePlatform) -> None:
    cy, key = fake.new_account("Cyrille Unique")
    other, _ = fake.new_account("Dana Other")
    fake.add_live_persona(cy["id"], "Baritone", calls=900_000)  # first on the page whatever else is listed
    fake.add_live_persona(other["id"], "Soprano", calls=800_000)
    app = open_app(api_key=key)
    next(b for b in app.button if b.label == "by Cyrille Unique").click().run()
    assert shown(app) == ["Baritone"], page_text(app)
