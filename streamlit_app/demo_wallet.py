"""A demo wallet for the local dev chain only: one of anvil's public, pre-funded dev accounts signs top-ups,
the payout-wallet challenge and withdrawals, so the money loop works end to end in `make run`.

Its key is the well-known dev account #1 of the "test test … junk" mnemonic: worthless anywhere but a local dev
node. The pages use it only when the platform's top-up instructions say `devChain: true` and give an `rpcUrl`.
web3 + eth-account only (never `bentos`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from web3 import Web3

# The public test mnemonic anvil and hardhat fund on every dev chain; account #1 (the platform signs with #0).
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_ACCOUNT_PATH = "m/44'/60'/0'/0/1"
_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "deposit",
        "stateMutability": "payable",
        "inputs": [{"name": "reference", "type": "bytes32"}],
        "outputs": [],
    },
    {
        "type": "function",
        "name": "withdraw",
        "stateMutability": "nonpayable",
        "inputs": [],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    {
        "type": "function",
        "name": "balance_of",
        "stateMutability": "view",
        "inputs": [{"name": "arg0", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
]


class DemoWalletError(RuntimeError):
    """The dev node refused or reverted the demo wallet's transaction."""


@dataclass
class DemoWallet:
    rpc_url: str
    chain_id: int
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        self._w3 = Web3(Web3.HTTPProvider(self.rpc_url, request_kwargs={"timeout": 10}))
        Account.enable_unaudited_hdwallet_features()  # derivation from the public dev mnemonic
        self._account = Account.from_mnemonic(DEV_MNEMONIC, account_path=DEV_ACCOUNT_PATH)

    def __repr__(self) -> str:  # never the key
        return f"DemoWallet({self.address} on {self.rpc_url})"

    @property
    def address(self) -> str:
        return str(self._account.address)

    def ether_balance(self) -> int:
        """Wei the demo wallet holds."""
        return int(self._w3.eth.get_balance(self._account.address))

    def sign(self, message: str) -> str:
        """EIP-191 personal_sign of `message` ('0x' + 130 hex digits), as `PATCH /accounts/me` expects."""
        signed = self._account.sign_message(encode_defunct(text=message))
        return "0x" + bytes(signed.signature).hex()

    def claimable(self, contract: str) -> int:
        """Wei the registry owes this wallet."""
        registry = self._contract(contract)
        return int(registry.functions.balance_of(self._account.address).call())

    def deposit(self, contract: str, reference: str, value_wei: int) -> str:
        """Top up the account `reference` names with `value_wei`; returns the mined transaction's hash."""
        call = self._contract(contract).functions.deposit(bytes.fromhex(reference.removeprefix("0x")))
        return self._send(call, value_wei, gas=100_000)

    def withdraw(self, contract: str) -> str:
        """Withdraw everything the registry owes this wallet; returns the mined transaction's hash."""
        return self._send(self._contract(contract).functions.withdraw(), 0, gas=150_000)

    def _contract(self, address: str) -> Any:
        return self._w3.eth.contract(address=Web3.to_checksum_address(address), abi=_ABI)

    def _send(self, call: Any, value: int, gas: int) -> str:
        tx = call.build_transaction(
            {
                "from": self._account.address,
                "value": value,
                "gas": gas,
                "chainId": self.chain_id,
                "nonce": self._w3.eth.get_transaction_count(self._account.address, "pending"),
            }
        )
        signed = self._account.sign_transaction(tx)
        tx_hash = self._w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self._w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.timeout_s)
        if receipt["status"] != 1:
            raise DemoWalletError(f"the transaction {Web3.to_hex(tx_hash)} reverted")
        return Web3.to_hex(tx_hash)
