"""Monthly statements over a real database: the invoice is every call the caller paid, a creator's statement
splits each day's gross exactly, the totals are GET /usage's, the files round-trip, and only admins read the
platform's finance report (which the ledger confirms)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from bentos.api.app import create_app
from bentos.billing import holds, statements
from bentos.billing.credit import Credit, credit_in
from bentos.billing.ledger import Funding
from bentos.core.accounts import sign_up
from bentos.core.platform import Platform, compose
from bentos.store.models import Account, Persona

WALLET = "0x" + "ab" * 20
CALLS = [("step-tts-2", 120), ("step-tts-2", 7), ("step-tts-mini", 3_000), ("stepaudio-2.5-tts", 55)]


@dataclass
class Month:
    platform: Platform
    http: TestClient
    keys: dict[str, str]  # who → API key
    ids: dict[str, str]  # who → account id
    request_ids: list[str]

    def get(self, who: str, path: str, **params: str) -> object:
        return self.http.get(path, params=params, headers={"Authorization": f"Bearer {self.keys[who]}"})


def _speak(platform: Platform, caller_id: str, persona: Persona, model: str, chars: int, n: int) -> str:
    charge = platform.prices.charge(model, chars, persona.price_multiplier_bps)
    hold = holds.reserve(
        platform.sessions,
        hold_id=f"hold_t{n}",
        account_id=caller_id,
        api_key_id=None,
        purpose=holds.Purpose.SPEECH,
        subject=persona.id,
        amount=charge.amount,
    )
    event, created = holds.capture_speech(
        platform.sessions,
        hold,
        charge,
        request_id=f"req_t{n}",
        caller_id=caller_id,
        api_key_id=None,
        persona=persona,
        audio_ms=1000,
    )
    assert created
    return event.request_id


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Month]:
    """A creator with two personas called four times each by one consumer (and once by the creator)."""
    data = tmp_path_factory.mktemp("statements")
    platform = compose([f"data_dir={data}", "encoder=seeded", "billing.trial_credit=0"])
    keys, ids = {}, {}
    with platform.sessions.begin() as session:
        for who, role, wallet in [
            ("creator", "creator", WALLET),
            ("consumer", "consumer", None),
            ("admin", "consumer", None),
        ]:
            account, key = sign_up(session, who.title(), f"{who}@example.com", role, wallet)
            keys[who], ids[who] = key, account.id
            credit_in(session, Credit(account.id, 10**9, Funding.GRANT, f"grant:{who}", "test money"))
        session.execute(update(Account).where(Account.id == ids["admin"]).values(role="admin"))
        personas = [
            Persona(
                id=f"vp_{i}",
                creator_id=ids["creator"],
                name=f"Voice {i}",
                model="step-tts-2",
                price_multiplier_bps=bps,
                price_per_10k_chars=0,
                consent_statement="mine",
                state="live",
            )
            for i, bps in enumerate([10_000, 25_000])
        ]
        session.add_all(personas)
    with platform.sessions() as session:
        loaded = [session.get(Persona, p.id) for p in personas]
    request_ids, n = [], 0
    for persona in loaded:
        assert persona is not None
        for model, chars in CALLS:
            n += 1
            request_ids.append(_speak(platform, ids["consumer"], persona, model, chars, n))
    request_ids.append(_speak(platform, ids["creator"], loaded[0], "step-tts-2", 40, n + 1))
    with TestClient(create_app(platform)) as http:
        yield Month(platform, http, keys, ids, request_ids)
    platform.engine.dispose()


def this_month() -> str:
    return datetime.now(UTC).strftime("%Y-%m")


def test_invoice_lists_every_paid_call_and_its_totals_are_usages(month: Month) -> None:
    usage = month.get("consumer", "/usage", limit="500").json()  # type: ignore[attr-defined]
    answer = month.get("consumer", "/statements", period=this_month())
    assert answer.status_code == 200, answer.text  # type: ignore[attr-defined]
    body = answer.json()  # type: ignore[attr-defined]
    invoice = body["invoice"]
    assert invoice["totals"] == {k: usage["totals"][k] for k in ("calls", "chars", "amount")}
    assert invoice["totals"]["calls"] == 2 * len(CALLS)
    paid = {c["requestId"]: c["amount"] for c in usage["calls"]}
    assert {line["requestId"]: line["amount"] for line in invoice["lines"]} == paid
    line = invoice["lines"][0]
    assert set(line) == {"date", "requestId", "personaId", "persona", "model", "chars", "unitPrice", "amount"}
    assert line["date"] == datetime.now(UTC).strftime("%Y-%m-%d") and line["persona"] == "Voice 0"
    assert body["earnings"] is None  # a consumer earns nothing


def test_creator_statement_splits_each_day_and_matches_usage_earnings(month: Month) -> None:
    usage = month.get("creator", "/usage").json()  # type: ignore[attr-defined]
    body = month.get("creator", "/statements", period=this_month()).json()  # type: ignore[attr-defined]
    earnings = body["earnings"]
    per_persona = {e["personaId"]: e for e in usage["earnings"]}
    for day in earnings["days"]:
        assert day["creatorShare"] + day["platformShare"] == day["gross"]
        assert day["platformShare"] - day["providerCost"] >= 0
        expected = per_persona[day["personaId"]]  # everything happened today: a day is the persona's total
        assert (day["calls"], day["gross"], day["creatorShare"]) == (
            expected["calls"],
            expected["amount"],
            expected["creatorShare"],
        )
    totals = earnings["totals"]
    assert totals["gross"] == sum(e["amount"] for e in usage["earnings"])
    assert totals["creatorShare"] == sum(e["creatorShare"] for e in usage["earnings"])
    assert body["invoice"]["totals"]["calls"] == 1  # the creator also paid for one call of their own


def test_month_settlement_is_on_the_creator_statement(month: Month) -> None:
    headers = {"Authorization": f"Bearer {month.keys['creator']}", "Idempotency-Key": "settle-1"}
    settled = month.http.post("/settlements", headers=headers)
    assert settled.status_code == 201, settled.text
    body = month.get("creator", "/statements", period=this_month()).json()  # type: ignore[attr-defined]
    [row] = body["earnings"]["settlements"]
    assert row["settlementId"] == settled.json()["settlementId"]
    assert row["creatorAmount"] == body["earnings"]["totals"]["creatorShare"]
    assert "txHash" in row
    csv = month.get("creator", "/statements", period=this_month(), format="csv", part="settlements")
    assert row["settlementId"] in csv.text  # type: ignore[attr-defined]


def test_csv_download_is_the_invoice_with_a_filename(month: Month) -> None:
    answer = month.get("consumer", "/statements", period=this_month(), format="csv")
    assert answer.status_code == 200  # type: ignore[attr-defined]
    assert answer.headers["content-type"].startswith("text/csv")  # type: ignore[attr-defined]
    disposition = answer.headers["content-disposition"]  # type: ignore[attr-defined]
    assert f'filename="voxpersona-{this_month()}-invoice.csv"' in disposition
    frame = pd.read_csv(io.StringIO(answer.text))  # type: ignore[attr-defined]
    assert list(frame.columns) == statements.INVOICE_COLUMNS
    assert int(frame["amount"].sum()) == month.get("consumer", "/usage").json()["totals"]["amount"]  # type: ignore[attr-defined]
    refused = month.get("consumer", "/statements", period=this_month(), format="csv", part="earnings")
    assert refused.status_code == 403  # type: ignore[attr-defined]


def test_another_month_is_empty_and_a_bad_period_is_refused(month: Month) -> None:
    body = month.get("consumer", "/statements", period="2001-01").json()  # type: ignore[attr-defined]
    assert body["invoice"] == {"lines": [], "totals": {"calls": 0, "chars": 0, "amount": 0}}
    for bad in ("2026-13", "2026-1", "soon", "0000-01", "9999-12"):
        answer = month.get("consumer", "/statements", period=bad)
        assert answer.status_code == 422  # type: ignore[attr-defined]
        assert answer.json()["error"]["code"] == "invalid_request"  # type: ignore[attr-defined]


def test_csv_and_parquet_round_trip_exactly(month: Month, tmp_path: Path) -> None:
    period = statements.Period.parse(this_month())
    found = statements.statement(month.platform.sessions, month.ids["creator"], period, creator=True)
    assert found.earnings is not None
    for frame in (found.invoice, found.earnings):
        parquet = statements.read_parquet(statements.write_parquet(frame, tmp_path / "s.parquet"))
        pd.testing.assert_frame_equal(parquet, frame)
        csv = statements.read_csv(statements.write_csv(frame, tmp_path / "s.csv"))
        pd.testing.assert_frame_equal(csv, frame, check_dtype=False)
        assert all(csv[c].dtype == "int64" for c in frame.select_dtypes("int64").columns)


def test_finance_is_admin_only_and_agrees_with_the_ledger(month: Month) -> None:
    for who in ("consumer", "creator"):
        refused = month.get(who, "/admin/finance", period=this_month())
        assert refused.status_code == 403  # type: ignore[attr-defined]
        assert refused.json()["error"]["code"] == "forbidden"  # type: ignore[attr-defined]
    body = month.get("admin", "/admin/finance", period=this_month()).json()  # type: ignore[attr-defined]
    usage, ledger = body["usage"], body["ledger"]
    assert usage["calls"] == len(month.request_ids)
    assert usage["revenue"] == usage["creatorShare"] + usage["platformShare"]
    assert usage["margin"] == usage["platformShare"] - usage["providerCost"] > 0
    assert ledger["speechPlatformRevenue"] == usage["margin"]
    assert ledger["speechProviderCost"] == usage["providerCost"]
    assert body["matches"] is True
