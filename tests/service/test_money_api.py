"""Callers pay, over HTTP against a served platform and the emulator: a trial credit at sign-up, a 402 before the
provider is called when the balance is short, the price of the model actually spoken, failed calls cost nothing,
a cut stream is billed once, the clone fee is held and charged to the creator once, admin grants, per-key
spend caps and request rates (429 with Retry-After)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bentos.devkit.emulator_process import EmulatorProcess
from bentos.devkit.harness import RunningPlatform, platform_overrides, start_platform, wait_for
from encoders.voices import VoiceSet
from tests.service.test_end_to_end import create_live_persona

TRIAL = 30_000  # ¥0.03: enough for a short call or two at the default prices, not for a long one


@pytest.fixture(scope="module")
def money(tmp_path_factory: pytest.TempPathFactory, emulator: EmulatorProcess) -> Iterator[RunningPlatform]:
    overrides = [
        *platform_overrides(tmp_path_factory.mktemp("money"), emulator),
        f"billing.trial_credit={TRIAL}",
    ]
    running = start_platform(overrides)
    yield running
    running.stop()


def _admin_key(running: RunningPlatform) -> tuple[str, str]:
    from bentos.core.accounts import open_admin

    admin, key = open_admin(running.platform.sessions, "Ops", f"ops-{id(running)}@example.com")
    return admin.id, key


def _funded_creator(running: RunningPlatform, amount: int = 100_000_000) -> tuple[str, str]:
    creator_id, key = running.sign_up("creator")
    _, admin_key = _admin_key_cached(running)
    granted = running.client(admin_key).post(
        "/admin/credits", json={"accountId": creator_id, "amount": amount, "reason": "test float"}
    )
    assert granted.status_code == 201, granted.text
    return creator_id, key


_ADMINS: dict[int, tuple[str, str]] = {}


def _admin_key_cached(running: RunningPlatform) -> tuple[str, str]:
    if id(running) not in _ADMINS:
        _ADMINS[id(running)] = _admin_key(running)
    return _ADMINS[id(running)]


@pytest.fixture(scope="module")
def persona(money: RunningPlatform, voice_set: VoiceSet) -> dict[str, Any]:
    _, key = _funded_creator(money)
    return create_live_persona(
        money, key, voice_set.clips[3].mp3_path.read_bytes(), priceMultiplierBps=10_000
    )


def _movements(client: Any) -> list[str]:
    """The kinds of the caller's ledger transactions, newest first (one per transaction, whatever its books)."""
    seen: dict[int, str] = {}
    for line in client.get("/ledger").json()["data"]:
        seen.setdefault(line["transactionId"], line["kind"])
    return list(seen.values())


def _speech_calls(emulator: EmulatorProcess) -> int:
    return int(emulator.admin("stats")["requests"].get("POST /v1/audio/speech", 0))


def test_a_new_account_gets_the_trial_credit_and_sees_it(money: RunningPlatform) -> None:
    _, key = money.sign_up("consumer")
    balance = money.client(key).get("/balance").json()
    assert balance == {"available": TRIAL, "reserved": 0, "earnings": 0, "currency": "CNY", "unit": "micro"}
    ledger = money.client(key).get("/ledger").json()["data"]
    assert [(line["kind"], line["amount"]) for line in ledger] == [("trial", TRIAL)]


def test_a_short_balance_gets_402_with_the_amount_and_the_provider_is_not_called(
    money: RunningPlatform, emulator: EmulatorProcess, persona: dict[str, Any]
) -> None:
    _, key = money.sign_up("consumer")
    client = money.client(key)
    text = "A long reading that costs more than a trial credit can pay. " * 15
    quote = client.get("/quotes", params={"voice": persona["id"], "chars": len(text)}).json()
    assert quote["amount"] > TRIAL
    before = _speech_calls(emulator)
    refused = client.post("/tts", json={"voice": persona["id"], "text": text})
    assert refused.status_code == 402
    error = refused.json()["error"]
    assert error["code"] == "insufficient_balance"
    assert error["details"]["needed"] == quote["amount"] and error["details"]["available"] == TRIAL
    assert _speech_calls(emulator) == before  # the provider was never asked
    assert client.get("/balance").json()["available"] == TRIAL
    assert client.get("/usage").json()["totals"]["calls"] == 0


