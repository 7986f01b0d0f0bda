"""Generate in Debian's chromium against the real platform: a label picked from the list the chosen model takes
(a step-tts-2-only style, glossed in English) is spoken without an error, and the text box counts to the
platform's limit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.frontend.browser import CHROMIUM, streamlit_app
from tests.frontend.journeys import MS, WIDE, choose, chromium_with_microphone, sign_in_with_key
from tests.service.test_end_to_end import create_live_persona

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium"),
]


@pytest.mark.parametrize("platform_server", ["sqlite"], indirect=True)
def test_generate_with_a_label_from_the_models_list(
    platform_server: Any, voice_set: Any, tmp_path: Path
) -> None:
    _, creator_key = platform_server.sign_up("creator")
    persona = create_live_persona(
        platform_server, creator_key, voice_set.clips[1].mp3_path.read_bytes(), model="step-tts-2"
    )
    _, key = platform_server.sign_up("consumer")
    max_chars = platform_server.platform.server.tts_max_chars
    with (
        streamlit_app(platform_server.base_url, tmp_path / "streamlit.log") as url,
        chromium_with_microphone() as browser,
    ):
        page = browser.new_page(viewport=WIDE)
        sign_in_with_key(page, url, key)
        page.goto(f"{url}/generate?voice={persona['id']}")
        expect(page.get_by_role("heading", name="Generate speech")).to_be_visible(timeout=30 * MS)
        choose(page, "Model", "step-tts-2")
        choose(page, "Voice label", "Style")
        choose(page, "Label value", "温柔 · gentle")
        page.get_by_role("textbox", name="Text").fill("Gently, please.")
        counter = page.get_by_test_id("InputInstructions").filter(has_text="/")
        expect(counter.first).to_contain_text(f"15/{max_chars}")  # counts to the platform's limit
        page.get_by_role("button", name="Generate", exact=True).click()
        expect(page.get_by_text("Characters billed")).to_be_visible(timeout=60 * MS)
        expect(page.locator("audio")).to_have_count(1)
        expect(page.get_by_test_id("stAlertContentError")).to_have_count(0)
        page.screenshot(path=tmp_path / "generate-label.png", full_page=True)
