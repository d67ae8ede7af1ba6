"""The issuance use cases (services/issuance.py) against an in-memory store: the order in which
IssueReward checks, what it takes and pays, what a refusal leaves behind (nothing), code draws,
payment by a group, request_id replays, and the issuance's life after (claim, revoke,
fulfillment), without a database."""

import asyncio
import contextlib
import copy
import itertools
from datetime import timedelta

import pytest
from rewards.v1 import common_pb2 as common
from rewards.v1 import events_pb2 as events

from rewards_service.domain.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
)
from rewards_service.domain.ids import new_id
from rewards_service.domain.issuance import PAY_FROM_GROUP, GrantRequest, IssueRequest
from rewards_service.domain.pagination import PageRequest
from rewards_service.domain.participants import ParticipantRef
from rewards_service.services import issuance, registries
from rewards_service.services.groups import GROUP_TABLE
from rewards_service.services.records import CodePool, Issuance, Participant, Reward
from rewards_service.store.db import Conflict
from rewards_service.store.fields import utcnow
from tests.unit.fakes import RecordsEvents, Untouchable, copy_row, keyset_page
from tests.unit.test_participant_use_cases import FakeParticipantStore
from tests.unit.test_registry_use_cases import FakeRegistryStore

S = common.RewardStatus
T = common.RewardType
IS = common.IssuanceStatus
E = events.EventType
ACTIVE, INACTIVE = S.REWARD_STATUS_ACTIVE, S.REWARD_STATUS_INACTIVE
OUT_OF_STOCK = S.REWARD_STATUS_OUT_OF_STOCK
ADJUST = common.LEDGER_ENTRY_KIND_ADJUST
NOW = utcnow()
FUTURE = NOW + timedelta(days=365)
AVAILABLE, ISSUED, VOIDED = "available", "issued", "voided"
FIRST_PAGE = PageRequest(size=50, after=None, filters_digest="")


