"""Catalog use cases: one function per RPC, one transaction each.

Each use case reaches the database through `store` (services/ports.CatalogStore): the
store's own by default, an in-memory one in unit tests."""

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from rewards.v1 import common_pb2 as common
from rewards.v1 import events_pb2 as events

from rewards_service.domain import rewards as rules
from rewards_service.domain.errors import AlreadyExists, FailedPrecondition, idempotency_key_reused
from rewards_service.domain.ids import new_id
from rewards_service.domain.issuance import digest
from rewards_service.domain.pagination import PageRequest
from rewards_service.domain.validation import (
    Violations,
    check_name,
    check_request_id,
    check_text,
    parse_amount,
)
from rewards_service.services.ports import CatalogStore, Creates
from rewards_service.services.replay import Once
from rewards_service.store import queries
from rewards_service.store.catalog import CATALOG
from rewards_service.store.db import Conflict
from rewards_service.store.fields import utcnow
from rewards_service.store.models import Asset, CodePool, Reward

S = common.RewardStatus
ASSET_CODE_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,31}$")
MAX_SCALE = 8
MAX_CODES_PER_CALL = 10_000
CODE_RE = re.compile(r"^[\x21-\x7e]{1,128}$")


def create_once(
    model,
    program_id: str,
    request_id: str,
    fingerprint: str,
    create,
    duplicate=None,
    event=None,
    store: Creates = queries.ROWS,
):
    """AIP-155 create of the unsaved row that `create()` makes. With a request_id, a retry
    returns the first result, even when it raced the original; the same request_id with other
    fields is IDEMPOTENCY_KEY_REUSED. `duplicate` is the error of a clash on another key;
    `event` the type of the event a create records; `store` where the row goes (a fake one in
    tests). Every create of a program-owned resource (catalog, groups, registries) goes
    through it."""

    def earlier():
        if not request_id:
            return None
        found = store.find_by_request_id(model, program_id, request_id)
        if found is not None and found.request_hash != fingerprint:
            raise idempotency_key_reused(request_id, id=found.id)
        return found

    def created():
        row = create()  # unsaved
        if request_id:
            row.request_id, row.request_hash = request_id, fingerprint
        store.add(row)
        if event is not None:
            store.emit(program_id, event, row)
        return row

    def answer(row, replayed: bool):
        return row

    try:
        return Once(request_id, earlier, created, answer).run(store.transaction)
    except Conflict:  # not on the request_id: on the other unique key
        if duplicate is None:
            raise
        raise duplicate() from None


# Rewards


def _check_references(
    store: CatalogStore, v: Violations, program_id: str, spec: rules.RewardSpec
) -> None:
    """Checks that need the store: assets and pools must exist in this program."""
    if spec.config_kind == "points" and spec.config.get("asset_id"):
        asset = store.find_asset(program_id, str(spec.config["asset_id"]))
        if asset is None:
            v.add("reward.points.asset_id", "is not an asset of this program")
        elif not any(item.field == "reward.points.amount" for item in v.items):
            parse_amount(v, "reward.points.amount", str(spec.config["amount"]), scale=asset.scale)
    pool_id = str(spec.config.get("code_pool_id", ""))
    pool_missing = pool_id and store.find_code_pool(program_id, pool_id) is None
    if spec.config_kind == "unique_coupon" and pool_missing:
        v.add("reward.unique_coupon.code_pool_id", "is not a code pool of this program")
    if spec.cost_asset_id and store.find_asset(program_id, spec.cost_asset_id) is None:
        v.add("reward.cost_asset_id", "is not an asset of this program")


def _validated(
    store: CatalogStore, program_id: str, spec: rules.RewardSpec, v: Violations
) -> rules.RewardSpec:
    rules.check_reward(v, spec)
    _check_references(store, v, program_id, spec)
    v.raise_if_any()
    redemption = spec.redemption_type or common.REDEMPTION_TYPE_UNIT_BASED
    return replace(
        spec,
        redemption_type=redemption,
        config=rules.normalize_config(spec.config_kind or "", spec.config),
        # Options the caller left without an id get one, so IssueReward can name them.
        payment_options=[
            {**option, "id": option.get("id") or new_id("pay")} for option in spec.payment_options
        ],
    )


def _pool_available(store: CatalogStore, spec: rules.RewardSpec) -> int | None:
    """1 when the reward's pool has a code to draw (one not expired), 0 when not, None
    without a pool."""
    if spec.config_kind != "unique_coupon":
        return None
    return int(store.has_live_code(str(spec.config["code_pool_id"]), utcnow()))


