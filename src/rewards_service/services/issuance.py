"""Issuance use cases. IssueReward runs every check and every effect in one transaction, in
the order of the contract: status, window, eligibility, max_total, max_per_participant, rolling
limits, balance; then code draw, debit, credit, counters, the issuance and its entries.

Each use case reaches the database through `store` (services/ports.IssuanceStore): the
store's own by default, an in-memory one in unit tests."""

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import TypeVar

from rewards.v1 import common_pb2 as common
from rewards.v1 import events_pb2 as events
from rewards.v1 import issuance_pb2

from rewards_service.domain import pricing
from rewards_service.domain import rewards as reward_rules
from rewards_service.domain.errors import (
    FailedPrecondition,
    NotFound,
    ResourceExhausted,
    RewardsError,
    Unavailable,
    idempotency_key_reused,
)
from rewards_service.domain.ids import new_id
from rewards_service.domain.issuance import (
    MAX_BATCH,
    PAY_FROM_GROUP,
    GrantRequest,
    IssueRequest,
    check_claim,
    check_fulfillable,
    check_fulfillment_append,
    check_grant_request,
    check_issue_request,
    normalize_dollars,
)
from rewards_service.domain.pagination import PageRequest
from rewards_service.domain.participants import (
    UNIQUE_KINDS,
    ParticipantRef,
    is_eligible,
    normalised_ref,
)
from rewards_service.domain.registries import EMPTY, check_custom_fields, check_fulfillment_status
from rewards_service.domain.validation import MAX_MINOR_UNITS, Violations, check_label, check_text
from rewards_service.services import groups, registries
from rewards_service.services.participants import resolve, same_participant
from rewards_service.services.ports import IssuanceStore
from rewards_service.services.replay import Once
from rewards_service.services.scaled import Scaled, scaled, scaled_page
from rewards_service.store.db import RowKey
from rewards_service.store.fields import utcnow
from rewards_service.store.issuance import ISSUANCES
from rewards_service.store.models import Issuance, Reward

S = common.RewardStatus
T = common.RewardType
IS = common.IssuanceStatus
K = common.LedgerEntryKind

Outcome = tuple[Scaled[Issuance], bool]  # (issuance, idempotent_replay)
R = TypeVar("R")


def _replay(
    store: IssuanceStore,
    program_id: str,
    request_id: str,
    request: IssueRequest | GrantRequest,
    ref: ParticipantRef,
) -> Issuance | None:
    earlier = store.find_by_request_id(Issuance, program_id, request_id)
    if earlier is None:
        return None
    # Fingerprints are computed only for a request_id already used: most calls have none.
    if earlier.request_hash not in request.fingerprints() or not same_participant(
        ref, earlier.participant_id, store=store
    ):
        raise idempotency_key_reused(request_id, issuance_id=earlier.id)
    return earlier


def _answerable(outcome: Outcome) -> Outcome:
    return outcome


def _group_hint(store: IssuanceStore, program_id: str, request: IssueRequest) -> list[RowKey]:
    """The group row an issue paid by the group will lock, read ahead so that the writer
    takes it in order with the others (store.db.in_transaction). Only a hint: the issue
    looks the membership up again inside its transaction, and fails there if need be."""
    if request.pay_from != PAY_FROM_GROUP or request.participant is None:
        return []
    try:
        group_id = store.group_of(resolve(program_id, request.participant, store=store).id)
    except RewardsError:
        return []
    return [(groups.GROUP_TABLE, group_id)] if group_id else []


def _check(request: IssueRequest) -> None:
    v = Violations()
    check_issue_request(v, request)
    v.raise_if_any()


def _issue_once(
    store: IssuanceStore,
    program_id: str,
    request: IssueRequest,
    answer: Callable[[Outcome], R],
    locks: list[RowKey] | None = None,
) -> Once[Issuance, R]:
    """The unit of work of a request already checked (_check)."""
    assert request.participant is not None
    ref = request.participant

    def earlier() -> Issuance | None:
        return _replay(store, program_id, request.request_id, request, ref)

    return Once(
        request.request_id,
        earlier,
        lambda: _issue(store, program_id, request),
        lambda row, replayed: answer((scaled(row, scale_of=store.asset_scale), replayed)),
        # Its reward's row is the one every issue of that reward waits on.
        locks=[("reward", request.reward_id), *(locks or [])],
        reads=[("issuance", program_id, request.request_id)] if request.request_id else [],
    )


