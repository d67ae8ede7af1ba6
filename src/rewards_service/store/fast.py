"""Hot-path SQL. Queries that run on every issue are written once and executed with
parameters, skipping peewee's per-call query building (measured at several times the cost of
SQLite's own execute). Rows still come back as models, through the fields' converters."""

from collections.abc import Callable
from functools import cache
from typing import TypeVar

import orjson
import peewee

from rewards_service.bounded import BoundedCache
from rewards_service.store.db import change_token, database, is_sqlite
from rewards_service.store.fields import ExpiryField, JSONField, TimestampField
from rewards_service.store.postgres import PostgresDatabase

M = TypeVar("M", bound=peewee.Model)
N = TypeVar("N", bound=peewee.Model)
R = TypeVar("R")


@cache
def _in_style(text: str, param: str) -> str:
    return text if param == "?" else text.replace("?", param)


def sql(text: str) -> str:
    """`text` written with `?` placeholders, in the connected database's placeholder style."""
    return _in_style(text, database.param)


@cache
def _readers(model: type[peewee.Model], columns: tuple[str, ...]):
    """(attribute name, converter or None) per selected column. Both drivers already return
    str and int for the plain columns; only our own column types need converting."""
    fields = [model._meta.columns[column] for column in columns]
    return [
        (f.name, f.python_value if isinstance(f, TimestampField | JSONField) else None)
        for f in fields
    ]


def _loaded(model: type[M], data: dict[str, object]) -> M:
    # What peewee does for a fetched row, minus its per-field setattr calls.
    row = model(__no_default__=True)
    row.__data__.update(data)
    return row


# Rows read again unchanged are the common case on hot reads (a replay, a reward fetched over
# and over), so their converted values, and what callers build from them (see memoized), are
# reused, keyed by the row exactly as stored. Code changes rows by assigning fields; a JSON
# value (a list of segments, a config) is parsed afresh for every row handed out, so changing
# it in place changes that row only, never the memo or another reader's row.
MEMO_BYTES = 8 * 1024 * 1024
# What an entry costs beyond the text it holds: the key, the dicts, the converted values.
ENTRY_OVERHEAD = 512


class _Stored:
    """A row as stored: its converted values, and what was built from them."""

    __slots__ = ("built", "data", "json")

    def __init__(self, data: dict[str, object], json: tuple[tuple[str, Callable, str], ...]):
        self.data = data
        # (name, converter, stored text) of the JSON columns, parsed again per row.
        self.json = json
        self.built: dict[tuple, object] = {}


def _cost(values: tuple) -> int:
    return ENTRY_OVERHEAD + sum(len(v) for v in values if isinstance(v, str | bytes))


_stored: BoundedCache[tuple, _Stored] = BoundedCache(MEMO_BYTES)


def _models(model: type[M], cursor) -> list[M]:
    return _built(model, tuple(d[0] for d in cursor.description), cursor.fetchall())


def _built(model: type[M], columns: tuple[str, ...], records: list[tuple]) -> list[M]:
    readers = _readers(model, columns)
    rows = []
    for values in records:
        key = (model, columns, values)
        stored = _stored.get(key)
        if stored is None:
            stored = _Stored(
                {
                    name: value if value is None or convert is None else convert(value)
                    for (name, convert), value in zip(readers, values, strict=True)
                },
                tuple(
                    (name, convert, value)
                    for (name, convert), value in zip(readers, values, strict=True)
                    if isinstance(value, str) and convert is not None
                ),
            )
            _stored.put(key, stored, _cost(values))
        rows.append(_from_stored(model, stored))
    return rows


def _from_stored(model: type[M], stored: _Stored) -> M:
    row = _loaded(model, stored.data)
    for name, convert, text in stored.json:
        row.__data__[name] = convert(text)
    row._stored = stored
    return row


def copy_of(row: M) -> M:
    """Another instance of a row read from the database, as it was read: nothing mutable
    is shared with `row`."""
    return _from_stored(type(row), row._stored)


def is_unchanged(row: peewee.Model) -> bool:
    """Whether the row was read from the database and not changed since."""
    stored = getattr(row, "_stored", None)
    return stored is not None and row.__data__ == stored.data


def memoized(build: Callable[..., R]) -> Callable[..., R]:
    """`build(row, *args)` for rows read unchanged is computed once per stored row and
    (hashable) args. What it returns is shared between calls, so callers must not mutate it."""

    def cached(row: M, *args: object) -> R:
        if not is_unchanged(row):
            return build(row, *args)
        built = row._stored.built
        key = (build, *args)
        if key not in built:
            built[key] = build(row, *args)
        return built[key]

    return cached


# Results of the hot queries outside transactions, with the change token read before each
# query: while no commit happens anywhere, asking again returns the same rows without
# calling into SQLite (see wal_header.py for why that matters).
_results: BoundedCache[tuple, tuple[bytes, list[_Stored]]] = BoundedCache(MEMO_BYTES)


def select_all(model: type[M], text: str, *params: object) -> list[M]:
    # Inside a transaction a read must see that transaction's own writes.
    token = None if database.in_transaction() else change_token()
    if token is None:
        return _models(model, execute(text, *params))
    key = (model, text, params)
    found = _results.get(key)
    if found is not None and found[0] == token:
        return [_from_stored(model, stored) for stored in found[1]]
    rows = _models(model, execute(text, *params))
    # Only what was found is kept: its key matched stored values, where a miss's key is
    # whatever a caller sent (up to the message size limit).
    if rows:
        _results.put(key, (token, [row._stored for row in rows]), _cost((text, *params)))
    return rows


@cache
def column_names(model: type[peewee.Model]) -> tuple[str, ...]:
    return tuple(f.column_name for f in model._meta.sorted_fields)


