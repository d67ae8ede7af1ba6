"""Queries shared by the use cases. Every lookup is scoped to a program: another program's
resource is simply not found."""

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from operator import attrgetter
from typing import TypeVar

import peewee
from rewards.v1 import common_pb2 as common

from rewards_service.domain import rewards as rules
from rewards_service.domain.errors import NotFound
from rewards_service.domain.pagination import PageRequest, next_token
from rewards_service.domain.participants import REF_KINDS, UNIQUE_KINDS
from rewards_service.store import fast, outbox
from rewards_service.store.db import RequestKey, in_transaction, is_sqlite
from rewards_service.store.fields import utcnow
from rewards_service.store.models import (
    Asset,
    BaseModel,
    Code,
    CodePool,
    Issuance,
    Participant,
    Reward,
)

M = TypeVar("M", bound=peewee.Model)
S = common.RewardStatus


# Row locks, in one place. A write that reads a row to decide what to write locks it first,
# so it decides on the row as it is at commit: a concurrent writer of that row finishes first,
# and the read sees its change. SQLite has no row locks (FOR UPDATE is a syntax error there):
# its IMMEDIATE transactions already serialise writers, so every read in one is fresh.


def locked(query: peewee.ModelSelect, *, skip_locked: bool = False) -> peewee.ModelSelect:
    """`query` taking the row locks of what it selects (skip_locked: passing over rows
    another transaction holds)."""
    return query if is_sqlite() else query.for_update(skip_locked=skip_locked)


def locked_text(text: str) -> str:
    """A SELECT written out, taking the row locks of what it selects."""
    return text if is_sqlite() else f"{text} FOR UPDATE"


def _one(model: type[M], program_id: str, object_id: str, *, for_update: bool) -> M | None:
    query = model.select().where((model.id == object_id) & (model.program == program_id))
    return (locked(query) if for_update else query).first()


# Assets never change after creation, so every process may remember them for good.
_assets: dict[str, Asset] = {}


def asset(asset_id: str) -> Asset | None:
    """Any program's asset by id, from memory after the first read."""
    found = _assets.get(asset_id)
    if found is None:
        found = Asset.get_or_none(Asset.id == asset_id)
        if found is not None:
            _assets[asset_id] = found
    return found


def asset_scale(asset_id: str) -> int:
    found = asset(asset_id)
    assert found is not None, f"asset {asset_id} is referenced but missing"
    return found.scale


def find_asset(program_id: str, asset_id: str) -> Asset | None:
    found = asset(asset_id)
    return found if found is not None and found.program_id == program_id else None


def find_code_pool(program_id: str, pool_id: str) -> CodePool | None:
    return _one(CodePool, program_id, pool_id, for_update=False)


def get_asset(program_id: str, asset_id: str) -> Asset:
    asset = find_asset(program_id, asset_id)
    if asset is None:
        raise NotFound(f"No asset {asset_id}.", reason="ASSET_NOT_FOUND", metadata={"id": asset_id})
    return asset


def get_code_pool(program_id: str, pool_id: str, *, for_update: bool = False) -> CodePool:
    pool = _one(CodePool, program_id, pool_id, for_update=for_update)
    if pool is None:
        raise NotFound(
            f"No code pool {pool_id}.", reason="CODE_POOL_NOT_FOUND", metadata={"id": pool_id}
        )
    return pool


def get_reward(program_id: str, reward_id: str, *, for_update: bool = False) -> Reward:
    text = 'SELECT * FROM "reward" WHERE "id" = ? AND "program_id" = ?'
    if for_update:
        text = locked_text(text)
    reward = fast.select_one(Reward, text, reward_id, program_id)
    if reward is None:
        raise NotFound(
            f"No reward {reward_id}.", reason="REWARD_NOT_FOUND", metadata={"id": reward_id}
        )
    return reward


def reward_to_issue(program_id: str, reward_id: str) -> tuple[Reward, int]:
    """The reward, locked, and its program's registry_version, in one statement: the issue
    path learns whether the program's registry changed at no extra round trip."""
    text = locked_text(
        'SELECT *, (SELECT "registry_version" FROM "program" AS "p" '
        'WHERE "p"."id" = "reward"."program_id") AS "registry_version" '
        'FROM "reward" WHERE "id" = ? AND "program_id" = ?'
    )
    found = fast.select_one_and(Reward, 1, text, reward_id, program_id)
    if found is None:
        raise NotFound(
            f"No reward {reward_id}.", reason="REWARD_NOT_FOUND", metadata={"id": reward_id}
        )
    reward, (version,) = found
    return reward, int(version or 0)


