"""The catalog's use cases (services/catalog.py) against an in-memory store: assets, code
pools and their codes, rewards; what they create, refuse, find and change, the events they
record, and request_id replays, without a database."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from rewards.v1 import common_pb2 as common
from rewards.v1 import events_pb2 as events

from rewards_service.domain import rewards as rules
from rewards_service.domain.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from rewards_service.domain.ids import new_id
from rewards_service.domain.pagination import PageRequest
from rewards_service.services import catalog
from rewards_service.services.records import Asset, CodePool, Reward
from rewards_service.store.db import Conflict
from rewards_service.store.fields import utcnow
from tests.unit.fakes import RecordsEvents, Untouchable, copy_row, keyset_page

S = common.RewardStatus
T = common.RewardType
E = events.EventType
ACTIVE, DRAFT, INACTIVE = S.REWARD_STATUS_ACTIVE, S.REWARD_STATUS_DRAFT, S.REWARD_STATUS_INACTIVE
OUT_OF_STOCK, ARCHIVED = S.REWARD_STATUS_OUT_OF_STOCK, S.REWARD_STATUS_ARCHIVED
FIRST_PAGE = PageRequest(size=50, after=None, filters_digest="")
PAST = datetime(2020, 1, 1, tzinfo=UTC)
FUTURE = utcnow() + timedelta(days=365)
NOT_FOUND = {Asset: "ASSET_NOT_FOUND", CodePool: "CODE_POOL_NOT_FOUND", Reward: "REWARD_NOT_FOUND"}


class FakeCatalogStore(RecordsEvents):
    """The catalog tables in dicts, keeping what the schema keeps (an asset code and a
    request_id once per program, a code once per pool) and no more: the rules under test are
    the use cases'. Rows go in and come out as copies, as they would from a database."""

    TABLES = ("rows", "codes", "events")
    DEEP_SNAPSHOT = True  # pools count their codes and rewards restock in place

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[type, dict[str, Asset | CodePool | Reward]] = {k: {} for k in NOT_FOUND}
        # (pool_id, code) -> (status, expires_at)
        self.codes: dict[tuple[str, str], tuple[str, datetime | None]] = {}

    def _of(self, kind, program_id):
        rows = (r for r in self.rows[kind].values() if r.program_id == program_id)
        return [copy_row(row) for row in sorted(rows, key=lambda row: row.id)]

    def _find(self, kind, program_id, row_id):
        row = self.rows[kind].get(row_id)
        return copy_row(row) if row is not None and row.program_id == program_id else None

    def _get(self, kind, program_id, row_id):
        row = self._find(kind, program_id, row_id)
        if row is None:
            raise NotFound(f"No {row_id}.", reason=NOT_FOUND[kind], metadata={"id": row_id})
        return row

    # Creates

    def find_by_request_id(self, kind, program_id, request_id):
        return next((r for r in self._of(kind, program_id) if r.request_id == request_id), None)

    def add(self, row):
        self._writing()
        kind = type(row)
        for other in self._of(kind, row.program_id):
            same_code = kind is Asset and other.code == row.code
            if same_code or (row.request_id and other.request_id == row.request_id):
                raise Conflict(f"UNIQUE constraint failed: {kind._meta.table_name}")
        self.rows[kind][row.id] = copy_row(row)

    # Assets

    def find_asset(self, program_id, asset_id):
        return self._find(Asset, program_id, asset_id)

    def get_asset(self, program_id, asset_id):
        return self._get(Asset, program_id, asset_id)

    def has_asset_code(self, program_id, code):
        return any(asset.code == code for asset in self._of(Asset, program_id))

    def assets(self, program_id, page):
        return keyset_page(self._of(Asset, program_id), page)

    # Code pools and codes

    def find_code_pool(self, program_id, pool_id):
        return self._find(CodePool, program_id, pool_id)

    def get_code_pool(self, program_id, pool_id, *, for_update=False):
        return self._get(CodePool, program_id, pool_id)

    def reload_code_pool(self, pool_id):
        return copy_row(self.rows[CodePool][pool_id])

    def code_pools(self, program_id, page):
        return keyset_page(self._of(CodePool, program_id), page)

    def _available(self, pool_id):
        return [
            expires
            for (pool, _), (status, expires) in self.codes.items()
            if pool == pool_id and status == "available"
        ]

    def with_expired_count(self, pool, now=None):
        now = now or utcnow()
        pool.expired_count = sum(e is not None and e <= now for e in self._available(pool.id))
        return pool

    def has_live_code(self, pool_id, now):
        return any(e is None or e > now for e in self._available(pool_id))

    def add_codes(self, pool_id, codes):
        self._writing()
        added = 0
        for code, expires in codes:
            if (pool_id, code) not in self.codes:
                self.codes[pool_id, code] = ("available", expires)
                added += 1
        return added

    def add_to_pool_counts(self, pool_id, added):
        self._writing()
        pool = self.rows[CodePool][pool_id]
        pool.total_count += added
        pool.available_count += added

    def restock_pool_rewards(self, pool_id):
        self._writing()
        restocked = [
            row
            for row in self.rows[Reward].values()
            if row.code_pool_id == pool_id
            and row.status == OUT_OF_STOCK
            and (row.max_total is None or row.redeemed_count < row.max_total)
        ]
        for row in restocked:
            row.status, row.version = ACTIVE, row.version + 1
            self.emit(row.program_id, E.EVENT_TYPE_REWARD_STATUS_CHANGED, row)
        return len(restocked)

    # Rewards

    def get_reward(self, program_id, reward_id, *, for_update=False):
        return self._get(Reward, program_id, reward_id)

    def save_reward(self, row):
        self._writing()
        assert row.id in self.rows[Reward], "an update of a reward never added"
        row.version += 1
        row.updated_at = utcnow()
        self.rows[Reward][row.id] = copy_row(row)
        return row

    def _rewards(self, program_id, *, status, reward_type, category, show_archived):
        return [
            row
            for row in self._of(Reward, program_id)
            if (row.status == status if status else show_archived or row.status != ARCHIVED)
            and (not reward_type or row.type == reward_type)
            and (not category or row.category == category)
        ]

    def rewards(self, program_id, page, **filters):
        return keyset_page(self._rewards(program_id, **filters), page)

    def count_rewards(self, program_id, **filters):
        return len(self._rewards(program_id, **filters))

    # For the tests: what a program's catalog holds.

    def all(self, kind, program_id):
        return self._of(kind, program_id)

    def code(self, pool_id, code):
        return self.codes.get((pool_id, code))


