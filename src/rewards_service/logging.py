"""structlog set-up: JSON lines (default) or console, to stderr.

Every RPC writes one access-log line, so that path is kept lean: orjson instead of json, the
interceptor passes its fields explicitly instead of binding context variables, and access
lines are rendered and reach stderr in batches, off the event loop (see `access` and _Stderr).
"""

import atexit
import datetime
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import BinaryIO

import orjson
import structlog

ACCESS_LOGGER = "rewards.rpc"
# How late an access-log line may reach stderr; a kill -9 loses at most this much of them.
FLUSH_SECONDS = 0.2
# Logged values may come from anyone (a request_id is logged before the caller is known, and
# may be 8 MiB long): each is cut to this many characters, with a marker saying how long it
# was. A traceback keeps more, as its last lines are the useful ones.
MAX_VALUE_CHARS = 256
MAX_TRACEBACK_CHARS = 16 * 1024
# Access lines held while stderr does not take them (a stalled log reader): past this many,
# further ones are dropped and counted, so that memory stays bounded.
MAX_HELD_LINES = 20_000


def _clipped(text: str, limit: int) -> str:
    return f"{text[:limit]}…[{len(text)} chars]"


def clip_values(_logger, _name, event: dict) -> dict:
    """A structlog processor: no logged value is longer than MAX_VALUE_CHARS."""
    for key, value in event.items():
        if isinstance(value, int | float | bool | None):
            continue
        if not isinstance(value, str):
            shown = repr(value)
            if len(shown) > MAX_VALUE_CHARS:
                event[key] = _clipped(shown, MAX_VALUE_CHARS)
        elif key == "exception":
            if len(value) > MAX_TRACEBACK_CHARS:
                event[key] = f"…[{len(value)} chars]{value[-MAX_TRACEBACK_CHARS:]}"
        elif len(value) > MAX_VALUE_CHARS:
            event[key] = _clipped(value, MAX_VALUE_CHARS)
    return event


