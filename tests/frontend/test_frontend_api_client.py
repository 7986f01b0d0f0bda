"""The platform client over real HTTP: errors become ApiError with the platform's code, keys stay secret."""

from __future__ import annotations

import pytest

from streamlit_app.api_client import ApiError, Consent, PlatformClient
from tests.frontend.fake_platform import FakePlatform, FakePlatformServer, tone_wav


def test_sign_up_then_me_uses_the_key_as_a_bearer_token(
    fake_server: FakePlatformServer, fake: FakePlatform
) -> None:
    with PlatformClient(fake_server.base_url) as anonymous:
        signed_up = anonymous.sign_up("Ada", "ada@example.com", "creator")
    key = signed_up["apiKey"]
    with PlatformClient(fake_server.base_url, key) as api:
        me = api.me()
    assert me["id"] == signed_up["account"]["id"]
    seen = [r for r in fake.requests if r.path == "/accounts/me"]
    assert seen[-1].headers["authorization"] == f"Bearer {key}"


def test_error_envelope_becomes_api_error_with_its_code(fake_server: FakePlatformServer) -> None:
    _, key = fake_server.state.new_account("Short Clip")
    with PlatformClient(fake_server.base_url, key) as api, pytest.raises(ApiError) as raised:
        api.upload_file("short.wav", tone_wav(2.0), "audio/wav")
    assert raised.value.status == 422
    assert raised.value.code == "audio_too_short"
    assert "5 s" in raised.value.message


def test_every_audio_rejection_keeps_its_code(fake_server: FakePlatformServer) -> None:
    _, key = fake_server.state.new_account("Many Files")
    cases = {
        "unsupported_format": b"%PDF-1.7 not audio",
        "corrupt_audio": b"RIFF\x00\x00\x00\x00WAVEjunk",
        "audio_too_long": tone_wav(12.0),
    }
    with PlatformClient(fake_server.base_url, key) as api:
        for code, content in cases.items():
            with pytest.raises(ApiError) as raised:
                api.upload_file("clip.wav", content, "audio/wav")
            assert raised.value.code == code


def test_missing_key_is_refused_as_unauthorized(fake_server: FakePlatformServer) -> None:
    with PlatformClient(fake_server.base_url) as api, pytest.raises(ApiError) as raised:
        api.usage()
    assert (raised.value.status, raised.value.code) == (401, "unauthorized")


def test_every_post_carries_an_idempotency_key(fake_server: FakePlatformServer, fake: FakePlatform) -> None:
    _, key = fake.new_account("Poster")
    with PlatformClient(fake_server.base_url, key) as api:
        intake = api.upload_file("six.wav", tone_wav(6.0), "audio/wav")
        api.create_voice(
            file_id=intake["fileId"], name="Six", consent={"attested": True, "statement": "mine"}
        )
    posts = [r for r in fake.requests if r.method == "POST"]
    assert [r.path for r in posts] == ["/files", "/voices"]
    keys = [r.headers.get("idempotency-key") for r in posts]
    assert all(keys) and len(set(keys)) == 2


def test_replayed_idempotency_key_returns_the_same_persona(fake_server: FakePlatformServer) -> None:
    _, key = fake_server.state.new_account("Replayer")
    consent: Consent = {"attested": True, "statement": "mine"}
    with PlatformClient(fake_server.base_url, key) as api:
        file_id = api.upload_file("six.wav", tone_wav(6.0), "audio/wav")["fileId"]
        first = api.create_voice(file_id=file_id, name="Once", consent=consent, idempotency_key="k-1")
        again = api.create_voice(file_id=file_id, name="Once", consent=consent, idempotency_key="k-1")
        with pytest.raises(ApiError) as raised:
            api.create_voice(file_id=file_id, name="Other", consent=consent, idempotency_key="k-1")
    assert again["voiceId"] == first["voiceId"]
    assert (raised.value.status, raised.value.code) == (409, "idempotency_conflict")


def test_speech_returns_audio_and_metering_headers(fake_server: FakePlatformServer) -> None:
    creator, key = fake_server.state.new_account("Speaker")
    persona = fake_server.state.add_live_persona(creator["id"], "Narrator")
    with PlatformClient(fake_server.base_url, key) as api:
        speech = api.synthesize(voice=persona["id"], text="Hello there", audio_format="wav", speed=1.2)
        usage = api.usage()
    assert speech.audio.startswith(b"RIFF") and speech.content_type == "audio/wav"
    assert speech.usage_chars == 11
    assert [c["requestId"] for c in usage["calls"]] == [speech.request_id]


