"""Server ids: prefixed, opaque, unique, and sorting in creation order."""

import re
import threading
import time
from types import SimpleNamespace

import pytest

from rewards_service.domain import ids
from rewards_service.domain.ids import new_id

CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
BODY = re.compile(rf"[{CROCKFORD}]{{26}}")


def _decode(text: str) -> int:
    value = 0
    for char in text:
        value = value * 32 + CROCKFORD.index(char)
    return value


@pytest.mark.parametrize("prefix", ["rew", "iss", "par", "pool", "ast"])
def test_an_id_is_its_prefix_and_26_base32_chars(prefix):
    made = new_id(prefix)
    head, _, body = made.partition("_")
    assert head == prefix
    assert BODY.fullmatch(body), made
    assert len(made) <= 40  # fits the id columns


def test_the_time_part_is_the_creation_millisecond():
    before = time.time_ns() // 1_000_000
    made = new_id("rew")
    after = time.time_ns() // 1_000_000
    assert before <= _decode(made[4:14]) <= after


def test_ids_made_in_a_burst_sort_in_creation_order_and_are_unique():
    made = [new_id("rew") for _ in range(5000)]
    assert len(set(made)) == len(made)
    assert made == sorted(made)


def test_ids_sort_across_milliseconds():
    made = []
    for _ in range(5):
        made.append(new_id("iss"))
        time.sleep(0.002)
        made.append(new_id("iss"))
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_ids_stay_ordered_when_the_clock_steps_back(monkeypatch):
    clock = iter([5_000_000, 5_000_000, 4_000_000, 3_000_000, 6_000_000])
    fake = SimpleNamespace(time_ns=lambda: next(clock) * 1_000_000)
    monkeypatch.setattr(ids, "time", fake)
    monkeypatch.setattr(ids, "_last_ms", 0)
    made = [new_id("rew") for _ in range(5)]
    assert made == sorted(made)
    assert len(set(made)) == 5
    # While the clock is behind, the last seen millisecond is kept.
    assert {_decode(m[4:14]) for m in made[:4]} == {5_000_000}
    assert _decode(made[4][4:14]) == 6_000_000


def test_ids_made_on_many_threads_are_unique():
    made: list[str] = []
    lock = threading.Lock()

    def work():
        mine = [new_id("par") for _ in range(500)]
        with lock:
            made.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 4000
    assert len(set(made)) == 4000


def test_ids_of_different_prefixes_are_different():
    assert new_id("rew")[4:] != new_id("rew")[4:]
    assert new_id("pool").startswith("pool_")


@pytest.mark.parametrize("length", [10, 16])
def test_encoding_round_trips_every_digit_position(length):
    bits = 5 * length
    for value in [0, 1, 31, 32, 1023, 1024, 2**bits - 1, *(2**k + 12345 for k in range(11, bits))]:
        value %= 2**bits
        encoded = ids._encode(value, length)
        assert len(encoded) == length
        assert _decode(encoded) == value