class FakeIssuanceStore(RecordsEvents, FakeParticipantStore):
    """The participants' fake (participants, assets, balances that never go below zero) with
    rewards, code pools and their codes, issuances, group memberships and events beside it,
    keeping what the schema keeps and no more: a conditional take of stock that takes nothing
    when too few are left, one issuance per request_id in a program."""

    TABLES = (
        "participants",
        "balances",
        "entries",
        "rewards",
        "pools",
        "codes",
        "issuance_rows",
        "members",
        "events",
    )
    DEEP_SNAPSHOT = True  # stock, pool counts, codes and statuses change in place

    def __init__(self) -> None:
        super().__init__()
        self.registries = FakeRegistryStore()
        self.rewards: dict[str, Reward] = {}
        self.pools: dict[str, CodePool] = {}
        # code id -> {"pool", "code", "status", "expires_at", "issuance_id"}
        self.codes: dict[int, dict] = {}
        self.issuance_rows: dict[str, Issuance] = {}
        self.members: dict[str, str] = {}  # participant -> group: one group at most
        self._code_ids = itertools.count(1)

    async def write(self, work, *, on_conflict=None, locks=(), reads=()):
        return self.transaction(work, on_conflict=on_conflict, locks=locks, reads=reads)

    def session(self):
        return contextlib.nullcontext()

    def post(self, *, group_id=None, issuance_id=None, **movement):
        # A group's balance is kept beside its members', by the group's id.
        if group_id is not None:
            movement["participant_id"] = group_id
        entry = super().post(**movement)
        entry.issuance_id = issuance_id
        return entry

    # Setting up (as committed before the call under test)

    def add_participant(self, program_id, external_id, segments=()) -> Participant:
        row = Participant(
            id=new_id("par"), program=program_id, external_id=external_id, segments=list(segments)
        )
        self.participants[row.id] = row
        return row

    def fund(self, owner_id, asset, amount):
        program_id = asset.program_id
        self.transaction(
            lambda: self.post(
                program_id=program_id,
                participant_id=owner_id,
                asset=asset,
                delta=amount,
                kind=ADJUST,
                reason="",
            )
        )

    def add_reward(self, program_id, **fields) -> Reward:
        values = {
            "name": "Mug",
            "type": T.REWARD_TYPE_PRODUCT,
            "status": ACTIVE,
            "config": {},
            "redemption_type": common.REDEMPTION_TYPE_UNIT_BASED,
            **fields,
        }
        row = Reward(id=new_id("rew"), program=program_id, **values)
        self.rewards[row.id] = row
        return row

    def add_pool(self, program_id, codes, low_stock_threshold=0) -> CodePool:
        """A pool with (code, expires_at) pairs; expired codes count as available, as stored."""
        pool = CodePool(
            id=new_id("cpl"),
            program=program_id,
            name="codes",
            total_count=len(codes),
            available_count=len(codes),
            low_stock_threshold=low_stock_threshold,
        )
        self.pools[pool.id] = pool
        for code, expires_at in codes:
            self.codes[next(self._code_ids)] = {
                "pool": pool.id,
                "code": code,
                "status": AVAILABLE,
                "expires_at": expires_at,
                "issuance_id": None,
            }
        return pool

    def stored(self, row):
        """A row as stored now."""
        table = {Reward: self.rewards, CodePool: self.pools, Issuance: self.issuance_rows}
        return table[type(row)][row.id]

    def available(self, owner_id, asset):
        return self.balance(owner_id, asset.id).available

    # Rewards and their stock

    def _took(self, row, units) -> bool:
        if row.status != ACTIVE or (
            row.max_total is not None and row.redeemed_count + units > row.max_total
        ):
            return False
        self._writing()
        row.redeemed_count += units
        return True

    def take_reward_for(self, program_id, reward_id, units, ref):
        row = self.rewards.get(reward_id)
        if row is None or row.program_id != program_id or not self._took(row, units):
            return None
        # As PostgreSQL does: the participant a unique identifier names, read with the reward.
        found = self.participants_with(program_id, *ref, limit=1) if ref else []
        version = self.registries.registry_version(program_id)
        return copy_row(row), version, found[0] if found else None

    def reward_to_issue(self, program_id, reward_id):
        row = self.rewards.get(reward_id)
        if row is None or row.program_id != program_id:
            raise NotFound(f"No reward {reward_id}.", reason="REWARD_NOT_FOUND")
        return copy_row(row), self.registries.registry_version(program_id)

    def take_stock(self, reward_id, units):
        row = self.rewards[reward_id]
        return (row.redeemed_count, row.max_total) if self._took(row, units) else None

    def reward(self, reward_id):
        return copy_row(self.rewards[reward_id])

    def issued_units(self, reward_id, participant_id, since):
        return sum(
            row.quantity
            for row in self.issuance_rows.values()
            if row.reward_id == reward_id
            and row.status != IS.ISSUANCE_STATUS_REVOKED
            and (participant_id is None or row.participant_id == participant_id)
            and (since is None or row.issued_at > since)
        )

    def group_of(self, participant_id):
        return self.members.get(participant_id)

    def known_asset(self, asset_id):
        return self.assets.get(asset_id)

    def _set_status(self, rows, status):
        self._writing()
        for row in rows:
            row.status, row.version = status, row.version + 1
            self.emit(row.program_id, E.EVENT_TYPE_REWARD_STATUS_CHANGED, row)

    def sell_out(self, reward_id):
        row = self.rewards[reward_id]
        if row.status == ACTIVE and row.max_total is not None:
            self._set_status([row] if row.redeemed_count >= row.max_total else [], OUT_OF_STOCK)

    def give_back_stock(self, reward_id, units):
        self._writing()
        self.rewards[reward_id].redeemed_count -= units

    def set_reward_status(self, reward_id, status):
        self._set_status([self.rewards[reward_id]], status)

    # Code pools and their codes

    def code_pool(self, pool_id):
        pool = self.pools.get(pool_id)
        return None if pool is None else copy_row(pool)

    def get_code_pool(self, program_id, pool_id, *, for_update=False):
        pool = self.code_pool(pool_id)
        if pool is None or pool.program_id != program_id:
            raise NotFound(f"No code pool {pool_id}.", reason="CODE_POOL_NOT_FOUND")
        return pool

    def _live(self, pool_id, now):
        return sorted(
            (code["expires_at"] or FUTURE + timedelta(days=1), code_id)
            for code_id, code in self.codes.items()
            if code["pool"] == pool_id
            and code["status"] == AVAILABLE
            and (code["expires_at"] is None or code["expires_at"] > now)
        )

    def has_live_code(self, pool_id, now):
        return bool(self._live(pool_id, now))

    def with_expired_count(self, pool, now=None):
        pool.expired_count = sum(
            code["status"] == AVAILABLE
            and code["expires_at"] is not None
            and code["expires_at"] <= (now or utcnow())
            for code in self.codes.values()
            if code["pool"] == pool.id
        )
        return pool

    def draw_code(self, pool_id, now):
        live = self._live(pool_id, now)
        if not live:
            return None
        code = self.codes[live[0][1]]
        return live[0][1], code["code"], code["expires_at"]

    def issue_code(self, code_id, issuance_id):
        self._writing()
        self.codes[code_id].update(status=ISSUED, issuance_id=issuance_id)

    def take_from_pool(self, pool_id):
        self._writing()
        pool = self.pools[pool_id]
        pool.available_count -= 1
        pool.issued_count += 1
        return copy_row(pool)

    def _pool_active(self, pool_id):
        return [
            r for r in self.rewards.values() if r.code_pool_id == pool_id and r.status == ACTIVE
        ]

    def pool_has_active_reward(self, pool_id):
        return bool(self._pool_active(pool_id))

    def sell_out_pool(self, pool_id):
        self._set_status(self._pool_active(pool_id), OUT_OF_STOCK)

    def void_codes(self, issuance_id):
        self._writing()
        for code in self.codes.values():
            if code["issuance_id"] == issuance_id:
                code["status"] = VOIDED

    # Issuances

    def find_by_request_id(self, kind, program_id, request_id):
        assert kind is Issuance, "the use cases look request_ids up among issuances only"
        found = (
            row
            for row in self.issuance_rows.values()
            if (row.program_id, row.request_id) == (program_id, request_id)
        )
        return next((copy_row(row) for row in found), None)

    def insert_issuance(self, row):
        self._writing()
        if row.request_id and any(
            (other.program_id, other.request_id) == (row.program_id, row.request_id)
            for other in self.issuance_rows.values()
        ):
            raise Conflict("UNIQUE constraint failed: issuance.program_id, issuance.request_id")
        self.issuance_rows[row.id] = copy_row(row)
        return row

    def add(self, row):
        assert isinstance(row, Issuance), "the use cases add issuances only"
        self.insert_issuance(row)

    def find_issuance(self, program_id, issuance_id, *, for_update=False):
        row = self.issuance_rows.get(issuance_id)
        return copy_row(row) if row is not None and row.program_id == program_id else None

    def save_issuance(self, row):
        self._writing()
        assert row.id in self.issuance_rows, "a save of an issuance never added"
        self.issuance_rows[row.id] = copy_row(row)

    def issuances(self, program_id, page, *, participant_id, **filters):
        assert page.after is None, "these tests read first pages only"
        reward_id, status = filters.pop("reward_id"), filters.pop("status")
        assert not any(filters.values()), "these tests filter by participant, reward, status"
        rows = [
            row
            for row in self.issuance_rows.values()
            if row.program_id == program_id
            and (not participant_id or row.participant_id == participant_id)
            and (not reward_id or row.reward_id == reward_id)
            and (not status or row.status == status)
        ]
        shown, token = keyset_page(rows, page, descending=True)
        return [copy_row(row) for row in shown], token