def test_key_never_appears_in_repr_or_str() -> None:
    secret = "vpk_super-secret-value"
    client = PlatformClient("http://127.0.0.1:9", secret)
    assert secret not in repr(client) and secret not in str(client)
    assert "key=set" in repr(client)
    client.close()


def test_unreachable_platform_is_an_api_error_not_a_crash() -> None:
    with PlatformClient("http://127.0.0.1:9", timeout=2) as api, pytest.raises(ApiError) as raised:
        api.health()
    assert (raised.value.status, raised.value.code) == (0, "platform_unreachable")
    assert raised.value.retryable


def test_non_envelope_error_still_has_a_code(fake_server: FakePlatformServer) -> None:
    with PlatformClient(fake_server.base_url) as api, pytest.raises(ApiError) as raised:
        api.get_settlement("../../nowhere/at/all")
    assert raised.value.status == 404
    assert raised.value.code  # either the platform's code or http_404


def test_limits_are_read_typed_and_without_a_key(fake_server: FakePlatformServer, fake: FakePlatform) -> None:
    with PlatformClient(fake_server.base_url) as api:
        limits = api.limits()
    assert limits["tts"]["maxChars"] == 1000
    assert limits["upload"]["maxBytes"] == 20 * 1024 * 1024
    assert limits["pipeline"]["states"][-1] == "live"
    seen = [r for r in fake.requests if r.path == "/v1/limits"]
    assert "authorization" not in seen[-1].headers


def test_a_platform_without_limits_is_a_clear_error(
    fake_server: FakePlatformServer, fake: FakePlatform
) -> None:
    fake.limits = None
    with PlatformClient(fake_server.base_url) as api, pytest.raises(ApiError) as raised:
        api.limits()
    assert raised.value.status == 404


def test_incomplete_limits_name_what_is_missing(fake_server: FakePlatformServer, fake: FakePlatform) -> None:
    assert fake.limits is not None
    del fake.limits["tts"]["maxChars"]
    del fake.limits["pipeline"]
    with PlatformClient(fake_server.base_url) as api, pytest.raises(ApiError) as raised:
        api.limits()
    assert raised.value.code == "invalid_limits"
    assert "tts.maxChars" in raised.value.message and "pipeline" in raised.value.message


def test_quote_is_what_the_call_then_costs(fake_server: FakePlatformServer, fake: FakePlatform) -> None:
    creator, key = fake.new_account("Quoted")
    persona = fake.add_live_persona(creator["id"], "Odd Price", pricePer10kChars=12_345)
    text = "ab"
    with PlatformClient(fake_server.base_url, key) as api:
        quote = api.quote(persona["id"], len(text))
        speech = api.synthesize(voice=persona["id"], text=text)
        billed = next(c for c in api.usage()["calls"] if c["requestId"] == speech.request_id)
    assert (quote["voiceId"], quote["chars"], quote["unitPrice"]) == (persona["id"], 2, 12_345)
    assert quote["amount"] == billed["amount"] == 3  # 2.469 µ¥: rounded up, as the ledger does
    assert [r.path for r in fake.requests if r.path.startswith("/quote")] == ["/quotes"]


def test_statement_csv_comes_with_the_platforms_filename(
    fake_server: FakePlatformServer, fake: FakePlatform
) -> None:
    creator, key = fake.new_account("Invoiced")
    persona = fake.add_live_persona(creator["id"], "Ledger Voice")
    with PlatformClient(fake_server.base_url, key) as api:
        speech = api.synthesize(voice=persona["id"], text="hello")
        period = api.usage()["calls"][0]["createdAt"][:7]
        statement = api.statement(period)
        download = api.statement_csv(period)
    assert statement["invoice"]["lines"][0]["requestId"] == speech.request_id
    assert download.filename == f"voxpersona-{period}-invoice.csv"
    assert speech.request_id and speech.request_id.encode() in download.content


def test_a_402_keeps_what_was_needed_and_available(
    fake_server: FakePlatformServer, fake: FakePlatform
) -> None:
    creator, key = fake.new_account("Short", balance=5)
    persona = fake.add_live_persona(creator["id"], "Dear Voice", pricePer10kChars=1_000_000)
    with PlatformClient(fake_server.base_url, key) as api, pytest.raises(ApiError) as raised:
        api.synthesize(voice=persona["id"], text="x" * 100)
    assert (raised.value.status, raised.value.code) == (402, "insufficient_balance")
    assert raised.value.details == {"needed": 10_000, "available": 5, "currency": "CNY"}
