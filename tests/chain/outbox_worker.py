"""A dispatcher process for the crash tests: it dispatches the outbox and, at the named point, says so and
waits to be killed (SIGKILL from the test), like a platform worker dying mid-send.

    python tests/chain/outbox_worker.py DB_URL RPC_URL CONTRACT after_record|after_broadcast
The signer key comes from CHAIN_SIGNER_KEY, as in production.
"""

from __future__ import annotations

import os
import sys
import threading

from sqlalchemy import create_engine

from bentos.chain import RpcChainSettings, build_chain
from bentos.chain.outbox import OutboxDispatcher
from bentos.devkit.evm_node import HARDHAT_CHAIN_ID


def main(db_url: str, rpc_url: str, contract: str, crash_point: str) -> None:
    settings = RpcChainSettings(
        url=rpc_url,
        chain_id=HARDHAT_CHAIN_ID,
        signer_key=os.environ["CHAIN_SIGNER_KEY"],
        contract_address=contract,
        poll_interval_s=0.01,
    )

    def park(intent_key: str, tx_hash: str) -> None:
        print(f"{crash_point} {intent_key} {tx_hash}", flush=True)
        threading.Event().wait()  # never returns: the test kills this process here

    hooks = {crash_point: park}
    OutboxDispatcher(create_engine(db_url), build_chain(settings), **hooks).dispatch_pending()  # type: ignore[arg-type]


if __name__ == "__main__":
    main(*sys.argv[1:5])
