"""Accounts people sign into, over HTTP against the real platform: passwords, sessions that end when signed out
or expired, password reset by a one-time mailed token, and named, scoped API keys."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text, update

from bentos.core.mail import unsent
from bentos.devkit.harness import RunningPlatform
from bentos.store.models import Account, utcnow
from bentos.store.session_models import SignInSession

pytestmark = pytest.mark.parametrize("platform_server", ["sqlite"], indirect=True)
PASSWORD = "correct horse battery"


def sign_up(running: RunningPlatform, password: str | None = PASSWORD, **extra: Any) -> dict[str, Any]:
    email = f"person-{secrets.token_hex(4)}@example.com"
    body: dict[str, Any] = {"name": "Ada", "email": email, "role": "creator", **extra}
    if password is not None:
        body["password"] = password
    r = httpx.post(f"{running.base_url}/accounts", json=body, timeout=30)
    assert r.status_code == 201, r.text
    return {**r.json(), "email": email}


def sign_in(running: RunningPlatform, email: str, password: str) -> httpx.Response:
    return httpx.post(f"{running.base_url}/sessions", json={"email": email, "password": password}, timeout=30)


def reset_token(running: RunningPlatform, email: str) -> str:
    mails = unsent(running.platform.sessions, email)
    assert mails, "no reset mail in the outbox"
    found = re.search(r"vpr_[A-Za-z0-9_-]+", mails[-1].body)
    assert found is not None
    return found.group(0)


def test_a_password_sign_in_gives_a_session_that_works_until_signed_out(
    platform_server: RunningPlatform,
) -> None:
    account = sign_up(platform_server)
    r = sign_in(platform_server, account["email"].upper(), PASSWORD)  # emails are not case-sensitive
    assert r.status_code == 201, r.text
    token = r.json()["sessionToken"]
    assert token.startswith("vps_") and r.json()["account"]["id"] == account["account"]["id"]
    assert r.json()["scope"] == "full" and r.json()["expiresAt"]

    tab = platform_server.client(token)
    other_tab = platform_server.client(token)
    assert tab.get("/accounts/me").json()["email"] == account["email"]
    assert tab.delete("/sessions/current").json() == {"signedOut": True}
    refused = other_tab.get("/accounts/me")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "session_expired"
    # The account's API key is untouched by signing out.
    assert platform_server.client(account["apiKey"]).get("/accounts/me").status_code == 200


def test_a_wrong_password_and_an_unknown_email_get_the_same_refusal_then_a_rate_limit(
    platform_server: RunningPlatform,
) -> None:
    account = sign_up(platform_server)
    wrong = sign_in(platform_server, account["email"], "not the password")
    unknown = sign_in(platform_server, "nobody-" + account["email"], PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"]["code"] == "invalid_credentials"
    for _ in range(9):
        sign_in(platform_server, account["email"], "still not it")
    limited = sign_in(platform_server, account["email"], PASSWORD)
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) > 0

    # The owner proves the mailbox with a reset: the lock that sent them there is lifted.
    httpx.post(f"{platform_server.base_url}/password-resets", json={"email": account["email"]}, timeout=30)
    token = reset_token(platform_server, account["email"])
    url = f"{platform_server.base_url}/password-resets/confirm"
    fresh = {"token": token, "password": "a fresh start, at last"}
    assert httpx.post(url, json=fresh, timeout=30).status_code == 200
    assert sign_in(platform_server, account["email"], "a fresh start, at last").status_code == 201


def test_a_short_password_is_refused_and_no_account_is_left(platform_server: RunningPlatform) -> None:
    email = f"short-{secrets.token_hex(4)}@example.com"
    body = {"name": "Short", "email": email, "role": "consumer", "password": "1234567"}
    r = httpx.post(f"{platform_server.base_url}/accounts", json=body, timeout=30)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_password"
    again = httpx.post(
        f"{platform_server.base_url}/accounts", json={**body, "password": "12345678"}, timeout=30
    )
    assert again.status_code == 201, again.text  # the email was not taken by the refused attempt


def test_a_password_reset_token_works_once_and_signs_out_every_session(
    platform_server: RunningPlatform,
) -> None:
    account = sign_up(
        platform_server, password=None
    )  # an account with a key only can get a password this way
    session = sign_in_with_key(platform_server, account["apiKey"])
    r = httpx.post(
        f"{platform_server.base_url}/password-resets", json={"email": account["email"]}, timeout=30
    )
    assert r.status_code == 202 and r.json() == {"accepted": True}
    token = reset_token(platform_server, account["email"])
    assert token not in r.text

    url = f"{platform_server.base_url}/password-resets/confirm"
    short = httpx.post(url, json={"token": token, "password": "short"}, timeout=30)
    assert short.status_code == 422  # refused before the token is spent
    done = httpx.post(url, json={"token": token, "password": "a brand new password"}, timeout=30)
    assert done.status_code == 200, done.text
    assert done.json()["account"]["id"] == account["account"]["id"]
    assert platform_server.client(session).get("/accounts/me").status_code == 401
    assert sign_in(platform_server, account["email"], "a brand new password").status_code == 201
    assert all(token not in m.body for m in unsent(platform_server.platform.sessions, account["email"]))
    reused = httpx.post(url, json={"token": token, "password": "yet another password"}, timeout=30)
    assert reused.status_code == 410 and reused.json()["error"]["code"] == "invalid_reset_token"
    unknown = httpx.post(url, json={"token": token + "x", "password": "yet another password"}, timeout=30)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "invalid_reset_token"


def test_a_reset_for_an_unknown_email_is_answered_the_same_and_mails_nobody(
    platform_server: RunningPlatform,
) -> None:
    email = f"ghost-{secrets.token_hex(4)}@example.com"
    r = httpx.post(f"{platform_server.base_url}/password-resets", json={"email": email}, timeout=30)
    assert r.status_code == 202 and r.json() == {"accepted": True}
    assert unsent(platform_server.platform.sessions, email) == []


def test_resets_are_limited_to_three_mails_an_hour(platform_server: RunningPlatform) -> None:
    account = sign_up(platform_server)
    for _ in range(5):
        r = httpx.post(
            f"{platform_server.base_url}/password-resets", json={"email": account["email"]}, timeout=30
        )
        assert r.status_code == 202
    assert len(unsent(platform_server.platform.sessions, account["email"])) == 3


def sign_in_with_key(running: RunningPlatform, key: str) -> str:
    r = running.client(key).post("/sessions", json={})
    assert r.status_code == 201, r.text
    return str(r.json()["sessionToken"])


def test_keys_are_named_scoped_listed_and_revoked(platform_server: RunningPlatform) -> None:
    account = sign_up(platform_server)
    owner = platform_server.client(sign_in_with_key(platform_server, account["apiKey"]))
    made = owner.post("/accounts/me/keys", json={"name": "read-only dashboard", "scope": "read"})
    assert made.status_code == 201, made.text
    reader_key, reader = made.json()["apiKey"], made.json()["key"]
    assert reader["name"] == "read-only dashboard" and reader["scope"] == "read"
    assert reader_key.startswith(reader["prefix"])

    listed = owner.get("/accounts/me/keys").json()
    assert [k["name"] for k in listed] == ["read-only dashboard", "first key"]
    assert all("apiKey" not in k and reader_key not in str(k) for k in listed)

    reader_client = platform_server.client(reader_key)
    assert reader_client.get("/accounts/me").status_code == 200
    refused = reader_client.post("/accounts/me/keys", json={})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "insufficient_scope"
    assert reader_client.post("/settlements").json()["error"]["code"] == "insufficient_scope"
    # A session opened with the read key keeps its scope, and ends when the key is revoked.
    reader_session = platform_server.client(sign_in_with_key(platform_server, reader_key))
    assert reader_session.post("/settlements").status_code == 403

    revoked = owner.delete(f"/accounts/me/keys/{reader['id']}")
    assert revoked.status_code == 200 and revoked.json()["revokedAt"]
    assert reader_client.get("/accounts/me").status_code == 401
    assert reader_session.get("/accounts/me").status_code == 401
    assert owner.get("/accounts/me/keys").json()[0]["revokedAt"]


def test_a_speech_key_may_speak_and_read_but_not_create(platform_server: RunningPlatform) -> None:
    account = sign_up(platform_server)
    owner = platform_server.client(account["apiKey"])
    speaker = platform_server.client(
        owner.post("/accounts/me/keys", json={"scope": "speech"}).json()["apiKey"]
    )
    assert speaker.get("/voices").status_code == 200
    tts = speaker.post("/tts", json={"voiceId": "vox_missing", "text": "hello"})
    assert tts.json()["error"]["code"] != "insufficient_scope"  # allowed through to the persona lookup
    upload = speaker.post("/files", files={"file": ("a.wav", b"RIFF", "audio/wav")})
    assert upload.status_code == 403 and upload.json()["error"]["code"] == "insufficient_scope"


def test_someone_elses_key_cannot_be_revoked(platform_server: RunningPlatform) -> None:
    mine, theirs = sign_up(platform_server), sign_up(platform_server)
    their_key_id = platform_server.client(theirs["apiKey"]).get("/accounts/me/keys").json()[0]["id"]
    r = platform_server.client(mine["apiKey"]).delete(f"/accounts/me/keys/{their_key_id}")
    assert r.status_code == 404
    assert platform_server.client(theirs["apiKey"]).get("/accounts/me").status_code == 200


def test_an_expired_session_and_a_banned_account_are_refused(platform_server: RunningPlatform) -> None:
    account = sign_up(platform_server)
    token = sign_in(platform_server, account["email"], PASSWORD).json()["sessionToken"]
    fresh = sign_in(platform_server, account["email"], PASSWORD).json()["sessionToken"]
    with platform_server.platform.sessions.begin() as session:
        session.execute(
            update(SignInSession)
            .where(SignInSession.account_id == account["account"]["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert platform_server.client(token).get("/accounts/me").json()["error"]["code"] == "session_expired"
    assert platform_server.client(fresh).get("/accounts/me").status_code == 401

    token = sign_in(platform_server, account["email"], PASSWORD).json()["sessionToken"]
    with platform_server.platform.sessions.begin() as session:
        session.execute(
            update(Account).where(Account.id == account["account"]["id"]).values(banned_at=utcnow())
        )
    r = platform_server.client(token).get("/accounts/me")
    assert r.status_code == 403 and r.json()["error"]["code"] == "account_banned"
    assert sign_in(platform_server, account["email"], PASSWORD).status_code == 403


def test_the_session_token_and_password_never_appear_in_the_store_in_clear(
    platform_server: RunningPlatform,
) -> None:
    account = sign_up(platform_server)
    token = sign_in(platform_server, account["email"], PASSWORD).json()["sessionToken"]
    with platform_server.platform.sessions() as session:
        tables = ("sign_in_sessions", "account_passwords", "idempotency_keys")
        rows = [tuple(r) for table in tables for r in session.execute(text(f"SELECT * FROM {table}"))]
    dump = repr(rows)
    assert token not in dump and PASSWORD not in dump


@pytest.mark.parametrize("scope", ["read", "speech"])
def test_a_session_of_a_narrow_key_can_still_sign_out(platform_server: RunningPlatform, scope: str) -> None:
    account = sign_up(platform_server)
    owner = platform_server.client(account["apiKey"])
    narrow = owner.post("/accounts/me/keys", json={"name": "narrow", "scope": scope}).json()["apiKey"]
    in_session = platform_server.client(sign_in_with_key(platform_server, narrow))
    assert in_session.delete("/sessions/current").status_code == 200
    assert in_session.get("/accounts/me").status_code == 401  # signing out is never out of scope

    key_itself = platform_server.client(narrow)
    assert key_itself.delete("/accounts/me/keys/current").status_code == 200
    assert key_itself.get("/accounts/me").status_code == 401  # nor is giving up one's own key


def test_revoking_the_current_key_from_a_session(platform_server: RunningPlatform) -> None:
    account = sign_up(platform_server)
    owner = platform_server.client(account["apiKey"])
    spare = owner.post("/accounts/me/keys", json={"name": "spare"}).json()["apiKey"]
    keyed_session = platform_server.client(sign_in_with_key(platform_server, spare))
    assert keyed_session.delete("/accounts/me/keys/current").status_code == 200
    assert keyed_session.get("/accounts/me").status_code == 401  # the key and its session end together
    assert platform_server.client(spare).get("/accounts/me").status_code == 401

    signed_in = sign_in(platform_server, account["email"], PASSWORD)
    password_session = platform_server.client(signed_in.json()["sessionToken"])
    refused = password_session.delete("/accounts/me/keys/current")
    assert refused.status_code == 400  # no key behind a password session: nothing is claimed revoked
    assert owner.get("/accounts/me").status_code == 200