def issue_reward(
    program_id: str,
    request: IssueRequest,
    answerable: Callable[[Outcome], Outcome] = _answerable,
    *,
    store: IssuanceStore = ISSUANCES,
) -> Outcome:
    """`answerable` sees the outcome inside the transaction, before the commit: raising there
    refuses the call and rolls it back."""
    _check(request)
    locks = _group_hint(store, program_id, request)
    try:
        return _issue_once(store, program_id, request, answerable, locks).run(store.transaction)
    except PoolRanDry as dry:
        store.transaction(partial(_mark_pool_dry, store, program_id, dry.pool_id))
        raise


async def issue_reward_async(
    program_id: str,
    request: IssueRequest,
    answer: Callable[[Outcome], R],
    *,
    store: IssuanceStore = ISSUANCES,
) -> R:
    """IssueReward from the event loop: the replay lookup, every check and every effect run
    as one unit on the store's writer, and `answer` builds the caller's answer there, before
    the commit (so an answer that cannot be built changes nothing)."""
    _check(request)
    locks: list[RowKey] = []
    if request.pay_from == PAY_FROM_GROUP:  # a read, off the event loop

        def hint() -> list[RowKey]:
            with store.session():
                return _group_hint(store, program_id, request)

        locks = await asyncio.get_running_loop().run_in_executor(None, hint)
    try:
        return await _issue_once(store, program_id, request, answer, locks).run_async(store.write)
    except PoolRanDry as dry:
        await store.write(partial(_mark_pool_dry, store, program_id, dry.pool_id))
        raise


def answer_too_large(limit: int) -> ResourceExhausted:
    return ResourceExhausted(
        "The batch's answer would pass the message size limit with this item: it was not "
        "issued (nothing of it happened). Send it again in another batch.",
        reason="MESSAGE_TOO_LARGE",
        metadata={"limit": limit},
    )


def batch_issue_rewards(
    program_id: str,
    requests: list[IssueRequest | RewardsError],
    still_wanted: Callable[[], bool],
    render: Callable[[Outcome | RewardsError], R],
    size: Callable[[R], int],
    max_bytes: int,
    *,
    store: IssuanceStore = ISSUANCES,
) -> list[R]:
    """Each item in its own transaction; items refused while parsing pass through. Stops
    between items once the caller is gone (e.g. the shutdown grace ran out): items done stay
    done and replay on a retry.

    The answer is built as the batch goes: each item's result is rendered (and its `size`
    taken) inside its transaction, and an item whose result would take the answer past
    `max_bytes` is refused with MESSAGE_TOO_LARGE and rolled back. So the answer can always
    be sent, and an item reported as failed did nothing. Room is kept for every item to be
    refused that way."""
    v = Violations()
    v.check(0 < len(requests) <= MAX_BATCH, "requests", f"must hold 1 to {MAX_BATCH} requests")
    v.raise_if_any()
    refusal = size(render(answer_too_large(max_bytes)))
    budget = max_bytes - MAX_BATCH * refusal
    used = 0
    results: list[R] = []
    for request in requests:
        if not still_wanted():
            raise Unavailable("The call was cancelled; items not reported may be retried.")
        rendered: list[tuple[Outcome, R]] = []

        def answerable(outcome: Outcome, room: int = budget - used, kept=rendered) -> Outcome:
            result = render(outcome)
            if size(result) > room:
                raise answer_too_large(max_bytes)
            kept[:] = [(outcome, result)]
            return outcome

        outcome: Outcome | RewardsError = request
        if not isinstance(request, RewardsError):  # else refused while parsing
            try:
                outcome = issue_reward(program_id, request, answerable, store=store)
            except RewardsError as error:
                outcome = error
        if rendered and rendered[0][0] is outcome:
            result = rendered[0][1]
        else:
            result = render(outcome)
            if used + size(result) > budget:  # a long refusal: this short one says as much
                result = render(answer_too_large(max_bytes))
        used += size(result)
        results.append(result)
    return results


