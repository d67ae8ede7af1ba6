"""Reconciliation for `rewards-admin check`: the counters the service keeps against the rows
they count, in one read snapshot, by aggregate queries (no row is loaded one by one).

- each reward's redeemed_count == the units of its issuances not revoked;
- each balance == the sum of its ledger entries == lifetime_earned - lifetime_spent, >= 0,
  and no ledger entries without a balance;
- no code issued twice (two issuances of one pool showing one code, expired or not, or one
  issuance holding two codes), none drawn after its expiry; each pool's counters == its
  codes by status;
- ACTIVE / OUT_OF_STOCK as the stock says (max_total reached, or the code pool empty);
- each group balance == the sum of its entries == lifetime_earned - lifetime_spent, >= 0;
- each issuance, ledger entry and group ledger entry has its event, and each such event its
  row, from the program's oldest kept event on (retention removes older events; rows written
  before the event feed existed have none).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import peewee
from rewards.v1 import common_pb2, events_pb2

from rewards_service.domain.rewards import stock_status
from rewards_service.store.db import database, is_sqlite
from rewards_service.store.fields import utcnow
from rewards_service.store.models import (
    Balance,
    Code,
    CodePool,
    GroupBalance,
    GroupLedgerEntry,
    Issuance,
    LedgerEntry,
    Reward,
)

S = common_pb2.RewardStatus
REVOKED = common_pb2.ISSUANCE_STATUS_REVOKED
UNIQUE_COUPON = common_pb2.REWARD_TYPE_UNIQUE_COUPON


@dataclass
class Findings:
    checked: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@contextmanager
def _snapshot() -> Iterator[None]:
    """One consistent read that does not hold up the servers' writes."""
    if is_sqlite():
        with database.transaction(lock_type="DEFERRED"):
            yield
    else:
        with database.transaction():
            database.execute_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield


def _scoped(query: peewee.Query, column: peewee.Field, program_id: str | None) -> peewee.Query:
    return query if program_id is None else query.where(column == program_id)


def reconcile(program_id: str | None = None) -> Findings:
    """Every drift found in the database, or in one program."""
    found = Findings()
    with _snapshot():
        _rewards(found, program_id)
        _balances(found, program_id)
        _group_balances(found, program_id)
        _codes(found, program_id)
        _events(found, program_id)
    return found


def _rewards(found: Findings, program_id: str | None) -> None:
    units = (
        Issuance.select(Issuance.reward, peewee.fn.SUM(Issuance.quantity).alias("units"))
        .where(Issuance.reward.is_null(False) & (Issuance.status != REVOKED))
        .group_by(Issuance.reward)
    )
    units = _scoped(units, Issuance.program, program_id)
    issued = {reward_id: int(total) for reward_id, total in units.tuples()}
    rows = (
        Reward.select(
            Reward.id,
            Reward.status,
            Reward.redeemed_count,
            Reward.max_total,
            Reward.code_pool_id,
            CodePool.available_count,
        )
        .join(CodePool, peewee.JOIN.LEFT_OUTER, on=(CodePool.id == Reward.code_pool_id))
        .order_by(Reward.id)
    )
    rows = _scoped(rows, Reward.program, program_id)
    # Codes past their expiry are never drawn: an OUT_OF_STOCK reward whose pool holds only
    # those is right. An ACTIVE one is too, until an issue finds them all expired.
    live = (
        Code.select(Code.pool, peewee.fn.COUNT(Code.id))
        .join(CodePool)
        .where((Code.status == Code.STATUS_AVAILABLE) & (Code.expires_at > utcnow()))
        .group_by(Code.pool)
    )
    live_codes = dict(_scoped(live, CodePool.program, program_id).tuples())
    count = 0
    for rid, status, redeemed, max_total, pool_id, pool_available in rows.tuples():
        if status == S.REWARD_STATUS_OUT_OF_STOCK and pool_id:
            pool_available = live_codes.get(pool_id, 0)
        count += 1
        want = issued.get(rid, 0)
        if redeemed != want:
            found.problems.append(
                f"reward {rid}: redeemed_count {redeemed} but its issuances hold {want} units"
            )
        if status in (S.REWARD_STATUS_ACTIVE, S.REWARD_STATUS_OUT_OF_STOCK):
            expected = stock_status(
                status,
                redeemed_count=redeemed,
                max_total=max_total,
                pool_available=pool_available if pool_id else None,
            )
            if expected != status:
                found.problems.append(
                    f"reward {rid}: {S.Name(status)} but its stock says {S.Name(expected)} "
                    f"(redeemed {redeemed}, max_total {max_total}, "
                    f"codes available {pool_available if pool_id else '-'})"
                )
    found.checked["rewards"] = count