class RacedStore(FakeCatalogStore):
    """Another call takes each asset code just after this one looked for it: the look-up
    misses, and the insert breaks the unique key."""

    def has_asset_code(self, program_id, code):
        return False


@pytest.fixture
def store():
    return FakeCatalogStore()


@pytest.fixture
def program():
    return new_id("prg")


def _asset(store, program_id, code="POINTS", scale=2, request_id="", name="Points"):
    return catalog.create_asset(program_id, code, name, scale, request_id, store=store)


def _pool(store, program_id, name="Pool", request_id="", low_stock_threshold=0):
    return catalog.create_code_pool(
        program_id, name, "", request_id, low_stock_threshold, store=store
    )


def _points(asset_id, amount="10", **overrides) -> rules.RewardSpec:
    config = {"asset_id": asset_id, "amount": amount}
    base = rules.RewardSpec(
        name="Ten points", type=T.REWARD_TYPE_POINTS, config_kind="points", config=config
    )
    return replace(base, **overrides)


def _coupon(pool_id, **overrides) -> rules.RewardSpec:
    base = rules.RewardSpec(
        name="A coupon",
        type=T.REWARD_TYPE_UNIQUE_COUPON,
        config_kind="unique_coupon",
        config={"code_pool_id": pool_id},
    )
    return replace(base, **overrides)


def _product(**overrides) -> rules.RewardSpec:
    base = rules.RewardSpec(
        name="A mug", type=T.REWARD_TYPE_PRODUCT, config_kind="product", config={"product_id": "m"}
    )
    return replace(base, **overrides)


def _reward(store, program_id, spec, request_id=""):
    return catalog.create_reward(program_id, spec, request_id, store=store)