def run_select(query: peewee.ModelSelect) -> list:
    """The whole rows a peewee-built query selects, read like the hot queries (no per-field
    setattr), in no promised order.

    On SQLite the rows come back packed into one JSON array by SQLite itself: Python's
    sqlite3 hands the GIL over on every row it steps: with 16 threads listing at once, a
    ListIssuances page of 50 took 4.7 ms stepped row by row and 1.2 ms packed."""
    text, params = query.select(peewee.SQL("*")).sql()
    if not is_sqlite():
        return _models(query.model, database.execute_sql(text, params))
    columns = column_names(query.model)
    packed = ", ".join(f'"{name}"' for name in columns)
    text = f"SELECT json_group_array(json_array({packed})) FROM ({text})"
    (records,) = database.execute_sql(text, params).fetchone()
    return _built(query.model, columns, [tuple(values) for values in orjson.loads(records)])


def select_one_and(
    model: type[M], extras: int, text: str, *params: object
) -> tuple[M, tuple] | None:
    """A row whose SELECT ends with `extras` more columns (e.g. a scalar subquery), so that
    a value read beside it costs no round trip of its own: (row, those values), or None."""
    return one_and(model, extras, execute(text, *params))


def one_and(model: type[M], extras: int, cursor) -> tuple[M, tuple] | None:
    """`select_one_and` of a statement already run (e.g. an UPDATE … RETURNING)."""
    record = cursor.fetchone()
    if record is None:
        return None
    columns = tuple(d[0] for d in cursor.description)[:-extras]
    [row] = _built(model, columns, [tuple(record[:-extras])])
    return row, tuple(record[-extras:])


def joined_one(
    first: type[M], width: int, extras: int, second: type[N], cursor
) -> tuple[M, tuple, N | None] | None:
    """A joined row: `width` columns of `first`, `extras` more values, then the columns of
    `second` (all NULL when the join found none). (first's row, the extras, second's row or
    None), or None when there is no row."""
    record = cursor.fetchone()
    if record is None:
        return None
    names = tuple(d[0] for d in cursor.description)
    [row] = _built(first, names[:width], [tuple(record[:width])])
    rest = width + extras
    other = None
    if record[rest] is not None:  # its primary key
        [other] = _built(second, names[rest:], [tuple(record[rest:])])
    return row, tuple(record[width:rest]), other


def select_one(model: type[M], text: str, *params: object) -> M | None:
    rows = select_all(model, text, *params)
    return rows[0] if rows else None


def execute(text: str, *params: object):
    db = database.obj
    if isinstance(db, PostgresDatabase):
        return db.execute_sql(*db.prepared(sql(text), params))
    return db.execute_sql(sql(text), params)


def execute_unread(text: str, *params: object) -> None:
    """A statement whose rows and row count nobody reads. On PostgreSQL it costs no round
    trip of its own: it goes with the next statement that needs an answer, at the latest with
    the end of its write's savepoint, where an error in it is still that write's
    (postgres.py). SQLite has no round trips: it runs now."""
    _unread(sql(text), params)


def _unread(text: str, params) -> None:
    db = database.obj
    if isinstance(db, PostgresDatabase):
        db.execute_unread(*db.prepared(text, params))
    else:
        db.execute_sql(text, params)


@cache
def _insert_sql(model: type[peewee.Model], param: str) -> str:
    names = column_names(model)
    columns = ", ".join(f'"{name}"' for name in names)
    marks = ", ".join([param] * len(names))
    return f'INSERT INTO "{model._meta.table_name}" ({columns}) VALUES ({marks})'


@cache
def _writers(model: type[peewee.Model]) -> list[tuple[str, Callable, type | None, object]]:
    """(attribute name, converter, the type the driver takes as is, what None is written as)
    per column. Text, integer and foreign-key columns already holding that type skip peewee's
    per-field db_value; None is written as NULL except where the field stores it otherwise
    (ExpiryField)."""
    writers = []
    for f in model._meta.sorted_fields:
        if isinstance(f, JSONField | TimestampField):
            ready = None
        elif isinstance(f, peewee.CharField | peewee.TextField | peewee.ForeignKeyField):
            ready = str
        elif isinstance(f, peewee.IntegerField):
            ready = int
        else:
            ready = None
        none = f.db_value(None) if isinstance(f, ExpiryField) else None
        writers.append((f.name, f.db_value, ready, none))
    return writers


def column_values(row: peewee.Model) -> list[object]:
    """What peewee's db_value gives for each column, in sorted_fields order."""
    data = row.__data__
    values = []
    for name, convert, ready, none in _writers(type(row)):
        value = data.get(name)
        if value is None:
            values.append(none)
        else:
            values.append(value if type(value) is ready else convert(value))
    return values


def insert(row: M) -> M:
    """INSERT every column of a new row whose primary key is already set; its result is
    not read (execute_unread): a broken unique key fails the write at its end."""
    values = column_values(row)
    _unread(_insert_sql(type(row), database.param), values)
    # What was written, for its event's snapshot: assigning a field marks it dirty again.
    row._dirty.clear()
    row._written = values
    return row


def from_columns(model: type[M], values: dict[str, object]) -> M:
    """A row from stored column values by name (e.g. an event's snapshot of it), read like
    a fetched one; columns the model no longer has are left out."""
    known = model._meta.columns
    kept = {name: value for name, value in values.items() if name in known}
    return _built(model, tuple(kept), [tuple(kept.values())])[0]


def snapshot(row: peewee.Model) -> dict[str, object]:
    """A row's stored column values by name (what `from_columns` takes back)."""
    written = getattr(row, "_written", None)
    values = written if written is not None and not row._dirty else column_values(row)
    return dict(zip(column_names(type(row)), values, strict=True))
