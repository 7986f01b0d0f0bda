"""Operator commands on the platform's database (the same config and overrides as `make run`).

python -m scripts.admin create --name "Ops" --email ops@example.com [hydra overrides]   → prints the admin's API key
python -m scripts.admin grant --email user@example.com --amount 5000000 --reason "wire 2026-12-05" [overrides]
python -m scripts.admin ban --email user@example.com --reason "chargeback fraud" [overrides]   (unban: the same)
"""

from __future__ import annotations

import argparse
import secrets
import sys

from hydra.utils import instantiate

from bentos.billing.pricing import PriceBook
from bentos.core import funds
from bentos.core.accounts import Caller, Role, open_admin
from bentos.core.bans import set_ban
from bentos.core.config import load_config
from bentos.core.errors import PlatformError
from bentos.store.db import make_engine, migrate, session_factory

OPERATOR = Caller("operator", "operator", "operator@localhost", Role.ADMIN, None, None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create an admin account and print its API key")
    create.add_argument("--name", required=True)
    create.add_argument("--email", required=True)
    grant = commands.add_parser("grant", help="credit an account (fiat received elsewhere)")
    grant.add_argument("--email", required=True)
    grant.add_argument("--amount", type=int, required=True, help="micro-units (1 CNY = 1,000,000)")
    grant.add_argument("--reason", required=True)
    for name in ("ban", "unban"):
        ban = commands.add_parser(
            name, help=f"{name} an account (its keys stop or start working at once; audited)"
        )
        ban.add_argument("--email", required=True)
        ban.add_argument("--reason", required=name == "ban", default="")
    args, overrides = parser.parse_known_args(argv)
    cfg = load_config(overrides)
    engine = make_engine(instantiate(cfg.db))
    migrate(engine)
    sessions = session_factory(engine)
    prices: PriceBook = instantiate(cfg.billing, _convert_="all")
    try:
        if args.command == "create":
            admin, key = open_admin(sessions, args.name, args.email)
            print(f"admin {admin.id} <{admin.email}>; API key (shown once): {key}")
        elif args.command in ("ban", "unban"):
            account_id = funds.account_id_by_email(sessions, args.email)
            standing = set_ban(sessions, OPERATOR, account_id, args.command == "ban", args.reason)
            print(
                f"{args.email}: {'banned since ' + str(standing.banned_at) if standing.banned_at else 'not banned'}"
            )
        else:
            account_id = funds.account_id_by_email(sessions, args.email)
            balance = funds.grant(
                sessions,
                prices,
                OPERATOR,
                account_id,
                args.amount,
                args.reason,
                f"cli:{secrets.token_hex(8)}",
            )
            print(
                f"credited {args.amount} micro-{prices.currency} to {args.email}: available {balance.available}"
            )
    except PlatformError as err:
        print(f"{err.code}: {err.message}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