def _update(store, program_id, reward_id, paths, etag="", **patch):
    return catalog.update_reward(
        program_id, reward_id, replace(rules.RewardSpec(), **patch), set(paths), etag, store=store
    )


def _violations(refused) -> list[str]:
    return [item.field for item in refused.value.violations]


# Assets


def test_an_asset_is_created_found_and_listed_in_its_program_only(store, program):
    made = _asset(store, program)
    other = _asset(store, program, code="MILES")
    assert catalog.get_asset(program, made.id, store=store).code == "POINTS"
    rows, token = catalog.list_assets(program, FIRST_PAGE, store=store)
    assert [row.id for row in rows] == sorted([made.id, other.id]) and token == ""
    assert catalog.list_assets(new_id("prg"), FIRST_PAGE, store=store) == ([], "")
    with pytest.raises(NotFound) as refused:
        catalog.get_asset(new_id("prg"), made.id, store=store)
    assert refused.value.reason == "ASSET_NOT_FOUND"


def test_an_asset_code_taken_is_refused_and_changes_nothing(store, program):
    _asset(store, program)
    with pytest.raises(AlreadyExists) as refused:
        _asset(store, program, name="Other points")
    assert refused.value.reason == "ASSET_EXISTS"
    assert refused.value.metadata == {"code": "POINTS"}
    assert len(store.all(Asset, program)) == 1
    # Codes are the program's own.
    assert _asset(store, new_id("prg")).code == "POINTS"


def test_an_asset_code_taken_by_a_racing_call_is_refused_the_same_way(program):
    store = RacedStore()
    _asset(store, program)
    for request_id in ("", "req-2"):
        with pytest.raises(AlreadyExists) as refused:
            _asset(store, program, request_id=request_id)
        assert refused.value.reason == "ASSET_EXISTS"
    assert len(store.all(Asset, program)) == 1


def test_an_asset_request_id_replays_and_is_not_reused(store, program):
    first = _asset(store, program, request_id="req-1")
    assert _asset(store, program, request_id="req-1").id == first.id
    for other in ({"scale": 3}, {"name": "Renamed"}, {"code": "MILES"}):
        with pytest.raises(AlreadyExists) as refused:
            _asset(store, program, request_id="req-1", **other)
        assert refused.value.reason == "IDEMPOTENCY_KEY_REUSED"
        assert refused.value.metadata == {"request_id": "req-1", "id": first.id}
    assert len(store.all(Asset, program)) == 1


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"code": "points"}, "asset.code"),
        ({"code": "1X"}, "asset.code"),
        ({"name": ""}, "asset.name"),
        ({"scale": 9}, "asset.scale"),
        ({"scale": -1}, "asset.scale"),
        ({"request_id": "\n"}, "request_id"),
    ],
)
def test_an_invalid_asset_is_refused_before_the_store(arguments, field):
    with pytest.raises(InvalidArgument) as refused:
        _asset(Untouchable(), "prg_1", **arguments)
    assert _violations(refused) == [field]


# Code pools and codes


def test_a_code_pool_is_created_found_and_listed_with_its_expired_codes(store, program):
    pool = _pool(store, program, low_stock_threshold=5)
    catalog.add_codes(program, pool.id, ["LIVE"], entries=[("OLD", PAST)], store=store)
    found = catalog.get_code_pool(program, pool.id, store=store)
    assert (found.low_stock_threshold, found.total_count, found.expired_count) == (5, 2, 1)
    rows, _ = catalog.list_code_pools(program, FIRST_PAGE, store=store)
    assert [(row.id, row.expired_count) for row in rows] == [(pool.id, 1)]
    for program_id, pool_id in (new_id("prg"), pool.id), (program, "nope"):
        with pytest.raises(NotFound) as refused:
            catalog.get_code_pool(program_id, pool_id, store=store)
        assert refused.value.reason == "CODE_POOL_NOT_FOUND"


