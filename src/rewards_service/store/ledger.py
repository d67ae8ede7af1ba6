"""Balances and their append-only ledger. Every movement goes through post(); a balance is
changed only by a conditional UPDATE, so it can never go below zero even under concurrency."""

from rewards.v1 import common_pb2 as common

from rewards_service.domain.errors import FailedPrecondition
from rewards_service.domain.ids import new_id
from rewards_service.domain.validation import format_amount
from rewards_service.store.models import Asset, Balance, LedgerEntry

K = common.LedgerEntryKind


def _counters(kind: int, delta: int) -> dict:
    """Keep available == lifetime_earned - lifetime_spent for every kind of entry."""
    if kind == K.LEDGER_ENTRY_KIND_REVERSAL:
        # A refund gives back what was spent; taking points back un-earns them.
        if delta > 0:
            return {Balance.lifetime_spent: Balance.lifetime_spent - delta}
        return {Balance.lifetime_earned: Balance.lifetime_earned + delta}
    if delta > 0:
        return {Balance.lifetime_earned: Balance.lifetime_earned + delta}
    return {Balance.lifetime_spent: Balance.lifetime_spent - delta}


def post(
    *,
    program_id: str,
    participant_id: str,
    asset: Asset,
    delta: int,
    kind: int,
    issuance_id: str | None = None,
    reason: str = "",
    request_id: str | None = None,
    request_hash: str = "",
) -> LedgerEntry:
    """Move a balance by `delta` minor units and record the entry, or raise
    INSUFFICIENT_BALANCE and change nothing."""
    condition = (Balance.participant == participant_id) & (Balance.asset == asset.id)
    update = Balance.update(
        {Balance.available: Balance.available + delta, **_counters(kind, delta)}
    )
    if delta < 0:
        condition &= Balance.available >= -delta
    rows = list(update.where(condition).returning(Balance.available).execute())
    if not rows and delta > 0:
        # First movement of this asset for this participant: open the balance, then move it.
        Balance.insert(participant=participant_id, asset=asset.id).on_conflict_ignore().execute()
        rows = list(update.where(condition).returning(Balance.available).execute())
    if not rows:
        available = (
            Balance.select(Balance.available)
            .where((Balance.participant == participant_id) & (Balance.asset == asset.id))
            .scalar()
        )
        raise FailedPrecondition(
            "The participant's balance does not cover this.",
            reason="INSUFFICIENT_BALANCE",
            metadata={
                "asset_id": asset.id,
                "required": format_amount(-delta, asset.scale),
                "available": format_amount(available or 0, asset.scale),
            },
        )
    return LedgerEntry.create(
        id=new_id("led"),
        program=program_id,
        participant=participant_id,
        asset=asset.id,
        delta=delta,
        balance_after=rows[0].available,
        kind=kind,
        issuance_id=issuance_id,
        reason=reason,
        request_id=request_id,
        request_hash=request_hash,
    )


def balance_of(participant_id: str, asset_id: str) -> Balance:
    found = Balance.get_or_none(
        (Balance.participant == participant_id) & (Balance.asset == asset_id)
    )
    return found or Balance(participant=participant_id, asset=asset_id)