class RacedStore(FakeIssuanceStore):
    """Another call with the same request_id commits just after this one looked for it: the
    look-ups before the insert miss, and the insert breaks the unique key."""

    def __init__(self) -> None:
        super().__init__()
        self.misses = 0

    def find_by_request_id(self, kind, program_id, request_id):
        if self.misses:
            self.misses -= 1
            return None
        return super().find_by_request_id(kind, program_id, request_id)


@pytest.fixture
def store():
    return FakeIssuanceStore()


@pytest.fixture
def program():
    # A program of its own: the registries are cached by program and version.
    return new_id("prg")


def by_id(participant: Participant) -> ParticipantRef:
    return ParticipantRef("id", participant.id)


def issue(store, program, reward, participant, **fields):
    request = IssueRequest(reward_id=reward.id, participant=by_id(participant), **fields)
    return issuance.issue_reward(program, request, store=store)


def refusal(call) -> tuple[str, dict]:
    with pytest.raises((FailedPrecondition, InvalidArgument, AlreadyExists)) as refused:
        call()
    return refused.value.reason, refused.value.metadata


def state(store):
    """Everything an issue may change, by value (rows compare by primary key only)."""

    def plain(value):
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        if isinstance(value, list):
            return [plain(item) for item in value]
        return copy.deepcopy(getattr(value, "__data__", value))

    return {name: plain(getattr(store, name)) for name in store.TABLES}


# IssueReward


def test_an_issue_takes_stock_pays_and_records_the_issuance(store, program):
    points = store.add_asset(program, scale=2)
    ann = store.add_participant(program, "ann")
    store.fund(ann.id, points, 5000)
    reward = store.add_reward(program, max_total=10, unit_cost="10", cost_asset_id=points.id)

    found, replayed = issue(store, program, reward, ann, quantity=2)

    row = found.row
    assert not replayed
    assert (row.status, row.quantity, row.participant_id) == (
        IS.ISSUANCE_STATUS_CONFIRMED,
        2,
        ann.id,
    )
    assert (row.cost_asset_id, row.cost_amount, found.scale(points.id)) == (points.id, 2000, 2)
    assert store.available(ann.id, points) == 3000
    assert store.stored(reward).redeemed_count == 2
    assert store.stored(row).id == row.id
    assert store.events == [(E.EVENT_TYPE_ISSUANCE_ISSUED, row.id)]
    # The reward's row is the one every issue of it waits on.
    assert store.locks[-1] == [("reward", reward.id)]
    assert store.reads[-1] == []  # no request_id: nothing to look up


