"""Admission control: what one program may hold of the server at once.

Calls run their blocking part on a small thread pool. Without a limit, one program's flood
(thousands of ListIssuances at once) fills the pool's queue and every other program's calls
wait behind it. Here each program may run at most `running` calls on the pool and queue
`waiting` more on the event loop, where a waiting call costs no thread; past that it is
refused at once with RESOURCE_EXHAUSTED and a retry delay, and other programs keep their
share of the pool.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from rewards_service.domain.errors import ResourceExhausted

# How long a refused caller is told to wait before retrying.
RETRY_AFTER_SECONDS = 0.1


@dataclass
class _Share:
    slots: asyncio.Semaphore
    holders: int = 0  # running or waiting; the share is dropped when it reaches zero
    waiting: int = 0


class Admission:
    def __init__(self, running: int, waiting: int) -> None:
        self._running = running
        self._waiting = waiting
        # Only programs with calls in flight have an entry: bounded by the calls themselves.
        self._shares: dict[str, _Share] = {}

    @asynccontextmanager
    async def slot(self, owner: str) -> AsyncIterator[None]:
        share = self._shares.get(owner)
        if share is None:
            share = self._shares[owner] = _Share(asyncio.Semaphore(self._running))
        if share.slots.locked() and share.waiting >= self._waiting:
            raise ResourceExhausted(
                "Too many calls at once for this program; retry shortly.",
                reason="RATE_LIMITED",
                retry_after=RETRY_AFTER_SECONDS,
                metadata={"running": self._running, "waiting": share.waiting},
            )
        share.holders += 1
        try:
            share.waiting += 1
            try:
                await share.slots.acquire()
            finally:
                share.waiting -= 1
            try:
                yield
            finally:
                share.slots.release()
        finally:
            share.holders -= 1
            if share.holders == 0:
                del self._shares[owner]
