"""Opaque, prefixed, time-ordered ids: prefix + 26 Crockford base32 chars (ULID layout)."""

import os
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_lock = threading.Lock()
_last_ms = 0
_last_random = 0


# Two base32 digits per lookup: ids are made on every write, so this is on the hot path.
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]


def _encode(value: int, length: int) -> str:
    """`value` as `length` base32 digits, most significant first (length is even)."""
    return "".join(_PAIRS[(value >> shift) & 0x3FF] for shift in range(5 * length - 10, -1, -10))


def new_id(prefix: str) -> str:
    """Ids made by one process sort in creation order (monotonic within a millisecond)."""
    global _last_ms, _last_random
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms <= _last_ms:
            now_ms = _last_ms
            _last_random += 1
        else:
            _last_random = int.from_bytes(os.urandom(10), "big") >> 1
        _last_ms = now_ms
        return f"{prefix}_{_encode(now_ms, 10)}{_encode(_last_random, 16)}"