def test_an_issue_with_a_request_id_names_its_look_up_for_the_group_to_read_ahead(store, program):
    reward = store.add_reward(program)
    ann = store.add_participant(program, "ann")
    issue(store, program, reward, ann, request_id="order-1")
    assert store.reads[-1] == [("issuance", program, "order-1")]


def test_the_checks_run_in_the_contracts_order_and_a_refusal_changes_nothing(store, program):
    points = store.add_asset(program)
    ann = store.add_participant(program, "ann")
    bob = store.add_participant(program, "bob")
    reward = store.add_reward(
        program,
        status=INACTIVE,
        available_from=FUTURE,
        segments=[{"segment": "gold", "partition": ""}],
        max_total=5,
        redeemed_count=5,
        max_per_participant=1,
        limits=[{"scope": common.LIMIT_SCOPE_GLOBAL, "window_seconds": 3600, "max_quantity": 1}],
        unit_cost="1",
        cost_asset_id=points.id,
    )
    # Ann had one long ago (her lifetime cap); Bob one just now (everyone's hourly limit).
    for who, when in ((ann, NOW - timedelta(days=2)), (bob, NOW - timedelta(minutes=1))):
        earlier = Issuance(
            id=new_id("iss"),
            program=program,
            reward=reward.id,
            participant=who.id,
            type=reward.type,
            status=IS.ISSUANCE_STATUS_CONFIRMED,
            quantity=1,
            issued_at=when,
        )
        store.issuance_rows[earlier.id] = earlier
    fixes = [
        ("REWARD_NOT_ACTIVE", {"status": ACTIVE}),
        ("REWARD_NOT_AVAILABLE", {"available_from": None}),
        ("NOT_ELIGIBLE", {"segments": []}),
        ("OUT_OF_STOCK", {"max_total": None}),
        ("PARTICIPANT_LIMIT_REACHED", {"max_per_participant": None}),
        ("PARTICIPANT_LIMIT_REACHED", {"limits": []}),
        ("INSUFFICIENT_BALANCE", {}),
    ]
    windows = []
    for reason, fix in fixes:
        before = state(store)
        found, metadata = refusal(lambda: issue(store, program, reward, ann))
        assert found == reason
        windows.append(metadata.get("window"))
        assert state(store) == before
        for name, value in fix.items():
            setattr(store.rewards[reward.id], name, value)
    assert windows[4:6] == ["lifetime", "3600s"]

    store.fund(ann.id, points, 100)
    found, _ = issue(store, program, reward, ann)
    assert store.available(ann.id, points) == 0
    assert store.stored(reward).redeemed_count == 6


def test_a_manual_grant_skips_the_window_the_segments_and_the_rolling_limits(store, program):
    ann = store.add_participant(program, "ann")
    reward = store.add_reward(
        program,
        available_from=FUTURE,
        segments=[{"segment": "gold", "partition": ""}],
        limits=[{"scope": common.LIMIT_SCOPE_PARTICIPANT, "window_seconds": 60, "max_quantity": 1}],
    )
    assert refusal(lambda: issue(store, program, reward, ann))[0] == "REWARD_NOT_AVAILABLE"
    for _ in range(2):
        found, _ = issue(store, program, reward, ann, manual=True)
        assert found.row.manual
    assert store.stored(reward).redeemed_count == 2


def test_the_last_unit_sells_the_reward_out_at_once(store, program):
    ann = store.add_participant(program, "ann")
    reward = store.add_reward(program, max_total=3)
    issue(store, program, reward, ann, quantity=2)
    before = state(store)
    reason, metadata = refusal(lambda: issue(store, program, reward, ann, quantity=2))
    assert (reason, metadata) == (
        "OUT_OF_STOCK",
        {"limit": "3", "available": "1", "requested": "2"},
    )
    assert state(store) == before

    found, _ = issue(store, program, reward, ann)
    assert store.stored(reward).status == OUT_OF_STOCK
    assert store.events[-2:] == [
        (E.EVENT_TYPE_REWARD_STATUS_CHANGED, reward.id),
        (E.EVENT_TYPE_ISSUANCE_ISSUED, found.row.id),
    ]
    reason, metadata = refusal(lambda: issue(store, program, reward, ann))
    assert (reason, metadata) == ("OUT_OF_STOCK", {"limit": "3", "available": "0"})