def test_a_code_pool_request_id_replays_and_is_not_reused(store, program):
    first = _pool(store, program, request_id="req-1")
    assert _pool(store, program, request_id="req-1").id == first.id
    for other in ({"name": "Other"}, {"low_stock_threshold": 3}):
        with pytest.raises(AlreadyExists) as refused:
            _pool(store, program, request_id="req-1", **other)
        assert refused.value.reason == "IDEMPOTENCY_KEY_REUSED"
    assert len(store.all(CodePool, program)) == 1
    # Pool names are not unique: without a request_id a second pool is another pool.
    assert _pool(store, program).id != first.id


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"name": ""}, "code_pool.name"),
        ({"low_stock_threshold": -1}, "code_pool.low_stock_threshold"),
        ({"request_id": "x" * 1000}, "request_id"),
    ],
)
def test_an_invalid_code_pool_is_refused_before_the_store(arguments, field):
    with pytest.raises(InvalidArgument) as refused:
        _pool(Untouchable(), "prg_1", **arguments)
    assert _violations(refused) == [field]


def test_add_codes_skips_duplicates_in_the_call_and_in_the_pool(store, program):
    pool = _pool(store, program)
    assert catalog.add_codes(program, pool.id, ["A", "B", "A"], store=store)[:2] == (2, 1)
    added, duplicates, after = catalog.add_codes(
        program, pool.id, ["B", "C"], entries=[("C", None), ("D", None)], store=store
    )
    assert (added, duplicates) == (2, 2)
    assert (after.total_count, after.available_count) == (4, 4)
    assert sorted(code for (_, code) in store.codes) == ["A", "B", "C", "D"]


def test_a_code_given_twice_keeps_what_it_was_first_given_with(store, program):
    pool = _pool(store, program)
    catalog.add_codes(
        program, pool.id, ["A"], entries=[("A", PAST), ("B", PAST), ("B", None)], store=store
    )
    assert store.code(pool.id, "A") == ("available", None)
    assert store.code(pool.id, "B") == ("available", PAST)


def test_entries_without_an_expiry_take_the_calls(store, program):
    pool = _pool(store, program)
    catalog.add_codes(
        program, pool.id, ["A"], FUTURE, entries=[("B", None), ("C", PAST)], store=store
    )
    assert [store.code(pool.id, c)[1] for c in "ABC"] == [FUTURE, FUTURE, PAST]


def test_codes_for_a_pool_not_found_change_nothing(store, program):
    pool = _pool(store, program)
    for program_id, pool_id in (program, "nope"), (new_id("prg"), pool.id):
        with pytest.raises(NotFound) as refused:
            catalog.add_codes(program_id, pool_id, ["A"], store=store)
        assert refused.value.reason == "CODE_POOL_NOT_FOUND"
    assert store.codes == {} and store.all(CodePool, program)[0].total_count == 0


@pytest.mark.parametrize(
    ("codes", "entries", "fields"),
    [
        ([], [], ["codes"]),
        (["A"] * (catalog.MAX_CODES_PER_CALL + 1), [], ["codes"]),
        (["A"] * catalog.MAX_CODES_PER_CALL, [("B", None)], ["codes"]),
        (
            ["ok", "has space", ""],
            [("tab\t", None)],
            ["codes[1]", "codes[2]", "code_entries[0].code"],
        ),
    ],
)
def test_invalid_codes_are_refused_before_the_store(codes, entries, fields):
    with pytest.raises(InvalidArgument) as refused:
        catalog.add_codes("prg_1", "pool_1", codes, entries=entries, store=Untouchable())
    assert _violations(refused) == fields


def test_live_codes_restock_the_pools_rewards_and_expired_ones_do_not(store, program):
    pool = _pool(store, program)
    reward = _reward(store, program, _coupon(pool.id))
    assert reward.status == OUT_OF_STOCK  # a pool without codes to draw
    catalog.add_codes(program, pool.id, ["OLD"], PAST, store=store)
    assert catalog.get_reward(program, reward.id, store=store).status == OUT_OF_STOCK
    store.events.clear()
    catalog.add_codes(program, pool.id, ["NEW"], store=store)
    assert catalog.get_reward(program, reward.id, store=store).status == ACTIVE
    assert store.events == [(E.EVENT_TYPE_REWARD_STATUS_CHANGED, reward.id)]


# Rewards: create


