"""The groups' use cases (services/groups.py) against an in-memory store: membership, the
balances members share and their ledger, what is refused and what a refusal leaves behind,
without a database."""

import pytest
from rewards.v1 import common_pb2

from rewards_service.domain.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from rewards_service.domain.ids import new_id
from rewards_service.domain.pagination import PageRequest
from rewards_service.domain.participants import ParticipantRef
from rewards_service.services import groups
from rewards_service.services.records import (
    GroupLedgerEntry,
    GroupMember,
    Participant,
    ParticipantGroup,
)
from rewards_service.store.db import Conflict
from rewards_service.store.models import GroupBalance
from tests.unit.fakes import Accounts, Untouchable, keyset_page

ADJUST = common_pb2.LEDGER_ENTRY_KIND_ADJUST
FIRST_PAGE = PageRequest(size=50, after=None, filters_digest="")


def _page(rows, key, page, *, descending=False):
    assert page.after is None, "these tests read first pages only"
    return keyset_page(rows, page, key, descending=descending)


class FakeGroupStore(Accounts):
    """The group tables in dicts, keeping what the schema keeps and no more: one membership
    per participant, one row per request_id in a program, and ledger.post's balance rule
    (never below zero)."""

    TABLES = ("groups", "members", "entries", "balances")
    ENTRY, BALANCE, OWNER = GroupLedgerEntry, GroupBalance, "group_id"

    def __init__(self) -> None:
        super().__init__()
        self.groups: dict[str, ParticipantGroup] = {}
        self.members: dict[str, GroupMember] = {}  # by participant, their primary key
        self.participants: dict[str, Participant] = {}  # by id: the participants' table

    def participants_with(self, program_id, column, value, *, limit):
        found = (
            r
            for r in self.participants.values()
            if r.program_id == program_id and getattr(r, column) == value
        )
        return sorted(found, key=lambda r: r.id)[:limit]

    @staticmethod
    def _check_request_id(row, rows) -> None:
        if row.request_id and any(
            other.program_id == row.program_id and other.request_id == row.request_id
            for other in rows.values()
        ):
            raise Conflict(f"UNIQUE constraint failed: {row._meta.table_name}.request_id")

    def find_by_request_id(self, kind, program_id, request_id):
        rows = self.groups if kind is ParticipantGroup else self.entries
        found = (
            r for r in rows.values() if (r.program_id, r.request_id) == (program_id, request_id)
        )
        return next(found, None)

    def add(self, row):
        self._writing()
        if isinstance(row, GroupMember):
            if row.participant_id in self.members:
                raise Conflict("UNIQUE constraint failed: group_member.participant_id")
            self.members[row.participant_id] = row
        else:
            self._check_request_id(row, self.groups)
            self.groups[row.id] = row

    def find_group(self, program_id, group_id):
        group = self.groups.get(group_id)
        return group if group is not None and group.program_id == program_id else None

    def groups_page(self, program_id, page):
        rows = [g for g in self.groups.values() if g.program_id == program_id]
        return _page(rows, lambda g: g.id, page)

    def membership(self, participant_id):
        return self.members.get(participant_id)

    def member(self, group_id, participant_id):
        found = self.members.get(participant_id)
        return found if found is not None and found.group_id == group_id else None

    def members_page(self, group_id, page):
        rows = [m for m in self.members.values() if m.group_id == group_id]
        return _page(rows, lambda m: m.participant_id, page)

    def delete(self, row):
        self._writing()
        del self.members[row.participant_id]

    def ledger_page(self, group_id, asset_id, page):
        assert page.after is None, "these tests read first pages only"
        return super().ledger_page(group_id, asset_id, page)

    def post(
        self, *, program_id, group_id, asset, delta, kind, reason, request_id, request_hash, field
    ):
        self._writing()
        assert kind == ADJUST, "the only kind these use cases post"
        entry = self._entry(
            group_id,
            asset,
            delta,
            program=program_id,
            kind=kind,
            reason=reason,
            request_id=request_id,
            request_hash=request_hash,
        )
        self._check_request_id(entry, self.entries)
        self._book(entry)
        return entry


class LateStore(FakeGroupStore):
    """Another call's write lands just after each of this call's next `misses` look-ups
    (of a membership, or of a request_id): they find nothing, and the insert then breaks
    the unique key."""

    misses = 0

    def _missed(self) -> bool:
        self.misses, missed = max(self.misses - 1, 0), self.misses > 0
        return missed

    def membership(self, participant_id):
        return None if self._missed() else super().membership(participant_id)

    def find_by_request_id(self, kind, program_id, request_id):
        if self._missed():
            return None
        return super().find_by_request_id(kind, program_id, request_id)