def test_a_refusal_by_the_caller_after_every_effect_changes_nothing(store, program):
    points = store.add_asset(program)
    ann = store.add_participant(program, "ann")
    store.fund(ann.id, points, 1000)
    pool = store.add_pool(program, [("A-1", None), ("A-2", None)])
    reward = store.add_reward(
        program,
        type=T.REWARD_TYPE_UNIQUE_COUPON,
        config={"code_pool_id": pool.id},
        code_pool_id=pool.id,
        max_total=1,
        unit_cost="5",
        cost_asset_id=points.id,
    )
    before = state(store)

    def too_large(outcome):
        raise issuance.answer_too_large(10)

    with pytest.raises(ResourceExhausted):
        issuance.issue_reward(
            program,
            IssueRequest(reward_id=reward.id, participant=by_id(ann)),
            too_large,
            store=store,
        )
    assert state(store) == before


# Code draws


def test_codes_are_drawn_first_to_expire_and_the_last_one_exhausts_the_pool(store, program):
    ann, bob, cid = (store.add_participant(program, name) for name in ("ann", "bob", "cid"))
    pool = store.add_pool(
        program,
        [("LATE", NOW + timedelta(days=30)), ("SOON", NOW + timedelta(days=1))],
        low_stock_threshold=2,
    )
    reward = store.add_reward(
        program,
        type=T.REWARD_TYPE_UNIQUE_COUPON,
        config={"code_pool_id": pool.id},
        code_pool_id=pool.id,
    )
    first, _ = issue(store, program, reward, ann)
    assert first.row.coupon_code == "SOON"
    assert (store.stored(pool).available_count, store.stored(pool).issued_count) == (1, 1)
    assert store.events == [
        (E.EVENT_TYPE_CODE_POOL_LOW, pool.id),
        (E.EVENT_TYPE_ISSUANCE_ISSUED, first.row.id),
    ]
    drawn = {c["code"]: (c["status"], c["issuance_id"]) for c in store.codes.values()}
    assert drawn["SOON"] == (ISSUED, first.row.id)
    # One code per participant unless the reward says more.
    assert refusal(lambda: issue(store, program, reward, ann))[0] == "PARTICIPANT_LIMIT_REACHED"

    store.events.clear()
    second, _ = issue(store, program, reward, bob)
    assert second.row.coupon_code == "LATE"
    assert store.stored(reward).status == OUT_OF_STOCK
    assert store.events == [
        (E.EVENT_TYPE_CODE_POOL_EXHAUSTED, pool.id),
        (E.EVENT_TYPE_REWARD_STATUS_CHANGED, reward.id),
        (E.EVENT_TYPE_ISSUANCE_ISSUED, second.row.id),
    ]
    before = state(store)
    reason, metadata = refusal(lambda: issue(store, program, reward, cid))
    assert (reason, metadata) == (
        "CODE_POOL_EXHAUSTED",
        {"code_pool_id": pool.id, "available": "0"},
    )
    assert state(store) == before


def test_a_pool_left_with_expired_codes_only_turns_its_rewards_out_of_stock(store, program):
    ann = store.add_participant(program, "ann")
    pool = store.add_pool(program, [("OLD", NOW - timedelta(days=1))])
    reward = store.add_reward(
        program,
        type=T.REWARD_TYPE_UNIQUE_COUPON,
        config={"code_pool_id": pool.id},
        code_pool_id=pool.id,
    )
    reason, metadata = refusal(lambda: issue(store, program, reward, ann))
    assert (reason, metadata) == (
        "CODE_POOL_EXHAUSTED",
        {"code_pool_id": pool.id, "available": "0"},
    )
    assert store.stored(reward).redeemed_count == 0
    assert store.issuance_rows == {}
    assert store.stored(reward).status == OUT_OF_STOCK
    assert store.events == [
        (E.EVENT_TYPE_CODE_POOL_EXHAUSTED, pool.id),
        (E.EVENT_TYPE_REWARD_STATUS_CHANGED, reward.id),
    ]
    # The next issue stops at the status check.
    assert refusal(lambda: issue(store, program, reward, ann))[0] == "CODE_POOL_EXHAUSTED"
    assert len(store.events) == 2


# Paying from a group


