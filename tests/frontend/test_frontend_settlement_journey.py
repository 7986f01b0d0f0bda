"""Settlement in Debian's chromium against the real platform: a creator's paid-out earnings show once and right —
their own amount (not what callers paid) to the cent, the payout wallet, the confirmed tx hash (as text: the
embedded chain has no explorer)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from bentos.devkit.harness import wait_for
from streamlit_app.money import format_cny
from tests.frontend.browser import CHROMIUM, go_to, streamlit_app
from tests.frontend.journeys import MS, WIDE, chromium_with_microphone, settled, sign_in_with_key
from tests.service.test_end_to_end import create_live_persona

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium"),
]


@pytest.mark.parametrize("platform_server", ["sqlite"], indirect=True)
def test_settlement_shows_the_creators_amount_wallet_and_tx(
    platform_server: Any, voice_set: Any, tmp_path: Path
) -> None:
    wallet = "0x" + os.urandom(20).hex()
    _, creator_key = platform_server.sign_up("creator", wallet)
    persona = create_live_persona(platform_server, creator_key, voice_set.clips[7].mp3_path.read_bytes())
    _, consumer_key = platform_server.sign_up("consumer")
    consumer, creator = platform_server.client(consumer_key), platform_server.client(creator_key)
    text = "A paid sentence, long enough that the creator's share is worth a cent or two. " * 8
    assert consumer.post("/tts", json={"voice": persona["id"], "text": text[:600]}).status_code == 200
    s = creator.post("/settlements").json()
    done = wait_for(
        lambda: (r := creator.get(f"/settlements/{s['settlementId']}").json())["status"] == "confirmed" and r,
        timeout=60,
        what="the settlement to confirm",
    )
    assert s["creatorAmount"] < s["amount"]

    with (
        streamlit_app(platform_server.base_url, tmp_path / "streamlit.log") as url,
        chromium_with_microphone() as browser,
    ):
        page = browser.new_page(viewport=WIDE)
        sign_in_with_key(page, url, creator_key)
        go_to(page, "Billing")
        expect(page.get_by_text(s["settlementId"])).to_be_visible(timeout=30 * MS)
        card = page.get_by_test_id("stVerticalBlock").filter(has_text=s["settlementId"]).last
        expect(card).to_contain_text(f"{format_cny(s['creatorAmount'])} to {wallet}")  # the creator's part
        expect(card).to_contain_text("confirmed")
        expect(card).to_contain_text(done["txHash"])
        expect(card).to_contain_text(f"callers paid {format_cny(s['amount'])} in all")
        expect(card.locator("a")).to_have_count(0)  # no explorer for the embedded chain: nothing to follow
        settled(page)
        page.screenshot(path=tmp_path / "settlement.png", full_page=True)