def _status_error(store: IssuanceStore, reward: Reward) -> FailedPrecondition:
    if reward.status == S.REWARD_STATUS_OUT_OF_STOCK:
        pool = store.code_pool(reward.code_pool_id)
        if pool is not None and not store.has_live_code(pool.id, utcnow()):
            return FailedPrecondition(
                "The reward's code pool has no codes left.",
                reason="CODE_POOL_EXHAUSTED",
                metadata={"code_pool_id": pool.id, "available": 0},
            )
        return FailedPrecondition(
            "The reward is out of stock.",
            reason="OUT_OF_STOCK",
            metadata={"limit": reward.max_total, "available": 0},
        )
    return FailedPrecondition(
        f"The reward is {S.Name(reward.status).removeprefix('REWARD_STATUS_')}, not ACTIVE.",
        reason="REWARD_NOT_ACTIVE",
        metadata={"status": S.Name(reward.status)},
    )


def _units(reward: Reward, request: IssueRequest) -> tuple[int, Decimal | None]:
    """(units: the quantity, also the factor of an AMOUNT_BASED cost; redemption amount for
    AMOUNT_BASED)."""
    v = Violations()
    amount = None
    if reward.redemption_type == common.REDEMPTION_TYPE_AMOUNT_BASED:
        v.check(bool(request.amount), "amount", "is required for AMOUNT_BASED rewards")
        amount = Decimal(request.amount) if request.amount else None
    else:
        v.check(not request.amount, "amount", "applies to AMOUNT_BASED rewards only")
    if reward.type == T.REWARD_TYPE_UNIQUE_COUPON:
        v.check(request.quantity <= 1, "quantity", "must be 0 or 1: one code per issuance")
    v.raise_if_any()
    return request.quantity or 1, amount


def _price(reward: Reward, request: IssueRequest) -> pricing.Price | None:
    """The payment option the issue pays by; None for a free reward. From the reward's row:
    no query."""
    return pricing.choose_price(
        reward.payment_options,
        reward.unit_cost or "",
        reward.conversion_ratio or "",
        request.payment_option_id,
        request.payment_method,
    )


def _redemption(
    reward: Reward, request: IssueRequest, price: pricing.Price | None, units: int
) -> dict[str, object]:
    """The issuance's redemption details, kept as they are now so replays show the same."""
    if price is None:
        return {}
    details: dict[str, object] = {
        "payment_mode": (
            issuance_pb2.PAYMENT_MODE_CASH_AND_POINTS
            if price.cash_amount
            else issuance_pb2.PAYMENT_MODE_POINTS
        ),
        "payment_option_id": price.option_id,
        "conversion_ratio": price.conversion_ratio,
        "redemption_value": request.amount,
        "redemption_unit": reward.redemption_unit,
    }
    if price.cash_amount:
        details["tender"] = {
            "payment_method": request.payment_method or "CASH",
            "amount": pricing.cash_total(price.cash_amount, units),
            "currency": price.cash_currency,
        }
    return details


def _check_registry(
    store: IssuanceStore, program_id: str, version: int, request: IssueRequest
) -> None:
    """custom_fields and the initial fulfillment status, where the program defines them."""
    if not version:  # it never defined any
        return
    registry = registries.registry_of(program_id, version, store=store.registries)
    if registry is EMPTY:
        return
    v = Violations()
    check_custom_fields(v, registry, request.custom_fields)
    v.raise_if_any()
    check_fulfillment_status(registry, request.fulfillment_status, "fulfillment_status")


def _check_window(reward: Reward, now: datetime) -> None:
    starts, ends = reward.available_from, reward.available_until
    if (starts and now < starts) or (ends and now >= ends):
        raise FailedPrecondition(
            "The reward is not available at this time.",
            reason="REWARD_NOT_AVAILABLE",
            metadata={
                "available_from": starts.isoformat() if starts else "",
                "available_until": ends.isoformat() if ends else "",
            },
        )


def _took_last(reward: Reward) -> bool:
    return reward.max_total is not None and reward.redeemed_count >= reward.max_total


def _take_stock(store: IssuanceStore, reward: Reward, units: int) -> bool:
    """One conditional UPDATE: it caps max_total and, on PostgreSQL, locks the reward row so
    every later check of this issue sees the other issues of this reward. Whether it took
    the last unit."""
    taken = store.take_stock(reward.id, units)
    if taken is not None:
        redeemed_count, max_total = taken
        return max_total is not None and redeemed_count >= max_total
    fresh = store.reward(reward.id)
    if fresh.status != S.REWARD_STATUS_ACTIVE:
        raise _status_error(store, fresh)
    raise FailedPrecondition(
        f"Only {fresh.max_total - fresh.redeemed_count} units of this reward are left.",
        reason="OUT_OF_STOCK",
        metadata={
            "limit": fresh.max_total,
            "available": fresh.max_total - fresh.redeemed_count,
            "requested": units,
        },
    )


