"""Shared steps of the issue-15 browser journeys: chromium with a fake microphone, signing in with a key,
recording with st.audio_input, picking from a select box, and waiting for a Streamlit page to settle."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.frontend.browser import CHROMIUM, CHROMIUM_ARGS

MS = 1000
WIDE = {"width": 1400, "height": 1000}  # the width the layout must not cut card buttons at


@contextmanager
def chromium_with_microphone(voice: Path | None = None) -> Iterator[Browser]:
    """Debian's chromium; with `voice` (a WAV) its fake microphone plays that file, looped, to st.audio_input."""
    args = list(CHROMIUM_ARGS)
    if voice is not None:
        args += [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={voice}",
        ]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=args)
        try:
            yield browser
        finally:
            browser.close()


def sign_in_with_key(page: Page, app_url: str, key: str) -> None:
    page.goto(f"{app_url}/account")
    page.get_by_role("textbox", name="API key").fill(key)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible(timeout=30 * MS)


def record(page: Page, seconds: int) -> None:
    """Record `seconds` of the fake microphone: the recorder's own clock says when (no sleep)."""
    page.get_by_role("button", name="Record").click()
    clock = page.get_by_test_id("stAudioInputWaveformTimeCode")
    expect(clock).to_have_text(re.compile(rf"00:{seconds:02d}"), timeout=(seconds + 20) * MS)
    page.get_by_role("button", name="Stop recording").click()


def choose(page: Page, label: str, option: str) -> None:
    """Pick `option` in the select box labelled `label`."""
    box = page.get_by_role("combobox", name=label, exact=True)
    box.click()
    page.get_by_role("option", name=option, exact=True).click()
    expect(box).to_have_value(option, timeout=30 * MS)


def settled(page: Page) -> None:
    """Wait until the script run is over and every element has painted (not a loading skeleton)."""
    app = page.get_by_test_id("stApp")
    expect(app).to_have_attribute("data-test-script-state", "notRunning", timeout=60 * MS)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=60 * MS)
    page.wait_for_load_state("networkidle")  # the widgets' code loads lazily, after the run
    expect(page.locator("[data-testid=stSkeleton], .stSkeleton")).to_have_count(0, timeout=30 * MS)