def _balances(found: Findings, program_id: str | None) -> None:
    _accounts(found, program_id, LedgerEntry.participant, Balance.participant, "", "balances")


def _group_balances(found: Findings, program_id: str | None) -> None:
    _accounts(
        found, program_id, GroupLedgerEntry.group, GroupBalance.group, "group ", "group_balances"
    )


def _accounts(
    found: Findings,
    program_id: str | None,
    entry_owner: peewee.ForeignKeyField,
    balance_owner: peewee.ForeignKeyField,
    label: str,
    checked: str,
) -> None:
    """Each balance of one kind of owner (participants, groups) == the sum of its entries ==
    lifetime_earned - lifetime_spent, >= 0; and no entries without a balance."""
    entry, balance, owner = entry_owner.model, balance_owner.model, balance_owner.rel_model
    sums = entry.select(
        entry_owner,
        entry.asset,
        peewee.fn.SUM(entry.delta).alias("total"),
        peewee.fn.COUNT(entry.id).alias("entries"),
    ).group_by(entry_owner, entry.asset)
    sums = _scoped(sums, entry.program, program_id)
    ledger = {(who, asset): (int(total), n) for who, asset, total, n in sums.tuples()}
    rows = (
        balance.select(
            balance_owner,
            balance.asset,
            balance.available,
            balance.lifetime_earned,
            balance.lifetime_spent,
        )
        .join(owner)
        .order_by(balance_owner, balance.asset)
    )
    rows = _scoped(rows, owner.program, program_id)
    count = 0
    for who, asset, available, earned, spent in rows.tuples():
        count += 1
        total, _ = ledger.pop((who, asset), (0, 0))
        name = f"{label}balance {who}/{asset}"
        if available != total:
            found.problems.append(f"{name}: available {available} but its entries sum to {total}")
        if available != earned - spent:
            found.problems.append(
                f"{name}: available {available} but earned {earned} - spent {spent}"
            )
        if available < 0:
            found.problems.append(f"{name}: negative ({available})")
    for (who, asset), (_, entries) in sorted(ledger.items()):
        found.problems.append(f"{entries} ledger entries of {label}{who}/{asset} have no balance")
    found.checked[checked] = count


def _codes(found: Findings, program_id: str | None) -> None:
    # One code shown by two unique-coupon issuances of rewards drawing from one pool.
    drawn = (
        Issuance.select(
            Reward.code_pool_id,
            Issuance.coupon_code,
            peewee.fn.COUNT(Issuance.id).alias("times"),
        )
        .join(Reward, on=(Issuance.reward == Reward.id))
        .where(Issuance.type == UNIQUE_COUPON)
        .group_by(Reward.code_pool_id, Issuance.coupon_code)
        .having(peewee.fn.COUNT(Issuance.id) > 1)
    )
    drawn = _scoped(drawn, Issuance.program, program_id)
    for pool_id, code, times in drawn.tuples():
        found.problems.append(f"code {code!r} of pool {pool_id} was issued {times} times")
    # A code drawn when it had already expired.
    late = Issuance.select(Issuance.id, Issuance.coupon_code).where(
        Issuance.code_expires_at.is_null(False) & (Issuance.code_expires_at < Issuance.issued_at)
    )
    for issuance_id, code in _scoped(late, Issuance.program, program_id).tuples():
        found.problems.append(f"issuance {issuance_id} drew code {code!r} after it expired")
    # One issuance holding several codes.
    held = (
        Code.select(Code.issuance_id, peewee.fn.COUNT(Code.id).alias("codes"))
        .join(CodePool)
        .where(Code.issuance_id.is_null(False))
        .group_by(Code.issuance_id)
        .having(peewee.fn.COUNT(Code.id) > 1)
    )
    held = _scoped(held, CodePool.program, program_id)
    for issuance_id, codes in held.tuples():
        found.problems.append(f"issuance {issuance_id} holds {codes} codes")
    # Pool counters against their codes.
    by_status = (
        Code.select(Code.pool, Code.status, peewee.fn.COUNT(Code.id).alias("n"))
        .join(CodePool)
        .group_by(Code.pool, Code.status)
    )
    by_status = _scoped(by_status, CodePool.program, program_id)
    counted: dict[str, dict[str, int]] = {}
    for pool_id, status, n in by_status.tuples():
        counted.setdefault(pool_id, {})[status] = n
    pools = _scoped(
        CodePool.select(
            CodePool.id, CodePool.total_count, CodePool.available_count, CodePool.issued_count
        ).order_by(CodePool.id),
        CodePool.program,
        program_id,
    )
    count = 0
    for pool_id, total, available, issued in pools.tuples():
        count += 1
        codes = counted.get(pool_id, {})
        want = (
            sum(codes.values()),
            codes.get(Code.STATUS_AVAILABLE, 0),
            codes.get(Code.STATUS_ISSUED, 0) + codes.get(Code.STATUS_VOIDED, 0),
        )
        if (total, available, issued) != want:
            found.problems.append(
                f"code pool {pool_id}: total/available/issued {total}/{available}/{issued} "
                f"but its codes say {want[0]}/{want[1]}/{want[2]}"
            )
    found.checked["code_pools"] = count


