"""The request_id protocol (AIP-155), written once for every call that takes one.

The first call with a request_id does its work; a call that comes again with it gets the
first call's result and changes nothing; one with other attributes is refused by `earlier`
(IDEMPOTENCY_KEY_REUSED). Concurrent first calls race on the unique (program, request_id)
key inside the store: the losers' writes roll back and they answer with the winner's result.
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from rewards_service.store.db import RequestKey, RowKey, in_transaction, write

T = TypeVar("T")
A = TypeVar("A")


@dataclass(frozen=True)
class Once(Generic[T, A]):
    """One call's unit of work, ready for the store's writer.

    `earlier()` finds the result of an earlier call with the request_id (None when there is
    none, or when the call has no request_id); `create()` does the work. `answer` turns
    (result, replayed) into what the caller gets, inside the transaction: a refusal raised
    there rolls the call back. `locks` are the rows the work locks, `reads` those it looks up
    by request_id (store.db.in_transaction).
    """

    request_id: str
    earlier: Callable[[], T | None]
    create: Callable[[], T]
    answer: Callable[[T, bool], A]
    locks: Sequence[RowKey] = ()
    reads: Sequence[RequestKey] = ()

    def _work(self) -> A:
        # Looked for again inside: a first call with this request_id may have committed (or
        # gone ahead in the same group) since any read outside.
        if self.request_id and (found := self.earlier()) is not None:
            return self.answer(found, True)
        return self.answer(self.create(), False)

    def _on_conflict(self) -> A | None:
        """The winner's result for a loser of the request_id race; None when the clash was
        on another key, which is then not ours to answer."""
        found = self.earlier()
        return None if found is None else self.answer(found, True)

    def run(self, transaction: Callable[..., A] = in_transaction) -> A:
        """From a thread. A committed request_id is found with a plain read first: replays
        never queue for the writer. `transaction` is the store's (a fake one in tests)."""
        if self.request_id and (found := self.earlier()) is not None:
            return self.answer(found, True)
        return transaction(
            self._work, on_conflict=self._conflict_handler(), locks=self.locks, reads=self.reads
        )

    async def run_async(self, transaction: Callable[..., Awaitable[A]] = write) -> A:
        """From the event loop: the lookup and the work are one unit on the writer."""
        return await transaction(
            self._work, on_conflict=self._conflict_handler(), locks=self.locks, reads=self.reads
        )

    def _conflict_handler(self) -> Callable[[], A | None] | None:
        return self._on_conflict if self.request_id else None
