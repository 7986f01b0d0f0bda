"""A settlement shows what reached the creator (not what callers paid), the wallet, and the tx as a link to the
chain's explorer when the platform names one; amounts to the cent, exact on hover; times in the viewer's zone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from streamlit.testing.v1 import AppTest

from streamlit_app.api_client import PlatformClient, Settlement
from streamlit_app.dates import local_time
from streamlit_app.settlements import details, headline
from tests.frontend.fake_platform import FakePlatform
from tests.frontend.test_frontend_pages import page_text

OpenApp = Callable[..., AppTest]
TX = "0x" + "12" * 32
WALLET = "0x" + "ab" * 20


def settled(fake: FakePlatform) -> tuple[str, Settlement]:
    creator, creator_key = fake.new_account("Paid Creator")
    _, caller_key = fake.new_account("Paying Caller", role="consumer")
    persona = fake.add_live_persona(creator["id"], "Earner", pricePer10kChars=9_300_000)
    with PlatformClient(fake.base_url, caller_key) as api:
        api.synthesize(voice=persona["id"], text="q" * 100)  # callers pay ¥0.093, the creator's 70 % ¥0.0651
    with PlatformClient(fake.base_url, creator_key) as api:
        settlement = api.settle()
    fake.settlements[settlement["settlementId"]].update(status="confirmed", txHash=TX)
    return creator_key, settlement


def test_billing_shows_the_creators_amount_wallet_and_tx_link(open_app: OpenApp, fake: FakePlatform) -> None:
    assert fake.limits is not None
    fake.limits["chain"] = {"explorerUrl": "https://explorer.example"}
    key, _ = settled(fake)
    app = open_app("views/billing.py", api_key=key)
    line = next(m for m in app.markdown if "to [`" in m.value)
    assert line.value.startswith("**¥0.07** to ")  # ¥0.0651, to the cent: not the ¥0.093 callers paid
    assert f"(https://explorer.example/tx/{TX})" in line.value
    assert f"(https://explorer.example/address/{WALLET})" in line.value
    assert line.proto.help == "Exactly ¥0.0651, ¥0.093"
    assert "callers paid ¥0.09 in all" in page_text(app)


def test_without_an_explorer_the_tx_is_plain_text(open_app: OpenApp, fake: FakePlatform) -> None:
    key, _ = settled(fake)  # the fake's chain, like the embedded one, has no explorer
    app = open_app("views/billing.py", api_key=key)
    line = next(m for m in app.markdown if "badge[confirmed]" in m.value)
    assert f"tx `{TX}`" in line.value and "](" not in line.value


def test_settlement_lines_read_the_same_everywhere() -> None:
    settlement: Settlement = {
        "settlementId": "stl_1",
        "amount": 93_000,
        "creatorAmount": 65_100,
        "status": "sent",
        "txHash": None,
        "payoutWallet": WALLET,
        "usageCount": 3,
        "weiAmount": "65100000000000",
        "createdAt": "2026-12-06T02:08:37+00:00",
    }
    assert headline(settlement, None) == f"**¥0.07** to `{WALLET}` :orange-badge[sent] · tx —"
    assert details(settlement).startswith("6 Dec 2026, 02:08 UTC · 3 calls · callers paid ¥0.09 in all")


def test_times_show_in_the_viewers_zone_and_order() -> None:
    moment = datetime(2026, 12, 6, 2, 8, tzinfo=UTC)
    assert local_time(moment, zone=ZoneInfo("Europe/Paris"), locale="fr-FR") == "6 Dec 2026, 03:08 CET"
    assert local_time(moment.isoformat(), zone=ZoneInfo("America/New_York"), locale="en-US") == (
        "Dec 5, 2026, 9:08 PM EST"
    )
    assert local_time(None) == "—"
