"""Server secrets: made once in the database (a migration), read once per process."""

import secrets

from rewards_service.store.models import ServerSecret

PAGE_TOKENS = "page_tokens"

_known: dict[str, bytes] = {}


def make(name: str) -> None:
    """Create the secret `name` unless it exists (the first server to start makes it)."""
    ServerSecret.insert(name=name, value=secrets.token_hex(32)).on_conflict_ignore().execute()


def secret(name: str) -> bytes:
    found = _known.get(name)
    if found is None:
        found = _known.setdefault(name, bytes.fromhex(ServerSecret.get_by_id(name).value))
    return found