def test_a_reward_is_created_with_its_event(store, program):
    asset = _asset(store, program)
    made = _reward(store, program, _points(asset.id, "2.50"))
    assert (made.status, made.version, made.config["amount"]) == (ACTIVE, 1, "2.50")
    assert catalog.get_reward(program, made.id, store=store).name == "Ten points"
    assert store.events == [(E.EVENT_TYPE_REWARD_CREATED, made.id)]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (lambda a, p: _points("ast_nope"), "reward.points.asset_id"),
        (lambda a, p: _points(a["other"]), "reward.points.asset_id"),
        (lambda a, p: _points(a["cents"], "1.005"), "reward.points.amount"),
        (lambda a, p: _points(a["whole"], "1.5"), "reward.points.amount"),
        (lambda a, p: _coupon("pool_nope"), "reward.unique_coupon.code_pool_id"),
        (lambda a, p: _coupon(p["other"]), "reward.unique_coupon.code_pool_id"),
        (lambda a, p: _product(cost_asset_id="ast_nope", unit_cost="1"), "reward.cost_asset_id"),
        (lambda a, p: _product(cost_asset_id=a["other"], unit_cost="1"), "reward.cost_asset_id"),
    ],
)
def test_a_reward_refers_to_assets_and_pools_of_its_program(store, program, spec, field):
    elsewhere = new_id("prg")
    assets = {
        "cents": _asset(store, program).id,
        "whole": _asset(store, program, code="WHOLE", scale=0).id,
        "other": _asset(store, elsewhere).id,
    }
    pools = {"other": _pool(store, elsewhere).id}
    store.events.clear()
    with pytest.raises(InvalidArgument) as refused:
        _reward(store, program, spec(assets, pools))
    assert _violations(refused) == [field]
    assert store.all(Reward, program) == [] and store.events == []


def test_references_of_the_program_are_accepted(store, program):
    whole = _asset(store, program, code="WHOLE", scale=0)
    pool = _pool(store, program)
    assert _reward(store, program, _points(whole.id, "3")).config["asset_id"] == whole.id
    made = _reward(store, program, _coupon(pool.id, cost_asset_id=whole.id, unit_cost="1"))
    assert (made.code_pool_id, made.cost_asset_id) == (pool.id, whole.id)


def test_every_violation_is_reported_at_once(store, program):
    with pytest.raises(InvalidArgument) as refused:
        _reward(store, program, _points("ast_nope", name="", cost_asset_id="ast_no", unit_cost="1"))
    assert sorted(_violations(refused)) == [
        "reward.cost_asset_id",
        "reward.name",
        "reward.points.asset_id",
    ]


def test_a_new_reward_starts_as_asked_and_out_of_stock_without_codes(store, program):
    empty, stocked = _pool(store, program), _pool(store, program)
    catalog.add_codes(program, stocked.id, ["A"], store=store)
    expired = _pool(store, program)
    catalog.add_codes(program, expired.id, ["A"], PAST, store=store)
    for pool, status, expected in [
        (empty, S.REWARD_STATUS_UNSPECIFIED, OUT_OF_STOCK),
        (expired, ACTIVE, OUT_OF_STOCK),
        (stocked, S.REWARD_STATUS_UNSPECIFIED, ACTIVE),
        (empty, DRAFT, DRAFT),
        (empty, INACTIVE, INACTIVE),
    ]:
        assert _reward(store, program, _coupon(pool.id, status=status)).status == expected
    for status in (OUT_OF_STOCK, ARCHIVED):
        with pytest.raises(InvalidArgument) as refused:
            _reward(store, program, _product(status=status))
        assert _violations(refused) == ["reward.status"]


def test_payment_options_without_an_id_get_one(store, program):
    asset = _asset(store, program)
    options = [{"unit_cost": "1"}, {"id": "mine", "unit_cost": "2"}]
    made = _reward(store, program, _product(cost_asset_id=asset.id, payment_options=options))
    ids = [option["id"] for option in made.payment_options]
    assert ids[0].startswith("pay") and ids[1] == "mine"


