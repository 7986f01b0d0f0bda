"""Signing in, in Debian's chromium against the real platform: a session survives a reload and a new tab and ends
everywhere when signed out; a forgotten password is reset with the mailed one-time token; API keys are made with a
name and scope and revoked from the Account page."""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from bentos.core.mail import unsent
from tests.frontend.browser import CHROMIUM, PASSWORD, chromium, go_to, sign_up, streamlit_app

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium"),
    pytest.mark.parametrize("platform_server", ["sqlite"], indirect=True),
]
MS = 1000
COOKIE = "vp_session"


def _shown_once(page: Page, text: str) -> None:
    """`text` in the sidebar exactly once, visible. While Streamlit reruns, the previous run's element can stay on
    the page (stale) beside the new one for a moment: wait for the one, don't fail on the brief two."""
    line = page.get_by_test_id("stSidebar").get_by_text(text)
    expect(line).to_have_count(1, timeout=30 * MS)
    expect(line).to_be_visible(timeout=30 * MS)


def signed_in_as(page: Page, name: str) -> None:
    _shown_once(page, f"Signed in as {name}")


def signed_out(page: Page) -> None:
    _shown_once(page, "Not signed in")


def session_cookie(context: BrowserContext, timeout: float = 30.0) -> str:
    """The sign-in cookie, once the page has written it."""
    deadline = time.monotonic() + timeout
    while True:
        found = [c["value"] for c in context.cookies() if c["name"] == COOKIE and c["value"]]
        if found:
            return found[0]
        assert time.monotonic() < deadline, "the sign-in cookie was never written"
        context.pages[0].wait_for_timeout(100)


def test_a_sign_in_survives_reloads_and_new_tabs_and_signing_out_ends_it_everywhere(
    platform_server: Any, tmp_path: Path
) -> None:
    with streamlit_app(platform_server.base_url, tmp_path / "streamlit.log") as url, chromium() as browser:
        context = browser.new_context(viewport={"width": 1300, "height": 1000})
        page = context.new_page()
        page.goto(url)
        signed_out(page)  # the front end starts signed out: no shared account behind it

        sign_up(page, url, "Journey Person", f"journey-{secrets.token_hex(3)}@example.com")
        signed_in_as(page, "Journey Person")
        token = session_cookie(context)
        assert token.startswith("vps_")
        page.screenshot(path=tmp_path / "1-signed-up.png", full_page=True)

        expect(page.get_by_text("shown only this once")).to_be_visible()  # still, after the cookie's rerun
        page.get_by_role("button", name="I have copied it").click()
        expect(page.get_by_text("shown only this once")).to_have_count(0, timeout=30 * MS)
        page.reload()
        signed_in_as(page, "Journey Person")
        go_to(page, "Billing")
        signed_in_as(page, "Journey Person")

        other_tab = context.new_page()
        other_tab.goto(f"{url}/account")
        signed_in_as(other_tab, "Journey Person")
        expect(other_tab.get_by_role("button", name="Sign out")).to_be_visible(timeout=30 * MS)

        other_tab.get_by_role("button", name="Sign out").click()
        signed_out(other_tab)
        page.screenshot(path=tmp_path / "2-other-tab-signed-out.png", full_page=True)
        # The first tab is signed out at its next run (its token was ended on the platform) …
        deadline = time.monotonic() + 30
        while page.get_by_test_id("stSidebar").get_by_text("Not signed in").count() == 0:
            assert time.monotonic() < deadline, "the first tab is still signed in"
            go_to(page, "Account & billing")
        # … and a reload or a new tab finds no sign-in either.
        page.reload()
        signed_out(page)
        third = context.new_page()
        third.goto(url)
        signed_out(third)
        assert platform_server.client(token).get("/accounts/me").status_code == 401
        context.close()


def test_a_forgotten_password_is_reset_with_the_mailed_token(platform_server: Any, tmp_path: Path) -> None:
    email = f"forgetful-{secrets.token_hex(3)}@example.com"
    body = {"name": "Forgetful", "email": email, "role": "consumer", "password": "an old password"}
    assert httpx.post(f"{platform_server.base_url}/accounts", json=body, timeout=30).status_code == 201
    with streamlit_app(platform_server.base_url, tmp_path / "streamlit.log") as url, chromium() as browser:
        context = browser.new_context(viewport={"width": 1300, "height": 1000})
        page = context.new_page()
        page.goto(f"{url}/account")
        page.get_by_text("Forgot password?", exact=True).click()
        expect(page.get_by_role("button", name="Send reset token")).to_be_visible(timeout=30 * MS)
        page.get_by_label("Email", exact=True).fill(email)
        page.get_by_role("button", name="Send reset token").click()
        expect(page.get_by_text(f"If an account uses {email}")).to_be_visible(timeout=30 * MS)

        mail = unsent(platform_server.platform.sessions, email)[-1]  # the embedded platform's outbox
        token = re.search(r"vpr_[A-Za-z0-9_-]+", mail.body)
        assert token is not None
        page.get_by_label("Reset token", exact=True).fill(token.group(0))
        page.get_by_label("New password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Set new password").click()
        signed_in_as(page, "Forgetful")
        session_cookie(context)
        page.reload()
        signed_in_as(page, "Forgetful")
        page.screenshot(path=tmp_path / "3-reset-and-signed-in.png", full_page=True)

        page.get_by_role("button", name="Sign out").click()
        signed_out(page)
        page.get_by_label("Email", exact=True).fill(email)
        page.get_by_label("Password", exact=True).fill("an old password")
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page.get_by_text("invalid_credentials")).to_be_visible(timeout=30 * MS)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        signed_in_as(page, "Forgetful")
        context.close()


def test_api_keys_are_created_with_a_name_and_scope_and_revoked(platform_server: Any, tmp_path: Path) -> None:
    with streamlit_app(platform_server.base_url, tmp_path / "streamlit.log") as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1300, "height": 1100})
        sign_up(page, url, "Key Keeper", f"keys-{secrets.token_hex(3)}@example.com")
        page.get_by_label("Key name", exact=True).fill("podcast robot")
        page.get_by_test_id("stSelectbox").filter(has_text="Scope").click()
        page.get_by_role("option", name=re.compile("^speech")).click()
        page.get_by_role("button", name="Create key").click()
        expect(page.get_by_text("copy it now: it is shown only this once")).to_be_visible(timeout=30 * MS)
        key = page.get_by_test_id("stCode").filter(has_text="vpk_").last.inner_text().strip()
        assert key.startswith("vpk_")
        robot = platform_server.client(key)
        assert robot.get("/accounts/me").status_code == 200
        assert robot.post("/accounts/me/keys", json={}).json()["error"]["code"] == "insufficient_scope"

        row = page.locator("[class*='st-key-vp-key-']").filter(has_text="podcast robot")
        expect(row).to_contain_text("scope speech")
        page.screenshot(path=tmp_path / "4-keys.png", full_page=True)
        row.get_by_role("button", name="Revoke").click()
        expect(row).to_contain_text("revoked", timeout=30 * MS)
        assert robot.get("/accounts/me").status_code == 401
