"""The money loop in Debian's chromium against the real platform: a new consumer sees their trial balance, sees
the price before speaking, pays exactly that, downloads the month's statement; the persona's creator sees what
they earned."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.frontend.browser import CHROMIUM, chromium, go_to, sign_in_with_key, sign_up, streamlit_app
from tests.service.test_end_to_end import create_live_persona

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium"),
]
MS = 1000
WALLET = "0x" + "cd" * 20
# 500 characters at step-tts-mini's ¥1.80 per 10,000 cost exactly ¥0.09: amounts show to the cent (the exact
# value is a hover away), so a whole-cent price lets the page's figures be compared exactly.
TEXT = ("Hello from the money journey. " * 17)[:500]


def yuan(text: str) -> Decimal:
    """'¥1,000.00' → Decimal('1000.00'): the UI's amounts, compared exactly."""
    return Decimal(text.strip().removeprefix("¥").replace(",", ""))


def metric(page: Page, label: str) -> Decimal:
    box = page.get_by_test_id("stMetric").filter(has_text=label).first
    expect(box).to_be_visible(timeout=30 * MS)
    return yuan(box.get_by_test_id("stMetricValue").inner_text())


def sign_up_consumer(page: Page, app_url: str) -> None:
    sign_up(page, app_url, "Paying Listener", "paying.listener@example.com", consumer=True)


def sign_in(page: Page, app_url: str, key: str) -> None:
    sign_in_with_key(page, app_url, key)


@pytest.mark.parametrize("platform_server", ["sqlite"], indirect=True)
def test_consumer_pays_exactly_the_quote_and_creator_sees_earnings(
    platform_server: Any, voice_set: Any, tmp_path: Path
) -> None:
    _, creator_key = platform_server.sign_up("creator", WALLET)
    persona = create_live_persona(platform_server, creator_key, voice_set.clips[0].mp3_path.read_bytes())
    trial = Decimal(platform_server.platform.prices.trial_credit) / 1_000_000

    with streamlit_app(platform_server.base_url, tmp_path / "streamlit.log") as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        sign_up_consumer(page, url)

        go_to(page, "Billing")
        assert metric(page, "Available") == trial  # the trial credit, nothing spent yet
        page.screenshot(path=tmp_path / "1-trial-balance.png", full_page=True)

        go_to(page, "Generate")
        before = metric(page, "Balance")
        page.get_by_label("Text").fill(TEXT)
        page.get_by_label("Text").press("Control+Enter")
        price_line = page.get_by_text("Price:").first
        expect(price_line).to_contain_text(f"for {len(TEXT)} characters", timeout=30 * MS)
        price = yuan(price_line.locator("strong").first.inner_text())
        assert price > 0
        page.get_by_role("button", name="Generate", exact=True).click()
        expect(page.get_by_text("Characters billed")).to_be_visible(timeout=60 * MS)
        expect(page.locator("audio")).to_have_count(1)
        assert metric(page, "Cost") == price
        assert metric(page, "Balance") == before - price  # exactly the quoted amount, no more
        page.screenshot(path=tmp_path / "2-spoken.png", full_page=True)

        go_to(page, "Billing")
        assert metric(page, "Available") == trial - price
        assert metric(page, "Spent") == price
        with page.expect_download(timeout=30 * MS) as download:
            page.get_by_role("button", name="Download invoice (CSV)").click()
        assert download.value.suggested_filename.endswith("-invoice.csv")
        invoice = Path(download.value.path()).read_text()
        header, line = invoice.strip().splitlines()
        assert header.split(",") == ["date", "request_id", "persona_id", "persona", "model", "chars",
                                     "unit_price", "amount"]  # fmt: skip
        assert persona["id"] in line and line.endswith(f",{int(price * 1_000_000)}")
        page.screenshot(path=tmp_path / "3-statement.png", full_page=True)

        creator = browser.new_page(viewport={"width": 1400, "height": 1100})
        sign_in(creator, url, creator_key)
        go_to(creator, "Billing")
        expect(creator.get_by_role("heading", name="Earnings")).to_be_visible(timeout=30 * MS)
        assert metric(creator, "Callers paid") == price
        assert 0 < metric(creator, "Your share") < price
        creator.screenshot(path=tmp_path / "4-creator-earnings.png", full_page=True)
    assert (tmp_path / "4-creator-earnings.png").stat().st_size > 10_000
