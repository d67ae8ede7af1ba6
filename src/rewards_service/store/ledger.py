"""Balances and their append-only ledger. Every movement goes through post(); a balance is
changed only by a conditional UPDATE, so it can never go below zero even under concurrency."""

from rewards.v1 import common_pb2 as common

from rewards_service.domain.errors import FailedPrecondition, FieldViolation, InvalidArgument
from rewards_service.domain.ids import new_id
from rewards_service.domain.validation import MAX_MINOR_UNITS, format_amount
from rewards_service.store import fast, outbox
from rewards_service.store.models import Asset, Balance, LedgerEntry
from rewards_service.store.queries import locked_text

K = common.LedgerEntryKind


def _counters(kind: int, delta: int) -> tuple[int, int]:
    """(earned, spent) increments that keep available == lifetime_earned - lifetime_spent."""
    if kind == K.LEDGER_ENTRY_KIND_REVERSAL:
        # A refund gives back what was spent; taking points back un-earns them.
        return (0, -delta) if delta > 0 else (delta, 0)
    return (delta, 0) if delta > 0 else (0, -delta)


_MOVE = (
    'UPDATE "balance" SET "available" = "available" + ?, '
    '"lifetime_earned" = "lifetime_earned" + ?, "lifetime_spent" = "lifetime_spent" + ?, '
    '"seq" = "seq" + 1 '
    'WHERE "participant_id" = ? AND "asset_id" = ? AND "available" + ? BETWEEN 0 AND ? '
    'AND "lifetime_earned" + ? <= ? AND "lifetime_spent" + ? <= ? '
    'RETURNING "available", "seq"'
)


_STATE = (
    'SELECT "available", "lifetime_earned", "lifetime_spent" FROM "balance" '
    'WHERE "participant_id" = ? AND "asset_id" = ?'
)


def _too_large(field: str) -> InvalidArgument:
    """Balances and their lifetime totals are kept below MAX_MINOR_UNITS, so no sum can
    overflow the 64-bit column (or, on SQLite, turn into a float)."""
    return InvalidArgument(
        "This would take the balance past the largest amount the ledger holds.",
        violations=(FieldViolation(field, "is too large for the participant's balance"),),
    )


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
    field: str = "quantity",
) -> LedgerEntry:
    """Move a balance by `delta` minor units and record the entry, or raise
    INSUFFICIENT_BALANCE and change nothing."""
    if delta >= MAX_MINOR_UNITS:
        raise _too_large(field)
    earned, spent = _counters(kind, delta)
    top = MAX_MINOR_UNITS - 1
    params = (delta, earned, spent, participant_id, asset.id, delta, top, earned, top, spent, top)
    row = fast.execute(_MOVE, *params).fetchone()
    if row is None and delta > 0:
        # First movement of this asset for this participant: open the balance, then move it.
        Balance.insert(participant=participant_id, asset=asset.id).on_conflict_ignore().execute()
        row = fast.execute(_MOVE, *params).fetchone()
    while row is None:
        # Why it did not move, from the balance as it is now, locked: on PostgreSQL another
        # transaction may have moved it since the UPDATE looked.
        now = fast.execute(locked_text(_STATE), participant_id, asset.id).fetchone()
        available, lifetime_earned, lifetime_spent = now or (0, 0, 0)
        if available + delta < 0:
            raise FailedPrecondition(
                "The participant's balance does not cover this.",
                reason="INSUFFICIENT_BALANCE",
                metadata={
                    "asset_id": asset.id,
                    "required": format_amount(-delta, asset.scale),
                    "available": format_amount(available, asset.scale),
                },
            )
        if (
            now is None
            or max(available + delta, lifetime_earned + earned, lifetime_spent + spent) > top
        ):
            raise _too_large(field)
        row = fast.execute(_MOVE, *params).fetchone()  # it moved in between: now it is locked
    entry = fast.insert(
        LedgerEntry(
            id=new_id("led"),
            program=program_id,
            participant=participant_id,
            asset=asset.id,
            delta=delta,
            balance_after=row[0],
            seq=row[1],
            kind=kind,
            issuance_id=issuance_id,
            reason=reason,
            request_id=request_id,
            request_hash=request_hash,
        )
    )
    outbox.emit(program_id, outbox.E.EVENT_TYPE_BALANCE_CHANGED, entry)
    return entry


def balance_of(participant_id: str, asset_id: str) -> Balance:
    found = Balance.get_or_none(
        (Balance.participant == participant_id) & (Balance.asset == asset_id)
    )
    return found or Balance(participant=participant_id, asset=asset_id)