def test_a_member_pays_from_the_groups_balance(store, program):
    points = store.add_asset(program)
    ann = store.add_participant(program, "ann")
    store.members[ann.id] = "grp_1"
    store.fund("grp_1", points, 500)
    store.fund(ann.id, points, 500)
    reward = store.add_reward(program, unit_cost="2", cost_asset_id=points.id)

    found, _ = issue(store, program, reward, ann, pay_from=PAY_FROM_GROUP)
    assert found.row.cost_group_id == "grp_1"
    assert (store.available("grp_1", points), store.available(ann.id, points)) == (300, 500)
    # The group's row is locked with the reward's, named ahead of the transaction.
    assert store.locks[-1] == [("reward", reward.id), (GROUP_TABLE, "grp_1")]
    before = state(store)
    reason, _ = refusal(
        lambda: issue(store, program, reward, ann, pay_from=PAY_FROM_GROUP, quantity=2)
    )
    assert reason == "INSUFFICIENT_BALANCE"
    assert state(store) == before
    # A revoke refunds whoever paid.
    issuance.revoke_issuance(program, found.row.id, "", store=store)
    assert (store.available("grp_1", points), store.available(ann.id, points)) == (500, 500)


def test_one_who_is_in_no_group_cannot_pay_from_one(store, program):
    points = store.add_asset(program)
    ann = store.add_participant(program, "ann")
    store.fund(ann.id, points, 500)
    reward = store.add_reward(program, unit_cost="1", cost_asset_id=points.id)
    before = state(store)
    reason, metadata = refusal(lambda: issue(store, program, reward, ann, pay_from=PAY_FROM_GROUP))
    assert (reason, metadata) == ("NOT_GROUP_MEMBER", {"participant_id": ann.id})
    assert state(store) == before


# request_id


def test_a_request_id_replays_the_first_issue(store, program):
    points = store.add_asset(program)
    ann = store.add_participant(program, "ann")
    store.fund(ann.id, points, 1000)
    reward = store.add_reward(program, unit_cost="1", cost_asset_id=points.id)
    first, _ = issue(store, program, reward, ann, request_id="req-1")
    before = state(store)
    request = IssueRequest(
        reward_id=reward.id, participant=ParticipantRef("external_id", "ann"), request_id="req-1"
    )
    again, replayed = issuance.issue_reward(program, request, store=store)
    assert replayed
    assert again.row.id == first.row.id
    assert state(store) == before


def test_a_request_id_reused_for_another_issue_is_refused(store, program):
    ann = store.add_participant(program, "ann")
    bob = store.add_participant(program, "bob")
    reward = store.add_reward(program)
    first, _ = issue(store, program, reward, ann, request_id="req-1")
    before = state(store)
    for who, fields in ((ann, {"quantity": 2}), (ann, {"notes": "other"}), (bob, {})):
        reason, metadata = refusal(
            lambda who=who, fields=fields: issue(
                store, program, reward, who, request_id="req-1", **fields
            )
        )
        assert (reason, metadata) == (
            "IDEMPOTENCY_KEY_REUSED",
            {"request_id": "req-1", "issuance_id": first.row.id},
        )
    assert state(store) == before


def test_the_loser_of_a_request_id_race_answers_with_the_winners_issue(program):
    store = RacedStore()
    ann = store.add_participant(program, "ann")
    reward = store.add_reward(program, max_total=5)
    first, _ = issue(store, program, reward, ann, request_id="req-1")
    store.misses = 2  # the plain read and the one inside the transaction
    again, replayed = issue(store, program, reward, ann, request_id="req-1")
    assert replayed
    assert again.row.id == first.row.id
    assert store.stored(reward).redeemed_count == 1
    assert list(store.issuance_rows) == [first.row.id]


def test_the_event_loops_issue_replays_the_same(store, program):
    ann = store.add_participant(program, "ann")
    store.members[ann.id] = "grp_1"
    reward = store.add_reward(program)
    request = IssueRequest(
        reward_id=reward.id, participant=by_id(ann), request_id="req-1", pay_from=PAY_FROM_GROUP
    )

    async def twice():
        return [
            await issuance.issue_reward_async(program, request, lambda o: o, store=store)
            for _ in range(2)
        ]

    (first, replayed_first), (again, replayed) = asyncio.run(twice())
    assert (replayed_first, replayed) == (False, True)
    assert again.row.id == first.row.id
    assert store.locks[0] == [("reward", reward.id), (GROUP_TABLE, "grp_1")]


# Revoke, claim and fulfillment


def test_a_revoke_refunds_the_cost_takes_the_credit_back_and_returns_the_stock(store, program):
    points, miles = store.add_asset(program), store.add_asset(program)
    ann = store.add_participant(program, "ann")
    store.fund(ann.id, points, 1000)
    reward = store.add_reward(
        program,
        type=T.REWARD_TYPE_POINTS,
        config={"asset_id": miles.id, "amount": "3"},
        max_total=2,
        unit_cost="4",
        cost_asset_id=points.id,
    )
    found, _ = issue(store, program, reward, ann, quantity=2)
    assert (store.available(ann.id, points), store.available(ann.id, miles)) == (200, 600)
    assert store.stored(reward).status == OUT_OF_STOCK

    revoked = issuance.revoke_issuance(program, found.row.id, "mistake", store=store).row
    assert store.locks[-1] == [("reward", reward.id)]  # the stock comes back to its row
    assert (revoked.status, revoked.revoke_reason) == (IS.ISSUANCE_STATUS_REVOKED, "mistake")
    assert (store.available(ann.id, points), store.available(ann.id, miles)) == (1000, 0)
    assert store.stored(reward).redeemed_count == 0
    assert store.stored(reward).status == ACTIVE
    assert store.events[-1] == (E.EVENT_TYPE_ISSUANCE_REVOKED, found.row.id)
    # Revoked is revoked: again changes nothing.
    before = state(store)
    issuance.revoke_issuance(program, found.row.id, "again", store=store)
    assert state(store) == before