@pytest.fixture
def store():
    return FakeGroupStore()


@pytest.fixture
def program():
    return new_id("prg")


@pytest.fixture
def people(store):
    """The store's participants by id, which a use case finds through services.participants
    .resolve over the group store."""
    return store.participants


def person(people, program_id) -> ParticipantRef:
    participant = Participant(id=new_id("par"), program=program_id, external_id=new_id("ext"))
    people[participant.id] = participant
    return ParticipantRef("id", participant.id)


def group(store, program_id, name="Home") -> str:
    return groups.create_group(program_id, name, {}, "", store=store).id


def members(store, program_id, group_id) -> list[str]:
    rows, token = groups.list_members(program_id, group_id, FIRST_PAGE, store=store)
    assert token == ""
    return [row.participant_id for row in rows]


def adjust(store, program_id, group_id, asset, delta, request_id=""):
    return groups.adjust_group_balance(
        program_id, group_id, asset.id, delta, "goodwill", request_id, store=store
    )


def available(store, program_id, group_id, asset) -> int:
    return groups.get_group_balance(program_id, group_id, asset.id, store=store).available


# Groups


def test_a_group_is_created_found_and_listed_in_its_program_only(store, program):
    made = groups.create_group(program, "Home", {"city": "Oslo"}, "", store=store)
    assert groups.get_group(program, made.id, store=store) == made
    rows, _ = groups.list_groups(program, FIRST_PAGE, store=store)
    assert rows == [made]
    assert groups.list_groups(new_id("prg"), FIRST_PAGE, store=store)[0] == []
    with pytest.raises(NotFound) as refused:
        groups.get_group(new_id("prg"), made.id, store=store)
    assert refused.value.reason == "GROUP_NOT_FOUND"
    assert refused.value.metadata == {"id": made.id}


def test_a_create_request_id_replays_the_first_group_and_refuses_another(store, program):
    first = groups.create_group(program, "Home", {"a": "1", "b": "2"}, "req-1", store=store)
    # The same metadata in another order is the same request.
    again = groups.create_group(program, "Home", {"b": "2", "a": "1"}, "req-1", store=store)
    assert again.id == first.id
    with pytest.raises(AlreadyExists) as refused:
        groups.create_group(program, "Work", {}, "req-1", store=store)
    assert refused.value.reason == "IDEMPOTENCY_KEY_REUSED"
    assert refused.value.metadata == {"request_id": "req-1", "id": first.id}
    assert list(store.groups) == [first.id]


# Members


def test_a_participant_is_in_one_group_at_most(store, people, program):
    home, work = group(store, program, "Home"), group(store, program, "Work")
    ref = person(people, program)
    joined = groups.add_member(program, home, ref, store=store)
    assert (joined.group_id, joined.participant_id) == (home, ref.value)
    # Adding it again where it is returns the membership it has.
    assert groups.add_member(program, home, ref, store=store) is joined
    with pytest.raises(FailedPrecondition) as refused:
        groups.add_member(program, work, ref, store=store)
    assert refused.value.reason == "ALREADY_IN_GROUP"
    assert refused.value.metadata == {"participant_id": ref.value, "group_id": home}
    assert members(store, program, home) == [ref.value]
    assert members(store, program, work) == []


@pytest.mark.parametrize("where", ["same group", "another group"])
def test_a_participant_added_by_a_racing_call_is_answered_from_what_won(program, where):
    store = LateStore()
    home, work = group(store, program, "Home"), group(store, program, "Work")
    ref = person(store.participants, program)
    won = groups.add_member(program, home, ref, store=store)
    store.misses = 1  # this call's look-up misses what the other call added
    if where == "same group":
        assert groups.add_member(program, home, ref, store=store) is won
    else:
        with pytest.raises(FailedPrecondition) as refused:
            groups.add_member(program, work, ref, store=store)
        assert refused.value.reason == "ALREADY_IN_GROUP"
    assert members(store, program, home) == [ref.value]
    assert members(store, program, work) == []


def test_a_member_removed_may_join_another_group(store, people, program):
    home, work = group(store, program, "Home"), group(store, program, "Work")
    ref, stays = person(people, program), person(people, program)
    joined = groups.add_member(program, home, ref, store=store)
    groups.add_member(program, home, stays, store=store)
    assert groups.remove_member(program, home, ref, store=store) == joined
    assert members(store, program, home) == [stays.value]
    assert groups.add_member(program, work, ref, store=store).group_id == work