def _check_caps(
    store: IssuanceStore,
    reward: Reward,
    participant_id: str,
    units: int,
    now: datetime,
    *,
    rolling: bool = True,
) -> None:
    """max_per_participant (one code per participant for unique coupons unless it says
    more), then (unless a manual grant skips them) the rolling limits."""
    cap = reward_rules.participant_cap(reward.type, reward.max_per_participant)
    if cap is not None:
        used = store.issued_units(reward.id, participant_id, None)
        if used + units > cap:
            raise FailedPrecondition(
                f"The participant may receive at most {cap} units of this reward.",
                reason="PARTICIPANT_LIMIT_REACHED",
                metadata={"limit": cap, "used": used, "window": "lifetime"},
            )
    for limit in reward.limits if rolling else ():
        per_participant = limit["scope"] == common.LIMIT_SCOPE_PARTICIPANT
        since = now - timedelta(seconds=limit["window_seconds"])
        used = store.issued_units(reward.id, participant_id if per_participant else None, since)
        if used + units > limit["max_quantity"]:
            scope = "participant" if per_participant else "all participants"
            raise FailedPrecondition(
                f"At most {limit['max_quantity']} units per {limit['window_seconds']}s "
                f"for {scope}.",
                reason="PARTICIPANT_LIMIT_REACHED",
                metadata={
                    "limit": limit["max_quantity"],
                    "used": used,
                    "window": f"{limit['window_seconds']}s",
                    "scope": common.LimitScope.Name(limit["scope"]),
                },
            )


def _charge(
    store: IssuanceStore,
    program_id: str,
    reward: Reward,
    participant_id: str,
    units: int,
    amount: Decimal | None,
    issuance_id: str,
    price: pricing.Price | None,
    group_id: str | None = None,
) -> tuple[str | None, int]:
    """Debits the points part of the price from the participant's balance, or its group's
    with `group_id`; a cash part is only recorded (its tender)."""
    if price is None:
        return None, 0
    asset = store.known_asset(reward.cost_asset_id)
    cost = price.cost(
        units=units, amount=amount, scale=asset.scale, cost_rounding=reward.cost_rounding
    )
    if cost >= MAX_MINOR_UNITS:
        raise FailedPrecondition(
            "The cost exceeds any possible balance.",
            reason="INSUFFICIENT_BALANCE",
            metadata={"asset_id": asset.id},
        )
    if cost > 0:
        store.post(
            program_id=program_id,
            participant_id=participant_id,
            asset=asset,
            delta=-cost,
            kind=K.LEDGER_ENTRY_KIND_SPEND,
            issuance_id=issuance_id,
            reason=f"Issued {reward.name}",
            group_id=group_id,
        )
    return asset.id, cost


class PoolRanDry(FailedPrecondition):
    """A draw found no code that has not expired. The call rolls back; its caller then marks
    the pool's rewards OUT_OF_STOCK in a write of its own (_mark_pool_dry)."""

    def __init__(self, pool_id: str) -> None:
        super().__init__(
            "The reward's code pool has no codes left (none that has not expired).",
            reason="CODE_POOL_EXHAUSTED",
            metadata={"code_pool_id": pool_id, "available": 0},
        )
        self.pool_id = pool_id


def _draw_code(
    store: IssuanceStore, pool_id: str, issuance_id: str, now: datetime
) -> tuple[str, datetime | None]:
    """(code, its expiry) of a code taken from the pool: never an expired one."""
    drawn = store.draw_code(pool_id, now)
    if drawn is None:
        raise PoolRanDry(pool_id)
    code_id, code, expires_at = drawn
    store.issue_code(code_id, issuance_id)
    pool = store.take_from_pool(pool_id)
    if pool.available_count == pool.low_stock_threshold - 1:
        # The payload shows what GetCodePool would: expired codes included.
        pool = store.with_expired_count(pool, now)
        store.emit(pool.program_id, events.EVENT_TYPE_CODE_POOL_LOW, pool)
    if pool.available_count <= 0:
        store.emit(pool.program_id, events.EVENT_TYPE_CODE_POOL_EXHAUSTED, pool)
        store.sell_out_pool(pool_id)
    return code, expires_at