def create_reward(
    program_id: str, spec: rules.RewardSpec, request_id: str, *, store: CatalogStore = CATALOG
) -> Reward:
    v = Violations()
    check_request_id(v, "request_id", request_id)
    status = rules.check_create_status(v, spec.status)

    def create() -> Reward:
        valid = _validated(store, program_id, replace(spec, status=status), v)
        now = utcnow()
        row = Reward(
            id=new_id("rew"),
            program=program_id,
            created_at=now,
            updated_at=now,
        )
        queries.apply_reward_spec(row, valid)
        row.status = rules.stock_status(
            valid.status,
            redeemed_count=0,
            max_total=valid.max_total,
            pool_available=_pool_available(store, valid),
        )
        return row

    fingerprint = digest("reward", _fingerprinted(spec))
    return create_once(
        Reward,
        program_id,
        request_id,
        fingerprint,
        create,
        event=events.EVENT_TYPE_REWARD_CREATED,
        store=store,
    )


# Fields added to RewardSpec after creates started recording their digest: left out while
# unset, so a create retried across an upgrade still matches the digest it recorded.
_LATER_FIELDS = {
    "conversion_ratio": "",
    "cost_rounding": 0,
    "payment_options": [],
    "redemption_unit": "",
}


def _fingerprinted(spec: rules.RewardSpec) -> dict[str, object]:
    fields = dataclasses.asdict(spec)
    for name, unset in _LATER_FIELDS.items():
        if fields[name] == unset:
            del fields[name]
    return fields


def get_reward(program_id: str, reward_id: str, *, store: CatalogStore = CATALOG) -> Reward:
    return store.get_reward(program_id, reward_id)


def list_rewards(
    program_id: str,
    page: PageRequest,
    *,
    status: int,
    reward_type: int,
    category: str,
    show_archived: bool,
    store: CatalogStore = CATALOG,
) -> tuple[list[Reward], str]:
    return store.rewards(
        program_id,
        page,
        status=status,
        reward_type=reward_type,
        category=category,
        show_archived=show_archived,
    )


def count_rewards(
    program_id: str,
    *,
    status: int,
    reward_type: int,
    category: str,
    show_archived: bool,
    store: CatalogStore = CATALOG,
) -> int:
    """ListRewards' total_size: one COUNT over the program's rewards (its (program_id, id)
    index), run only when the caller asks for it."""
    return store.count_rewards(
        program_id,
        status=status,
        reward_type=reward_type,
        category=category,
        show_archived=show_archived,
    )


def update_reward(
    program_id: str,
    reward_id: str,
    patch: rules.RewardSpec,
    paths: set[str],
    etag: str,
    *,
    store: CatalogStore = CATALOG,
) -> Reward:
    def work() -> Reward:
        row = store.get_reward(program_id, reward_id, for_update=True)
        rules.check_etag(row.version, etag)
        current = queries.reward_spec(row)
        merged = replace(current)
        for path in paths:
            head, _, sub = path.partition(".")
            if head not in rules.CONFIG_MEMBERS:
                setattr(merged, path, getattr(patch, path))
            elif sub and head == merged.config_kind == patch.config_kind and sub in patch.config:
                merged.config = {**merged.config, sub: patch.config[sub]}
            else:
                new_config = patch.config if patch.config_kind == head else {}
                merged.config_kind, merged.config = head, new_config
        rules.check_immutable(current, merged, paths)
        if row.status == S.REWARD_STATUS_ARCHIVED:
            raise FailedPrecondition(
                "An archived reward is final and cannot be changed.",
                reason="INVALID_STATE_TRANSITION",
            )
        rules.check_transition(row.status, merged.status)
        status_before = row.status
        valid = _validated(store, program_id, merged, Violations())
        queries.apply_reward_spec(row, valid)
        row.status = rules.stock_status(
            valid.status,
            redeemed_count=row.redeemed_count,
            max_total=valid.max_total,
            pool_available=_pool_available(store, valid),
        )
        store.save_reward(row)
        store.emit(program_id, events.EVENT_TYPE_REWARD_UPDATED, row)
        if row.status != status_before:
            store.emit(program_id, events.EVENT_TYPE_REWARD_STATUS_CHANGED, row)
        return row

    # Named, so that a group of the writer takes it in order with the others' rows.
    return store.transaction(work, locks=[("reward", reward_id)])


def delete_reward(
    program_id: str, reward_id: str, etag: str, *, store: CatalogStore = CATALOG
) -> Reward:
    def work() -> Reward:
        row = store.get_reward(program_id, reward_id, for_update=True)
        rules.check_etag(row.version, etag)
        if row.status == S.REWARD_STATUS_ARCHIVED:
            return row
        rules.check_transition(row.status, S.REWARD_STATUS_ARCHIVED)
        row.status = S.REWARD_STATUS_ARCHIVED
        store.save_reward(row)
        store.emit(program_id, events.EVENT_TYPE_REWARD_STATUS_CHANGED, row)
        return row

    return store.transaction(work, locks=[("reward", reward_id)])


# Assets