class _Stderr:
    """Access-log lines wait in memory for up to FLUSH_SECONDS, then go out in one write. A
    write per line would hand the GIL to another thread on every call. Any other line writes
    the waiting ones first, then itself, so the log keeps its order and lifecycle lines
    (serving, stopping, errors) are never late. Access lines wait as events (`access`),
    which `render` turns into lines when their batch goes out; past MAX_HELD_LINES they are
    dropped, and the batch says how many."""

    def __init__(self, raw: BinaryIO, render: Callable[[dict, str], bytes]) -> None:
        self._raw = raw
        self._render = render
        self._start()

    def _start(self) -> None:
        self._pending: list[bytes | dict] = []
        self._dropped = 0
        self._pending_lock = threading.Lock()  # held only to append or take the list
        self._write_lock = threading.Lock()  # keeps batches in order
        threading.Thread(target=self._flush_forever, name="log-flush", daemon=True).start()

    def after_fork_in_child(self) -> None:
        """A forked worker: the parent writes what was pending, and a lock the flushing
        thread held at the fork would stay held; the child starts afresh."""
        self._start()

    def hold(self, event: dict) -> None:
        with self._pending_lock:
            if len(self._pending) < MAX_HELD_LINES:
                self._pending.append(event)
            else:
                self._dropped += 1

    def now(self, line: bytes) -> None:
        with self._pending_lock:
            self._pending.append(line)
        self.flush()

    def flush(self) -> None:
        with self._write_lock:
            with self._pending_lock:
                batch, self._pending = self._pending, []
                dropped, self._dropped = self._dropped, 0
            render = self._render
            lines = [item if type(item) is bytes else render(item, "info") for item in batch]
            if dropped:
                notice = {"event": "access_lines_dropped", "dropped": dropped}
                lines.append(render(notice, "warning"))
            if lines:
                self._raw.write(b"".join(lines))
                self._raw.flush()

    def _flush_forever(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            self.flush()


class _Lines:
    """A structlog logger: every rendered line through `write`."""

    def __init__(self, write: Callable[[bytes], None]) -> None:
        self._write = write

    def msg(self, message: bytes) -> None:
        self._write(message + b"\n")

    log = debug = info = warn = warning = msg
    fatal = failure = err = critical = exception = error = msg


def _add_pid(_logger, _name, event: dict) -> dict:
    event.setdefault("pid", os.getpid())
    return event


# Where an event recorded earlier (`access`) keeps the time it happened, until rendered.
_AT = "_at"


def _timestamp(_logger, _name, event: dict) -> dict:
    """structlog's TimeStamper(fmt="iso", utc=True), except that an event recorded earlier
    is stamped with the time it was recorded, not the time it is rendered."""
    at = event.pop(_AT, None)
    stamp = datetime.datetime.fromtimestamp(time.time() if at is None else at, datetime.UTC)
    event["timestamp"] = stamp.isoformat().replace("+00:00", "Z")
    return event


def _immediately(fields: dict) -> None:
    structlog.get_logger(ACCESS_LOGGER).info("rpc", **fields)


class _Access:
    """How `access` writes a line: through structlog at once (the default, and for console
    output), or recorded and rendered when its batch goes out (JSON output)."""

    write: Callable[[dict], None] = staticmethod(_immediately)


_access = _Access()


def access(**fields: object) -> None:
    """One call's access-log line ("rpc" event). With JSON output the call only records its
    fields, clipped as any logged value is (so that no caller's value is held at full
    size): the line is rendered by the same processors, with the time of the call, when
    its batch is written, on the flushing thread rather than the event loop (where
    rendering cost about a tenth of a cached GetReward)."""
    _access.write(fields)


def _recorder(out: _Stderr) -> Callable[[dict], None]:
    def record(fields: dict) -> None:
        fields["event"] = "rpc"
        fields[_AT] = time.time()
        out.hold(clip_values(None, "info", fields))

    return record


def _renderer(processors: list) -> Callable[[dict, str], bytes]:
    """A recorded event's line at level `name`: the processors of every line, but
    clip_values, which ran when it was recorded."""
    chain = [p for p in processors if p is not clip_values]

    def render(event: dict, name: str) -> bytes:
        for processor in chain:
            event = processor(None, name, event)
        return event + b"\n"

    return render


def _nothing(_fields: dict) -> None:
    pass


def configure(fmt: str = "json", level: str = "info", *, with_pid: bool = False) -> None:
    """`with_pid` names the process on every line, for workers sharing one log. `fmt` "auto"
    is console on a terminal, JSON otherwise."""
    fmt = resolve_format(fmt)
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    processors = [
        *([_add_pid] if with_pid else []),
        structlog.processors.add_log_level,
        _timestamp,
        structlog.processors.format_exc_info,
        clip_values,
        renderer,
    ]
    threshold = logging.getLevelNamesMapping()[level.upper()]
    if fmt == "json":
        out = _Stderr(sys.stderr.buffer, _renderer(processors))
        atexit.register(out.flush)
        os.register_at_fork(before=out.flush, after_in_child=out.after_fork_in_child)
        lines = _Lines(out.now)  # access lines are held by `access`, not by structlog

        def factory(*_args: object) -> _Lines:
            return lines

        _access.write = _recorder(out) if threshold <= logging.INFO else _nothing
    else:
        factory = structlog.WriteLoggerFactory(file=sys.stderr)
        _access.write = _immediately
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    route_stdlib(level)


def resolve_format(fmt: str) -> str:
    if fmt != "auto":
        return fmt
    return "console" if sys.stderr.isatty() else "json"


class _ToStructlog(logging.Handler):
    """Records of the standard library's loggers (grpc, peewee, psycopg2, asyncio) rendered
    like ours, on the same stream, with the logger's name."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields = {"logger": record.name}
            if record.exc_info:
                fields["exc_info"] = record.exc_info
            structlog.get_logger(record.name).log(record.levelno, record.getMessage(), **fields)
        except Exception:
            self.handleError(record)


def route_stdlib(level: str) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _ToStructlog):
            root.removeHandler(handler)
    root.addHandler(_ToStructlog())
    root.setLevel(logging.getLevelNamesMapping()[level.upper()])
