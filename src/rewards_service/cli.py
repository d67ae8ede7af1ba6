"""rewards-admin: the operator CLI for programs and API keys (not exposed over RPC)."""

import argparse
import dataclasses
import json
import os
import sys
from typing import NoReturn

import peewee
from rewards.v1 import programs_pb2

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
from rewards_service.domain.errors import NotFound, RewardsError
from rewards_service.domain.pagination import MAX_PAGE_SIZE, parse_page
from rewards_service.domain.validation import Violations
from rewards_service.services import paging, programs, registries
from rewards_service.store.db import bind, open_database, session, sqlite_path
from rewards_service.store.migrations import migrate
from rewards_service.store.reconcile import reconcile

PROG = "rewards-admin"
FT = programs_pb2.CustomFieldType
FIELD_TYPES = ("string", "integer", "boolean", "date")
REGISTRY_COMMANDS = frozenset(
    {
        "add-custom-field",
        "list-custom-fields",
        "remove-custom-field",
        "add-fulfillment-status",
        "list-fulfillment-statuses",
        "remove-fulfillment-status",
    }
)


# Exit statuses, the same for every command.
OK, FAILED, USAGE, DRIFT = 0, 1, 2, 3


def _common() -> argparse.ArgumentParser:
    """Options every command takes, before or after its name. SUPPRESS: an option given
    before the command is not reset by the command's own copy."""
    common = argparse.ArgumentParser(add_help=False)
    add_options(common, ADMIN_SETTINGS, suppress=True)
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object"
    )
    common.add_argument(
        "--create",
        action="store_true",
        default=argparse.SUPPRESS,
        help="make the SQLite database file if it does not exist (otherwise refused, so a "
        "mistyped path or another directory does not get a new empty database)",
    )
    return common


