"""Balances and their append-only ledger. Every movement goes through post(); a balance is
changed only by a conditional UPDATE, so it can never go below zero even under concurrency."""

from dataclasses import dataclass

import peewee
from rewards.v1 import common_pb2 as common

from rewards_service.domain.errors import FailedPrecondition, FieldViolation, InvalidArgument
from rewards_service.domain.ids import new_id
from rewards_service.domain.validation import MAX_MINOR_UNITS, format_amount
from rewards_service.store import fast, outbox
from rewards_service.store.models import (
    Asset,
    Balance,
    GroupBalance,
    GroupLedgerEntry,
    LedgerEntry,
)
from rewards_service.store.queries import locked_text

K = common.LedgerEntryKind


def _counters(kind: int, delta: int) -> tuple[int, int]:
    """(earned, spent) increments that keep available == lifetime_earned - lifetime_spent."""
    if kind == K.LEDGER_ENTRY_KIND_REVERSAL:
        # A refund gives back what was spent; taking points back un-earns them.
        return (0, -delta) if delta > 0 else (delta, 0)
    return (delta, 0) if delta > 0 else (0, -delta)


@dataclass(frozen=True)
class _Book:
    """Whose balances: participants' (balance, ledger_entry) or groups' (group_balance,
    group_ledger_entry). One set of rules moves both."""

    balance: type[peewee.Model]
    entry: type[peewee.Model]
    owner: str  # the owner's column: participant_id or group_id
    move: str
    state: str


def _book(balance: type[peewee.Model], entry: type[peewee.Model], owner: str) -> _Book:
    table = balance._meta.table_name
    move = (
        f'UPDATE "{table}" SET "available" = "available" + ?, '
        '"lifetime_earned" = "lifetime_earned" + ?, "lifetime_spent" = "lifetime_spent" + ?, '
        '"seq" = "seq" + 1 '
        f'WHERE "{owner}" = ? AND "asset_id" = ? AND "available" + ? BETWEEN 0 AND ? '
        'AND "lifetime_earned" + ? <= ? AND "lifetime_spent" + ? <= ? '
        'RETURNING "available", "seq"'
    )
    state = (
        f'SELECT "available", "lifetime_earned", "lifetime_spent" FROM "{table}" '
        f'WHERE "{owner}" = ? AND "asset_id" = ?'
    )
    return _Book(balance, entry, owner, move, state)


PARTICIPANTS = _book(Balance, LedgerEntry, "participant_id")
GROUPS = _book(GroupBalance, GroupLedgerEntry, "group_id")


def _too_large(field: str) -> InvalidArgument:
    """Balances and their lifetime totals are kept below MAX_MINOR_UNITS, so no sum can
    overflow the 64-bit column (or, on SQLite, turn into a float)."""
    return InvalidArgument(
        "This would take the balance, or its lifetime earned or spent total, past the "
        "largest amount the ledger holds.",
        violations=(FieldViolation(field, "is too large for the balance or its lifetime totals"),),
    )


def post(
    *,
    program_id: str,
    participant_id: str | None,
    asset: Asset,
    delta: int,
    kind: int,
    issuance_id: str | None = None,
    reason: str = "",
    request_id: str | None = None,
    request_hash: str = "",
    field: str = "quantity",
    group_id: str | None = None,
) -> LedgerEntry | GroupLedgerEntry:
    """Move a balance by `delta` minor units and record the entry, or raise
    INSUFFICIENT_BALANCE and change nothing. With `group_id` the group's balance moves, and
    `participant_id` (optional there) is the member it moved for."""
    if delta >= MAX_MINOR_UNITS:
        raise _too_large(field)
    book = GROUPS if group_id else PARTICIPANTS
    owner = group_id or participant_id
    earned, spent = _counters(kind, delta)
    top = MAX_MINOR_UNITS - 1
    params = (delta, earned, spent, owner, asset.id, delta, top, earned, top, spent, top)
    row = fast.execute(book.move, *params).fetchone()
    if row is None and delta > 0:
        # First movement of this asset for this owner: open the balance, then move it.
        opened = {book.owner: owner, "asset": asset.id}
        book.balance.insert(**opened).on_conflict_ignore().execute()
        row = fast.execute(book.move, *params).fetchone()
    while row is None:
        # Why it did not move, from the balance as it is now, locked: on PostgreSQL another
        # transaction may have moved it since the UPDATE looked.
        now = fast.execute(locked_text(book.state), owner, asset.id).fetchone()
        available, lifetime_earned, lifetime_spent = now or (0, 0, 0)
        if available + delta < 0:
            whose = "group's" if group_id else "participant's"
            raise FailedPrecondition(
                f"The {whose} balance does not cover this.",
                reason="INSUFFICIENT_BALANCE",
                metadata={
                    "asset_id": asset.id,
                    "required": format_amount(-delta, asset.scale),
                    "available": format_amount(available, asset.scale),
                    **({"group_id": group_id} if group_id else {}),
                },
            )
        if (
            now is None
            or max(available + delta, lifetime_earned + earned, lifetime_spent + spent) > top
        ):
            raise _too_large(field)
        row = fast.execute(book.move, *params).fetchone()  # it moved in between: now locked
    entry = {
        "id": new_id("led"),
        "program": program_id,
        "asset": asset.id,
        "delta": delta,
        "balance_after": row[0],
        "seq": row[1],
        "kind": kind,
        "issuance_id": issuance_id,
        "reason": reason,
        "request_id": request_id,
        "request_hash": request_hash,
    }
    if group_id:
        posted = fast.insert(
            GroupLedgerEntry(group=group_id, participant_id=participant_id, **entry)
        )
        outbox.emit(program_id, outbox.E.EVENT_TYPE_GROUP_BALANCE_CHANGED, posted)
        return posted
    posted = fast.insert(LedgerEntry(participant=participant_id, **entry))
    outbox.emit(program_id, outbox.E.EVENT_TYPE_BALANCE_CHANGED, posted)
    return posted


def balance_of(participant_id: str, asset_id: str) -> Balance:
    found = Balance.get_or_none(
        (Balance.participant == participant_id) & (Balance.asset == asset_id)
    )
    return found or Balance(participant=participant_id, asset=asset_id)


def group_balance_of(group_id: str, asset_id: str) -> GroupBalance:
    found = GroupBalance.get_or_none(
        (GroupBalance.group == group_id) & (GroupBalance.asset == asset_id)
    )
    return found or GroupBalance(group=group_id, asset=asset_id)