# redeemed_count, which every issue changes, comes apart from the other columns: the reward
# is then read as stored from the memo (fast.py), not converted afresh each time.
@cache
def _kept_reward_columns() -> tuple[str, ...]:
    return tuple(name for name in fast.column_names(Reward) if name != "redeemed_count")


@cache
def _take_reward_sql() -> str:
    columns = ", ".join(f'"{name}"' for name in _kept_reward_columns())
    return (
        'UPDATE "reward" SET "redeemed_count" = "redeemed_count" + ? '
        'WHERE "id" = ? AND "program_id" = ? AND "status" = ? '
        'AND ("max_total" IS NULL OR "redeemed_count" + ? <= "max_total") '
        f'RETURNING {columns}, "redeemed_count", (SELECT "registry_version" FROM "program" AS "p" '
        'WHERE "p"."id" = "reward"."program_id") AS "registry_version"'
    )


@cache
def _take_reward_for_sql(column: str) -> str:
    # PostgreSQL runs an UPDATE in a WITH; SQLite does not, and has no round trip to save.
    return (
        f'WITH "taken" AS ({_take_reward_sql()}) SELECT "taken".*, "t".* FROM "taken" '
        f'LEFT JOIN "participant" AS "t" ON "t"."program_id" = ? AND "t"."{column}" = ?'
    )


def take_reward_for(
    program_id: str, reward_id: str, units: int, ref: tuple[str, str] | None
) -> tuple[Reward, int, Participant | None] | None:
    """`take_stock` that also reads what `reward_to_issue` reads, in one statement: the
    reward as it is after taking `units` of it, its program's registry_version and, on
    PostgreSQL, the participant whose `ref` (column, normalised value; the column one of
    domain.participants.UNIQUE_KINDS) names, None when it was not read or not found. None
    when the reward is missing, not ACTIVE or has too few left. The common issue costs one
    statement here instead of two or three; the others then ask again in the contract's order."""
    params = [units, reward_id, program_id, common.REWARD_STATUS_ACTIVE, units]
    if ref is None or is_sqlite():
        cursor = fast.execute(_take_reward_sql(), *params)
        found = fast.one_and(Reward, 2, cursor)
        if found is None:
            return None
        (reward, extras), participant = found, None
    else:
        column, value = ref
        if column not in UNIQUE_KINDS:  # it is written into the SQL: one of ours
            raise ValueError(f"not a unique participant identifier: {column!r}")
        text = _take_reward_for_sql(column)
        width = len(_kept_reward_columns())
        joined = fast.joined_one(
            Reward, width, 2, Participant, fast.execute(text, *params, program_id, value)
        )
        if joined is None:
            return None
        reward, extras, participant = joined
    redeemed_count, version = extras
    reward.redeemed_count = redeemed_count
    return reward, int(version or 0), participant


# The rows a group's writes look up by request_id, read as the group starts (read_ahead).
# A row found was committed before the group: each look-up of it gets its own copy (a burst
# of retries of one request_id costs one read), until a write of the group saves that row
# (save_row), after which look-ups ask the database. A request_id not found is answered so
# once: the write that looked may create it, and a second look-up (a request_id race's
# loser, or the same request_id twice in one group) asks the database, which then holds
# the group's own writes.
class _Ahead(threading.local):
    rows: dict[RequestKey, peewee.Model | None] | None = None


_ahead = _Ahead()


@cache
def _with_request_ids() -> dict[str, type[BaseModel]]:
    return {
        model._meta.table_name: model
        for model in BaseModel.__subclasses__()
        if "request_id" in model._meta.fields
    }