def _mark_pool_dry(store: IssuanceStore, program_id: str, pool_id: str) -> None:
    """After a draw found only expired codes (its own call rolled back): the pool is
    exhausted and its rewards turn OUT_OF_STOCK, unless codes came in meanwhile. The next
    issue then fails at the status check, without looking at the pool; AddCodes lifts it.

    The events are those of a draw taking the last code: the pool's EXHAUSTED, then each
    reward's status change. Only the write that finds a reward still ACTIVE records them,
    so issues that found the pool dry together announce it once; the pool's row, locked
    first as AddCodes does, makes them take turns. No LOW: expiry does not move
    available_count, which LOW is about."""
    pool = store.get_code_pool(program_id, pool_id, for_update=True)
    now = utcnow()
    if store.has_live_code(pool_id, now) or not store.pool_has_active_reward(pool_id):
        return
    store.emit(
        program_id, events.EVENT_TYPE_CODE_POOL_EXHAUSTED, store.with_expired_count(pool, now)
    )
    store.sell_out_pool(pool_id)


def _credit(
    store: IssuanceStore,
    program_id: str,
    reward: Reward,
    participant_id: str,
    units: int,
    issuance_id: str,
) -> tuple[str | None, int]:
    if reward.type != T.REWARD_TYPE_POINTS:
        return None, 0
    asset = store.known_asset(reward.config["asset_id"])
    credit = pricing.points_credit(Decimal(reward.config["amount"]), units, asset.scale)
    store.post(
        program_id=program_id,
        participant_id=participant_id,
        asset=asset,
        delta=credit,
        kind=K.LEDGER_ENTRY_KIND_EARN,
        issuance_id=issuance_id,
        reason=f"Issued {reward.name}",
    )
    return asset.id, credit


def _issue(store: IssuanceStore, program_id: str, request: IssueRequest) -> Issuance:
    # The stock is taken first, with the reward read (and locked) in the same statement: an
    # issue queued behind a change of the reward (its price, segments, window, limits)
    # checks and pays what it is at commit. A refusal below rolls the taking back with the
    # rest; when it cannot be taken, the checks run in the contract's order on the reward
    # as it is, and the first that fails says why.
    assert request.participant is not None
    ref = normalised_ref(request.participant)
    unique = (ref.kind, ref.value) if ref.kind in UNIQUE_KINDS else None
    taken = store.take_reward_for(program_id, request.reward_id, request.quantity or 1, unique)
    participant = None
    if taken is None:
        reward, registry_version = store.reward_to_issue(program_id, request.reward_id)
    else:
        reward, registry_version, participant = taken
    if participant is None:  # not read with the reward (or missing: resolve says so)
        participant = resolve(program_id, request.participant, store=store)
    units, amount = _units(reward, request)
    price = _price(reward, request)
    _check_registry(store, program_id, registry_version, request)
    now = utcnow()
    if reward.status != S.REWARD_STATUS_ACTIVE:
        raise _status_error(store, reward)
    # A manual grant (admin only, checked by the caller) skips the campaign rules: the
    # window, the segments and the rolling limits.
    if not request.manual:
        _check_window(reward, now)
    if not request.manual and not is_eligible(reward.segments, participant.segments):
        raise FailedPrecondition(
            "The participant is not in any segment this reward is for.",
            reason="NOT_ELIGIBLE",
            metadata={"reward_id": reward.id},
        )
    sold_out = _took_last(reward) if taken else _take_stock(store, reward, units)
    _check_caps(store, reward, participant.id, units, now, rolling=not request.manual)
    group_id = None
    if request.pay_from == PAY_FROM_GROUP:
        group_id = store.group_of(participant.id)
        if group_id is None:
            raise groups.not_a_member(participant.id)
    issuance_id = new_id("iss")
    cost_asset, cost = _charge(
        store, program_id, reward, participant.id, units, amount, issuance_id, price, group_id
    )
    code_expires_at = None
    if reward.type == T.REWARD_TYPE_UNIQUE_COUPON:
        coupon_code, code_expires_at = _draw_code(store, reward.code_pool_id, issuance_id, now)
    else:
        coupon_code = str(reward.config.get("code", ""))
    credit_asset, credit = _credit(store, program_id, reward, participant.id, units, issuance_id)
    if sold_out:
        # The last unit was just taken: OUT_OF_STOCK at once, in this same transaction.
        store.sell_out(reward.id)
    history = []
    if request.fulfillment_status:
        history.append({"status": request.fulfillment_status, "note": "", "at": now.isoformat()})
    row = store.insert_issuance(
        Issuance(
            id=issuance_id,
            program=program_id,
            reward=reward.id,
            participant=participant.id,
            type=reward.type,
            status=IS.ISSUANCE_STATUS_CONFIRMED,
            quantity=units,
            amount=request.amount,
            cost_asset_id=cost_asset,
            cost_amount=cost,
            credit_asset_id=credit_asset,
            credit_amount=credit,
            coupon_code=coupon_code,
            code_expires_at=code_expires_at,
            cost_group_id=group_id if cost else None,
            reward_snapshot={
                "name": reward.name,
                "kind": reward_rules.CONFIG_FOR_TYPE[reward.type],
                "config": reward.config,
            },
            request_id=request.request_id or None,
            request_hash=request.fingerprint(),
            transaction_number=request.transaction_number,
            notes=request.notes,
            metadata=request.metadata,
            custom_fields=request.custom_fields,
            owner_type=request.owner_type,
            owner_id=request.owner_id,
            fulfillment_status=request.fulfillment_status,
            fulfillment_history=history,
            event_time=request.event_time,
            issued_at=now,
            redemption=_redemption(reward, request, price, units),
            manual=request.manual,
            issuer_key_id=request.issuer_key_id or None,
            issuer_key_name=request.issuer_key_name,
            source_event_id=request.source_event_id or None,
        )
    )
    store.emit(program_id, events.EVENT_TYPE_ISSUANCE_ISSUED, row)
    return row


