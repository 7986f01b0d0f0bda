"""Every page of the app in Debian's chromium at 1400 px wide, against the real platform with a creator's live
persona, a paid call and a settlement: saved as docs/screenshots/NN-<page>.png (README names the folder), and no
button on Discover's cards is cut short at that width. Run: `pytest -m slow tests/frontend/test_frontend_screenshots.py`."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from bentos.devkit.harness import wait_for
from tests.frontend.browser import CHROMIUM, ROOT, streamlit_app
from tests.frontend.journeys import MS, WIDE, chromium_with_microphone, settled, sign_in_with_key
from tests.service.test_end_to_end import create_live_persona

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium"),
]
SCREENSHOTS = ROOT / "docs" / "screenshots"


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def cut_buttons(page: Page) -> list[str]:
    """Labels of the buttons in the main area whose text does not fit their box."""
    return page.eval_on_selector_all(
        "[data-testid=stMain] button",
        "els => els.filter(e => e.offsetParent && e.scrollWidth > e.clientWidth + 1).map(e => e.innerText)",
    )


def seed(platform_server: Any, voice_set: Any) -> str:
    """A creator with a live public persona, a paid call and a confirmed settlement; returns their key."""
    _, key = platform_server.sign_up("creator", "0x" + os.urandom(20).hex())
    persona = create_live_persona(
        platform_server, key, voice_set.clips[10].mp3_path.read_bytes(), name="Evening Narrator",
        tags=["calm", "story"], description="Unhurried stories for the end of the day.",
    )  # fmt: skip
    _, consumer_key = platform_server.sign_up("consumer")
    text = "Once upon a time, in a harbour town, a lighthouse keeper told stories to the ships. " * 6
    spoken = platform_server.client(consumer_key).post(
        "/tts", json={"voice": persona["id"], "text": text[:500]}
    )
    assert spoken.status_code == 200, spoken.text
    creator = platform_server.client(key)
    s = creator.post("/settlements").json()
    wait_for(
        lambda: creator.get(f"/settlements/{s['settlementId']}").json()["status"] == "confirmed",
        timeout=60,
        what="the settlement to confirm",
    )
    return str(key)


@pytest.mark.parametrize("platform_server", ["sqlite"], indirect=True)
def test_every_page_at_1400_px(platform_server: Any, voice_set: Any, tmp_path: Path) -> None:
    key = seed(platform_server, voice_set)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with (
        streamlit_app(platform_server.base_url, tmp_path / "streamlit.log") as url,
        chromium_with_microphone() as browser,
    ):
        page = browser.new_page(viewport={**WIDE, "height": 1800})  # Streamlit scrolls inside: a tall window
        sign_in_with_key(page, url, key)
        nav = page.get_by_test_id("stSidebarNav")
        links = nav.get_by_role("link")
        pages = [  # (title less its icon, the page's URL)
            (text.split("\n")[-1].strip(), str(links.nth(i).get_attribute("href")))
            for i, text in enumerate(links.all_inner_texts())
        ]
        titles = [title for title, _ in pages]
        assert "Discover" in titles and "Billing" in titles, titles
        for n, (title, href) in enumerate(pages, start=1):
            nav.locator(f'a[href="{href}"]').click()
            expect(page).to_have_url(href, timeout=30 * MS)
            settled(page)
            if title == "Discover":
                expect(page.get_by_text("Evening Narrator").first).to_be_visible(timeout=30 * MS)
                assert cut_buttons(page) == [], "buttons cut short at 1400 px"
            page.screenshot(path=SCREENSHOTS / f"{n:02d}-{slug(title)}.png", full_page=True)
        saved = sorted(p.name for p in SCREENSHOTS.glob("*.png"))
    assert len(saved) >= len(titles)
