"""API keys: how they look, how they are stored, and which role each RPC needs."""

import hashlib
import hmac
import secrets
from contextvars import ContextVar
from dataclasses import dataclass

from rewards_service.domain.errors import PermissionDenied, Unauthenticated

ROLES = ("reader", "issuer", "admin")
_RANK = {role: rank for rank, role in enumerate(ROLES)}

ISSUER_METHODS = frozenset(
    {
        "IssueReward",
        "BatchIssueRewards",
        "ClaimIssuance",
        "UpdateFulfillment",
        "UpsertParticipant",
    }
)
# The event feed is read by consumers: readers may watch it and acknowledge what they handled.
READER_METHODS = frozenset({"WatchEvents", "AckEvents"})
KEY_PREFIX = "rwk_"


@dataclass(frozen=True)
class Caller:
    program_id: str
    role: str
    key_id: str
    key_name: str = ""


# Set by the RPC wrapper on the worker thread for the duration of one call.
current_caller: ContextVar[Caller | None] = ContextVar("current_caller", default=None)


def caller() -> Caller:
    found = current_caller.get()
    if found is None:  # pragma: no cover - the wrapper always sets it for our services
        raise Unauthenticated("No caller.", reason="MISSING_CREDENTIALS")
    return found


def required_role(method: str) -> str:
    """Reads for readers, the issuing calls for issuers, everything else for admins."""
    name = method.rsplit("/", 1)[-1]
    if name.startswith(("Get", "List")) or name in READER_METHODS:
        return "reader"
    if name in ISSUER_METHODS:
        return "issuer"
    return "admin"


def check_role(role: str, method: str) -> None:
    needed = required_role(method)
    if _RANK[role] < _RANK[needed]:
        raise PermissionDenied(
            f"This API key's role ({role}) cannot call {method.rsplit('/', 1)[-1]}; "
            f"it needs {needed}.",
            reason="INSUFFICIENT_SCOPE",
            metadata={"role": role, "required_role": needed},
        )


def check_admin_flag(role: str, field: str) -> None:
    """A request field only an admin may set (e.g. IssueReward's manual)."""
    if role != "admin":
        raise PermissionDenied(
            f"Only an admin key may set {field}; this key's role is {role}.",
            reason="INSUFFICIENT_SCOPE",
            metadata={"role": role, "required_role": "admin", "field": field},
        )


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def key_from_metadata(metadata: tuple[tuple[str, str | bytes], ...]) -> str:
    """`authorization: Bearer <key>` or `x-api-key: <key>`."""
    for name, value in metadata:
        if isinstance(value, bytes):
            continue
        if name == "authorization":
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif name == "x-api-key" and value.strip():
            return value.strip()
    raise Unauthenticated(
        "Send an API key as 'authorization: Bearer <key>' or 'x-api-key: <key>'.",
        reason="MISSING_CREDENTIALS",
    )
