"""Programs (tenants) and their API keys: used by the operator CLI and by authentication.

Each use case reaches the database through `store` (services/ports.ProgramStore): the
store's own by default, an in-memory one in unit tests."""

import time
from dataclasses import dataclass

from rewards_service.auth import ROLES, Caller, generate_key, hash_key, same_hash
from rewards_service.bounded import BoundedCache
from rewards_service.domain.errors import InvalidArgument, NotFound, Unauthenticated
from rewards_service.domain.ids import new_id
from rewards_service.services.ports import ProgramStore
from rewards_service.store.fields import utcnow
from rewards_service.store.models import ApiKey, Program
from rewards_service.store.programs import PROGRAMS

DEFAULT_PROGRAM = "default"
UNKNOWN_KEY_MESSAGE = "The API key is not valid."


@dataclass(frozen=True)
class IssuedKey:
    program_id: str
    key_id: str
    api_key: str  # shown once, never stored
    role: str


def _add_key(
    store: ProgramStore, program_id: str, role: str, api_key: str | None = None, *, name: str = ""
) -> IssuedKey:
    if role not in ROLES:
        raise InvalidArgument(f"role must be one of {', '.join(ROLES)}.")
    if len(name) > 255 or not name.isprintable():
        raise InvalidArgument("A key name must be at most 255 printable characters.")
    secret = api_key or generate_key()
    key = ApiKey(
        id=new_id("key"), program=program_id, role=role, key_hash=hash_key(secret), name=name
    )
    store.add(key)
    return IssuedKey(program_id, key.id, secret, role)


def _add_program(store: ProgramStore, name: str, api_key: str | None) -> IssuedKey:
    """The program and its first admin key."""
    program = Program(id=new_id("prg"), name=name)
    store.add(program)
    return _add_key(store, program.id, "admin", api_key)


def create_program(
    name: str, *, api_key: str | None = None, store: ProgramStore = PROGRAMS
) -> IssuedKey:
    if not name.strip() or len(name) > 255:
        raise InvalidArgument("A program name must be 1-255 characters.")

    return store.transaction(lambda: _add_program(store, name, api_key))


def bootstrap(api_key: str | None, *, store: ProgramStore = PROGRAMS) -> IssuedKey | None:
    """On an empty database, make the `default` program and its first admin key."""

    def work() -> IssuedKey | None:
        if store.has_any_program():
            return None
        return _add_program(store, DEFAULT_PROGRAM, api_key)

    return store.transaction(work)


def bootstrap_notice(created: IssuedKey, chosen_key: str | None) -> str:
    """What a first start prints about the program it made. A key the operator chose is
    never echoed: it is already known, and output is often kept (terminals, CI logs)."""
    made = f"Created program '{DEFAULT_PROGRAM}' ({created.program_id})."
    if chosen_key:
        return f"{made}\nIts admin key is the one REWARDS_BOOTSTRAP_API_KEY holds."
    return f"{made}\nAdmin API key (shown once, store it now): {created.api_key}"


def _check_program(store: ProgramStore, program_id: str) -> None:
    if not store.has_program(program_id):
        raise NotFound(f"No program {program_id}.", reason="PROGRAM_NOT_FOUND")


def create_key(
    program_id: str, role: str, *, name: str = "", store: ProgramStore = PROGRAMS
) -> IssuedKey:
    def work() -> IssuedKey:
        _check_program(store, program_id)
        return _add_key(store, program_id, role, name=name)

    return store.transaction(work)


def revoke_key(key_id: str, *, store: ProgramStore = PROGRAMS) -> ApiKey:
    def work() -> ApiKey:
        key = store.find_key(key_id)
        if key is None:
            raise NotFound(f"No API key {key_id}.", reason="KEY_NOT_FOUND")
        if key.revoked_at is None:
            key.revoked_at = utcnow()
            store.save(key)
        _valid_keys.discard(key.key_hash)
        return key

    return store.transaction(work)


def list_keys(program_id: str, *, store: ProgramStore = PROGRAMS) -> list[ApiKey]:
    _check_program(store, program_id)
    return store.keys(program_id)


def list_programs(*, store: ProgramStore = PROGRAMS) -> list[Program]:
    return store.programs()


# Valid keys are remembered briefly so a hot path does not query for every call. A key revoked
# through another process stops working within this many seconds; in this process, at once.
# Set from the server's configuration (REWARDS_AUTH_CACHE_SECONDS), checked there.
AUTH_CACHE_SECONDS = 1.0
# Keys of every program in use at once fit many times over; a flood of valid keys pushes out
# the oldest, which are looked up again.
AUTH_CACHE_BYTES = 4 * 1024 * 1024
ENTRY_BYTES = 512  # a digest and a Caller with its ids, beside the key's name
_valid_keys: BoundedCache[str, tuple[Caller, float]] = BoundedCache(AUTH_CACHE_BYTES)


def remembered(api_key: str) -> Caller | None:
    """The caller of a key validated less than AUTH_CACHE_SECONDS ago: no store access."""
    cached = _valid_keys.get(hash_key(api_key))
    if cached is not None and cached[1] > time.monotonic():
        return cached[0]
    return None


def authenticate(api_key: str, *, store: ProgramStore = PROGRAMS) -> Caller:
    """Unknown and revoked keys get the same answer, so a probe learns nothing."""
    digest = hash_key(api_key)
    cached = _valid_keys.get(digest)
    if cached is not None and cached[1] > time.monotonic():
        return cached[0]
    key = store.key_by_hash(digest)
    if key is None or key.revoked_at is not None or not same_hash(key.key_hash, digest):
        _valid_keys.discard(digest)
        raise Unauthenticated(UNKNOWN_KEY_MESSAGE, reason="INVALID_CREDENTIALS")
    found = Caller(program_id=key.program_id, role=key.role, key_id=key.id, key_name=key.name)
    _valid_keys.put(
        digest, (found, time.monotonic() + AUTH_CACHE_SECONDS), ENTRY_BYTES + len(key.name)
    )
    return found