def create_asset(
    program_id: str,
    code: str,
    name: str,
    scale: int,
    request_id: str,
    *,
    store: CatalogStore = CATALOG,
) -> Asset:
    v = Violations()
    v.check(
        bool(ASSET_CODE_RE.fullmatch(code)),
        "asset.code",
        "must be 1-32 of A-Z, 0-9 and _, starting with a letter",
    )
    check_name(v, "asset.name", name)
    v.check(0 <= scale <= MAX_SCALE, "asset.scale", f"must be between 0 and {MAX_SCALE}")
    check_request_id(v, "request_id", request_id)
    v.raise_if_any()

    def exists() -> AlreadyExists:
        return AlreadyExists(
            f"This program already has an asset with code {code}.",
            reason="ASSET_EXISTS",
            metadata={"code": code},
        )

    def create() -> Asset:
        if store.has_asset_code(program_id, code):
            raise exists()
        return Asset(
            id=new_id("ast"),
            program=program_id,
            code=code,
            name=name,
            scale=scale,
        )

    fingerprint = digest("asset", code, name, scale)
    return create_once(
        Asset, program_id, request_id, fingerprint, create, duplicate=exists, store=store
    )


def get_asset(program_id: str, asset_id: str, *, store: CatalogStore = CATALOG) -> Asset:
    return store.get_asset(program_id, asset_id)


def list_assets(
    program_id: str, page: PageRequest, *, store: CatalogStore = CATALOG
) -> tuple[list[Asset], str]:
    return store.assets(program_id, page)


# Code pools


def create_code_pool(
    program_id: str,
    name: str,
    description: str,
    request_id: str,
    low_stock_threshold: int = 0,
    *,
    store: CatalogStore = CATALOG,
) -> CodePool:
    v = Violations()
    check_name(v, "code_pool.name", name)
    check_text(v, "code_pool.description", description, max_len=1000)
    v.check(low_stock_threshold >= 0, "code_pool.low_stock_threshold", "must not be negative")
    check_request_id(v, "request_id", request_id)
    v.raise_if_any()

    def create() -> CodePool:
        return CodePool(
            id=new_id("pool"),
            program=program_id,
            name=name,
            description=description,
            low_stock_threshold=low_stock_threshold,
        )

    # The threshold joins the digest only when set, so earlier pools' retries still match.
    extra = (low_stock_threshold,) if low_stock_threshold else ()
    fingerprint = digest("code_pool", name, description, *extra)
    return create_once(CodePool, program_id, request_id, fingerprint, create, store=store)


def get_code_pool(program_id: str, pool_id: str, *, store: CatalogStore = CATALOG) -> CodePool:
    return store.with_expired_count(store.get_code_pool(program_id, pool_id))


def list_code_pools(
    program_id: str, page: PageRequest, *, store: CatalogStore = CATALOG
) -> tuple[list[CodePool], str]:
    rows, token = store.code_pools(program_id, page)
    now = utcnow()
    return [store.with_expired_count(row, now) for row in rows], token


def add_codes(
    program_id: str,
    pool_id: str,
    codes: list[str],
    expires_at: datetime | None = None,
    entries: Sequence[tuple[str, datetime | None]] = (),
    *,
    store: CatalogStore = CATALOG,
) -> tuple[int, int, CodePool]:
    """Returns (added, duplicates, pool). Duplicates are skipped, within the call or the pool.
    `codes` expire at `expires_at` (None: never); each of `entries` at its own expiry, or at
    `expires_at` when it has none. Codes already expired are added (and counted expired)."""
    v = Violations()
    given = [(code, expires_at, f"codes[{i}]") for i, code in enumerate(codes)]
    given += [
        (code, expires or expires_at, f"code_entries[{i}].code")
        for i, (code, expires) in enumerate(entries)
    ]
    if not given:
        v.add("codes", "must hold at least one code")
    elif len(given) > MAX_CODES_PER_CALL:
        v.add("codes", f"must hold at most {MAX_CODES_PER_CALL} codes per call, with code_entries")
    else:
        for code, _, path in given:
            v.check(
                bool(CODE_RE.fullmatch(code)),
                path,
                "must be 1-128 printable ASCII characters without spaces",
            )
    v.raise_if_any()
    first: dict[str, tuple[str, datetime | None]] = {}
    for code, expires, _ in given:  # a code given twice is added once, as first given
        first.setdefault(code, (code, expires))
    unique = list(first.values())

    def work() -> tuple[int, int, CodePool]:
        # Locking the pool row first serialises AddCodes with draws from the same pool.
        store.get_code_pool(program_id, pool_id, for_update=True)
        added = store.add_codes(pool_id, unique)
        store.add_to_pool_counts(pool_id, added)
        now = utcnow()
        if added and store.has_live_code(pool_id, now):
            store.restock_pool_rewards(pool_id)
        pool = store.with_expired_count(store.reload_code_pool(pool_id), now)
        return added, len(given) - added, pool

    return store.transaction(work)
