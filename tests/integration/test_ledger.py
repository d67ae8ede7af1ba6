"""Balances and the append-only ledger (SPEC §7): GetBalance, AdjustBalance, ListLedgerEntries.
A balance never goes below zero and always equals the sum of its entries."""

import grpc
import pytest
from rewards.v1 import catalog_pb2, common_pb2, participants_pb2

from rewards_service.store.db import session
from rewards_service.store.models import LedgerEntry
from tests import factories as f
from tests.conftest import new_program
from tests.helpers import expect_failure, make_api
from tests.invariants import assert_invariants

K = common_pb2.LedgerEntryKind


def adjust(api, participant_id: str, asset_id: str, delta: str, **fields):
    return api.participants.AdjustBalance(
        participants_pb2.AdjustBalanceRequest(
            participant=f.ref(participant_id), asset_id=asset_id, delta=delta, **fields
        )
    )


def amounts(balance) -> tuple[str, str, str]:
    return balance.available, balance.lifetime_earned, balance.lifetime_spent


@pytest.mark.parametrize(("scale", "zero"), [(0, "0"), (2, "0.00"), (8, "0.00000000")])
def test_balance_of_an_untouched_asset_is_zero(admin, scale, zero):
    points = f.asset(admin, scale=scale)
    user = f.participant(admin)
    got = f.balance(admin, user.id, points.id)
    assert (got.participant_id, got.asset_id) == (user.id, points.id)
    assert amounts(got) == (zero, zero, zero)
    assert f.ledger_entries(admin, user.id) == []
    f.assert_ledger_consistent(admin, user.id, points.id)


def test_balance_of_an_unknown_or_foreign_asset_is_not_found(admin, channel):
    user = f.participant(admin)
    failure = expect_failure(f.balance, admin, user.id, "ast_missing")
    assert (failure.code, failure.reason) == (grpc.StatusCode.NOT_FOUND, "ASSET_NOT_FOUND")
    issued = new_program("other")
    other = make_api(channel, issued.program_id, issued.api_key)
    theirs = f.asset(other)
    assert expect_failure(f.balance, admin, user.id, theirs.id).reason == "ASSET_NOT_FOUND"
    assert expect_failure(f.fund, admin, user.id, theirs.id, "1.00").reason == "ASSET_NOT_FOUND"
    assert expect_failure(f.balance, other, user.id, theirs.id).reason == "PARTICIPANT_NOT_FOUND"


def test_adjust_positive_and_negative(admin):
    points = f.asset(admin)
    user = f.participant(admin)
    up = adjust(admin, user.id, points.id, "100.50", reason="welcome")
    assert not up.idempotent_replay
    assert (up.entry.kind, up.entry.delta, up.entry.balance_after) == (
        K.LEDGER_ENTRY_KIND_ADJUST,
        "100.50",
        "100.50",
    )
    assert (up.entry.reason, up.entry.issuance_id) == ("welcome", "")
    assert up.entry.id.startswith("led_")
    assert amounts(up.balance) == ("100.50", "100.50", "0.00")
    down = adjust(admin, user.id, points.id, "-40.25", reason="correction")
    assert (down.entry.delta, down.entry.balance_after) == ("-40.25", "60.25")
    assert amounts(down.balance) == ("60.25", "100.50", "40.25")
    assert amounts(f.balance(admin, user.id, points.id)) == ("60.25", "100.50", "40.25")
    to_zero = adjust(admin, user.id, points.id, "-60.25")
    assert amounts(to_zero.balance) == ("0.00", "100.50", "100.50")
    f.assert_ledger_consistent(admin, user.id, points.id)