@contextmanager
def read_ahead(keys: list[RequestKey]) -> Iterator[None]:
    """Read the rows `keys` name, one statement per table (on PostgreSQL it also carries the
    group's row locks: one round trip for both), for find_by_request_id while the group runs."""
    by_table: dict[str, list[str]] = {}
    rows: dict[RequestKey, peewee.Model | None] = {}
    for key in keys:
        table, program_id, request_id = key
        by_table.setdefault(table, []).extend((program_id, request_id))
        rows[key] = None
    for table, params in by_table.items():
        pairs = ", ".join(["(?, ?)"] * (len(params) // 2))
        text = f'SELECT * FROM "{table}" WHERE ("program_id", "request_id") IN ({pairs})'
        for row in fast.select_all(_with_request_ids()[table], text, *params):
            rows[(table, row.program_id, row.request_id)] = row
    _ahead.rows = rows
    try:
        yield
    finally:
        _ahead.rows = None


def find_by_request_id(model: type[M], program_id: str, request_id: str) -> M | None:
    table = model._meta.table_name
    ahead = _ahead.rows
    key = (table, program_id, request_id)
    if ahead is not None and key in ahead:
        found = ahead[key]
        if found is None:
            del ahead[key]
            return None
        return fast.copy_of(found)
    text = f'SELECT * FROM "{table}" WHERE "program_id" = ? AND "request_id" = ? LIMIT 1'
    return fast.select_one(model, text, program_id, request_id)


def save_row(row: peewee.Model) -> None:
    """Writes the changes of a row that exists. Read ahead in the group, it is read again
    from now on (see _Ahead)."""
    row.save()
    ahead = _ahead.rows
    request_id = getattr(row, "request_id", None)
    if ahead and request_id:
        ahead.pop((row._meta.table_name, row.program_id, request_id), None)


class Rows:
    """What create_once asks of the store (services/ports.Creates), over the database."""

    def find_by_request_id(self, kind: type[M], program_id: str, request_id: str) -> M | None:
        return find_by_request_id(kind, program_id, request_id)

    def add(self, row: peewee.Model) -> None:
        row.save(force_insert=True)

    save = staticmethod(save_row)

    emit = staticmethod(outbox.emit)
    transaction = staticmethod(in_transaction)


ROWS = Rows()


def ledger_page(
    entry: type[M], owner: peewee.Field, owner_id: str, asset_id: str, page: PageRequest
) -> tuple[list[M], str]:
    """A page of a participant's or a group's ledger (`entry` and its `owner` column), newest
    first: by id, or for one asset by its sequence, which is commit order."""
    query = entry.select().where(owner == owner_id)
    if asset_id:
        query = query.where(entry.asset == asset_id)
        return keyset_page(query, entry.seq, page, descending=True)
    return keyset_page(query, entry.id, page, descending=True)


def participants_with(program_id: str, column: str, value: str, *, limit: int) -> list[Participant]:
    """Up to `limit` participants of the program whose identifier `column` holds `value`."""
    if column not in REF_KINDS:  # it is written into the SQL: one of ours, never caller text
        raise ValueError(f"not a participant identifier column: {column!r}")
    text = f'SELECT * FROM "participant" WHERE "program_id" = ? AND "{column}" = ? LIMIT ?'
    return fast.select_all(Participant, text, program_id, value, limit)


# A filtered page examines at most this many rows of its collection. A filter that matches
# rarely then returns a short page, even an empty one, with a token to go on (AIP-158 allows
# it), instead of reading a whole collection of millions of rows in one call.
SCAN_ROWS = 5000


def keyset_page(
    query: peewee.ModelSelect,
    key: peewee.Field,
    page: PageRequest,
    *,
    descending: bool = False,
    scope: peewee.ModelSelect | None = None,
) -> tuple[list, str]:
    """One page ordered by a time-ordered id or a sequence; stable when rows are inserted
    between pages. `scope` is the whole collection when `query` filters it further: the page
    then looks at the next SCAN_ROWS rows of the scope only."""
    after = None
    if page.after is not None:
        after = key.adapt(page.after)  # the token holds it as text
        query = query.where(key < after if descending else key > after)
    edge = None if scope is None else _scan_edge(scope, key, after, descending)
    if edge is not None:
        query = query.where(key >= edge if descending else key <= edge)
    rows = fast.run_select(query.order_by(key.desc() if descending else key).limit(page.size + 1))
    rows.sort(key=attrgetter(key.name), reverse=descending)  # run_select promises no order
    has_more = len(rows) > page.size
    rows = rows[: page.size]
    if not has_more and edge is not None:  # the scope goes on past what this page looked at
        return rows, next_token(page, str(edge), True)
    last = str(getattr(rows[-1], key.name)) if rows else None
    return rows, next_token(page, last, has_more)


def _scan_edge(scope: peewee.ModelSelect, key: peewee.Field, after, descending: bool):
    """The key of the scope's SCAN_ROWS-th row after `after`; None when fewer are left."""
    if after is not None:
        scope = scope.where(key < after if descending else key > after)
    ordered = scope.select(key).order_by(key.desc() if descending else key)
    found = ordered.limit(1).offset(SCAN_ROWS - 1).tuples().first()
    return found[0] if found else None


def reward_spec(row: Reward) -> rules.RewardSpec:
    return rules.RewardSpec(
        name=row.name,
        description=row.description,
        category=row.category,
        type=row.type,
        status=row.status,
        config_kind=rules.CONFIG_FOR_TYPE.get(row.type),
        config=dict(row.config),
        redemption_type=row.redemption_type,
        cost_asset_id=row.cost_asset_id or "",
        unit_cost=row.unit_cost or "",
        max_total=row.max_total,
        max_per_participant=row.max_per_participant,
        limits=[rules.RewardLimit(**limit) for limit in row.limits],
        available_from=row.available_from,
        available_until=row.available_until,
        segments=list(row.segments),
        metadata=dict(row.metadata),
        conversion_ratio=row.conversion_ratio or "",
        cost_rounding=row.cost_rounding,
        payment_options=[dict(option) for option in row.payment_options],
        redemption_unit=row.redemption_unit,
    )


def apply_reward_spec(row: Reward, spec: rules.RewardSpec) -> None:
    row.name = spec.name
    row.description = spec.description
    row.category = spec.category
    row.type = spec.type
    row.status = spec.status
    row.config = spec.config
    row.code_pool_id = (
        spec.config.get("code_pool_id") if spec.config_kind == "unique_coupon" else None
    )
    row.redemption_type = spec.redemption_type
    row.cost_asset_id = spec.cost_asset_id or None
    row.unit_cost = spec.unit_cost or None
    row.max_total = spec.max_total
    row.max_per_participant = spec.max_per_participant
    row.limits = [limit.as_dict() for limit in spec.limits]
    row.available_from = spec.available_from
    row.available_until = spec.available_until
    row.segments = spec.segments
    row.metadata = spec.metadata
    row.conversion_ratio = spec.conversion_ratio or None
    row.cost_rounding = spec.cost_rounding
    row.payment_options = spec.payment_options
    row.redemption_unit = spec.redemption_unit


def save_reward(row: Reward) -> Reward:
    row.version += 1
    row.updated_at = utcnow()
    save_row(row)
    return row


def set_reward_status(condition: peewee.Expression, status: int) -> int:
    """A status change made by the service; like any change, it moves the etag, and it is
    an event of each reward it changes."""
    changed = list(
        Reward.update(status=status, version=Reward.version + 1, updated_at=utcnow())
        .where(condition)
        .returning(Reward)
        .execute()
    )
    for row in changed:
        outbox.emit(row.program_id, outbox.E.EVENT_TYPE_REWARD_STATUS_CHANGED, row)
    return len(changed)


def restock_pool_rewards(pool_id: str) -> int:
    """Codes came back: rewards that were out of stock only for lack of codes are ACTIVE again."""
    return set_reward_status(
        (Reward.code_pool_id == pool_id)
        & (Reward.status == S.REWARD_STATUS_OUT_OF_STOCK)
        & (Reward.max_total.is_null() | (Reward.redeemed_count < Reward.max_total)),
        S.REWARD_STATUS_ACTIVE,
    )


@cache
def _insert_codes_sql(rows: int) -> str:
    values = ", ".join(["(?, ?, ?, ?)"] * rows)
    return (
        f'INSERT INTO "code" ("pool_id", "code", "status", "expires_at") VALUES {values} '
        'ON CONFLICT ("pool_id", "code") DO NOTHING'
    )


def insert_codes(pool_id: str, codes: list[tuple[str, datetime | None]]) -> int:
    """Add (code, expires_at) pairs to a pool, skipping codes it holds; returns how many were
    added. One statement with written-out placeholders: peewee's insert_many spent ~20x
    SQLite's own time building the SQL of a 10k-code call."""
    expiry = Code.expires_at.db_value
    params = [
        value
        for code, expires in codes
        for value in (pool_id, code, Code.STATUS_AVAILABLE, expiry(expires))
    ]
    return fast.execute(_insert_codes_sql(len(codes)), *params).rowcount


_LIVE = 'FROM "code" WHERE "pool_id" = ? AND "status" = ? AND "expires_at" > ?'


def draw_code(pool_id: str, now: datetime) -> tuple[int, str, datetime | None] | None:
    """(id, code, expires_at) of the live code of a pool expiring first, locked; None when
    the pool has none. One index range (pool, status, expires_at, id) whatever number of
    expired codes it skips. On PostgreSQL rows other draws hold are passed over, so rewards
    sharing a pool draw different codes instead of queueing on one row."""
    text = f'SELECT "id", "code", "expires_at" {_LIVE} ORDER BY "expires_at", "id" LIMIT 1'
    if not is_sqlite():
        text += " FOR UPDATE SKIP LOCKED"
    found = fast.execute(
        text, pool_id, Code.STATUS_AVAILABLE, Code.expires_at.db_value(now)
    ).fetchone()
    if found is None:
        return None
    return found[0], found[1], Code.expires_at.python_value(found[2])


def has_live_code(pool_id: str, now: datetime) -> bool:
    text = f"SELECT 1 {_LIVE} LIMIT 1"
    params = (pool_id, Code.STATUS_AVAILABLE, Code.expires_at.db_value(now))
    return fast.execute(text, *params).fetchone() is not None


def expired_codes(pool_id: str, now: datetime) -> int:
    """Codes of a pool never issued whose expiry has passed (an index range)."""
    text = 'SELECT COUNT(*) FROM "code" WHERE "pool_id" = ? AND "status" = ? AND "expires_at" <= ?'
    params = (pool_id, Code.STATUS_AVAILABLE, Code.expires_at.db_value(now))
    return int(fast.execute(text, *params).fetchone()[0])


def with_expired_count(pool: CodePool, now: datetime | None = None) -> CodePool:
    pool.expired_count = expired_codes(pool.id, now or utcnow())
    return pool


def mentions_segment(segment: str) -> peewee.Node:
    """A LIKE pre-filter on the stored JSON (the exact match runs after). The pattern is raw
    text, kept away from the JSON column's converter, with LIKE's own characters escaped."""
    stored = f'"segment":{json.dumps(segment)}'
    escaped = stored.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return peewee.NodeList(
        (
            Participant.segments,
            peewee.SQL("LIKE"),
            peewee.Value(f"%{escaped}%", converter=False),
            peewee.SQL("ESCAPE"),
            peewee.Value("\\", converter=False),
        )
    )


def take_stock(reward_id: str, units: int) -> tuple[int, int | None] | None:
    """Takes `units` of an ACTIVE reward in one conditional UPDATE, so max_total holds under
    any concurrency: (redeemed_count, max_total) as they are now, or None when the reward is
    not ACTIVE or has too few left. On PostgreSQL it also locks the reward's row until the
    transaction ends."""
    taken = fast.execute(
        'UPDATE "reward" SET "redeemed_count" = "redeemed_count" + ? '
        'WHERE "id" = ? AND "status" = ? '
        'AND ("max_total" IS NULL OR "redeemed_count" + ? <= "max_total") '
        'RETURNING "redeemed_count", "max_total"',
        units,
        reward_id,
        common.REWARD_STATUS_ACTIVE,
        units,
    ).fetchone()
    return None if taken is None else (taken[0], taken[1])


def issued_units(reward_id: str, participant_id: str | None, since: datetime | None) -> int:
    """Units of a reward issued and not revoked, to one participant or to all, since a time."""
    text = (
        'SELECT COALESCE(SUM("quantity"), 0) FROM "issuance" '
        'WHERE "reward_id" = ? AND "status" <> ?'
    )
    params: list[object] = [reward_id, common.ISSUANCE_STATUS_REVOKED]
    if participant_id is not None:
        text += ' AND "participant_id" = ?'
        params.append(participant_id)
    if since is not None:
        text += ' AND "issued_at" > ?'
        params.append(Issuance.issued_at.db_value(since))
    return int(fast.execute(text, *params).fetchone()[0])


def insert(row: M) -> M:
    """A new row with its id set, in one INSERT of every column (fast.insert)."""
    return fast.insert(row)


def group_of(participant_id: str) -> str | None:
    """The group a participant is in, if any."""
    found = fast.execute(
        'SELECT "group_id" FROM "group_member" WHERE "participant_id" = ?', participant_id
    ).fetchone()
    return found[0] if found else None


def registry_version(program_id: str) -> int:
    """The program's registry version (models.Program): one primary-key read."""
    found = fast.execute(
        'SELECT "registry_version" FROM "program" WHERE "id" = ?', program_id
    ).fetchone()
    return int(found[0]) if found else 0


def bump_registry_version(program_id: str) -> None:
    fast.execute_unread(
        'UPDATE "program" SET "registry_version" = "registry_version" + 1 WHERE "id" = ?',
        program_id,
    )
