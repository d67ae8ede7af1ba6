"""The request_id protocol (services/replay.py) decided against a fake store: what runs,
what replays, and who answers a race, without a database."""

import asyncio

import pytest

from rewards_service.domain.errors import FailedPrecondition
from rewards_service.services.replay import Once
from rewards_service.store.db import Conflict


class FakeStore:
    """Runs a unit as the store's writer does: `work`, and when it breaks a unique key,
    `on_conflict` after the work's writes are gone (None: the clash stands)."""

    def __init__(self) -> None:
        self.transactions = 0

    def transaction(self, work, *, on_conflict=None, locks=(), reads=()):
        self.transactions += 1
        self.locks = locks
        try:
            return work()
        except Conflict:
            if on_conflict is None:
                raise
            answer = on_conflict()
            if answer is None:
                raise
            return answer

    async def write(self, work, **kwargs):
        return self.transaction(work, **kwargs)


class Calls:
    """earlier() answers from `found`, in turn; create() returns `made` or raises it."""

    def __init__(self, found: list, made: object = "new") -> None:
        self.found = list(found)
        self.made = made
        self.looked = 0
        self.created = 0

    def earlier(self):
        self.looked += 1
        return self.found.pop(0) if self.found else None

    def create(self):
        self.created += 1
        if isinstance(self.made, Exception):
            raise self.made
        return self.made


def once(calls: Calls, request_id: str = "req-1", **kwargs) -> Once:
    return Once(
        request_id, calls.earlier, calls.create, lambda r, replayed: (r, replayed), **kwargs
    )


def test_without_a_request_id_nothing_is_looked_up_and_the_work_runs_once():
    store, calls = FakeStore(), Calls(found=["never"])
    assert once(calls, "").run(store.transaction) == ("new", False)
    assert (calls.looked, calls.created, store.transactions) == (0, 1, 1)


def test_a_committed_request_id_replays_without_a_transaction():
    store, calls = FakeStore(), Calls(found=["first"])
    assert once(calls).run(store.transaction) == ("first", True)
    assert (calls.created, store.transactions) == (0, 0)


def test_a_first_call_committed_meanwhile_is_found_again_inside():
    store, calls = FakeStore(), Calls(found=[None, "first"])
    assert once(calls).run(store.transaction) == ("first", True)
    assert (calls.looked, calls.created) == (2, 0)


def test_the_loser_of_a_request_id_race_answers_with_the_winners_result():
    store, calls = FakeStore(), Calls(found=[None, None, "winner"], made=Conflict("unique"))
    assert once(calls).run(store.transaction) == ("winner", True)
    assert calls.created == 1


def test_a_clash_on_another_key_is_not_answered_as_a_replay():
    store, calls = FakeStore(), Calls(found=[], made=Conflict("another key"))
    with pytest.raises(Conflict):
        once(calls).run(store.transaction)


def test_without_a_request_id_a_clash_is_never_answered():
    store, calls = FakeStore(), Calls(found=["someone"], made=Conflict("unique"))
    with pytest.raises(Conflict):
        once(calls, "").run(store.transaction)
    assert calls.looked == 0


def test_a_refusal_from_the_answer_fails_the_call():
    store, calls = FakeStore(), Calls(found=[])
    refusal = FailedPrecondition("too large", reason="MESSAGE_TOO_LARGE")

    def refuse(row, replayed):
        raise refusal

    unit = Once("req-1", calls.earlier, calls.create, refuse)
    with pytest.raises(FailedPrecondition) as raised:
        unit.run(store.transaction)
    assert raised.value is refusal


def test_from_the_event_loop_the_lookup_is_part_of_the_unit():
    store, calls = FakeStore(), Calls(found=["first"])
    unit = once(calls, locks=[("reward", "rew_1")])
    assert asyncio.run(unit.run_async(store.write)) == ("first", True)
    # No read outside: the replay was found inside the one transaction, with its locks.
    assert (store.transactions, calls.looked) == (1, 1)
    assert store.locks == [("reward", "rew_1")]
