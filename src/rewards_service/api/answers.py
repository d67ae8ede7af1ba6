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

from collections.abc import Callable

from google.protobuf.message import Message

from rewards_service.store.db import change_token

REUSABLE = frozenset(
    {
        "/rewards.v1.RewardCatalog/GetReward",
        "/rewards.v1.RewardIssuance/GetIssuance",
        "/rewards.v1.RewardIssuance/IssueReward",
    }
)
MAX_ANSWERS = 4096
# Larger requests are answered afresh: a kept key costs its size, and a request may be 8 MiB.
MAX_REQUEST_BYTES = 4096

_Key = tuple[str, str, bytes]  # method, program, request bytes
_given: dict[_Key, tuple[bytes, Message]] = {}


def given_again(key: _Key, compute: Callable[[], Message]) -> Message:
    """The earlier answer to `key` if the store is unchanged since; else `compute()`'s, kept
    if nothing was committed while it was computed (it is then what the store held before).
    A refusal raises out of `compute` and is never kept."""
    if len(key[2]) > MAX_REQUEST_BYTES:
        return compute()
    token = change_token()
    found = _given.get(key)
    if token is not None and found is not None and found[0] == token:
        return found[1]
    answer = compute()
    if token is not None and change_token() == token:
        if len(_given) >= MAX_ANSWERS:
            _given.clear()
        _given[key] = (token, answer)
    return answer
