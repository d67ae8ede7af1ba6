"""The participants' use cases (services/participants.py) against an in-memory store: how a
ParticipantRef resolves, what an upsert creates or changes, what AdjustBalance posts, replays
and refuses, and what is not found, without a database."""

import json

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
from rewards_service.domain.participants import ParticipantRef, ParticipantSpec
from rewards_service.services import participants
from rewards_service.services.records import LedgerEntry, Participant
from rewards_service.store.db import Conflict
from rewards_service.store.models import Balance
from tests.unit.fakes import Accounts, Untouchable, copy_row, keyset_page

FIRST_PAGE = PageRequest(size=50, after=None, filters_digest="")
ADJUST = common_pb2.LEDGER_ENTRY_KIND_ADJUST


class FakeParticipantStore(Accounts):
    """Participants, assets, balances and ledger entries in dicts, keeping what the schema
    keeps (one external_id and one request_id per program, balances never below zero) and
    no more: the rules under test are the use cases'. Stored rows are never changed in place."""

    TABLES = ("participants", "balances", "entries")
    ENTRY, BALANCE, OWNER = LedgerEntry, Balance, "participant_id"

    def __init__(self) -> None:
        super().__init__()
        self.participants: dict[str, Participant] = {}
        self.lookups: list[tuple[str, str, int]] = []  # participants_with(): (column, value, limit)

    # Participants

    def _of(self, program_id):
        return [r for r in self.participants.values() if r.program_id == program_id]

    def participants_with(self, program_id, column, value, *, limit):
        self.lookups.append((column, value, limit))
        found = sorted(
            (r for r in self._of(program_id) if getattr(r, column) == value), key=lambda r: r.id
        )
        return [copy_row(r) for r in found[:limit]]

    def participant(self, participant_id):
        if participant_id not in self.participants:
            raise Participant.DoesNotExist(participant_id)
        return copy_row(self.participants[participant_id])

    def find_external(self, program_id, external_id):
        found = [r for r in self._of(program_id) if r.external_id == external_id]
        return copy_row(found[0]) if found else None

    def add(self, row):
        self._writing()
        assert isinstance(row, Participant), "the use cases add participants only"
        if any(other.external_id == row.external_id for other in self._of(row.program_id)):
            raise Conflict("UNIQUE constraint failed: participant.program_id, external_id")
        self.participants[row.id] = copy_row(row)

    def save(self, row):
        self._writing()
        assert row.id in self.participants, "a save of a participant never added"
        self.participants[row.id] = copy_row(row)

    def page(self, program_id, page, *, segment, email, mobile):
        rows = [
            r
            for r in self._of(program_id)
            if (not email or r.email == email)
            and (not mobile or r.mobile == mobile)
            # The real store's match is by text too: it may keep rows that do not hold it.
            and segment in json.dumps(r.segments)
        ]
        shown, token = keyset_page(rows, page, lambda r: r.id)
        return [copy_row(r) for r in shown], token

    # Assets, balances and the ledger

    def find_by_request_id(self, kind, program_id, request_id):
        assert kind is LedgerEntry, "the use cases look request_ids up among entries only"
        found = (
            e
            for e in self.entries.values()
            if e.program_id == program_id and e.request_id == request_id
        )
        return next(found, None)

    def post(self, *, program_id, participant_id, asset, delta, kind, reason, **request):
        self._writing()
        request_id = request.get("request_id")
        if request_id and self.find_by_request_id(LedgerEntry, program_id, request_id):
            raise Conflict("UNIQUE constraint failed: ledger_entry.program_id, request_id")
        entry = self._entry(
            participant_id,
            asset,
            delta,
            program=program_id,
            kind=kind,
            reason=reason,
            request_id=request_id,
            request_hash=request.get("request_hash", ""),
        )
        self._book(entry)
        return entry


class RacedStore(FakeParticipantStore):
    """Another call creates each participant just after this one looked for it: the first
    look-up misses, and the insert breaks the unique key."""

    def __init__(self) -> None:
        super().__init__()
        self.missed = False

    def find_external(self, program_id, external_id):
        if not self.missed:
            self.missed = True
            return None
        return super().find_external(program_id, external_id)


@pytest.fixture
def store():
    return FakeParticipantStore()


@pytest.fixture
def program():
    return new_id("prg")


def upsert(store, program, paths=(), **fields) -> Participant:
    return participants.upsert_participant(
        program, ParticipantSpec(**fields), set(paths), store=store
    )


def ref(kind: str, value: str) -> ParticipantRef:
    return ParticipantRef(kind, value)


def adjust(store, program, who, asset_id, delta, request_id="", reason="goodwill"):
    return participants.adjust_balance(
        program, who, asset_id, delta, reason, request_id, store=store
    )


