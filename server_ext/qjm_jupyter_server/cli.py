"""Operator commands: `jupyter qjm rotate-keys` and `jupyter qjm create-admin EMAIL`.

They read the same configuration as the server (config files, then QJM_* variables),
so they act on the same database with the same keys.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from .errors import QJMError
from .secrets import UndecryptableKey

PAGE = 200


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jupyter qjm", description="qjm-jupyter maintenance commands")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "rotate-keys",
        help="re-encrypt every stored IBM API key with the first key of token_keys",
        description="Put the new Fernet key first in c.QJMServerApp.token_keys / QJM_TOKEN_KEYS (keep the old ones "
        "after it), run this, then remove the old keys.",
    )
    admin = sub.add_parser("create-admin", help="make an existing account an administrator")
    admin.add_argument("email")
    return parser


def _build_services() -> Any:
    from .app import QJMServerApp

    app = QJMServerApp()
    app.load_config_file()
    return app.build_services()


async def rotate_keys(services: Any) -> tuple[int, list[str]]:
    """Returns (rotated, ids of users whose key no configured key opens)."""
    store, keyring = services.store, services.keyring
    rotated, broken = 0, []
    offset = 0
    while True:
        users = await store.list_users(PAGE, offset)
        if not users:
            break
        offset += len(users)
        for user in users:
            if not user.ibm_key_cipher:
                continue
            try:
                cipher = keyring.rotate(user.id, user.ibm_key_cipher)
            except UndecryptableKey:
                broken.append(user.id)
                continue
            await store.update_user(user.id, {"ibm_key_cipher": cipher})
            rotated += 1
    return rotated, broken


async def _run(args: argparse.Namespace) -> int:
    services = _build_services()
    try:
        await services.ensure_open()
        if args.command == "rotate-keys":
            rotated, broken = await rotate_keys(services)
            print(f"rotated {rotated} stored IBM API key(s) to the newest key")
            if broken:
                print(
                    f"{len(broken)} key(s) could not be decrypted with the configured token_keys "
                    f"(users: {', '.join(broken)}); they were left unchanged",
                    file=sys.stderr,
                )
                return 1
            return 0
        user = await services.accounts.promote(args.email)
        print(f"{user.email} is an administrator")
        return 0
    except QJMError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    finally:
        await services.store.close()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    return asyncio.run(_run(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