def test_a_reward_request_id_replays_the_first_result(store, program):
    first = _reward(store, program, _product(), "req-1")
    again = _reward(store, program, _product(), "req-1")
    assert again.id == first.id
    assert len(store.all(Reward, program)) == 1
    assert store.events == [(E.EVENT_TYPE_REWARD_CREATED, first.id)]
    with pytest.raises(AlreadyExists) as refused:
        _reward(store, program, _product(name="Another mug"), "req-1")
    assert refused.value.reason == "IDEMPOTENCY_KEY_REUSED"
    assert refused.value.metadata == {"request_id": "req-1", "id": first.id}
    # Another program's request_id is its own.
    assert _reward(store, new_id("prg"), _product(), "req-1").id != first.id


def test_a_refused_request_id_is_refused_before_the_store_is_written(store, program):
    with pytest.raises(InvalidArgument) as refused:
        _reward(store, program, _product(), "\n")
    assert _violations(refused) == ["request_id"]
    assert store.all(Reward, program) == [] and store.events == []


# Rewards: read, list


def test_rewards_not_found(store, program):
    made = _reward(store, program, _product())
    for call in (
        lambda p, r: catalog.get_reward(p, r, store=store),
        lambda p, r: _update(store, p, r, {"name"}, name="New"),
        lambda p, r: catalog.delete_reward(p, r, "", store=store),
    ):
        for program_id, reward_id in (program, "rew_nope"), (new_id("prg"), made.id):
            with pytest.raises(NotFound) as refused:
                call(program_id, reward_id)
            assert refused.value.reason == "REWARD_NOT_FOUND"
            assert refused.value.metadata == {"id": reward_id}
    assert store.all(Reward, program)[0].version == 1


def test_rewards_are_listed_and_counted_with_the_callers_filters(store, program):
    kept = _reward(store, program, _product(category="mugs"))
    archived = _reward(store, program, _product())
    catalog.delete_reward(program, archived.id, "", store=store)
    filters = {"status": 0, "reward_type": 0, "category": "", "show_archived": False}
    for changed, expected in [
        ({}, [kept.id]),
        ({"show_archived": True}, sorted([kept.id, archived.id])),
        ({"status": ARCHIVED}, [archived.id]),
        ({"category": "cups"}, []),
    ]:
        wanted = {**filters, **changed}
        rows, token = catalog.list_rewards(program, FIRST_PAGE, store=store, **wanted)
        assert [row.id for row in rows] == expected and token == ""
        assert catalog.count_rewards(program, store=store, **wanted) == len(expected)


# Rewards: update, archive


def test_an_update_changes_the_fields_of_its_mask_only(store, program):
    made = _reward(store, program, _product(description="old", category="mugs"))
    updated = _update(store, program, made.id, {"name", "category"}, name="New", description="x")
    assert (updated.name, updated.description, updated.category) == ("New", "old", "")
    assert updated.version == made.version + 1
    assert catalog.get_reward(program, made.id, store=store).name == "New"
    assert store.events[-1:] == [(E.EVENT_TYPE_REWARD_UPDATED, made.id)]


def test_a_config_path_changes_its_member_or_replaces_the_config(store, program):
    asset = _asset(store, program)
    made = _reward(store, program, _points(asset.id, "1"))
    patch = {"config_kind": "points", "config": {"amount": "2"}}
    updated = _update(store, program, made.id, {"points.amount"}, **patch)
    assert updated.config == {"asset_id": asset.id, "amount": "2"}
    with pytest.raises(InvalidArgument) as refused:  # the whole member: no asset_id now
        _update(store, program, made.id, {"points"}, **patch)
    assert _violations(refused) == ["reward.points.asset_id"]


def test_an_update_checks_its_references_in_the_program(store, program):
    asset = _asset(store, program)
    made = _reward(store, program, _points(asset.id))
    elsewhere = _asset(store, new_id("prg"))
    patch = {"config_kind": "points", "config": {"asset_id": elsewhere.id}}
    with pytest.raises(InvalidArgument) as refused:
        _update(store, program, made.id, {"points.asset_id"}, **patch)
    assert _violations(refused) == ["reward.points.asset_id"]
    assert catalog.get_reward(program, made.id, store=store).config["asset_id"] == asset.id