# Resolving a ParticipantRef


def test_identifiers_are_looked_up_in_their_normalised_form(store, program):
    ann = upsert(store, program, external_id="ann", email="ann@example.com", mobile="+4412345")
    for given in (
        ref("id", ann.id),
        ref("external_id", "\uff41nn\u200b"),  # full-width a, a zero-width space
        ref("email", " ANN@Example.com"),
        ref("mobile", "+44 12 345"),
    ):
        store.lookups.clear()
        assert participants.resolve(program, given, store=store).id == ann.id
        # One query for at most two rows: enough to tell one participant from several.
        assert store.lookups == [(given.kind, getattr(ann, given.kind), 2)]


def test_a_ref_naming_nobody_is_not_found(store, program):
    ann = upsert(store, program, external_id="ann", email="ann@example.com")
    for kind, value, stored in (
        ("id", "par_missing", "par_missing"),
        ("external_id", " Bob ", "Bob"),
        ("email", "BOB@example.com", "bob@example.com"),
    ):
        with pytest.raises(NotFound) as refused:
            participants.resolve(program, ref(kind, value), store=store)
        assert refused.value.reason == "PARTICIPANT_NOT_FOUND"
        assert refused.value.metadata == {kind: stored}
    # Another program's participant is nobody here.
    with pytest.raises(NotFound):
        participants.resolve(new_id("prg"), ref("id", ann.id), store=store)


def test_a_shared_email_or_mobile_is_ambiguous(store, program):
    ann = upsert(store, program, external_id="ann", email="home@example.com", mobile="+4400")
    bob = upsert(store, program, external_id="bob", email="home@example.com", mobile="+4400")
    for kind, value in (("email", "HOME@example.com"), ("mobile", "+44 00")):
        with pytest.raises(FailedPrecondition) as refused:
            participants.resolve(program, ref(kind, value), store=store)
        assert refused.value.reason == "AMBIGUOUS_PARTICIPANT"
        assert refused.value.metadata == {kind: getattr(ann, kind)}
    # The unique identifiers still tell them apart.
    assert participants.resolve(program, ref("external_id", "bob"), store=store).id == bob.id
    assert participants.resolve(program, ref("id", ann.id), store=store).id == ann.id


def test_a_participant_is_got_by_id_or_by_one_ref(store, program):
    ann = upsert(store, program, external_id="ann", email="ann@example.com")
    assert participants.get_participant(program, ann.id, store=store).id == ann.id
    by_email = participants.get_participant(
        program, "", ref("email", "ann@example.com"), store=store
    )
    assert by_email.id == ann.id
    with pytest.raises(NotFound) as refused:
        participants.get_participant(program, "par_missing", store=store)
    assert refused.value.metadata == {"id": "par_missing"}


def test_a_get_by_id_and_ref_at_once_is_refused_before_the_store(program):
    with pytest.raises(InvalidArgument) as refused:
        participants.get_participant(program, "par_1", ref("email", "a@b"), store=Untouchable())
    assert [v.field for v in refused.value.violations] == ["id"]


# UpsertParticipant


def test_an_upsert_creates_then_updates_by_external_id(store, program):
    created = upsert(
        store,
        program,
        external_id="ann",
        email="Ann@Example.com",
        mobile="+44 1234",
        segments=[{"segment": "gold", "partition": "eu"}],
    )
    assert created.id.startswith("par_")
    assert (created.external_id, created.email, created.mobile) == (
        "ann",
        "ann@example.com",
        "+441234",
    )
    updated = upsert(store, program, external_id=" \uff41nn", email="new@example.com")
    assert updated.id == created.id
    assert updated.created_at == created.created_at
    # Without a mask every updatable field takes the request's value, cleared ones included.
    assert (updated.email, updated.mobile, updated.segments) == ("new@example.com", None, [])
    assert list(store.participants) == [created.id]
    assert store.participant(created.id).email == "new@example.com"
    # An external_id is the program's own: another program creates its own participant.
    assert upsert(store, new_id("prg"), external_id="ann").id != created.id


def test_the_update_mask_limits_the_change(store, program):
    created = upsert(
        store,
        program,
        external_id="ann",
        email="old@example.com",
        mobile="+4400",
        segments=[{"segment": "gold", "partition": "eu"}],
    )
    upsert(store, program, ["email"], external_id="ann", email="new@example.com", mobile="+4411")
    kept = store.participant(created.id)
    assert (kept.email, kept.mobile) == ("new@example.com", "+4400")
    assert kept.segments == [{"segment": "gold", "partition": "eu"}]
    upsert(store, program, ["segments", "mobile"], external_id="ann")
    kept = store.participant(created.id)
    assert (kept.email, kept.mobile, kept.segments) == ("new@example.com", None, [])


