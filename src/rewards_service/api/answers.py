"""Answers given again: the calls repeated most (fetching a reward or an issuance, replaying
an IssueReward), sent again with the same bytes by the same program while nothing was
committed anywhere, get the answer they got before without being checked or looked up
again. Retries come in bursts (a client timing out, a queue redelivering), storefronts fetch
the same rewards over and over, and an answer is only reused while the store proves itself
unchanged (store/wal_header.py): it is exactly what running the call again would return.

Only answers that depend on nothing but the request, the program and the stored data are
reused, and only when nothing was committed while they were computed: an IssueReward answer
kept is therefore always a replay's, its original issuance as stored now. Refusals are never
reused (a window may open, a limit may roll over, without any commit).
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from google.protobuf.message import Message

from rewards_service.bounded import BoundedCache
from rewards_service.services.records import change_token

REUSABLE = frozenset(
    {
        "/rewards.v1.RewardCatalog/GetReward",
        "/rewards.v1.RewardIssuance/GetIssuance",
        "/rewards.v1.RewardIssuance/IssueReward",
    }
)
# What every kept answer may hold together, counted as the serialized sizes of its key and
# answer plus ENTRY_OVERHEAD; the oldest answers go first. Answers of any size may be kept
# under it, and a caller varying its requests only pushes out older answers.
MAX_BYTES = 16 * 1024 * 1024
ENTRY_OVERHEAD = 256
# Larger requests are answered afresh: a kept key costs its size, and a request may be 8 MiB.
MAX_REQUEST_BYTES = 4096

# A call is named by what its answer depends on: the method, the program, and the request as
# parsed, without unknown fields and serialized deterministically. Unknown fields change
# nothing in the answer, so varying them must not make new entries.
_Key = tuple[str, str, bytes]
_given: BoundedCache[_Key, tuple[bytes, Message]] = BoundedCache(MAX_BYTES)  # (token, answer)


def cached_bytes() -> int:
    """What the kept answers count for, in bytes (see MAX_BYTES)."""
    return _given.held_bytes()


def _key_of(method: str, program: str, request: Message) -> _Key | None:
    if getattr(request, "request_id", None) == "":
        return None  # an IssueReward without request_id is never a replay: nothing to reuse
    request.DiscardUnknownFields()
    if request.ByteSize() > MAX_REQUEST_BYTES:
        return None
    return method, program, request.SerializeToString(deterministic=True)


def _keep(key: _Key, token: bytes, answer: Message) -> None:
    cost = ENTRY_OVERHEAD + len(key[0]) + len(key[1]) + len(key[2]) + answer.ByteSize()
    _given.put(key, (token, answer), cost)


def _earlier(key: _Key, token: bytes) -> Message | None:
    """The answer kept for `key` if it is still current at `token`."""
    found = _given.get(key)
    if found is not None and found[0] == token:
        return found[1]
    return None


def _keep_if_unchanged(key: _Key | None, token: bytes | None, answer: Message) -> None:
    if key is not None and token is not None and change_token() == token:
        _keep(key, token, answer)


@dataclass(frozen=True, slots=True)
class Earlier:
    """What the kept answers hold for one call: its key (None when it is never kept), the
    change token read for it, and the answer kept under both, if any."""

    key: _Key | None
    token: bytes | None
    answer: Message | None


_NOTHING_KEPT = Earlier(None, None, None)


def look_up(call: tuple[str, str, Message]) -> Earlier:
    """The earlier answer to `call` (method, program, parsed request) while the store is
    unchanged since. It runs no query and takes no lock: the event loop asks it before it
    hands a call to a thread."""
    token = change_token()
    if token is None:  # nothing can be kept (PostgreSQL, a commit in progress): no key
        return _NOTHING_KEPT
    key = _key_of(*call)
    if key is None:
        return Earlier(None, token, None)
    return Earlier(key, token, _earlier(key, token))


def computed(earlier: Earlier, compute: Callable[[], Message]) -> Message:
    """`compute()`'s answer, kept if nothing was committed since `earlier` was looked up (it
    is then what the store held before). A refusal raises out of `compute` and is never
    kept."""
    answer = compute()
    _keep_if_unchanged(earlier.key, earlier.token, answer)
    return answer


async def computed_async(earlier: Earlier, compute: Callable[[], Awaitable[Message]]) -> Message:
    """`computed` for a servicer that runs on the event loop."""
    answer = await compute()
    _keep_if_unchanged(earlier.key, earlier.token, answer)
    return answer
