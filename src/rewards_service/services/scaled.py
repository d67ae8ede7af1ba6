"""Records as the use cases hand them to the transport: each with the scale (decimal places)
of every asset its amounts are in, so that an answer is built from the record alone, without
asking the store again. Assets never change and the store remembers them per process
(queries.asset), so attaching their scales costs no query beyond the use case's own."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from rewards_service.store import queries
from rewards_service.store.models import GroupLedgerEntry, Issuance, LedgerEntry

R = TypeVar("R")

# The columns naming the assets of a record's amounts; records of other types have none.
_ASSET_COLUMNS: dict[type, tuple[str, ...]] = {
    LedgerEntry: ("asset_id",),
    GroupLedgerEntry: ("asset_id",),
    Issuance: ("cost_asset_id", "credit_asset_id"),
}


@dataclass(frozen=True, slots=True)
class Scaled(Generic[R]):
    row: R
    scales: Mapping[str, int]  # asset id -> decimal places

    def scale(self, asset_id: str | None) -> int:
        """The scale of an asset the record names (0 where it names none). A KeyError means
        the use case did not attach it: never a silent guess at the formatting."""
        return self.scales[asset_id] if asset_id else 0


def scaled(row: R, scale_of: Callable[[str], int] = queries.asset_scale) -> Scaled[R]:
    """The record with the scales of its assets; `scale_of` reads one (the store's by default,
    a fake one in unit tests)."""
    asset_ids = [getattr(row, column) for column in _ASSET_COLUMNS.get(type(row), ())]
    return Scaled(row, {a: scale_of(a) for a in asset_ids if a})


def scaled_page(
    page: tuple[list[R], str], scale_of: Callable[[str], int] = queries.asset_scale
) -> tuple[list[Scaled[R]], str]:
    """A page of records (rows, next_page_token), each with its scales."""
    rows, token = page
    return [scaled(row, scale_of) for row in rows], token
