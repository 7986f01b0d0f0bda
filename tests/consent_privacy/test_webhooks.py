"""Signed webhooks to a loopback receiver: delivered, retried when the receiver fails, logged, replayable; the feed."""

from __future__ import annotations

import json

import pytest

from bentos.core.accounts import open_admin
from bentos.core.errors import PlatformError
from bentos.core.webhooks import SIGNATURE_HEADER, WebhookSettings, check_url, verify
from bentos.devkit.harness import RunningPlatform, wait_for
from encoders.voices import VoiceSet
from tests.consent_privacy.conftest import Receiver
from tests.consent_privacy.flows import live_persona


def test_persona_live_reaches_the_webhook_signed_and_the_feed(
    consent_platform: RunningPlatform, voice_set: VoiceSet, receiver: Receiver
) -> None:
    _, key = consent_platform.sign_up("creator")
    creator = consent_platform.client(key)
    created = creator.post(
        "/webhooks", json={"url": receiver.url, "events": ["persona.live", "persona.failed"]}
    )
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    assert all(h.get("secret") is None for h in creator.get("/webhooks").json()["data"])  # shown once

    persona = live_persona(creator, voice_set.by_speaker()[voice_set.speakers[3]][2].mp3_path.read_bytes())
    delivery = receiver.wait_for_event("persona.live")
    assert verify(secret, delivery["body"], delivery["headers"][SIGNATURE_HEADER])
    assert not verify("whsec_wrong", delivery["body"], delivery["headers"][SIGNATURE_HEADER])
    assert json.loads(delivery["body"])["data"]["personaId"] == persona["id"]

    feed = creator.get("/notifications").json()
    assert feed["unread"] >= 1 and feed["data"][0]["event"] == "persona.live"
    assert creator.post("/notifications/read").json()["marked"] >= 1
    assert creator.get("/notifications?unread=true").json() == {"data": [], "unread": 0}


def test_a_failing_receiver_is_retried_and_the_log_shows_it(
    consent_platform: RunningPlatform, voice_set: VoiceSet, receiver: Receiver
) -> None:
    receiver.fail_first = 2
    _, key = consent_platform.sign_up("creator")
    creator = consent_platform.client(key)
    hook = creator.post("/webhooks", json={"url": receiver.url, "events": ["persona.live"]}).json()
    live_persona(creator, voice_set.by_speaker()[voice_set.speakers[4]][2].mp3_path.read_bytes())

    def delivered() -> list[dict[str, object]] | None:
        log = creator.get(f"/webhooks/{hook['id']}/deliveries").json()["data"]
        return log if log and log[0]["status"] == "done" else None

    deliveries = wait_for(delivered, timeout=60, what="the delivery to succeed after retries")
    assert [a["statusCode"] for a in deliveries[0]["log"]] == [500, 500, 200]
    assert receiver.answered == [500, 500, 200]

    replayed = creator.post(f"/webhooks/{hook['id']}/deliveries/{deliveries[0]['id']}/replay")
    assert replayed.status_code == 202 and replayed.json()["replayOf"] == deliveries[0]["id"]
    wait_for(lambda: len(receiver.received) == 4, timeout=30, what="the replayed delivery")
    assert receiver.received[3]["body"] == receiver.received[2]["body"]  # the same event, signed anew


def test_webhook_routes_are_their_owners_only(consent_platform: RunningPlatform, receiver: Receiver) -> None:
    _, key = consent_platform.sign_up("consumer")
    owner = consent_platform.client(key)
    hook = owner.post("/webhooks", json={"url": receiver.url, "events": ["settlement.confirmed"]}).json()
    _, other_key = consent_platform.sign_up("creator")
    _, admin_key = open_admin(consent_platform.platform.sessions, "Ops", "ops-hooks@example.com")
    for who in (consent_platform.client(other_key), consent_platform.client(admin_key)):
        assert who.get(f"/webhooks/{hook['id']}/deliveries").status_code == 404
        assert who.post(f"/webhooks/{hook['id']}/deliveries/whd_x/replay").status_code == 404
        assert who.delete(f"/webhooks/{hook['id']}").status_code == 404
        assert who.get("/webhooks").json()["data"] == []
    anonymous = consent_platform.client()
    assert (
        anonymous.post("/webhooks", json={"url": receiver.url, "events": ["persona.live"]}).status_code == 401
    )
    assert anonymous.get("/webhooks").status_code == 401
    assert anonymous.get("/notifications").status_code == 401

    bad_scheme = owner.post("/webhooks", json={"url": "ftp://example.com/x", "events": ["persona.live"]})
    assert bad_scheme.status_code == 422 and bad_scheme.json()["error"]["code"] == "invalid_webhook_url"
    bad_event = owner.post("/webhooks", json={"url": receiver.url, "events": ["persona.deleted"]})
    assert bad_event.status_code == 422
    assert owner.delete(f"/webhooks/{hook['id']}").status_code == 200
    assert owner.get("/webhooks").json()["data"] == []


def test_a_public_deployment_refuses_private_webhook_addresses() -> None:
    public = WebhookSettings(allow_private=False)
    for url in ("http://127.0.0.1:9/x", "http://10.0.0.5/x", "http://[::1]/x", "http://169.254.169.254/"):
        with pytest.raises(PlatformError) as refused:
            check_url(url, public)
        assert refused.value.code == "invalid_webhook_url"
    check_url("http://127.0.0.1:9/x", WebhookSettings(allow_private=True))  # the embedded setup
    check_url(
        "http://receiver.internal/x",
        WebhookSettings(allow_private=False, allowed_hosts=["receiver.internal"]),
    )
