"""Trust and safety in Debian's chromium against the real platform: an impersonating persona waits in review
until an admin approves it on the Review queue page; a listener reports a persona from its page, an admin takes it
down on the Reports page, and its creator sees it revoked on My personas; the audit log shows both actions."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from bentos.core.accounts import open_admin
from bentos.devkit.emulator_process import EmulatorProcess
from bentos.devkit.harness import RunningPlatform, platform_overrides, start_platform
from encoders.voices import VoiceSet
from tests.frontend.browser import CHROMIUM, chromium, go_to, sign_in_with_key, streamlit_app
from tests.trust.conftest import start_persona, wait_state

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium"),
]
MS = 1000


@pytest.fixture(scope="module")
def guarded(emulator: EmulatorProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    overrides = platform_overrides(tmp_path_factory.mktemp("trust-journey"), emulator)
    running = start_platform([*overrides, "moderation.impersonation_review=true"])
    try:
        yield running
    finally:
        running.stop()


def open_page(page: Page, title: str) -> None:
    """go_to, after unfolding the sidebar's "View N more" (an admin has more pages than it shows folded)."""
    more = page.get_by_test_id("stSidebarNav").get_by_text(re.compile(r"^View \d+ more$"))
    if more.count():
        more.click()
    go_to(page, title)


def signed_in(browser: object, url: str, key: str) -> Page:
    page: Page = browser.new_page(viewport={"width": 1400, "height": 1100})  # type: ignore[attr-defined]
    sign_in_with_key(page, url, key)
    return page


def test_review_report_and_takedown_in_the_browser(
    guarded: RunningPlatform, voice_set: VoiceSet, tmp_path: Path
) -> None:
    clips = voice_set.by_speaker()[voice_set.speakers[2]]
    _, owner_key = guarded.sign_up("creator")
    _, impostor_key = guarded.sign_up("creator")
    _, listener_key = guarded.sign_up("consumer")
    _, admin_key = open_admin(guarded.platform.sessions, "Ops", f"ops-{secrets.token_hex(4)}@example.com")
    owner, impostor = guarded.client(owner_key), guarded.client(impostor_key)
    original = start_persona(owner, clips[0].mp3_path.read_bytes(), name="Harbour Stories")
    wait_state(owner, original, "live")
    copy = start_persona(impostor, clips[1].mp3_path.read_bytes(), name="Borrowed Voice")
    wait_state(impostor, copy, "review")

    with streamlit_app(guarded.base_url, tmp_path / "streamlit.log") as url, chromium() as browser:
        creator_page = signed_in(browser, url, impostor_key)
        open_page(creator_page, "My personas")
        expect(creator_page.get_by_text("An admin is reviewing this persona")).to_be_visible(timeout=30 * MS)

        admin = signed_in(browser, url, admin_key)
        open_page(admin, "Review queue")
        expect(admin.get_by_text("Borrowed Voice")).to_be_visible(timeout=30 * MS)
        expect(admin.get_by_text("Harbour Stories")).to_be_visible()
        admin.get_by_label("Note (shown to the creator)").fill("consent letter on file")
        admin.get_by_role("button", name="Approve").click()
        expect(admin.get_by_text("Nothing waits for review.")).to_be_visible(timeout=30 * MS)
        admin.screenshot(path=tmp_path / "1-review-approved.png", full_page=True)
        wait_state(impostor, copy, "live")

        listener = signed_in(browser, url, listener_key)
        listener.goto(f"{url}/persona?id={original}")
        expect(listener.get_by_role("heading", name="Report")).to_be_visible(timeout=30 * MS)
        listener.get_by_text("It uses someone else's voice").click()
        listener.get_by_label("Details (optional)").fill("This is my late father's voice.")
        listener.get_by_role("button", name="Report persona").click()
        expect(listener.get_by_text("an admin will look at it")).to_be_visible(timeout=30 * MS)

        open_page(admin, "Reports")
        expect(admin.get_by_text("This is my late father's voice.")).to_be_visible(timeout=30 * MS)
        admin.get_by_role("button", name="Take down").click()
        expect(admin.get_by_text("No open reports.")).to_be_visible(timeout=30 * MS)
        admin.screenshot(path=tmp_path / "2-taken-down.png", full_page=True)

        spoken = guarded.client(listener_key).post("/tts", json={"voice": original, "text": "Still there?"})
        assert spoken.status_code == 410

        owner_page = signed_in(browser, url, owner_key)
        open_page(owner_page, "My personas")
        expect(owner_page.get_by_text("Revoked: it can no longer be called")).to_be_visible(timeout=30 * MS)

        open_page(admin, "Audit log")
        expect(admin.get_by_text("review.approved")).to_be_visible(timeout=30 * MS)
        expect(admin.get_by_text("report.takedown")).to_be_visible()
        admin.screenshot(path=tmp_path / "3-audit.png", full_page=True)