def test_the_model_spoken_sets_the_price_and_the_split_keeps_the_margin(
    money: RunningPlatform, persona: dict[str, Any]
) -> None:
    _, key = money.sign_up("consumer")
    client = money.client(key)
    text = "Priced by the model I ask for."
    mini = client.get(
        "/quotes", params={"voice": persona["id"], "chars": len(text), "model": "step-tts-mini"}
    )
    own = client.get("/quotes", params={"voice": persona["id"], "chars": len(text)})
    assert mini.json()["unitPrice"] < own.json()["unitPrice"]  # step-tts-mini lists cheaper than step-tts-2
    spoken = client.post("/tts", json={"voice": persona["id"], "text": text, "model": "step-tts-mini"})
    assert spoken.status_code == 200, spoken.text
    row = client.get("/usage").json()["calls"][0]
    assert (row["model"], row["unitPrice"], row["amount"]) == (
        "step-tts-mini",
        mini.json()["unitPrice"],
        mini.json()["amount"],
    )
    floor = -(-row["providerCost"] * money.platform.prices.margin_floor_bps // 10_000)
    assert row["platformShare"] - row["providerCost"] >= floor
    assert row["creatorShare"] + row["platformShare"] == row["amount"]
    assert client.get("/balance").json() == {
        "available": TRIAL - row["amount"],
        "reserved": 0,
        "earnings": 0,
        "currency": "CNY",
        "unit": "micro",
    }


def test_a_failed_provider_call_costs_nothing(
    money: RunningPlatform, emulator: EmulatorProcess, persona: dict[str, Any]
) -> None:
    _, key = money.sign_up("consumer")
    client = money.client(key)
    emulator.admin("faults", {"fail_next": 10, "status": 500})
    failed = client.post("/tts", json={"voice": persona["id"], "text": "This will fail."})
    assert failed.status_code in (502, 503), failed.text
    assert client.get("/balance").json()["available"] == TRIAL
    assert _movements(client) == ["release", "reserve", "trial"]  # held, then given back


def test_a_cut_stream_is_billed_once_and_a_retry_with_its_key_is_free(
    money: RunningPlatform, persona: dict[str, Any]
) -> None:
    _, key = money.sign_up("consumer")
    client = money.client(key)
    text = "Cut me off after the first bytes, then ask again."
    headers = {"Idempotency-Key": "cut-1"}
    with client.stream("POST", "/tts", json={"voice": persona["id"], "text": text}, headers=headers) as r:
        assert r.status_code == 200
        next(r.iter_raw(64))  # the client goes away after the first bytes
    billed = wait_for(
        lambda: client.get("/usage").json()["totals"]["calls"] or None, timeout=30, what="the cut call billed"
    )
    assert billed == 1
    retry = client.post("/tts", json={"voice": persona["id"], "text": text}, headers=headers)
    assert retry.status_code == 200 and len(retry.content) > 0
    usage = client.get("/usage").json()
    assert usage["totals"]["calls"] == 1
    assert client.get("/balance").json()["available"] == TRIAL - usage["totals"]["amount"]


def test_the_clone_fee_is_held_at_create_and_charged_once(
    money: RunningPlatform, voice_set: VoiceSet
) -> None:
    prices = money.platform.prices
    _, key = _funded_creator(money, amount=prices.clone_fee * 2)
    client = money.client(key)
    audio = voice_set.clips[15].mp3_path.read_bytes()
    first = create_live_persona(money, key, audio)
    after_first = client.get("/balance").json()
    assert after_first["available"] == prices.clone_fee * 2 + TRIAL - prices.clone_fee
    second = create_live_persona(money, key, audio)  # the same upload and model: the provider's duplicate
    assert second["cloneDuplicated"] and not first["cloneDuplicated"]
    assert client.get("/balance").json() == after_first  # no second fee
    kinds = _movements(client)
    assert kinds.count("clone") == 1 and kinds.count("release") == 1


def test_a_creator_who_cannot_pay_the_clone_fee_gets_402_and_nothing_is_stored(
    money: RunningPlatform, voice_set: VoiceSet
) -> None:
    _, key = money.sign_up("creator")  # only the trial credit: less than a clone fee
    client = money.client(key)
    up = client.post(
        "/files", files={"file": ("v.mp3", voice_set.clips[16].mp3_path.read_bytes(), "audio/mpeg")}
    )
    assert up.status_code in (200, 201), up.text
    body = {
        "fileId": up.json()["fileId"],
        "name": "Unpaid",
        "consent": {"attested": True, "statement": "This is my own voice and I consent."},
    }
    refused = client.post("/voices", json=body)
    assert refused.status_code == 402 and refused.json()["error"]["code"] == "insufficient_balance"
    assert refused.json()["error"]["details"]["needed"] == money.platform.prices.clone_fee
    mine = client.get("/voices", params={"limit": 100}).json()["data"]
    assert [p for p in mine if p["name"] == "Unpaid"] == []


def test_admin_grants_need_an_admin_and_replay_by_key(money: RunningPlatform) -> None:
    consumer_id, key = money.sign_up("consumer")
    _, admin_key = _admin_key_cached(money)
    body = {"accountId": consumer_id, "amount": 5_000_000, "reason": "wire #42"}
    assert money.client(key).post("/admin/credits", json=body).status_code == 403
    admin = money.client(admin_key)
    once = admin.post("/admin/credits", json=body, headers={"Idempotency-Key": "wire-42"})
    again = admin.post("/admin/credits", json=body, headers={"Idempotency-Key": "wire-42"})
    assert once.status_code == again.status_code == 201
    assert money.client(key).get("/balance").json()["available"] == TRIAL + 5_000_000  # credited once
    memo = money.client(key).get("/ledger").json()["data"][0]["memo"]
    assert "wire #42" in memo


def test_a_keys_monthly_spend_cap_answers_429_with_retry_after(
    tmp_path: Any, emulator: EmulatorProcess, voice_set: VoiceSet
) -> None:
    cap = 200_000
    overrides = [*platform_overrides(tmp_path, emulator), f"billing.key_monthly_spend_cap={cap}"]
    running = start_platform(overrides)
    try:
        _, creator_key = running.sign_up("creator")
        voice = create_live_persona(running, creator_key, voice_set.clips[3].mp3_path.read_bytes())["id"]
        _, key = running.sign_up("consumer")
        client = running.client(key)
        text = "Spend up to the cap of this key, then stop."  # ≈ ¥0.024 a call: about 8 fit under ¥0.2
        answers = [client.post("/tts", json={"voice": voice, "text": text}) for _ in range(12)]
        codes = [a.status_code for a in answers]
        assert 200 in codes and 429 in codes, codes
        capped = answers[codes.index(429)]
        assert capped.json()["error"]["code"] == "spend_cap_reached"
        assert int(capped.headers["retry-after"]) >= 1
        spent = client.get("/usage").json()["totals"]["amount"]
        assert cap - spent < spent / codes.count(200)  # spent up to the cap, not past it
        fresh = running.client(running.client(key).post("/accounts/me/keys").json()["apiKey"])
        assert (
            fresh.post("/tts", json={"voice": voice, "text": text}).status_code == 200
        )  # the cap is per key
    finally:
        running.stop()


def test_a_keys_request_rate_is_limited_with_retry_after(tmp_path: Any, emulator: EmulatorProcess) -> None:
    overrides = [*platform_overrides(tmp_path, emulator), "billing.key_requests_per_minute=30"]
    running = start_platform(overrides)
    try:
        _, key = running.sign_up("consumer")
        _, other = running.sign_up("consumer")
        answers = [running.client(key).get("/balance") for _ in range(12)]
        codes = [a.status_code for a in answers]
        assert codes[:5] == [200] * 5 and 429 in codes, codes  # a burst of 5, then one every 2 s
        limited = answers[codes.index(429)]
        assert limited.json()["error"]["code"] == "rate_limited" and int(limited.headers["retry-after"]) >= 1
        assert running.client(other).get("/balance").status_code == 200  # another key is not affected
    finally:
        running.stop()
