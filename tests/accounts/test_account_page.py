"""The Account page (AppTest) against the real platform: the app starts signed out, sign-up and sign-in start a
session, signing out ends it for every session holding it, a password reset signs in, keys are made and revoked."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from bentos.core.mail import unsent
from bentos.devkit.harness import RunningPlatform
from streamlit_app import session

pytestmark = pytest.mark.parametrize("platform_server", ["sqlite"], indirect=True)
APP = Path(__file__).resolve().parents[2] / "streamlit_app" / "app.py"
PAGE = "views/account.py"
PASSWORD = "a long enough password"


@pytest.fixture
def open_account(platform_server: RunningPlatform, monkeypatch: pytest.MonkeyPatch) -> Callable[..., AppTest]:
    monkeypatch.setenv("VOXPERSONA_API_URL", platform_server.base_url)
    monkeypatch.delenv("VOXPERSONA_DEMO_EMAIL", raising=False)
    monkeypatch.delenv("VOXPERSONA_DEMO_PASSWORD", raising=False)

    def open_page(token: str | None = None) -> AppTest:
        app = AppTest.from_file(str(APP), default_timeout=30)
        if token:
            app.session_state["vp_api_key"] = token
        app.run()
        app.switch_page(PAGE).run()
        return app

    return open_page


def fill(app: AppTest, label: str, value: str) -> None:
    next(w for w in app.text_input if w.label == label).input(value)


def click(app: AppTest, label: str) -> None:
    next(b for b in app.button if b.label == label).click().run()


def texts(app: AppTest) -> str:
    parts = [*app.markdown, *app.success, *app.warning, *app.error, *app.info, *app.code, *app.caption]
    return "\n".join(str(p.value) for p in parts) + "\n".join(str(s.value) for s in app.sidebar.markdown)


def new_email() -> str:
    return f"page-{secrets.token_hex(4)}@example.com"


def sign_up_on_page(app: AppTest, email: str) -> None:
    app.radio[0].set_value("Create an account").run()
    fill(app, "Name", "Page Person")
    fill(app, "Email", email)
    fill(app, "Password", PASSWORD)
    click(app, "Sign up")


def api_sign_up(running: RunningPlatform, email: str, password: str | None = PASSWORD) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "Api Person", "email": email, "role": "creator"}
    if password:
        body["password"] = password
    r = httpx.post(f"{running.base_url}/accounts", json=body, timeout=30)
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_the_app_starts_signed_out_even_with_a_key_in_the_environment(
    platform_server: RunningPlatform, open_account: Callable[..., AppTest], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, key = platform_server.sign_up("creator")
    monkeypatch.setenv("VOXPERSONA_API_KEY", key)  # what the front end used to start with
    app = open_account()
    assert not app.exception
    assert "Not signed in" in [c.value for c in app.sidebar.caption]
    assert [b.label for b in app.button if b.label == "Sign in"] == ["Sign in"]
    assert any(w.label == "API key" for w in app.text_input)
    assert not any(b.label == "Try the demo creator" for b in app.button)  # no demo without make run's


def test_sign_up_starts_a_session_and_shows_the_api_key_once(open_account: Callable[..., AppTest]) -> None:
    app = open_account()
    email = new_email()
    sign_up_on_page(app, email)
    assert not app.exception
    token = app.session_state["vp_api_key"]
    assert token.startswith("vps_")  # the app signs in with a session, not the key
    revealed = [c.value for c in app.code if str(c.value).startswith("vpk_")]
    assert len(revealed) == 1 and "shown only this once" in texts(app)
    assert email in texts(app)
    app.run()  # any rerun (the cookie's write makes one at once) still shows it …
    assert [c.value for c in app.code if str(c.value).startswith("vpk_")] == revealed
    click(app, "I have copied it")  # … until the user says it is saved
    assert not [c.value for c in app.code if str(c.value).startswith("vpk_")]
    assert email in texts(app)


def test_a_wrong_password_is_refused_in_plain_words(
    platform_server: RunningPlatform, open_account: Callable[..., AppTest]
) -> None:
    email = new_email()
    api_sign_up(platform_server, email)
    app = open_account()
    fill(app, "Email", email)
    fill(app, "Password", "not the password")
    click(app, "Sign in")
    assert "invalid_credentials" in texts(app)
    assert app.session_state["vp_api_key"] is None


def test_signing_out_in_one_session_signs_out_the_others_holding_the_token(
    platform_server: RunningPlatform, open_account: Callable[..., AppTest], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session, "RECHECK_S", 0.0)  # recheck at every run, not every few seconds
    email = new_email()
    api_sign_up(platform_server, email)
    first = open_account()
    fill(first, "Email", email)
    fill(first, "Password", PASSWORD)
    click(first, "Sign in")
    token = first.session_state["vp_api_key"]
    assert token.startswith("vps_") and "Signed in as" in texts(first)

    second = open_account(token)  # another tab: the same cookie
    assert "Signed in as" in texts(second)
    click(first, "Sign out")
    assert "Not signed in" in [c.value for c in first.sidebar.caption]
    second.run()
    assert "Not signed in" in [c.value for c in second.sidebar.caption]
    assert "Your sign-in has ended" in texts(second)


def test_an_api_key_signs_in_through_the_api_key_field(
    platform_server: RunningPlatform, open_account: Callable[..., AppTest]
) -> None:
    key = api_sign_up(platform_server, new_email(), password=None)["apiKey"]
    app = open_account()
    fill(app, "API key", key)
    click(app, "Sign in")
    assert app.session_state["vp_api_key"].startswith("vps_")
    assert "Api Person" in texts(app)


def test_a_password_reset_from_the_page_sets_the_password_and_signs_in(
    platform_server: RunningPlatform, open_account: Callable[..., AppTest]
) -> None:
    email = new_email()
    api_sign_up(platform_server, email)
    app = open_account()
    app.radio[0].set_value("Forgot password?").run()
    fill(app, "Email", email)
    click(app, "Send reset token")
    assert f"If an account uses {email}" in texts(app)
    mail = unsent(platform_server.platform.sessions, email)[-1]
    token = re.search(r"vpr_[A-Za-z0-9_-]+", mail.body)
    assert token is not None
    fill(app, "Reset token", token.group(0))
    fill(app, "New password", "the new password")
    click(app, "Set new password")
    assert not app.exception
    assert app.session_state["vp_api_key"].startswith("vps_")
    login = httpx.post(
        f"{platform_server.base_url}/sessions",
        json={"email": email, "password": "the new password"},
        timeout=30,
    )
    assert login.status_code == 201


def test_keys_are_created_with_a_name_and_scope_and_revoked_from_the_page(
    platform_server: RunningPlatform, open_account: Callable[..., AppTest]
) -> None:
    app = open_account()
    sign_up_on_page(app, new_email())
    fill(app, "Key name", "nightly batch")
    next(s for s in app.selectbox if s.label == "Scope").set_value("speech")
    click(app, "Create key")
    new_key = [str(c.value) for c in app.code if str(c.value).startswith("vpk_")][-1]  # after sign-up's own
    assert "nightly batch" in texts(app) and "scope **speech**" in texts(app)
    assert platform_server.client(new_key).get("/accounts/me").status_code == 200

    revoke = [b for b in app.button if b.label == "Revoke"]
    assert len(revoke) == 2  # the new key and the first key from sign-up, newest first
    revoke[0].click().run()
    assert platform_server.client(new_key).get("/accounts/me").status_code == 401
    assert "revoked" in texts(app)


def test_the_demo_button_signs_in_as_the_demo_only_when_asked(
    platform_server: RunningPlatform, open_account: Callable[..., AppTest], monkeypatch: pytest.MonkeyPatch
) -> None:
    email = new_email()
    api_sign_up(platform_server, email)
    monkeypatch.setenv("VOXPERSONA_DEMO_EMAIL", email)
    monkeypatch.setenv("VOXPERSONA_DEMO_PASSWORD", PASSWORD)
    app = open_account()
    assert app.session_state["vp_api_key"] is None
    click(app, "Try the demo creator")
    assert app.session_state["vp_api_key"].startswith("vps_")
    assert email in texts(app)