# GrantCustomReward


def grant_custom_reward(
    program_id: str, request: GrantRequest, *, store: IssuanceStore = ISSUANCES
) -> Outcome:
    v = Violations()
    check_grant_request(v, request)
    v.raise_if_any()

    def create() -> Issuance:
        assert request.participant is not None
        participant = resolve(program_id, request.participant, store=store)
        row = Issuance(
            id=new_id("iss"),
            program=program_id,
            participant=participant.id,
            type=T.REWARD_TYPE_CUSTOM,
            status=IS.ISSUANCE_STATUS_CONFIRMED,
            quantity=1,
            amount=normalize_dollars(request.amount),
            action_code=request.action_code,
            request_id=request.client_reference,
            request_hash=request.fingerprint(),
            notes=request.notes,
            metadata=request.metadata,
            owner_type=common.OWNER_TYPE_UNSPECIFIED,
            issuer_key_id=request.issuer_key_id or None,
            issuer_key_name=request.issuer_key_name,
        )
        store.add(row)
        store.emit(program_id, events.EVENT_TYPE_CUSTOM_GRANTED, row)
        return row

    assert request.participant is not None
    ref = request.participant
    return Once(
        request.client_reference,
        lambda: _replay(store, program_id, request.client_reference, request, ref),
        create,
        lambda row, replayed: (scaled(row, scale_of=store.asset_scale), replayed),
    ).run(store.transaction)


# Reads and the issuance lifecycle


def _get(
    store: IssuanceStore, program_id: str, issuance_id: str, *, for_update: bool = False
) -> Issuance:
    row = store.find_issuance(program_id, issuance_id, for_update=for_update)
    if row is None:
        raise NotFound(
            f"No issuance {issuance_id}.",
            reason="ISSUANCE_NOT_FOUND",
            metadata={"id": issuance_id},
        )
    return row


def get_issuance(
    program_id: str, issuance_id: str, *, store: IssuanceStore = ISSUANCES
) -> Scaled[Issuance]:
    return scaled(_get(store, program_id, issuance_id), scale_of=store.asset_scale)


def list_issuances(
    program_id: str,
    page: PageRequest,
    *,
    participant: ParticipantRef | None,
    reward_id: str,
    status: int,
    reward_type: int,
    created_after: datetime | None,
    created_before: datetime | None,
    issuer_key_id: str = "",
    source_event_id: str = "",
    action_code: str = "",
    store: IssuanceStore = ISSUANCES,
) -> tuple[list[Scaled[Issuance]], str]:
    participant_id = "" if participant is None else resolve(program_id, participant, store=store).id
    return scaled_page(
        store.issuances(
            program_id,
            page,
            participant_id=participant_id,
            reward_id=reward_id,
            status=status,
            reward_type=reward_type,
            created_after=created_after,
            created_before=created_before,
            issuer_key_id=issuer_key_id,
            source_event_id=source_event_id,
            action_code=action_code,
        ),
        scale_of=store.asset_scale,
    )