@pytest.mark.parametrize("path", ["external_id", "id", "nickname"])
def test_a_mask_naming_an_immutable_or_unknown_field_is_refused_before_the_store(path, program):
    with pytest.raises(InvalidArgument) as refused:
        upsert(Untouchable(), program, ["email", path], external_id="ann")
    assert [v.field for v in refused.value.violations] == ["update_mask"]


def test_an_invalid_participant_is_refused_before_the_store(program):
    with pytest.raises(InvalidArgument) as refused:
        upsert(Untouchable(), program, external_id="\u200b", email="not an address")
    assert [v.field for v in refused.value.violations] == [
        "participant.external_id",
        "participant.email",
    ]


def test_the_loser_of_a_race_to_create_updates_instead(program):
    store = RacedStore()
    first = Participant(id="par_first", program=program, external_id="ann", segments=[])
    store.transaction(lambda: store.add(first))  # the other call's, already committed
    won = upsert(store, program, external_id="ann", email="ann@example.com")
    assert won.id == "par_first"
    assert list(store.participants) == ["par_first"]
    assert store.participant("par_first").email == "ann@example.com"


# ListParticipants


def test_a_segment_filter_keeps_only_participants_holding_it(store, program):
    def held(*pairs):
        return [{"segment": s, "partition": p} for s, p in pairs]

    gold_eu = upsert(store, program, external_id="a", segments=held(("gold", "eu")))
    gold_us = upsert(store, program, external_id="b", segments=held(("gold", "us")))
    upsert(store, program, external_id="c", segments=held(("tier", "gold")))  # mentions it
    upsert(store, program, external_id="d", segments=held(("goldish", "eu")))

    def listed(segment, partition=""):
        rows, token = participants.list_participants(
            program,
            FIRST_PAGE,
            segment=segment,
            partition=partition,
            email="",
            mobile="",
            store=store,
        )
        assert token == ""
        return {r.id for r in rows}

    assert listed("gold") == {gold_eu.id, gold_us.id}
    assert listed("gold", "eu") == {gold_eu.id}
    assert len(listed("")) == 4


# Balances and the ledger


def test_a_balance_never_moved_is_zero(store, program):
    ann = upsert(store, program, external_id="ann")
    asset = store.add_asset(program, scale=3)
    view = participants.get_balance(program, ref("id", ann.id), asset.id, store=store)
    assert view == participants.BalanceView(ann.id, asset.id, 3, 0, 0, 0)


def test_what_is_not_there_is_not_found_participant_first(store, program):
    ann = upsert(store, program, external_id="ann")
    asset = store.add_asset(program)
    elsewhere = store.add_asset(new_id("prg"))
    nobody = ref("external_id", "nobody")
    for call in (
        lambda who, asset_id: participants.get_balance(program, who, asset_id, store=store),
        lambda who, asset_id: participants.list_ledger_entries(
            program, who, asset_id, FIRST_PAGE, store=store
        ),
        lambda who, asset_id: adjust(store, program, who, asset_id, "1"),
    ):
        for who, asset_id, reason in (
            (nobody, "ast_missing", "PARTICIPANT_NOT_FOUND"),
            (nobody, asset.id, "PARTICIPANT_NOT_FOUND"),
            (ref("id", ann.id), "ast_missing", "ASSET_NOT_FOUND"),
            (ref("id", ann.id), elsewhere.id, "ASSET_NOT_FOUND"),
        ):
            with pytest.raises(NotFound) as refused:
                call(who, asset_id)
            assert refused.value.reason == reason
    assert store.entries == {}


def test_an_adjustment_moves_the_balance_through_the_ledger(store, program):
    ann = upsert(store, program, external_id="ann", email="ann@example.com")
    asset = store.add_asset(program, scale=2)
    entry, view, replayed = adjust(
        store, program, ref("email", "ANN@example.com"), asset.id, "12.5"
    )
    assert not replayed
    assert (entry.row.participant_id, entry.row.delta, entry.row.kind) == (ann.id, 1250, ADJUST)
    assert (entry.row.reason, entry.scale(asset.id)) == ("goodwill", 2)
    assert view == participants.BalanceView(ann.id, asset.id, 2, 1250, 1250, 0)

    taken, view, _ = adjust(store, program, ref("id", ann.id), asset.id, "-0.5")
    assert taken.row.delta == -50
    assert (view.available, view.lifetime_earned, view.lifetime_spent) == (1200, 1250, 50)


