"""Search in Debian's chromium against the real platform: a word of a persona's prompt finds it, and a click on a
tag filters Discover to that tag (the platform's full-text index and tag filter, not the page)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.frontend.browser import CHROMIUM, streamlit_app
from tests.frontend.journeys import MS, WIDE, chromium_with_microphone, settled
from tests.service.test_end_to_end import create_live_persona

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium"),
]


@pytest.mark.parametrize("platform_server", ["sqlite"], indirect=True)
def test_search_by_prompt_word_then_by_a_tag_click(
    platform_server: Any, voice_set: Any, tmp_path: Path
) -> None:
    _, key = platform_server.sign_up("creator")
    clips = voice_set.clips
    create_live_persona(
        platform_server, key, clips[2].mp3_path.read_bytes(), name="Night Owl", tags=["bedtime"],
        personaPrompt="A hushed, serene reader.",
    )  # fmt: skip
    create_live_persona(
        platform_server, key, clips[5].mp3_path.read_bytes(), name="Drill Voice", tags=["sport"]
    )
    with (
        streamlit_app(platform_server.base_url, tmp_path / "streamlit.log") as url,
        chromium_with_microphone() as browser,
    ):
        page = browser.new_page(viewport=WIDE)
        page.goto(url)  # Discover needs no account
        cards = page.locator("h4")
        expect(cards.filter(has_text="Drill Voice")).to_be_visible(timeout=30 * MS)

        search = page.get_by_role("textbox", name="Search")
        search.fill("serene")
        search.press("Enter")
        expect(cards.filter(has_text="Drill Voice")).to_have_count(0, timeout=30 * MS)
        expect(cards.filter(has_text="Night Owl")).to_be_visible()

        search.fill("")
        search.press("Enter")
        expect(cards.filter(has_text="Drill Voice")).to_be_visible(timeout=30 * MS)
        page.get_by_role("button", name="#bedtime").first.click()
        expect(page.get_by_role("textbox", name="Tag")).to_have_value("bedtime", timeout=30 * MS)
        expect(cards.filter(has_text="Drill Voice")).to_have_count(0, timeout=30 * MS)
        expect(cards.filter(has_text="Night Owl")).to_be_visible()
        settled(page)
        page.screenshot(path=tmp_path / "search-by-tag.png", full_page=True)