@pytest.mark.parametrize("start", [None, "10.00"])
def test_adjust_below_zero_is_insufficient_balance(admin, start):
    points = f.asset(admin)
    user = f.participant(admin)
    if start:
        adjust(admin, user.id, points.id, start)
    failure = f.refused(
        admin,
        lambda: adjust(admin, user.id, points.id, "-10.01", request_id="too-much"),
        balances=((user.id, points.id),),
    )
    assert failure.code == grpc.StatusCode.FAILED_PRECONDITION
    assert failure.reason == "INSUFFICIENT_BALANCE"
    assert failure.metadata == {
        "asset_id": points.id,
        "required": "10.01",
        "available": start or "0.00",
    }
    f.assert_ledger_consistent(admin, user.id, points.id)
    # Nothing was recorded under the request_id: it works once the balance covers it.
    adjust(admin, user.id, points.id, "0.01")
    if not start:
        adjust(admin, user.id, points.id, "10.00")
    retried = adjust(admin, user.id, points.id, "-10.01", request_id="too-much")
    assert not retried.idempotent_replay
    assert retried.balance.available == "0.00"
    f.assert_ledger_consistent(admin, user.id, points.id)


def test_adjust_replay_and_conflict(admin):
    points = f.asset(admin)
    user, other = f.participant(admin), f.participant(admin)
    first = adjust(admin, user.id, points.id, "25.00", request_id="adj-1", reason="promo")
    watched = {"balances": ((user.id, points.id), (other.id, points.id))}
    before = f.snapshot(admin, **watched)
    again = adjust(admin, user.id, points.id, "25.00", request_id="adj-1", reason="promo")
    assert again.idempotent_replay
    assert again.entry == first.entry
    assert again.balance == first.balance
    assert f.snapshot(admin, **watched) == before
    for changed in (
        lambda: adjust(admin, user.id, points.id, "26.00", request_id="adj-1"),
        lambda: adjust(admin, user.id, points.id, "-25.00", request_id="adj-1"),
        lambda: adjust(admin, other.id, points.id, "25.00", request_id="adj-1"),
    ):
        failure = f.refused(admin, changed, **watched)
        assert failure.code == grpc.StatusCode.ALREADY_EXISTS
        assert failure.reason == "IDEMPOTENCY_KEY_REUSED"
        assert failure.metadata["request_id"] == "adj-1"
    f.assert_ledger_consistent(admin, user.id, points.id)
    f.assert_ledger_consistent(admin, other.id, points.id)


def test_adjust_replay_of_an_equal_amount_written_differently(admin):
    points = f.asset(admin)
    user = f.participant(admin)
    first = adjust(admin, user.id, points.id, "5", request_id="adj-eq")
    again = adjust(admin, user.id, points.id, "5.00", request_id="adj-eq")
    assert again.idempotent_replay and again.entry.id == first.entry.id
    assert f.balance(admin, user.id, points.id).available == "5.00"
    f.assert_ledger_consistent(admin, user.id, points.id)


def test_adjust_request_ids_are_per_program(admin, channel):
    issued = new_program("other")
    other = make_api(channel, issued.program_id, issued.api_key)
    made = {}
    for api in (admin, other):
        user, points = f.participant(api), f.asset(api)
        made[api.program_id] = adjust(api, user.id, points.id, "1.00", request_id="same")
        assert not made[api.program_id].idempotent_replay
        assert f.balance(api, user.id, points.id).available == "1.00"
        f.assert_ledger_consistent(api, user.id, points.id)
    mine, theirs = made[admin.program_id].entry, made[other.program_id].entry
    assert mine.id != theirs.id
    again = adjust(admin, mine.participant_id, mine.asset_id, "1.00", request_id="same")
    assert again.idempotent_replay and again.entry.id == mine.id


@pytest.mark.parametrize(
    ("scale", "delta"),
    [(2, "1.001"), (0, "1.5"), (2, "0"), (2, "-0.00"), (2, "abc"), (2, ""), (2, "1e3"), (2, "+5")],
)
def test_adjust_delta_must_fit_the_asset(admin, scale, delta):
    points = f.asset(admin, scale=scale)
    user = f.participant(admin)
    f.fund(admin, user.id, points.id, "10" if scale == 0 else "10.00")
    failure = f.refused(
        admin, lambda: adjust(admin, user.id, points.id, delta), balances=((user.id, points.id),)
    )
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.reason == "VALIDATION_FAILED"
    assert set(failure.violations) == {"delta"}
    f.assert_ledger_consistent(admin, user.id, points.id)