def test_the_ledgers_refusal_leaves_the_request_id_unused(store, program):
    ann = ref("external_id", "ann")
    upsert(store, program, external_id="ann")
    asset = store.add_asset(program)
    with pytest.raises(FailedPrecondition) as refused:
        adjust(store, program, ann, asset.id, "-1", "req-1")
    assert refused.value.reason == "INSUFFICIENT_BALANCE"
    assert store.entries == {}
    adjust(store, program, ann, asset.id, "5", "req-2")
    _, view, replayed = adjust(store, program, ann, asset.id, "-1", "req-1")
    assert (view.available, replayed) == (400, False)


@pytest.mark.parametrize("delta", ["", "abc", "1e3", "1,5", "+-1"])
def test_a_delta_that_is_no_decimal_is_refused_before_any_look_up(delta, program):
    with pytest.raises(InvalidArgument) as refused:
        adjust(Untouchable(), program, ref("id", "par_1"), "ast_1", delta)
    assert [v.field for v in refused.value.violations] == ["delta"]


@pytest.mark.parametrize(
    ("who", "asset_id", "reason", "request_id", "field"),
    [
        (None, "ast_1", "", "", "participant"),
        (ref("email", ""), "ast_1", "", "", "participant.email"),
        (ref("id", "par_1"), "", "", "", "asset_id"),
        (ref("id", "par_1"), "ast_1", "x" * 1001, "", "reason"),
        (ref("id", "par_1"), "ast_1", "", "\n", "request_id"),
    ],
)
def test_an_invalid_adjustment_is_refused_before_the_store(
    who, asset_id, reason, request_id, field
):
    with pytest.raises(InvalidArgument) as refused:
        participants.adjust_balance(
            "prg_1", who, asset_id, "1", reason, request_id, store=Untouchable()
        )
    assert [v.field for v in refused.value.violations] == [field]


@pytest.mark.parametrize(("scale", "delta"), [(2, "0.001"), (0, "1.5"), (2, "0"), (2, "-0.00")])
def test_a_delta_is_checked_against_the_assets_scale(store, program, scale, delta):
    upsert(store, program, external_id="ann")
    asset = store.add_asset(program, scale=scale)
    with pytest.raises(InvalidArgument) as refused:
        adjust(store, program, ref("external_id", "ann"), asset.id, delta)
    assert [v.field for v in refused.value.violations] == ["delta"]
    assert store.entries == {}


def test_a_request_id_replays_the_first_adjustment(store, program):
    ann = upsert(store, program, external_id="ann", email="ann@example.com")
    asset = store.add_asset(program)
    first, _, _ = adjust(store, program, ref("external_id", "ann"), asset.id, "5", "req-1")
    # The same call, naming the participant any way and the delta in any spelling.
    for who, delta in ((ref("id", ann.id), "5.0"), (ref("email", "ann@example.com"), "5")):
        again, view, replayed = adjust(store, program, who, asset.id, delta, "req-1")
        assert replayed
        assert again.row.id == first.row.id
        assert view.available == 500
    assert len(store.entries) == 1


def test_a_request_id_reused_for_another_adjustment_is_refused(store, program):
    upsert(store, program, external_id="ann")
    bob = upsert(store, program, external_id="bob")
    asset = store.add_asset(program)
    other_asset = store.add_asset(program)
    first, _, _ = adjust(store, program, ref("external_id", "ann"), asset.id, "5", "req-1")
    for who, asset_id, delta in (
        (ref("external_id", "ann"), asset.id, "6"),
        (ref("external_id", "ann"), other_asset.id, "5"),
        (ref("external_id", "bob"), asset.id, "5"),
        (ref("id", bob.id), asset.id, "5"),
    ):
        with pytest.raises(AlreadyExists) as refused:
            adjust(store, program, who, asset_id, delta, "req-1")
        assert refused.value.reason == "IDEMPOTENCY_KEY_REUSED"
        assert refused.value.metadata == {"request_id": "req-1", "entry_id": first.row.id}
    assert len(store.entries) == 1
    # A request_id is the program's own.
    elsewhere = new_id("prg")
    upsert(store, elsewhere, external_id="ann")
    their_asset = store.add_asset(elsewhere)
    _, _, replayed = adjust(
        store, elsewhere, ref("external_id", "ann"), their_asset.id, "6", "req-1"
    )
    assert not replayed


def test_entries_are_listed_newest_first_by_account_or_all(store, program):
    ann = ref("external_id", "ann")
    upsert(store, program, external_id="ann")
    points, miles = store.add_asset(program), store.add_asset(program)
    made = [adjust(store, program, ann, a.id, "1")[0].row.id for a in (points, miles, points)]

    def listed(asset_id):
        rows, token = participants.list_ledger_entries(
            program, ann, asset_id, FIRST_PAGE, store=store
        )
        assert token == ""
        return [r.row.id for r in rows]

    assert listed(points.id) == [made[2], made[0]]
    assert listed("") == sorted(made, reverse=True)
