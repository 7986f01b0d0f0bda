"""The guard that blocks: an upload within the calibrated threshold of another creator's live persona waits in
review and is cloned only after an admin approves. Reports lead to takedowns (revoked on chain, TTS 410), bans stop
keys at once, and every admin action is in the append-only audit log. Every route: admin, other, anonymous."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bentos.devkit.emulator_process import EmulatorProcess
from bentos.devkit.harness import RunningPlatform, wait_for
from encoders.voices import VoiceSet
from scripts.admin import main as admin_cli
from tests.trust.conftest import balance, start_persona, wait_state

ADMIN_READS = ("/admin/reviews", "/admin/reports", "/admin/accounts?banned=true", "/admin/audit")


def test_admin_routes_are_for_admins_only(guarded: RunningPlatform, admin_key: str) -> None:
    _, creator_key = guarded.sign_up("creator")
    _, consumer_key = guarded.sign_up("consumer")
    for path in ADMIN_READS:
        assert guarded.client(admin_key).get(path).status_code == 200, path
        for key, status in ((creator_key, 403), (consumer_key, 403), (None, 401)):
            assert guarded.client(key).get(path).status_code == status, (path, key)
    writes = {
        "/admin/reviews/vp_x/approve": {},
        "/admin/reviews/vp_x/reject": {},
        "/admin/reports/rep_x/resolve": {"action": "dismiss"},
        "/admin/accounts/acc_x/ban": {"reason": "spam"},
        "/admin/accounts/acc_x/unban": {},
    }
    for path, body in writes.items():
        assert guarded.client(admin_key).post(path, json=body).status_code == 404, path
        for key, status in ((creator_key, 403), (None, 401)):
            assert guarded.client(key).post(path, json=body).status_code == status, (path, key)


def test_an_impersonating_upload_waits_in_review_and_is_cloned_only_after_approval(
    guarded: RunningPlatform, voice_set: VoiceSet, emulator: EmulatorProcess, admin_key: str
) -> None:
    clips = voice_set.by_speaker()[voice_set.speakers[0]]
    _, owner_key = guarded.sign_up("creator")
    owner = guarded.client(owner_key)
    original = start_persona(owner, clips[0].mp3_path.read_bytes(), name="The Real One")
    wait_state(owner, original, "live")

    _, impostor_key = guarded.sign_up("creator")
    impostor = guarded.client(impostor_key)
    clones = emulator.admin("stats")["requests"].get("POST /v1/audio/voices", 0)
    copy = start_persona(impostor, clips[1].mp3_path.read_bytes(), name="Totally Me")
    held = wait_state(impostor, copy, "review")
    assert held["impersonation"]["personaId"] == original
    assert held["impersonation"]["cosine"] >= guarded.platform.cfg.encoder.impersonation_threshold
    assert held["stepVoiceId"] is None and held["chain"] is None  # nothing cloned, nothing registered
    assert emulator.admin("stats")["requests"].get("POST /v1/audio/voices", 0) == clones
    refused = guarded.client(owner_key).post("/tts", json={"voice": copy, "text": "Hello there."})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "voice_not_ready"

    admin = guarded.client(admin_key)
    queue = admin.get("/admin/reviews").json()["items"]
    entry = next(item for item in queue if item["personaId"] == copy)
    assert entry["impersonationOf"] == original and entry["impersonationName"] == "The Real One"
    assert impostor.post(f"/admin/reviews/{copy}/approve", json={}).status_code == 403
    approved = admin.post(f"/admin/reviews/{copy}/approve", json={"note": "same family, consent on file"})
    assert approved.json() == {"personaId": copy, "decision": "approved", "status": "embedded"}
    live = wait_state(impostor, copy, "live")
    assert live["stepVoiceId"] and live["impersonation"]["personaId"] == original
    again = admin.post(f"/admin/reviews/{copy}/approve", json={})
    assert (again.status_code, again.json()["error"]["code"]) == (409, "not_in_review")

    # A rejected one fails in plain words, its clone fee goes back, and it can't be retried.
    _, second_key = guarded.sign_up("creator")
    second = guarded.client(second_key)
    before = balance(second)
    rejected_id = start_persona(second, clips[2].mp3_path.read_bytes(), name="Also Me")
    wait_state(second, rejected_id, "review")
    assert balance(second) == before - guarded.platform.prices.clone_fee  # held, not charged
    admin.post(f"/admin/reviews/{rejected_id}/reject", json={"note": "not their voice"})
    failed = wait_state(second, rejected_id, "failed")
    assert (
        failed["failure"]["code"] == "impersonation_rejected"
        and "not their voice" in failed["failure"]["message"]
    )
    assert balance(second) == before
    assert second.post(f"/voices/{rejected_id}/retry").status_code == 403

    actions = {(e["action"], e["subjectId"]) for e in admin.get("/admin/audit").json()["items"]}
    assert {("review.approved", copy), ("review.rejected", rejected_id)} <= actions


def test_report_takedown_revokes_on_chain_and_tts_answers_410(
    guarded: RunningPlatform, voice_set: VoiceSet, admin_key: str
) -> None:
    _, creator_key = guarded.sign_up("creator")
    _, listener_key = guarded.sign_up("consumer")
    _, other_key = guarded.sign_up("consumer")
    creator, listener, admin = (
        guarded.client(creator_key),
        guarded.client(listener_key),
        guarded.client(admin_key),
    )
    voice_id = start_persona(creator, voice_set.by_speaker()[voice_set.speakers[1]][0].mp3_path.read_bytes())
    wait_state(creator, voice_id, "live")
    wait_for(
        lambda: creator.get(f"/voices/{voice_id}/provenance").json()["status"] == "registered", timeout=60
    )
    assert listener.post("/tts", json={"voice": voice_id, "text": "Before."}).status_code == 200

    report = listener.post(
        f"/voices/{voice_id}/reports", json={"reason": "impersonation", "details": "my voice"}
    )
    assert report.status_code == 201 and report.json()["status"] == "open"
    repeat = listener.post(f"/voices/{voice_id}/reports", json={"reason": "impersonation"})
    assert repeat.status_code == 200 and repeat.json()["id"] == report.json()["id"]
    second = guarded.client(other_key).post(f"/voices/{voice_id}/reports", json={"reason": "offensive"})
    assert second.status_code == 201
    assert creator.post(f"/voices/{voice_id}/reports", json={"reason": "other"}).status_code == 403
    assert (
        guarded.client(None).post(f"/voices/{voice_id}/reports", json={"reason": "other"}).status_code == 401
    )
    bad = listener.post(f"/voices/{voice_id}/reports", json={"reason": "boring"})
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_request")

    open_ids = {r["id"] for r in admin.get("/admin/reports").json()["items"]}
    assert {report.json()["id"], second.json()["id"]} <= open_ids
    resolve = f"/admin/reports/{report.json()['id']}/resolve"
    assert listener.post(resolve, json={"action": "takedown"}).status_code == 403
    done = admin.post(resolve, json={"action": "takedown", "note": "confirmed with the speaker"})
    assert done.status_code == 200 and done.json()["status"] == "taken_down"

    spoken = listener.post("/tts", json={"voice": voice_id, "text": "After."})
    assert (spoken.status_code, spoken.json()["error"]["code"]) == (410, "voice_revoked")
    wait_for(
        lambda: creator.get(f"/voices/{voice_id}/provenance").json()["status"] == "revoked",
        timeout=60,
        what="the revocation on chain",
    )
    # Every open report on it was resolved with it; a second resolution is refused.
    taken = {
        r["id"]: r["status"]
        for r in admin.get("/admin/reports", params={"status": "taken_down"}).json()["items"]
    }
    assert taken[second.json()["id"]] == "taken_down"
    again = admin.post(resolve, json={"action": "dismiss"})
    assert (again.status_code, again.json()["error"]["code"]) == (409, "report_closed")
    audit = admin.get("/admin/audit", params={"subject": report.json()["id"]}).json()["items"]
    assert [e["action"] for e in audit] == ["report.takedown"]


def test_a_ban_stops_the_accounts_keys_at_once_and_the_audit_log_cannot_be_rewritten(
    guarded: RunningPlatform, admin_key: str
) -> None:
    consumer_id, consumer_key = guarded.sign_up("consumer")
    consumer, admin = guarded.client(consumer_key), guarded.client(admin_key)
    assert consumer.get("/balance").status_code == 200
    admin_id = admin.get("/accounts/me").json()["id"]

    banned = admin.post(f"/admin/accounts/{consumer_id}/ban", json={"reason": "chargeback fraud"})
    assert banned.status_code == 200 and banned.json()["bannedAt"]
    refused = consumer.get("/balance")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "account_banned")
    listed = admin.get("/admin/accounts", params={"banned": "true"}).json()["items"]
    assert consumer_id in {a["id"] for a in listed}
    assert admin.post(f"/admin/accounts/{admin_id}/ban", json={"reason": "oops"}).status_code == 403
    assert admin.post(f"/admin/accounts/{consumer_id}/ban", json={"reason": " "}).status_code == 422

    lifted = admin.post(f"/admin/accounts/{consumer_id}/unban", json={"reason": "resolved"})
    assert lifted.status_code == 200 and lifted.json()["bannedAt"] is None
    assert consumer.get("/balance").status_code == 200
    entries = admin.get("/admin/audit", params={"subject": consumer_id}).json()["items"]
    assert [e["action"] for e in entries] == ["account.unbanned", "account.banned"]
    assert all(e["adminId"] == admin_id for e in entries)

    # Append-only in the database itself: no code path, and no stray SQL, rewrites history.
    with guarded.platform.engine.connect() as conn:
        for statement in ("UPDATE admin_audit SET action = 'x'", "DELETE FROM admin_audit"):
            with pytest.raises(DBAPIError):
                conn.execute(text(statement))
            conn.rollback()
    assert len(admin.get("/admin/audit", params={"subject": consumer_id}).json()["items"]) == 2


def test_the_operator_bans_from_the_command_line(guarded: RunningPlatform) -> None:
    _, key = guarded.sign_up("consumer")
    email = guarded.client(key).get("/accounts/me").json()["email"]
    assert admin_cli(["ban", "--email", email, "--reason", "spam", *guarded.overrides]) == 0
    assert guarded.client(key).get("/balance").json()["error"]["code"] == "account_banned"
    assert admin_cli(["unban", "--email", email, *guarded.overrides]) == 0
    assert guarded.client(key).get("/balance").status_code == 200