E = events_pb2.EventType
# Event types whose payload is the row of each table, by table, and whether rows are checked
# only from the program's oldest kept event of those types: group entries had no events
# before the feed carried them, and one written before that is no drift.
_EVENT_ROWS = (
    ("issuance", "issued_at", (E.EVENT_TYPE_ISSUANCE_ISSUED, E.EVENT_TYPE_CUSTOM_GRANTED), False),
    ("ledger_entry", "created_at", (E.EVENT_TYPE_BALANCE_CHANGED,), False),
    ("group_ledger_entry", "created_at", (E.EVENT_TYPE_GROUP_BALANCE_CHANGED,), True),
)
# Rows named per kind of problem, at most.
_SHOWN = 5


def _events(found: Findings, program_id: str | None) -> None:
    payload_id = (
        "json_extract(\"payload\", '$.id')" if is_sqlite() else "(\"payload\"::json ->> 'id')"
    )
    mark = database.param
    scope = f' AND "program_id" = {mark}' if program_id else ""
    params = (program_id,) if program_id else ()
    checked = 0
    for table, stamp, types, own_since in _EVENT_ROWS:
        kinds = ", ".join(str(t) for t in types)
        # The ids its events carry, per program, and where each program's kept events start.
        carried = (
            f'SELECT "program_id", {payload_id} AS "id" FROM "event" '
            f'WHERE "type" IN ({kinds}){scope}'
        )
        since = (
            'SELECT "program_id", MIN("created_at") AS "since" FROM "event" '
            + (f'WHERE "type" IN ({kinds}) ' if own_since else "")
            + "GROUP BY 1"
        )
        missing = database.execute_sql(
            f'SELECT r."id" FROM "{table}" r JOIN ({since}) k ON k."program_id" = r."program_id" '
            f'LEFT JOIN ({carried}) e ON e."id" = r."id" '
            f'WHERE r."{stamp}" >= k."since" AND e."id" IS NULL'
            + (f' AND r."program_id" = {mark}' if program_id else "")
            + ' ORDER BY r."id"',
            params * 2,
        ).fetchall()
        for (row_id,) in missing[:_SHOWN]:
            found.problems.append(f"{table} {row_id} has no event")
        if len(missing) > _SHOWN:
            found.problems.append(f"{len(missing) - _SHOWN} more {table} rows have no event")
        orphans = database.execute_sql(
            f'SELECT e."id" FROM ({carried}) e LEFT JOIN "{table}" r ON r."id" = e."id" '
            'WHERE r."id" IS NULL ORDER BY e."id"',
            params,
        ).fetchall()
        for (row_id,) in orphans[:_SHOWN]:
            found.problems.append(f"an event names {table} {row_id}, which does not exist")
        if len(orphans) > _SHOWN:
            found.problems.append(f"{len(orphans) - _SHOWN} more events name no {table} row")
        checked += database.execute_sql(
            f'SELECT COUNT(*) FROM "event" WHERE "type" IN ({kinds}){scope}', params
        ).fetchone()[0]
    found.checked["events"] = checked