def claim_issuance(
    program_id: str, issuance_id: str, *, store: IssuanceStore = ISSUANCES
) -> Scaled[Issuance]:
    def work() -> Issuance:
        row = _get(store, program_id, issuance_id, for_update=True)
        if check_claim(row.status):
            row.status = IS.ISSUANCE_STATUS_CLAIMED
            row.claimed_at = utcnow()
            store.save_issuance(row)
            store.emit(program_id, events.EVENT_TYPE_ISSUANCE_CLAIMED, row)
        return row

    return scaled(store.transaction(work), scale_of=store.asset_scale)


def revoke_issuance(
    program_id: str, issuance_id: str, reason: str, *, store: IssuanceStore = ISSUANCES
) -> Scaled[Issuance]:
    v = Violations()
    check_text(v, "reason", reason, max_len=1000)
    v.raise_if_any()

    def work() -> Issuance:
        row = _get(store, program_id, issuance_id, for_update=True)
        if row.status == IS.ISSUANCE_STATUS_REVOKED:
            return row
        if row.reward_id:
            _release_stock(store, row)
        # Refund the cost; take back credited points (refused with INSUFFICIENT_BALANCE when
        # they were already spent).
        for asset_id, delta, group_id in (
            (row.cost_asset_id, row.cost_amount, row.cost_group_id),  # to whoever paid
            (row.credit_asset_id, -row.credit_amount, None),
        ):
            if delta:
                store.post(
                    program_id=program_id,
                    participant_id=row.participant_id,
                    asset=store.known_asset(asset_id),
                    delta=delta,
                    kind=K.LEDGER_ENTRY_KIND_REVERSAL,
                    issuance_id=row.id,
                    reason=reason or "Issuance revoked",
                    group_id=group_id,
                )
        # A drawn code may have been seen by the participant: void it, never reissue it.
        store.void_codes(row.id)
        row.status = IS.ISSUANCE_STATUS_REVOKED
        row.revoked_at = utcnow()
        row.revoke_reason = reason
        store.save_issuance(row)
        store.emit(program_id, events.EVENT_TYPE_ISSUANCE_REVOKED, row)
        return row

    # The reward whose stock comes back, read ahead (an issuance's reward never changes) so
    # that a group of the writer takes its row in order with the others'.
    found = store.find_issuance(program_id, issuance_id)
    locks = [("reward", found.reward_id)] if found is not None and found.reward_id else []
    return scaled(store.transaction(work, locks=locks), scale_of=store.asset_scale)


def _release_stock(store: IssuanceStore, row: Issuance) -> None:
    """Give the units back to max_total (caps count only unrevoked issuances) and lift
    OUT_OF_STOCK when there is stock again."""
    store.give_back_stock(row.reward_id, row.quantity)
    reward = store.reward(row.reward_id)
    pool_id = reward.code_pool_id
    status = reward_rules.stock_status(
        reward.status,
        redeemed_count=reward.redeemed_count,
        max_total=reward.max_total,
        # Codes that expired do not count: only one that can be drawn lifts OUT_OF_STOCK.
        pool_available=int(store.has_live_code(pool_id, utcnow())) if pool_id else None,
    )
    if status != reward.status:
        store.set_reward_status(reward.id, status)


def update_fulfillment(
    program_id: str,
    issuance_id: str,
    status: str,
    note: str,
    *,
    store: IssuanceStore = ISSUANCES,
) -> Scaled[Issuance]:
    v = Violations()
    check_label(v, "status", status, max_len=64, required=True)
    check_text(v, "note", note, max_len=1000)
    v.raise_if_any()

    def work() -> Issuance:
        check_fulfillment_status(registries.registry_of(program_id, store=store.registries), status)
        row = _get(store, program_id, issuance_id, for_update=True)
        check_fulfillable(row.status)
        check_fulfillment_append(len(row.fulfillment_history))
        row.fulfillment_status = status
        row.fulfillment_history = [
            *row.fulfillment_history,
            {"status": status, "note": note, "at": utcnow().isoformat()},
        ]
        store.save_issuance(row)
        store.emit(program_id, events.EVENT_TYPE_ISSUANCE_FULFILLMENT_UPDATED, row)
        return row

    return scaled(store.transaction(work), scale_of=store.asset_scale)