def test_removing_a_participant_not_in_the_group_is_refused_and_changes_nothing(
    store, people, program
):
    home, work = group(store, program, "Home"), group(store, program, "Work")
    ref = person(people, program)
    groups.add_member(program, home, ref, store=store)
    with pytest.raises(FailedPrecondition) as refused:
        groups.remove_member(program, work, ref, store=store)
    assert refused.value.reason == "NOT_GROUP_MEMBER"
    assert refused.value.metadata == {"participant_id": ref.value, "group_id": work}
    assert members(store, program, home) == [ref.value]
    groups.remove_member(program, home, ref, store=store)
    with pytest.raises(FailedPrecondition) as refused:
        groups.remove_member(program, home, ref, store=store)
    assert refused.value.reason == "NOT_GROUP_MEMBER"


def test_every_write_names_the_group_row_it_locks(store, people, program):
    home = group(store, program)
    asset = store.add_asset(program, 0)
    ref = person(people, program)
    store.locks.clear()
    groups.add_member(program, home, ref, store=store)
    groups.remove_member(program, home, ref, store=store)
    adjust(store, program, home, asset, "5")
    assert store.locks == [[(groups.GROUP_TABLE, home)]] * 3


# Balances


def test_an_adjustment_moves_the_group_balance_and_its_ledger(store, program):
    home = group(store, program)
    asset = store.add_asset(program, 2)
    assert available(store, program, home, asset) == 0
    entry, view, replayed = adjust(store, program, home, asset, "10.5")
    assert (entry.row.delta, entry.scale(asset.id), replayed) == (1050, 2, False)
    assert (view.available, view.lifetime_earned, view.lifetime_spent) == (1050, 1050, 0)
    entry, view, _ = adjust(store, program, home, asset, "-3")
    assert (view.available, view.lifetime_earned, view.lifetime_spent) == (750, 1050, 300)
    assert (view.group_id, view.asset_id, view.scale) == (home, asset.id, 2)
    assert available(store, program, home, asset) == 750

    other = store.add_asset(program, 0)
    adjust(store, program, home, other, "7")
    for asset_id, deltas in ((asset.id, [-300, 1050]), ("", [7, -300, 1050])):
        rows, _ = groups.list_group_ledger_entries(program, home, asset_id, FIRST_PAGE, store=store)
        assert [found.row.delta for found in rows] == deltas  # newest first
        assert [found.scale(found.row.asset_id) for found in rows] == [
            store.assets[found.row.asset_id].scale for found in rows
        ]


def test_an_adjustment_the_balance_does_not_cover_is_refused_and_changes_nothing(store, program):
    home = group(store, program)
    asset = store.add_asset(program, 0)
    adjust(store, program, home, asset, "5")
    with pytest.raises(FailedPrecondition) as refused:
        adjust(store, program, home, asset, "-6", "req-1")
    assert refused.value.reason == "INSUFFICIENT_BALANCE"
    assert available(store, program, home, asset) == 5
    assert len(store.entries) == 1


def test_a_delta_finer_than_the_asset_is_refused_and_changes_nothing(store, program):
    home = group(store, program)
    asset = store.add_asset(program, 1)
    with pytest.raises(InvalidArgument) as refused:
        adjust(store, program, home, asset, "1.25")
    assert [v.field for v in refused.value.violations] == ["delta"]
    assert store.entries == {}


def test_an_adjustment_request_id_replays_the_first_result(store, program):
    home = group(store, program)
    asset = store.add_asset(program, 2)
    first, _, _ = adjust(store, program, home, asset, "5", "req-1")
    # The same amount written another way is the same request.
    again, view, replayed = adjust(store, program, home, asset, "5.00", "req-1")
    assert (again.row.id, again.scale(asset.id), replayed) == (first.row.id, 2, True)
    assert view.available == 500
    assert len(store.entries) == 1


def test_an_adjustment_raced_by_its_own_retry_answers_with_the_winner(program):
    store = LateStore()
    home = group(store, program)
    asset = store.add_asset(program, 0)
    first, _, _ = adjust(store, program, home, asset, "5", "req-1")
    store.misses = 2  # the retry looks before and inside its transaction, and misses both
    again, view, replayed = adjust(store, program, home, asset, "5", "req-1")
    assert (again.row.id, replayed, view.available) == (first.row.id, True, 5)
    assert len(store.entries) == 1


