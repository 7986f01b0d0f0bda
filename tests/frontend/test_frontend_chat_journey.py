"""Talking with a persona in Debian's chromium against the real platform and the emulator: a consumer opens Chat,
picks a live persona, sees the reply stream in quoting what they said and its audio arrive, says something more in
the same conversation, reloads, finds the conversation in the list and deletes it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.frontend.browser import CHROMIUM, chromium, go_to, streamlit_app
from tests.frontend.test_frontend_money_journey import sign_in
from tests.service.test_end_to_end import create_live_persona

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium"),
]
MS = 1000
FIRST = "Tell me about the old mill"
SECOND = "And what about the river"


def say(page: Page, text: str) -> None:
    box = page.get_by_test_id("stChatInput").locator("textarea")
    box.fill(text)
    box.press("Enter")


def assistant_bubbles(page: Page) -> Any:
    return page.get_by_test_id("stChatMessage").filter(
        has=page.get_by_test_id("stChatMessageAvatarAssistant")
    )


@pytest.mark.parametrize("platform_server", ["sqlite"], indirect=True)
def test_consumer_chats_with_a_persona_and_deletes_the_conversation(
    platform_server: Any, voice_set: Any, tmp_path: Path
) -> None:
    _, creator_key = platform_server.sign_up("creator")
    create_live_persona(
        platform_server, creator_key, voice_set.clips[0].mp3_path.read_bytes(), name="Mill Keeper"
    )
    _, consumer_key = platform_server.sign_up("consumer")

    with streamlit_app(platform_server.base_url, tmp_path / "streamlit.log") as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        sign_in(page, url, consumer_key)
        go_to(page, "Chat")
        page.get_by_test_id("stSelectbox").first.click()
        page.get_by_role("option", name="Mill Keeper").first.click()
        expect(page.get_by_role("option")).to_have_count(0)  # the list closed on the pick

        say(page, FIRST)
        replies = assistant_bubbles(page)
        expect(replies.last).to_contain_text(f"You said: “{FIRST}", timeout=60 * MS)
        expect(replies.last).to_contain_text("Mill Keeper", timeout=10 * MS)
        expect(page.locator("audio")).to_have_count(1, timeout=60 * MS)
        expect(page.get_by_text("This reply cost").first).to_be_visible(timeout=30 * MS)
        page.screenshot(path=tmp_path / "1-first-reply.png", full_page=True)

        say(page, SECOND)
        expect(replies).to_have_count(2, timeout=60 * MS)
        expect(replies.last).to_contain_text(f"You said: “{SECOND}", timeout=60 * MS)
        expect(replies.last).to_contain_text("I remember 2 earlier messages", timeout=10 * MS)
        expect(page.locator("audio")).to_have_count(2, timeout=60 * MS)
        page.screenshot(path=tmp_path / "2-second-reply.png", full_page=True)

        page.reload()  # a new session, still signed in (the sign-in cookie); the stored conversations remain
        go_to(page, "Chat")
        listed = (
            page.get_by_test_id("stVerticalBlock")
            .filter(has_text="Mill Keeper")
            .filter(has=page.get_by_role("button", name="Delete", exact=True))
        )
        row = listed.filter(has_text="river").last
        expect(row).to_be_visible(timeout=30 * MS)
        row.get_by_role("button", name="Open", exact=True).click()
        expect(assistant_bubbles(page).last).to_contain_text(SECOND, timeout=30 * MS)
        expect(assistant_bubbles(page)).to_have_count(2, timeout=10 * MS)  # both turns, one conversation
        page.screenshot(path=tmp_path / "3-reopened.png", full_page=True)

        page.get_by_role("button", name="Delete this conversation").click()
        expect(page.get_by_text("river").first).not_to_be_visible(timeout=30 * MS)
        page.screenshot(path=tmp_path / "4-deleted.png", full_page=True)

    consumer = platform_server.client(consumer_key)
    assert consumer.get("/conversations").json()["data"] == []  # the one conversation both turns made is gone