def test_an_update_moving_to_an_empty_pool_is_out_of_stock_with_its_event(store, program):
    stocked, empty = _pool(store, program), _pool(store, program)
    catalog.add_codes(program, stocked.id, ["A"], store=store)
    made = _reward(store, program, _coupon(stocked.id))
    assert made.status == ACTIVE
    store.events.clear()
    patch = {"config_kind": "unique_coupon", "config": {"code_pool_id": empty.id}}
    updated = _update(store, program, made.id, {"unique_coupon"}, **patch)
    assert (updated.status, updated.code_pool_id) == (OUT_OF_STOCK, empty.id)
    assert store.events == [
        (E.EVENT_TYPE_REWARD_UPDATED, made.id),
        (E.EVENT_TYPE_REWARD_STATUS_CHANGED, made.id),
    ]


def test_status_changes_follow_the_lifecycle(store, program):
    made = _reward(store, program, _product(status=DRAFT))
    assert _update(store, program, made.id, {"status"}, status=ACTIVE).status == ACTIVE
    assert store.events[-1] == (E.EVENT_TYPE_REWARD_STATUS_CHANGED, made.id)
    with pytest.raises(FailedPrecondition) as refused:
        _update(store, program, made.id, {"status"}, status=DRAFT)
    assert refused.value.reason == "INVALID_STATE_TRANSITION"
    assert catalog.get_reward(program, made.id, store=store).status == ACTIVE


def test_an_update_refused_changes_nothing_and_records_nothing(store, program):
    made = _reward(store, program, _product())
    events = list(store.events)
    refusals = [
        ({"type"}, {"type": T.REWARD_TYPE_POINTS}, InvalidArgument, "IMMUTABLE_FIELD"),
        ({"name"}, {"name": ""}, InvalidArgument, "VALIDATION_FAILED"),
        ({"status"}, {"status": OUT_OF_STOCK}, FailedPrecondition, "INVALID_STATE_TRANSITION"),
    ]
    for paths, patch, error, reason in refusals:
        with pytest.raises(error) as refused:
            _update(store, program, made.id, paths, **patch)
        assert refused.value.reason == reason
    with pytest.raises(Aborted) as refused:
        _update(store, program, made.id, {"name"}, etag="v7", name="New")
    assert refused.value.metadata == {"current_etag": rules.etag(made.version)}
    assert store.all(Reward, program)[0].__data__ == made.__data__
    assert store.events == events
    assert _update(store, program, made.id, {"name"}, rules.etag(made.version), name="New")


def test_a_change_of_a_reward_names_its_row_for_the_writers_group_to_lock(store, program):
    made = _reward(store, program, _product())
    _update(store, program, made.id, {"name"}, name="Renamed")
    assert store.locks[-1] == [("reward", made.id)]
    catalog.delete_reward(program, made.id, "", store=store)
    assert store.locks[-1] == [("reward", made.id)]


def test_an_archived_reward_is_final(store, program):
    made = _reward(store, program, _product())
    archived = catalog.delete_reward(program, made.id, rules.etag(made.version), store=store)
    assert (archived.status, archived.version) == (ARCHIVED, made.version + 1)
    assert store.events[-1] == (E.EVENT_TYPE_REWARD_STATUS_CHANGED, made.id)
    events = list(store.events)
    # Archiving again answers the archived reward and changes nothing.
    again = catalog.delete_reward(program, made.id, "", store=store)
    assert (again.status, again.version) == (ARCHIVED, archived.version)
    for paths, patch in ({"name"}, {"name": "New"}), ({"status"}, {"status": ARCHIVED}):
        with pytest.raises(FailedPrecondition) as refused:
            _update(store, program, made.id, paths, **patch)
        assert refused.value.reason == "INVALID_STATE_TRANSITION"
    assert store.events == events
    assert catalog.get_reward(program, made.id, store=store).name == made.name


def test_archiving_checks_the_etag(store, program):
    made = _reward(store, program, _product())
    with pytest.raises(Aborted):
        catalog.delete_reward(program, made.id, "v9", store=store)
    assert catalog.get_reward(program, made.id, store=store).status == ACTIVE
