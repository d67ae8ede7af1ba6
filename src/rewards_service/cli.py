"""rewards-admin: the operator CLI for programs and API keys (not exposed over RPC)."""

import argparse
import dataclasses
import json
import sys

import peewee

from rewards_service import logging as rewards_logging
from rewards_service.auth import ROLES
from rewards_service.config import (
    ADMIN_SETTINGS,
    ConfigError,
    Parser,
    add_options,
    fail,
    given_options,
    resolve,
    version,
)
from rewards_service.domain.errors import RewardsError
from rewards_service.services import programs
from rewards_service.store.db import bind, open_database, session
from rewards_service.store.migrations import migrate

PROG = "rewards-admin"


def _common() -> argparse.ArgumentParser:
    """Options every command takes, before or after its name. SUPPRESS: an option given
    before the command is not reset by the command's own copy."""
    common = argparse.ArgumentParser(add_help=False)
    add_options(common, ADMIN_SETTINGS, suppress=True)
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object"
    )
    return common


def _parser() -> argparse.ArgumentParser:
    after = _common()
    p = Parser(
        prog=PROG,
        description="Manage programs and API keys of a rewards database. Options may come "
        "before or after the command.",
        parents=[after],
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser(
        "create-program", parents=[after], help="create a program and print its first admin key"
    )
    c.add_argument("name", help="program name, 1-255 characters")

    c = sub.add_parser(
        "create-key", parents=[after], help="create an API key and print it (shown once)"
    )
    c.add_argument("--program", required=True, help="program id (prg_...)")
    c.add_argument("--role", required=True, choices=ROLES, help="what the key may do")

    c = sub.add_parser(
        "revoke-key", parents=[after], help="revoke an API key; it stops working at once"
    )
    c.add_argument("key_id", help="key id (key_...)")

    c = sub.add_parser(
        "list-keys", parents=[after], help="list a program's keys (ids and roles, never secrets)"
    )
    c.add_argument("--program", required=True, help="program id (prg_...)")
    return p


def _run(args: argparse.Namespace) -> dict:
    if args.command in ("create-program", "create-key"):
        if args.command == "create-program":
            issued = programs.create_program(args.name)
        else:
            issued = programs.create_key(args.program, args.role)
        return dataclasses.asdict(issued)
    if args.command == "revoke-key":
        key = programs.revoke_key(args.key_id)
        return {"program_id": key.program_id, "key_id": key.id, "role": key.role, "revoked": True}
    keys = programs.list_keys(args.program)
    return {
        "program_id": args.program,
        "keys": [
            {
                "key_id": k.id,
                "role": k.role,
                "revoked": k.revoked_at is not None,
                "created_at": k.created_at.isoformat(),
            }
            for k in keys
        ],
    }


def _print_text(result: dict) -> None:
    if "keys" in result:
        for key in result["keys"]:
            state = "revoked" if key["revoked"] else "active"
            print(f"{key['key_id']}  {key['role']:<6}  {state}  {key['created_at']}")
        return
    for name, value in result.items():
        print(f"{name}: {value}")
    if "api_key" in result:
        print("The API key is shown only once; store it now.")


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        config = resolve(given_options(args, ADMIN_SETTINGS), ADMIN_SETTINGS)
    except ConfigError as exc:
        fail(PROG, str(exc))
    args.json = getattr(args, "json", False)
    rewards_logging.configure(config.log_format, config.log_level)
    try:
        bind(open_database(config.database_url, pool_size=2))
        migrate()
        with session():
            result = _run(args)
    except (RewardsError, ValueError) as exc:
        print(f"rewards-admin: {getattr(exc, 'message', exc)}", file=sys.stderr)
        sys.exit(2)
    except peewee.OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"rewards-admin: cannot use the database: {first_line}", file=sys.stderr)
        sys.exit(1)
    if args.json:
        print(json.dumps(result))
    else:
        _print_text(result)
