"""The money-on-chain routes over HTTP (in process, chain=tester): top-up instructions and a deposit credited by
the money loop, the signed payout-wallet change, and the payout wallet's claimable balance after a cycle."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account as EthAccount
from eth_account.messages import encode_defunct
from fastapi.testclient import TestClient

from bentos.api.app import create_app
from bentos.core.platform import Platform, compose
from tests.chain.chain_harness import TESTER_DEV_KEYS


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    running = compose([f"data_dir={tmp_path}", "encoder=seeded"])
    yield running
    running.engine.dispose()


def _sign_up(http: TestClient, role: str, email: str) -> dict[str, str]:
    r = http.post("/accounts", json={"name": "N", "email": email, "role": role})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['apiKey']}"}


def test_topup_instructions_and_a_deposit_credited_by_the_money_loop(platform: Platform) -> None:
    with TestClient(create_app(platform)) as http:
        me = _sign_up(http, "consumer", "payer@example.com")
        before = http.get("/balance", headers=me).json()["available"]
        r = http.post("/topups/crypto", headers=me)
        assert r.status_code == 200, r.text
        info = r.json()
        assert info["function"] == "deposit(bytes32)" and info["devChain"] is True
        assert info["contract"] == platform.chain.address and info["chainId"] == platform.chain.chain_id
        assert info["confirmations"] == 0 and info["rpcUrl"] is None  # in-process chain: no URL to reach
        wei = 3_000 * info["weiPerMicro"]
        platform.chain.with_signer(TESTER_DEV_KEYS[1]).deposit(info["reference"], wei)
        platform.money_loop().tick(force=True)
        assert http.get("/balance", headers=me).json()["available"] == before + 3_000
        [deposit] = http.get("/topups/crypto", headers=me).json()["data"]
        assert deposit["amount"] == 3_000 and deposit["status"] == "credited"
        assert platform.money is not None
        assert http.get("/health").json()["money"]["state"] == "ok"


def test_signed_wallet_change_over_http(platform: Platform) -> None:
    key = TESTER_DEV_KEYS[2]
    wallet = EthAccount.from_key(key).address
    with TestClient(create_app(platform)) as http:
        me = _sign_up(http, "creator", "maker@example.com")
        challenge = http.get("/accounts/me/wallet-challenge", headers=me).json()
        assert challenge["message"] and challenge["expiresAt"]
        sig = EthAccount.sign_message(encode_defunct(text=challenge["message"]), private_key=key).signature
        body = {"payoutWallet": wallet, "signature": "0x" + bytes(sig).hex()}
        bad = http.patch("/accounts/me", headers=me, json={**body, "payoutWallet": "0x" + "12" * 20})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_signature"
        ok = http.patch("/accounts/me", headers=me, json=body)
        assert ok.status_code == 200 and ok.json()["payoutWallet"] == wallet
        again = http.patch("/accounts/me", headers=me, json=body)
        assert again.status_code == 410 and again.json()["error"]["code"] == "challenge_expired"
        payouts = http.get("/accounts/me/payouts", headers=me).json()
        assert payouts["payoutWallet"] == wallet and payouts["claimableWei"] == "0"
        assert payouts["withdrawFunction"] == "withdraw()"
