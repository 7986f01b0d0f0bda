"""The mail outbox of an embedded platform (no mail server): unsent mail, e.g. a password reset token.

python -m scripts.outbox [--to user@example.com] [hydra overrides, the same as make run's]
"""

from __future__ import annotations

import argparse
import sys

from hydra.utils import instantiate

from bentos.core.config import load_config
from bentos.core.mail import unsent
from bentos.store.db import make_engine, migrate, session_factory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--to", help="only mail to this address")
    args, overrides = parser.parse_known_args(argv)
    engine = make_engine(instantiate(load_config(overrides).db))
    try:
        migrate(engine)
        mails = unsent(session_factory(engine), args.to)
    finally:
        engine.dispose()
    for mail in mails:
        print(f"--- {mail.id}  to {mail.to}\nSubject: {mail.subject}\n\n{mail.body}")
    if not mails:
        print("the outbox is empty")
    return 0


if __name__ == "__main__":
    sys.exit(main())
