"""Front-end fixtures: the fake platform served over real HTTP, and AppTest runs of the Streamlit pages."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from streamlit_app import contract
from tests.frontend.fake_platform import FakePlatform, FakePlatformServer, default_limits

APP = Path(__file__).resolve().parents[2] / "streamlit_app" / "app.py"


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakePlatformServer]:
    server = FakePlatformServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake(fake_server: FakePlatformServer) -> FakePlatform:
    """The fake platform's state, with the request log cleared and the published limits reset for this test."""
    fake_server.state.requests.clear()
    fake_server.state.limits = default_limits()
    return fake_server.state


@pytest.fixture
def open_app(fake_server: FakePlatformServer, monkeypatch: pytest.MonkeyPatch) -> Callable[..., AppTest]:
    """`open_app("views/create.py", api_key=...)`: the app, pointed at the fake platform, on that page."""
    monkeypatch.setenv("VOXPERSONA_API_URL", fake_server.base_url)
    monkeypatch.delenv("VOXPERSONA_API_KEY", raising=False)

    def open_page(page: str | None = None, *, api_key: str | None = None, **query: str) -> AppTest:
        contract.clear_cache()  # the limits are cached per platform URL; the test may have changed the fake's
        app = AppTest.from_file(str(APP), default_timeout=20)
        if api_key:
            app.session_state["vp_api_key"] = api_key
        app.run()
        if page:
            app.query_params.update(query)
            app.switch_page(page).run()
        return app

    return open_page