def test_a_revoke_of_points_already_spent_is_refused_and_changes_nothing(store, program):
    miles = store.add_asset(program)
    ann = store.add_participant(program, "ann")
    reward = store.add_reward(
        program, type=T.REWARD_TYPE_POINTS, config={"asset_id": miles.id, "amount": "1"}
    )
    found, _ = issue(store, program, reward, ann)
    store.transaction(
        lambda: store.post(
            program_id=program,
            participant_id=ann.id,
            asset=miles,
            delta=-50,
            kind=ADJUST,
            reason="",
        )
    )
    before = state(store)
    assert refusal(lambda: issuance.revoke_issuance(program, found.row.id, "", store=store))[0] == (
        "INSUFFICIENT_BALANCE"
    )
    assert state(store) == before


def test_a_revoke_voids_the_drawn_code(store, program):
    ann = store.add_participant(program, "ann")
    pool = store.add_pool(program, [("ONLY", None)])
    reward = store.add_reward(
        program,
        type=T.REWARD_TYPE_UNIQUE_COUPON,
        config={"code_pool_id": pool.id},
        code_pool_id=pool.id,
    )
    found, _ = issue(store, program, reward, ann)
    issuance.revoke_issuance(program, found.row.id, "", store=store)
    assert [c["status"] for c in store.codes.values()] == [VOIDED]
    # No code to draw: the reward stays out of stock.
    assert store.stored(reward).status == OUT_OF_STOCK


def test_a_claim_moves_confirmed_to_claimed_once_and_never_a_revoked_one(store, program):
    ann = store.add_participant(program, "ann")
    reward = store.add_reward(program)
    found, _ = issue(store, program, reward, ann)
    claimed = issuance.claim_issuance(program, found.row.id, store=store).row
    assert claimed.status == IS.ISSUANCE_STATUS_CLAIMED
    assert store.stored(claimed).claimed_at is not None
    before = state(store)
    assert (
        issuance.claim_issuance(program, found.row.id, store=store).row.status
        == IS.ISSUANCE_STATUS_CLAIMED
    )
    assert state(store) == before

    issuance.revoke_issuance(program, found.row.id, "", store=store)
    before = state(store)
    reason, _ = refusal(lambda: issuance.claim_issuance(program, found.row.id, store=store))
    assert reason == "INVALID_STATE_TRANSITION"
    assert state(store) == before


def test_a_fulfillment_status_must_be_the_programs_and_is_appended(store, program):
    registries.create_fulfillment_status(program, "SHIPPED", "", store=store.registries)
    ann = store.add_participant(program, "ann")
    reward = store.add_reward(program)
    found, _ = issue(store, program, reward, ann, fulfillment_status="SHIPPED")
    updated = issuance.update_fulfillment(
        program, found.row.id, "SHIPPED", "again", store=store
    ).row
    assert [entry["status"] for entry in updated.fulfillment_history] == ["SHIPPED", "SHIPPED"]
    assert store.events[-1] == (E.EVENT_TYPE_ISSUANCE_FULFILLMENT_UPDATED, found.row.id)
    before = state(store)
    with pytest.raises(InvalidArgument):
        issuance.update_fulfillment(program, found.row.id, "LOST", "", store=store)
    with pytest.raises(InvalidArgument):
        issue(store, program, reward, ann, fulfillment_status="LOST")
    assert state(store) == before

    issuance.revoke_issuance(program, found.row.id, "", store=store)
    before = state(store)
    reason, _ = refusal(
        lambda: issuance.update_fulfillment(program, found.row.id, "SHIPPED", "", store=store)
    )
    assert reason == "INVALID_STATE_TRANSITION"
    assert state(store) == before