@pytest.mark.parametrize("other", ["delta", "group", "asset"])
def test_an_adjustment_request_id_reused_for_another_one_is_refused(store, program, other):
    home, work = group(store, program, "Home"), group(store, program, "Work")
    asset, points = store.add_asset(program, 0), store.add_asset(program, 0)
    first, _, _ = adjust(store, program, home, asset, "5", "req-1")
    group_id, asset_used, delta = home, asset, "5"
    if other == "delta":
        delta = "6"
    elif other == "group":
        group_id = work
    else:
        asset_used = points
    with pytest.raises(AlreadyExists) as refused:
        adjust(store, program, group_id, asset_used, delta, "req-1")
    assert refused.value.reason == "IDEMPOTENCY_KEY_REUSED"
    assert refused.value.metadata == {"request_id": "req-1", "entry_id": first.row.id}
    assert len(store.entries) == 1
    assert available(store, program, home, asset) == 5


# What is not there


def test_what_is_not_there_is_not_found_and_changes_nothing(store, people, program):
    home = group(store, program)
    asset = store.add_asset(program, 0)
    ref = person(people, program)
    elsewhere = new_id("prg")
    stranger = person(people, elsewhere)
    missing = {
        "PARTICIPANT_NOT_FOUND": [
            lambda: groups.add_member(program, home, ParticipantRef("id", "par_nope"), store=store),
            lambda: groups.add_member(program, home, stranger, store=store),
            lambda: groups.remove_member(program, home, stranger, store=store),
        ],
        "GROUP_NOT_FOUND": [
            lambda: groups.add_member(program, "grp_nope", ref, store=store),
            lambda: groups.add_member(elsewhere, home, ref, store=store),
            lambda: groups.remove_member(program, "grp_nope", ref, store=store),
            lambda: groups.list_members(elsewhere, home, FIRST_PAGE, store=store),
            lambda: groups.get_group_balance(program, "grp_nope", asset.id, store=store),
            lambda: groups.list_group_ledger_entries(elsewhere, home, "", FIRST_PAGE, store=store),
            lambda: adjust(store, program, "grp_nope", asset, "5"),
            lambda: adjust(store, elsewhere, home, asset, "5"),
        ],
        "ASSET_NOT_FOUND": [
            lambda: groups.get_group_balance(program, home, "ast_nope", store=store),
            lambda: groups.list_group_ledger_entries(
                program, home, "ast_nope", FIRST_PAGE, store=store
            ),
            lambda: adjust(store, program, home, store.add_asset(elsewhere, 0), "5"),
        ],
    }
    for reason, calls in missing.items():
        for call in calls:
            with pytest.raises(NotFound) as refused:
                call()
            assert refused.value.reason == reason
    assert store.members == {}
    assert store.entries == {}
    assert store.balances == {}


# Validation


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: groups.create_group("prg_1", "", {}, "", store=s), "group.name"),
        (lambda s: groups.create_group("prg_1", "G", {"": "x"}, "", store=s), "group.metadata[]"),
        (lambda s: groups.create_group("prg_1", "G", {}, "\n", store=s), "request_id"),
        (lambda s: groups.add_member("prg_1", "grp_1", None, store=s), "participant"),
        (
            lambda s: groups.remove_member("prg_1", "grp_1", ParticipantRef("id", ""), store=s),
            "participant.id",
        ),
        (
            lambda s: groups.adjust_group_balance("prg_1", "", "ast_1", "5", "", "", store=s),
            "group_id",
        ),
        (
            lambda s: groups.adjust_group_balance("prg_1", "grp_1", "", "5", "", "", store=s),
            "asset_id",
        ),
        (
            lambda s: groups.adjust_group_balance(
                "prg_1", "grp_1", "ast_1", "ten", "", "", store=s
            ),
            "delta",
        ),
        (
            lambda s: groups.adjust_group_balance(
                "prg_1", "grp_1", "ast_1", "5", "x" * 1001, "", store=s
            ),
            "reason",
        ),
        (
            lambda s: groups.adjust_group_balance(
                "prg_1", "grp_1", "ast_1", "5", "", "x" * 1000, store=s
            ),
            "request_id",
        ),
    ],
)
def test_an_invalid_request_is_refused_before_the_store(call, field):
    with pytest.raises(InvalidArgument) as refused:
        call(Untouchable())
    assert [v.field for v in refused.value.violations] == [field]