def _parser() -> argparse.ArgumentParser:
    common = _common()
    p = Parser(
        prog=PROG,
        description="Manage programs and API keys of a rewards database, and check its "
        "counters, and define programs' custom fields and fulfillment statuses. Options may "
        "come before or after the command.",
        epilog="Exit status: 0 done, 1 failed (unknown program or key, database missing or "
        "out of reach), 2 usage error, 3 check found drift.",
        parents=[common],
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser(
        "create-program", parents=[common], help="create a program and print its first admin key"
    )
    c.add_argument("name", help="program name, 1-255 characters")

    sub.add_parser("list-programs", parents=[common], help="list programs: ids, names, created")

    c = sub.add_parser(
        "create-key", parents=[common], help="create an API key and print it (shown once)"
    )
    c.add_argument("--program", required=True, help="program id (prg_...)")
    c.add_argument("--role", required=True, choices=ROLES, help="what the key may do")
    c.add_argument(
        "--name",
        default="",
        help="who uses the key, e.g. a till or a service, up to 255 characters; shown on the "
        "issuances it makes",
    )

    c = sub.add_parser(
        "revoke-key", parents=[common], help="revoke an API key; it stops working at once"
    )
    c.add_argument("key_id", help="key id (key_...)")

    c = sub.add_parser(
        "list-keys", parents=[common], help="list a program's keys (ids and roles, never secrets)"
    )
    c.add_argument("--program", required=True, help="program id (prg_...)")

    c = sub.add_parser(
        "add-custom-field",
        parents=[common],
        help="define a custom field of a program's issuances (IssueReward then checks them)",
    )
    c.add_argument("--program", required=True, help="program id (prg_...)")
    c.add_argument("--key", required=True, help="the custom_fields key, 1-64 of A-Z a-z 0-9 . _ -")
    c.add_argument("--type", required=True, choices=FIELD_TYPES, help="type of its values")
    c.add_argument("--required", action="store_true", help="every issue must give it")
    c.add_argument("--request-id", default="", help="idempotency key: a retry changes nothing")

    c = sub.add_parser(
        "list-custom-fields", parents=[common], help="list a program's custom fields"
    )
    c.add_argument("--program", required=True, help="program id (prg_...)")

    c = sub.add_parser("remove-custom-field", parents=[common], help="delete a custom field")
    c.add_argument("--program", required=True, help="program id (prg_...)")
    c.add_argument("--key", required=True, help="the field's key")

    c = sub.add_parser(
        "add-fulfillment-status",
        parents=[common],
        help="define a fulfillment status (UpdateFulfillment then refuses others)",
    )
    c.add_argument("--program", required=True, help="program id (prg_...)")
    c.add_argument("status", help="e.g. SHIPPED, 1-64 characters")
    c.add_argument("--request-id", default="", help="idempotency key: a retry changes nothing")

    c = sub.add_parser(
        "list-fulfillment-statuses", parents=[common], help="list a program's fulfillment statuses"
    )
    c.add_argument("--program", required=True, help="program id (prg_...)")

    c = sub.add_parser(
        "remove-fulfillment-status", parents=[common], help="delete a fulfillment status"
    )
    c.add_argument("--program", required=True, help="program id (prg_...)")
    c.add_argument("status", help="the status")

    c = sub.add_parser(
        "check",
        parents=[common],
        help="reconcile counters with the rows they count; exit 3 on drift",
    )
    c.add_argument("--program", help="only this program (prg_...); default: all")
    return p


def _keys(program_id: str) -> dict:
    return {
        "program_id": program_id,
        "keys": [
            {
                "key_id": k.id,
                "role": k.role,
                "name": k.name,
                "revoked": k.revoked_at is not None,
                "created_at": k.created_at.isoformat(),
            }
            for k in programs.list_keys(program_id)
        ],
    }


def _check(program_id: str | None) -> dict:
    if program_id is not None:
        programs.list_keys(program_id)  # NotFound for an unknown program
    found = reconcile(program_id)
    return {"ok": found.ok, "checked": found.checked, "problems": found.problems}


def _field(row) -> dict:
    kind = FT.Name(row.type).removeprefix("CUSTOM_FIELD_TYPE_").lower()
    return {"id": row.id, "key": row.key, "type": kind, "required": row.required}


def _status(row) -> dict:
    return {"id": row.id, "status": row.status}


def _every(list_page, program_id: str) -> list:
    """Every row of a list call, page after page."""
    rows, token = [], ""
    secret = paging.page_token_secret()
    while True:
        page = parse_page(Violations(), MAX_PAGE_SIZE, token, {}, secret=secret)
        more, token = list_page(program_id, page)
        rows += more
        if not token:
            return rows


def _registry(args: argparse.Namespace) -> dict:
    program_id = args.program
    programs.list_keys(program_id)  # NotFound for an unknown program
    if args.command == "add-custom-field":
        field_type = FT.Value(f"CUSTOM_FIELD_TYPE_{args.type.upper()}")
        return _field(
            registries.create_custom_field(
                program_id, args.key, field_type, args.required, args.request_id
            )
        )
    if args.command == "list-custom-fields":
        return {
            "custom_fields": [_field(r) for r in _every(registries.list_custom_fields, program_id)]
        }
    if args.command == "remove-custom-field":
        row = registries.custom_field_by_key(program_id, args.key)
        return _field(registries.delete_custom_field(program_id, row.id))
    if args.command == "add-fulfillment-status":
        return _status(
            registries.create_fulfillment_status(program_id, args.status, args.request_id)
        )
    if args.command == "list-fulfillment-statuses":
        rows = _every(registries.list_fulfillment_statuses, program_id)
        return {"fulfillment_statuses": [_status(r) for r in rows]}
    row = registries.fulfillment_status_by_name(program_id, args.status)
    return _status(registries.delete_fulfillment_status(program_id, row.id))


def _run(args: argparse.Namespace) -> dict:
    if args.command in REGISTRY_COMMANDS:
        return _registry(args)
    if args.command == "create-program":
        return dataclasses.asdict(programs.create_program(args.name))
    if args.command == "create-key":
        return dataclasses.asdict(programs.create_key(args.program, args.role, name=args.name))
    if args.command == "revoke-key":
        key = programs.revoke_key(args.key_id)
        return {"program_id": key.program_id, "key_id": key.id, "role": key.role, "revoked": True}
    if args.command == "list-keys":
        return _keys(args.program)
    if args.command == "list-programs":
        return {
            "programs": [
                {"program_id": p.id, "name": p.name, "created_at": p.created_at.isoformat()}
                for p in programs.list_programs()
            ]
        }
    return _check(args.program)


def _print_text(command: str, result: dict) -> None:
    if command == "list-keys":
        for key in result["keys"]:
            state = "revoked" if key["revoked"] else "active"
            line = f"{key['key_id']}  {key['role']:<6}  {state}  {key['created_at']}"
            print(f"{line}  {key['name']}" if key["name"] else line)
        return
    if command == "list-programs":
        for program in result["programs"]:
            print(f"{program['program_id']}  {program['created_at']}  {program['name']}")
        return
    if command == "list-custom-fields":
        for f in result["custom_fields"]:
            print(f"{f['key']}  {f['type']}{'  required' if f['required'] else ''}  {f['id']}")
        return
    if command == "list-fulfillment-statuses":
        for status in result["fulfillment_statuses"]:
            print(f"{status['status']}  {status['id']}")
        return
    if command == "check":
        for problem in result["problems"]:
            print(f"drift: {problem}")
        counts = result["checked"].items()
        checked = ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in counts)
        verdict = "ok" if result["ok"] else f"{len(result['problems'])} problems"
        print(f"checked {checked}: {verdict}")
        return
    for name, value in result.items():
        print(f"{name}: {value}")
    if "api_key" in result:
        print("The API key is shown only once; store it now.")


def _stop(status: int, message: str) -> NoReturn:
    print(f"{PROG}: {message}", file=sys.stderr)
    sys.exit(status)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        config = resolve(given_options(args, ADMIN_SETTINGS), ADMIN_SETTINGS)
    except ConfigError as exc:
        fail(PROG, str(exc))
    as_json = getattr(args, "json", False)
    rewards_logging.configure(config.log_format, config.log_level)
    path = sqlite_path(config.database_url)
    if path is not None and not getattr(args, "create", False) and not os.path.exists(path):
        _stop(
            FAILED,
            f"no database at {os.path.abspath(path)}: give the server's --database-url "
            "(or REWARDS_DATABASE_URL), or --create to make a new one",
        )
    try:
        bind(open_database(config.database_url, pool_size=2))
        migrate()
        with session():
            result = _run(args)
    except NotFound as exc:
        _stop(FAILED, exc.message)
    except RewardsError as exc:
        _stop(USAGE, exc.message)
    except (peewee.OperationalError, peewee.InterfaceError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        _stop(FAILED, f"cannot use the database: {first_line}")
    if as_json:
        print(json.dumps(result))
    else:
        _print_text(args.command, result)
    if args.command == "check" and not result["ok"]:
        sys.exit(DRIFT)
