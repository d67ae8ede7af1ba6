"""A cache bounded by bytes: every in-memory cache of the service is one of these, so none can
grow with what callers send."""

import threading
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """At most `max_bytes` of entries, as their callers count them; the oldest go first.

    Reads are plain dict lookups (safe under the GIL); writes take a lock so that the byte
    count stays exact when threads keep entries at once."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: dict[K, tuple[V, int]] = {}
        self._held = 0
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        found = self._entries.get(key)
        return None if found is None else found[0]

    def put(self, key: K, value: V, cost: int) -> None:
        """Keep `value` under `key`, counted as `cost` bytes; one larger than the whole
        cache is not kept."""
        if cost > self.max_bytes:
            return
        with self._lock:
            replaced = self._entries.pop(key, None)
            if replaced is not None:
                self._held -= replaced[1]
            while self._entries and self._held + cost > self.max_bytes:
                self._held -= self._entries.pop(next(iter(self._entries)))[1]  # oldest first
            self._entries[key] = (value, cost)
            self._held += cost

    def discard(self, key: K) -> None:
        with self._lock:
            dropped = self._entries.pop(key, None)
            if dropped is not None:
                self._held -= dropped[1]

    def held_bytes(self) -> int:
        return self._held

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[K]:
        return iter(list(self._entries))