@pytest.mark.parametrize("delta", ["NaN", "1e9999", " 1", "1_000"])
def test_a_malformed_delta_is_refused_before_anything_is_looked_up(admin, delta):
    points = f.asset(admin)
    user = f.participant(admin)
    adjust(admin, user.id, points.id, "1.00", request_id="used")
    for participant_id, asset_id, fields in (
        ("par_nobody", points.id, {}),
        (user.id, "ast_nothing", {}),
        (user.id, points.id, {"request_id": "used"}),
    ):
        failure = expect_failure(adjust, admin, participant_id, asset_id, delta, **fields)
        assert (failure.reason, set(failure.violations)) == ("VALIDATION_FAILED", {"delta"})


def test_adjust_delta_with_a_trailing_newline_is_refused(admin):
    points = f.asset(admin)
    user = f.participant(admin)
    failure = f.refused(
        admin, lambda: adjust(admin, user.id, points.id, "5.00\n"), balances=((user.id, points.id),)
    )
    assert set(failure.violations) == {"delta"}


def test_adjust_too_large_is_refused(admin):
    points = f.asset(admin, scale=2)
    user = f.participant(admin)
    failure = f.refused(
        admin,
        lambda: adjust(admin, user.id, points.id, "99999999999999999999"),
        balances=((user.id, points.id),),
    )
    assert set(failure.violations) == {"delta"}


def test_adjust_validates_its_other_fields(admin):
    failure = f.refused(
        admin,
        lambda: admin.participants.AdjustBalance(
            participants_pb2.AdjustBalanceRequest(
                delta="1.00", reason="r" * 1001, request_id="bad id"
            )
        ),
    )
    assert set(failure.violations) == {"participant", "asset_id", "reason", "request_id"}


def test_ledger_entries_newest_first_with_kinds_and_balance_after(admin):
    points = f.asset(admin)
    miles = f.asset(admin, "MILES", scale=0)
    user = f.participant(admin)
    adjust(admin, user.id, points.id, "50.00", reason="seed")
    priced = f.reward(admin, cost_asset_id=points.id, unit_cost="20")
    bonus = f.reward(admin, points=catalog_pb2.PointsConfig(asset_id=points.id, amount="5"))
    bought = f.issue(admin, priced.id, user.id).issuance
    earned = f.issue(admin, bonus.id, user.id).issuance
    f.revoke(admin, bought.id, "refund")
    adjust(admin, user.id, miles.id, "300")
    adjust(admin, user.id, points.id, "-15.00")
    entries = f.ledger_entries(admin, user.id, points.id)
    assert [(e.kind, e.delta, e.balance_after, e.issuance_id) for e in entries] == [
        (K.LEDGER_ENTRY_KIND_ADJUST, "-15.00", "40.00", ""),
        (K.LEDGER_ENTRY_KIND_REVERSAL, "20.00", "55.00", bought.id),
        (K.LEDGER_ENTRY_KIND_EARN, "5.00", "35.00", earned.id),
        (K.LEDGER_ENTRY_KIND_SPEND, "-20.00", "30.00", bought.id),
        (K.LEDGER_ENTRY_KIND_ADJUST, "50.00", "50.00", ""),
    ]
    assert entries[1].reason == "refund" and entries[-1].reason == "seed"
    assert all(e.participant_id == user.id and e.asset_id == points.id for e in entries)
    times = [e.created_at.ToDatetime() for e in entries]
    assert times == sorted(times, reverse=True)
    # Without an asset: every asset's entries, still newest first.
    every = f.ledger_entries(admin, user.id)
    assert len(every) == 6
    assert [e.asset_id for e in every[:2]] == [points.id, miles.id]
    assert [e.id for e in every] == sorted((e.id for e in every), reverse=True)
    got = f.balance(admin, user.id, points.id)
    assert amounts(got) == ("40.00", "55.00", "15.00")
    f.assert_ledger_consistent(admin, user.id, points.id)
    f.assert_ledger_consistent(admin, user.id, miles.id)


