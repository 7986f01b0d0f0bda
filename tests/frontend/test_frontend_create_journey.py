"""Create a persona in Debian's chromium against the real platform, twice: from an uploaded file (heard before it
is sent) and from a recording made in the browser (chromium's fake microphone plays a generated voice); both go
live, the page naming the step running and the time left while it works."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.frontend.browser import CHROMIUM, go_to, streamlit_app
from tests.frontend.journeys import MS, WIDE, choose, chromium_with_microphone, record, sign_in_with_key

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium"),
]
LIVE_TIMEOUT_S = 180


def create(page: Page, name: str, shots: Path) -> None:
    expect(page.get_by_text("Audio accepted")).to_be_visible(timeout=60 * MS)
    page.get_by_label("Name *").fill(name)
    page.get_by_text("I attest to the statement above").click()
    page.get_by_role("button", name="Create persona").click()
    # The running step and its estimate show while the pipeline works; on a fast machine the persona can be live
    # before the next poll, so either is a pass here (the estimate itself is checked in test_frontend_create.py).
    running, live = page.get_by_text("s left"), page.get_by_text("is live.")
    expect(running.or_(live).first).to_be_visible(timeout=30 * MS)
    if running.count():
        page.screenshot(path=shots / f"{name}-running.png", full_page=True)
    expect(live).to_be_visible(timeout=LIVE_TIMEOUT_S * MS)
    page.screenshot(path=shots / f"{name}-live.png", full_page=True)


@pytest.mark.parametrize("platform_server", ["sqlite"], indirect=True)
def test_upload_and_record_each_create_a_live_persona(
    platform_server: Any, voice_set: Any, tmp_path: Path
) -> None:
    _, key = platform_server.sign_up("creator")
    microphone = voice_set.clips[4].wav_path  # another speaker than the uploaded file
    with (
        streamlit_app(platform_server.base_url, tmp_path / "streamlit.log") as url,
        chromium_with_microphone(microphone) as browser,
    ):
        page = browser.new_page(viewport=WIDE)
        sign_in_with_key(page, url, key)
        go_to(page, "Create")
        expect(page.get_by_text("20 MiB")).to_be_visible()  # the platform's limit, not Streamlit's 200MB
        page.locator("input[type=file]").set_input_files(voice_set.clips[0].mp3_path)
        expect(page.get_by_test_id("stAudio")).to_have_count(1, timeout=30 * MS)  # heard before it is sent
        create(page, "Uploaded Voice", tmp_path)

        page.get_by_role("button", name="Create another persona").click()
        page.get_by_text("Record", exact=True).click()
        record(page, 7)
        create(page, "Recorded Voice", tmp_path)

    with platform_server.platform.sessions() as session:
        from bentos.store.models import Persona

        states = {p.name: p.state for p in session.query(Persona).filter(Persona.name.like("% Voice"))}
    assert states == {"Uploaded Voice": "live", "Recorded Voice": "live"}


@pytest.mark.parametrize("platform_server", ["sqlite"], indirect=True)
def test_a_public_persona_goes_live_after_its_consent_sentence_is_recorded(
    platform_server: Any, voice_set: Any, tmp_path: Path
) -> None:
    _, key = platform_server.sign_up("creator")
    voice = voice_set.clips[
        6
    ].wav_path  # uploaded, and played by the microphone: the same speaker reads consent
    with (
        streamlit_app(platform_server.base_url, tmp_path / "streamlit.log") as url,
        chromium_with_microphone(voice) as browser,
    ):
        page = browser.new_page(viewport=WIDE)
        sign_in_with_key(page, url, key)
        go_to(page, "Create")
        page.locator("input[type=file]").set_input_files(voice)
        expect(page.get_by_text("Audio accepted")).to_be_visible(timeout=60 * MS)
        choose(page, "Visibility", "Public — listed on Discover")
        expect(page.get_by_text("Read this sentence aloud")).to_be_visible(timeout=30 * MS)
        record(page, 4)
        expect(page.get_by_text("Consent verified")).to_be_visible(timeout=60 * MS)
        create(page, "Public Voice", tmp_path)

    listed = platform_server.client().get("/voices", params={"q": "public voice"}).json()["data"]
    assert [p["name"] for p in listed] == ["Public Voice"]
