"""Notifications and privacy in Debian's chromium against the real platform: a creator adds a webhook (its secret
shown once), sees their persona go live in the feed, exports their data and erases the account."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.frontend.browser import CHROMIUM, chromium, go_to, streamlit_app
from tests.frontend.test_frontend_money_journey import sign_in
from tests.service.test_end_to_end import create_live_persona

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium"),
]
MS = 1000


@pytest.mark.parametrize("platform_server", ["sqlite"], indirect=True)
def test_creator_sees_the_feed_manages_a_webhook_exports_and_erases(
    platform_server: Any, voice_set: Any, tmp_path: Path
) -> None:
    account_id, key = platform_server.sign_up("creator")
    persona = create_live_persona(platform_server, key, voice_set.clips[1].mp3_path.read_bytes())
    with (
        streamlit_app(platform_server.base_url, tmp_path / "streamlit.log") as app_url,
        chromium() as browser,
    ):
        page = browser.new_page()
        sign_in(page, app_url, key)

        go_to(page, "Notifications")
        expect(page.get_by_text("Persona is live").first).to_be_visible(timeout=30 * MS)
        expect(page.get_by_text(persona["name"]).first).to_be_visible()
        page.get_by_label("Endpoint URL").fill("http://127.0.0.1:9/hooks")
        page.get_by_role("button", name="Add webhook").click()
        expect(page.get_by_text("shown this once")).to_be_visible(timeout=30 * MS)
        expect(page.get_by_text("whsec_").first).to_be_visible()

        go_to(page, "Your data")
        page.get_by_role("button", name="Prepare export").click()
        with page.expect_download(timeout=60 * MS) as download:
            page.get_by_role("button", name="Download zip").click()
        assert download.value.suggested_filename == f"voxpersona-{account_id}.zip"

        page.get_by_label("Type your email to confirm").fill(
            platform_server.client(key).get("/accounts/me").json()["email"]
        )
        page.get_by_label("Type your email to confirm").press("Enter")
        page.get_by_role("button", name="Delete my account").click()
        expect(page.get_by_text("Account erased")).to_be_visible(timeout=60 * MS)
    assert platform_server.client(key).get("/accounts/me").status_code == 401