def test_ledger_entries_page_without_duplicates_or_gaps(admin):
    points = f.asset(admin, scale=0)
    user = f.participant(admin)
    made = [adjust(admin, user.id, points.id, str(i + 1)).entry.id for i in range(7)]
    pages, token = [], ""
    while True:
        page = admin.participants.ListLedgerEntries(
            participants_pb2.ListLedgerEntriesRequest(
                participant=f.ref(user.id), asset_id=points.id, page_size=3, page_token=token
            )
        )
        pages.append([e.id for e in page.entries])
        token = page.next_page_token
        if not token:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [i for page in pages for i in page] == list(reversed(made))
    assert f.balance(admin, user.id, points.id).available == "28"
    f.assert_ledger_consistent(admin, user.id, points.id)


def test_ledger_entries_of_an_unknown_participant(admin):
    failure = expect_failure(
        admin.participants.ListLedgerEntries,
        participants_pb2.ListLedgerEntriesRequest(participant=f.ref(external_id="nobody")),
    )
    assert (failure.code, failure.reason) == (grpc.StatusCode.NOT_FOUND, "PARTICIPANT_NOT_FOUND")


def test_a_reader_reads_balances_and_entries(admin, api_for):
    points = f.asset(admin)
    user = f.participant(admin)
    adjust(admin, user.id, points.id, "3.00")
    reader = api_for(admin.program_id, "reader")
    assert f.balance(reader, user.id, points.id).available == "3.00"
    assert len(f.ledger_entries(reader, user.id)) == 1
    f.assert_ledger_consistent(reader, user.id, points.id)


def test_entries_list_in_commit_order_when_a_replicas_clock_is_behind(admin):
    """Ids are time-ordered per process only. An entry written later by a replica whose clock
    is behind gets an id that sorts first; the account's sequence still lists it newest."""
    points = f.asset(admin)
    reward = f.reward(admin, cost_asset_id=points.id, unit_cost="10")
    user = f.participant(admin)
    f.fund(admin, user.id, points.id, "100")
    f.issue(admin, reward.id, user.id)
    with session():
        first, last = (
            LedgerEntry.select()
            .where((LedgerEntry.participant == user.id) & (LedgerEntry.asset == points.id))
            .order_by(LedgerEntry.created_at)
        )
        # The later entry's id sorts just before the first's, as another host's could. The
        # first is renamed first: its id may already end in the later one's new last digit.
        LedgerEntry.update(id=f"{first.id[:-1]}1").where(LedgerEntry.id == first.id).execute()
        LedgerEntry.update(id=f"{first.id[:-1]}0").where(LedgerEntry.id == last.id).execute()
    entries = f.ledger_entries(admin, user.id, points.id)
    assert [(e.delta, e.balance_after) for e in entries] == [
        ("-10.00", "90.00"),
        ("100.00", "100.00"),
    ]
    f.assert_ledger_consistent(admin, user.id, points.id)
    assert_invariants(admin.program_id)


def test_lifetime_totals_are_bounded_like_balances(admin):
    """Earning and spending the most a balance holds, again and again, once overflowed the
    lifetime totals (INTERNAL on PostgreSQL, floating point on SQLite)."""
    points = f.asset(admin, scale=0)
    user = f.participant(admin)
    most = str(10**18 - 1)
    adjust(admin, user.id, points.id, most)
    adjust(admin, user.id, points.id, f"-{most}")
    assert amounts(f.balance(admin, user.id, points.id)) == ("0", most, most)
    earned_more = expect_failure(adjust, admin, user.id, points.id, "1")
    assert (earned_more.code, set(earned_more.violations)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        {"delta"},
    )
    assert amounts(f.balance(admin, user.id, points.id)) == ("0", most, most)
    f.assert_ledger_consistent(admin, user.id, points.id)
    assert_invariants(admin.program_id)