def test_what_is_not_there_is_not_found(store, program):
    ann = store.add_participant(program, "ann")
    reward = store.add_reward(program)
    found, _ = issue(store, program, reward, ann)
    elsewhere = new_id("prg")
    for call, reason in (
        (lambda: issue(store, elsewhere, reward, ann), "REWARD_NOT_FOUND"),
        (lambda: issuance.get_issuance(elsewhere, found.row.id, store=store), "ISSUANCE_NOT_FOUND"),
        (
            lambda: issuance.claim_issuance(program, "iss_missing", store=store),
            "ISSUANCE_NOT_FOUND",
        ),
        (
            lambda: issuance.revoke_issuance(program, "iss_missing", "", store=store),
            "ISSUANCE_NOT_FOUND",
        ),
    ):
        with pytest.raises(NotFound) as refused:
            call()
        assert refused.value.reason == reason


def test_issuances_are_listed_newest_first_by_the_participant_any_ref_names(store, program):
    ann = store.add_participant(program, "ann")
    bob = store.add_participant(program, "bob")
    reward, other = store.add_reward(program), store.add_reward(program)
    made = [issue(store, program, r, ann)[0].row.id for r in (reward, other, reward)]
    issue(store, program, reward, bob)
    issuance.claim_issuance(program, made[0], store=store)

    def listed(who=None, reward_id="", status=0):
        rows, token = issuance.list_issuances(
            program,
            FIRST_PAGE,
            participant=who,
            reward_id=reward_id,
            status=status,
            reward_type=0,
            created_after=None,
            created_before=None,
            store=store,
        )
        assert token == ""
        return [found.row.id for found in rows]

    ann_by_ref = ParticipantRef("external_id", "ann")
    assert listed(ann_by_ref) == sorted(made, reverse=True)
    assert listed(ann_by_ref, reward_id=reward.id) == [made[2], made[0]]
    assert listed(status=IS.ISSUANCE_STATUS_CLAIMED) == [made[0]]
    with pytest.raises(NotFound):
        listed(ParticipantRef("external_id", "nobody"))


# GrantCustomReward


def test_a_custom_grant_is_recorded_once_per_client_reference(store, program):
    ann = store.add_participant(program, "ann")
    request = GrantRequest(
        participant=by_id(ann), amount="5.00", action_code="WELCOME", client_reference="ref-1"
    )
    found, replayed = issuance.grant_custom_reward(program, request, store=store)
    assert (found.row.type, found.row.amount, replayed) == (T.REWARD_TYPE_CUSTOM, "5.00", False)
    assert store.events == [(E.EVENT_TYPE_CUSTOM_GRANTED, found.row.id)]
    again, replayed = issuance.grant_custom_reward(program, request, store=store)
    assert (again.row.id, replayed) == (found.row.id, True)
    other = GrantRequest(
        participant=by_id(ann), amount="6.00", action_code="WELCOME", client_reference="ref-1"
    )
    assert (
        refusal(lambda: issuance.grant_custom_reward(program, other, store=store))[0]
        == "IDEMPOTENCY_KEY_REUSED"
    )
    assert len(store.issuance_rows) == 1


# Validation comes first


def _bad_group_issue() -> IssueRequest:
    return IssueRequest("r", ParticipantRef("id", "p"), quantity=-1, pay_from=PAY_FROM_GROUP)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (
            lambda s: issuance.issue_reward(
                "prg_1", IssueRequest("", ParticipantRef("id", "p")), store=s
            ),
            "reward_id",
        ),
        (lambda s: issuance.issue_reward("prg_1", IssueRequest("r", None), store=s), "participant"),
        (
            lambda s: issuance.issue_reward(
                "prg_1", IssueRequest("r", ParticipantRef("id", "p"), quantity=-1), store=s
            ),
            "quantity",
        ),
        (
            lambda s: issuance.grant_custom_reward(
                "prg_1", GrantRequest(ParticipantRef("id", "p"), "0.5", "WELCOME", "ref"), store=s
            ),
            "amount",
        ),
        (
            # Paid by the group: its membership is not read ahead for a call refused anyway.
            lambda s: issuance.issue_reward("prg_1", _bad_group_issue(), store=s),
            "quantity",
        ),
        (
            lambda s: asyncio.run(
                issuance.issue_reward_async("prg_1", _bad_group_issue(), str, store=s)
            ),
            "quantity",
        ),
        (lambda s: issuance.revoke_issuance("prg_1", "iss_1", "x" * 1001, store=s), "reason"),
        (lambda s: issuance.update_fulfillment("prg_1", "iss_1", "", "", store=s), "status"),
        (
            lambda s: issuance.batch_issue_rewards(
                "prg_1", [], lambda: True, str, len, 1000, store=s
            ),
            "requests",
        ),
    ],
)
def test_an_invalid_call_is_refused_before_the_store(call, field):
    with pytest.raises(InvalidArgument) as refused:
        call(Untouchable())
    assert [v.field for v in refused.value.violations] == [field]
