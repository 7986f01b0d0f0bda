"""The real app in Debian's chromium: the whole user journey, against the fake and the real platform."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.frontend.browser import CHROMIUM, chromium, full_journey, streamlit_app
from tests.frontend.fake_platform import FakePlatformServer, tone_wav

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium"),
]


def test_journey_against_the_fake_platform(fake_server: FakePlatformServer, tmp_path: Path) -> None:
    voice = tmp_path / "me.wav"
    voice.write_bytes(tone_wav(6.0))
    with streamlit_app(fake_server.base_url, tmp_path / "streamlit.log") as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        full_journey(page, url, voice, tmp_path, live_timeout_s=30)
    assert (tmp_path / "4-usage.png").stat().st_size > 10_000


@pytest.mark.parametrize("platform_server", ["sqlite"], indirect=True)
def test_journey_against_the_real_platform(platform_server: Any, voice_set: Any, tmp_path: Path) -> None:
    voice = voice_set.clips[0].mp3_path
    with streamlit_app(platform_server.base_url, tmp_path / "streamlit.log") as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        full_journey(page, url, voice, tmp_path, live_timeout_s=180)
    assert (tmp_path / "4-usage.png").stat().st_size > 10_000
