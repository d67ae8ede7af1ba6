"""What the use cases' in-memory stores share: a transaction that leaves nothing behind when
it raises, rows handed out as copies, keyset pages, recorded events, assets with the ledger's
balances, and a store no test may touch. Each test module keeps its own fake's tables and
queries."""

import copy

from rewards_service.domain.errors import FailedPrecondition, NotFound
from rewards_service.domain.ids import new_id
from rewards_service.domain.pagination import next_token
from rewards_service.services.records import Asset
from rewards_service.store.db import Conflict, RequestKey, RowKey


def copy_row(row):
    """A row as a read hands it out: changing it changes nothing stored until it is saved."""
    return type(row)(**copy.deepcopy(row.__data__))


def _copy_dicts(table):
    """A table's dicts copied at every depth, the rows in them shared."""
    if isinstance(table, dict):
        return {key: _copy_dicts(value) for key, value in table.items()}
    return table


def keyset_page(rows, page, key=lambda row: row.id, *, descending=False):
    """A page of rows in key order after the page's position, as queries.keyset_page gives it."""
    rows = sorted(rows, key=key, reverse=descending)
    if page.after is not None:
        rows = [r for r in rows if (key(r) < page.after if descending else key(r) > page.after)]
    shown = rows[: page.size]
    return shown, next_token(page, str(key(shown[-1])) if shown else None, len(rows) > page.size)


class InMemoryStore:
    """A store's tables as attributes, named in TABLES. Writes happen in a transaction only,
    and one that raises leaves its tables as they were. A transaction copies the tables'
    dicts; a subclass whose writes change what those dicts hold in place (a row, a list) sets
    DEEP_SNAPSHOT, so that it copies everything."""

    TABLES: tuple[str, ...] = ()
    DEEP_SNAPSHOT = False

    def __init__(self) -> None:
        self.locks: list[list[RowKey]] = []  # each transaction's, in order
        self.reads: list[list[RequestKey]] = []  # each transaction's look-ups by request_id
        self._open = 0

    def _atomic(self, work):
        snapshot = copy.deepcopy if self.DEEP_SNAPSHOT else _copy_dicts
        before = {name: snapshot(getattr(self, name)) for name in self.TABLES}
        self._open += 1
        try:
            return work()
        except Exception:
            for name, table in before.items():
                setattr(self, name, table)
            raise
        finally:
            self._open -= 1

    def transaction(self, work, *, on_conflict=None, locks=(), reads=()):
        # As the store's writer: after a unique-key clash the work's writes are gone, and
        # on_conflict answers in a transaction of its own; when it answers None, the clash stands.
        self.locks.append(list(locks))
        self.reads.append(list(reads))
        try:
            return self._atomic(work)
        except Conflict:
            if on_conflict is None:
                raise
            answer = self._atomic(on_conflict)
            if answer is None:
                raise
            return answer

    def _writing(self) -> None:
        assert self._open, "a write outside a transaction"


class RecordsEvents(InMemoryStore):
    """A store whose writes record their events in order, as (event type, id of the row); a
    subclass names "events" among its TABLES so that a failed transaction records none."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[int, str]] = []

    def emit(self, program_id, event_type, row):
        self._writing()
        self.events.append((event_type, row.id))


class Accounts(InMemoryStore):
    """Assets, ledger entries and the balances they move, by (owner, asset): (available,
    lifetime_earned, lifetime_spent, seq), never below zero. A subclass names its ledger's
    ENTRY and BALANCE models and their OWNER column, and "entries" and "balances" among its
    TABLES."""

    ENTRY: type
    BALANCE: type
    OWNER: str

    def __init__(self) -> None:
        super().__init__()
        self.assets: dict[str, Asset] = {}
        self.entries: dict = {}
        self.balances: dict[tuple[str, str], tuple[int, int, int, int]] = {}

    def add_asset(self, program_id, scale=2) -> Asset:
        """An asset, as committed before the call under test."""
        asset = Asset(id=new_id("ast"), program=program_id, code="PTS", name="Points", scale=scale)
        self.assets[asset.id] = asset
        return asset

    def get_asset(self, program_id, asset_id):
        asset = self.assets.get(asset_id)
        if asset is None or asset.program_id != program_id:
            raise NotFound(
                f"No asset {asset_id}.", reason="ASSET_NOT_FOUND", metadata={"id": asset_id}
            )
        return asset

    def asset_scale(self, asset_id):
        return self.assets[asset_id].scale

    def _account(self, owner_id, asset_id):
        return self.balances.get((owner_id, asset_id), (0, 0, 0, 0))

    def balance(self, owner_id, asset_id):
        available, earned, spent, seq = self._account(owner_id, asset_id)
        return self.BALANCE(
            **{self.OWNER: owner_id},
            asset=asset_id,
            available=available,
            lifetime_earned=earned,
            lifetime_spent=spent,
            seq=seq,
        )

    def _entry(self, owner_id, asset, delta, **fields):
        """The entry that moves an owner's balance by delta, not booked yet. A balance it
        would take below zero breaks the schema's CHECK, which ledger.post answers so."""
        available, _, _, seq = self._account(owner_id, asset.id)
        if available + delta < 0:
            raise FailedPrecondition(
                "The balance does not cover this.", reason="INSUFFICIENT_BALANCE"
            )
        return self.ENTRY(
            id=new_id("led"),
            **{self.OWNER: owner_id},
            asset=asset.id,
            delta=delta,
            balance_after=available + delta,
            seq=seq + 1,
            **fields,
        )

    def _book(self, entry) -> None:
        owner_id = getattr(entry, self.OWNER)
        _, earned, spent, _ = self._account(owner_id, entry.asset_id)
        earned, spent = earned + max(entry.delta, 0), spent + max(-entry.delta, 0)
        self.balances[owner_id, entry.asset_id] = (entry.balance_after, earned, spent, entry.seq)
        self.entries[entry.id] = entry

    def ledger_page(self, owner_id, asset_id, page):
        rows = [
            e
            for e in self.entries.values()
            if getattr(e, self.OWNER) == owner_id and (not asset_id or e.asset_id == asset_id)
        ]
        key = (lambda e: e.seq) if asset_id else (lambda e: e.id)
        return keyset_page(rows, page, key, descending=True)


class Untouchable:
    """A store whose every use fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"the store was asked for {name}")
