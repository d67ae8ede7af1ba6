"""Programs (tenants) and their API keys: used by the operator CLI and by authentication."""

import time
from dataclasses import dataclass

from rewards_service.auth import ROLES, Caller, generate_key, hash_key, same_hash
from rewards_service.domain.errors import InvalidArgument, NotFound, Unauthenticated
from rewards_service.domain.ids import new_id
from rewards_service.store.db import in_transaction
from rewards_service.store.fields import utcnow
from rewards_service.store.models import ApiKey, Program

DEFAULT_PROGRAM = "default"
UNKNOWN_KEY_MESSAGE = "The API key is not valid."


@dataclass(frozen=True)
class IssuedKey:
    program_id: str
    key_id: str
    api_key: str  # shown once, never stored
    role: str


def _add_key(
    program_id: str, role: str, api_key: str | None = None, *, name: str = ""
) -> IssuedKey:
    if role not in ROLES:
        raise InvalidArgument(f"role must be one of {', '.join(ROLES)}.")
    if len(name) > 255 or not name.isprintable():
        raise InvalidArgument("A key name must be at most 255 printable characters.")
    secret = api_key or generate_key()
    key = ApiKey.create(
        id=new_id("key"), program=program_id, role=role, key_hash=hash_key(secret), name=name
    )
    return IssuedKey(program_id, key.id, secret, role)


def create_program(name: str, *, api_key: str | None = None) -> IssuedKey:
    if not name.strip() or len(name) > 255:
        raise InvalidArgument("A program name must be 1-255 characters.")

    def work() -> IssuedKey:
        program = Program.create(id=new_id("prg"), name=name)
        return _add_key(program.id, "admin", api_key)

    return in_transaction(work)


def bootstrap(api_key: str | None) -> IssuedKey | None:
    """On an empty database, make the `default` program and its first admin key."""

    def work() -> IssuedKey | None:
        if Program.select().exists():
            return None
        program = Program.create(id=new_id("prg"), name=DEFAULT_PROGRAM)
        return _add_key(program.id, "admin", api_key)

    return in_transaction(work)


def bootstrap_notice(created: IssuedKey, chosen_key: str | None) -> str:
    """What a first start prints about the program it made. A key the operator chose is
    never echoed: it is already known, and output is often kept (terminals, CI logs)."""
    made = f"Created program '{DEFAULT_PROGRAM}' ({created.program_id})."
    if chosen_key:
        return f"{made}\nIts admin key is the one REWARDS_BOOTSTRAP_API_KEY holds."
    return f"{made}\nAdmin API key (shown once, store it now): {created.api_key}"


def create_key(program_id: str, role: str, *, name: str = "") -> IssuedKey:
    def work() -> IssuedKey:
        if not Program.select().where(Program.id == program_id).exists():
            raise NotFound(f"No program {program_id}.", reason="PROGRAM_NOT_FOUND")
        return _add_key(program_id, role, name=name)

    return in_transaction(work)


def revoke_key(key_id: str) -> ApiKey:
    def work() -> ApiKey:
        key = ApiKey.get_or_none(ApiKey.id == key_id)
        if key is None:
            raise NotFound(f"No API key {key_id}.", reason="KEY_NOT_FOUND")
        if key.revoked_at is None:
            key.revoked_at = utcnow()
            key.save()
        _valid_keys.pop(key.key_hash, None)
        return key

    return in_transaction(work)


def list_keys(program_id: str) -> list[ApiKey]:
    if not Program.select().where(Program.id == program_id).exists():
        raise NotFound(f"No program {program_id}.", reason="PROGRAM_NOT_FOUND")
    return list(ApiKey.select().where(ApiKey.program == program_id).order_by(ApiKey.id))


def list_programs() -> list[Program]:
    return list(Program.select().order_by(Program.id))


# Valid keys are remembered briefly so a hot path does not query for every call. A key revoked
# through another process stops working within this many seconds; in this process, at once.
# Set from the server's configuration (REWARDS_AUTH_CACHE_SECONDS), checked there.
AUTH_CACHE_SECONDS = 1.0
_valid_keys: dict[str, tuple[Caller, float]] = {}


def remembered(api_key: str) -> Caller | None:
    """The caller of a key validated less than AUTH_CACHE_SECONDS ago: no store access."""
    cached = _valid_keys.get(hash_key(api_key))
    if cached is not None and cached[1] > time.monotonic():
        return cached[0]
    return None


def authenticate(api_key: str) -> Caller:
    """Unknown and revoked keys get the same answer, so a probe learns nothing."""
    digest = hash_key(api_key)
    cached = _valid_keys.get(digest)
    if cached is not None and cached[1] > time.monotonic():
        return cached[0]
    key = ApiKey.get_or_none(ApiKey.key_hash == digest)
    if key is None or key.revoked_at is not None or not same_hash(key.key_hash, digest):
        _valid_keys.pop(digest, None)
        raise Unauthenticated(UNKNOWN_KEY_MESSAGE, reason="INVALID_CREDENTIALS")
    found = Caller(program_id=key.program_id, role=key.role, key_id=key.id, key_name=key.name)
    _valid_keys[digest] = (found, time.monotonic() + AUTH_CACHE_SECONDS)
    return found
