"""What use cases ask of the store, as narrow interfaces: the store layer implements them
over the database, and unit tests hand the use cases in-memory fakes instead."""

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol, TypeVar

from rewards_service.domain.pagination import PageRequest
from rewards_service.store.db import RequestKey, RowKey
from rewards_service.store.models import (
    ApiKey,
    Asset,
    Balance,
    BaseModel,
    CodePool,
    GroupBalance,
    GroupLedgerEntry,
    GroupMember,
    Issuance,
    LedgerEntry,
    Participant,
    ParticipantGroup,
    Program,
    Reward,
)
from rewards_service.store.outbox import StoredEvent
from rewards_service.store.registries import Entry

T = TypeVar("T")
R = TypeVar("R", bound=BaseModel)


class Transacts(Protocol):
    """One unit of work in one transaction: what every store gives its use cases."""

    def transaction(
        self,
        work: Callable[[], T],
        *,
        on_conflict: Callable[[], T] | None = None,
        locks: Sequence[RowKey] = (),
        reads: Sequence[RequestKey] = (),
    ) -> T:
        """store.db.in_transaction: `work` in one transaction, none of it kept if it raises."""
        ...


class Creates(Transacts, Protocol):
    """What create_once needs: the request_id look-up, the insert, the event and one
    transaction."""

    def find_by_request_id(self, kind: type[R], program_id: str, request_id: str) -> R | None: ...

    def add(self, row: R) -> None:
        """Inserts a new row; one that breaks a unique key raises Conflict."""

    def emit(self, program_id: str, event_type: int, row: BaseModel) -> None:
        """Records the event of a change, written with the transaction's other writes."""


class Assets(Protocol):
    """The asset look-ups of stores whose use cases move balances."""

    def get_asset(self, program_id: str, asset_id: str) -> Asset:
        """The program's asset; NotFound (ASSET_NOT_FOUND) when it has none by that id."""
        ...

    def asset_scale(self, asset_id: str) -> int: ...


class FindsParticipants(Protocol):
    """The participant look-up of stores whose use cases take a ParticipantRef
    (services/participants.resolve)."""

    def participants_with(
        self, program_id: str, column: str, value: str, *, limit: int
    ) -> list[Participant]:
        """Up to `limit` of the program's participants whose identifier `column` (one of
        domain.participants.REF_KINDS) holds `value`, in one query: every issue resolves its
        participant through it."""
        ...


class RegistryStore(Creates, Protocol):
    """A program's registry entries, each kind (custom fields, fulfillment statuses) kept
    apart, and the registry_version that every change moves."""

    def registry_version(self, program_id: str) -> int: ...

    def bump_version(self, program_id: str) -> None: ...

    def entries(self, kind: type[Entry], program_id: str) -> list[Entry]: ...

    def page(
        self, kind: type[Entry], program_id: str, page: PageRequest
    ) -> tuple[list[Entry], str]:
        """One page in id order, and the next page's token ("" at the end)."""
        ...

    def count(self, kind: type[Entry], program_id: str) -> int: ...

    def find(self, kind: type[Entry], program_id: str, entry_id: str) -> Entry | None: ...

    def find_named(self, kind: type[Entry], program_id: str, name: str) -> Entry | None:
        """By its name, unique within the program: a custom field's key, a status's status."""
        ...

    def delete(self, row: Entry) -> None: ...


class GroupStore(Creates, Assets, FindsParticipants, Protocol):
    """Participant groups, their members (a participant is in one group at most) and the
    balances the members share. Adds and deletes of members go through `add` and `delete`."""

    def find_group(self, program_id: str, group_id: str) -> ParticipantGroup | None: ...

    def groups_page(
        self, program_id: str, page: PageRequest
    ) -> tuple[list[ParticipantGroup], str]: ...

    def membership(self, participant_id: str) -> GroupMember | None:
        """The participant's membership, in whichever group it is."""
        ...

    def member(self, group_id: str, participant_id: str) -> GroupMember | None: ...

    def members_page(self, group_id: str, page: PageRequest) -> tuple[list[GroupMember], str]:
        """One page of the group's members, by participant id."""
        ...

    def delete(self, row: GroupMember) -> None: ...

    def balance(self, group_id: str, asset_id: str) -> GroupBalance:
        """The group's holding of the asset, all zero before its first movement."""
        ...

    def ledger_page(
        self, group_id: str, asset_id: str, page: PageRequest
    ) -> tuple[list[GroupLedgerEntry], str]:
        """Newest first: one asset's entries by sequence, or with asset_id "" all, by id."""
        ...

    def post(
        self,
        *,
        program_id: str,
        group_id: str,
        asset: Asset,
        delta: int,
        kind: int,
        reason: str,
        request_id: str | None,
        request_hash: str,
        field: str,
    ) -> GroupLedgerEntry:
        """ledger.post on the group's balance, the one way it moves: the entry, or a
        refusal (INSUFFICIENT_BALANCE; `field` names a delta too large) that moves nothing."""
        ...


class ParticipantStore(Creates, Assets, FindsParticipants, Protocol):
    """A program's participants, their balances and ledger entries. Balances move through
    `post` only (store.ledger.post), which records each movement in the ledger."""

    def participant(self, participant_id: str) -> Participant:
        """Any program's participant, by id; it must exist."""
        ...

    def find_external(self, program_id: str, external_id: str) -> Participant | None: ...

    def save(self, row: Participant) -> None:
        """Writes the changes of a participant that exists (`add` inserts a new one)."""

    def page(
        self, program_id: str, page: PageRequest, *, segment: str, email: str, mobile: str
    ) -> tuple[list[Participant], str]:
        """One page in id order, with the given email and mobile. With a segment, only rows
        that mention it in their segments (a text match, over a bounded scan): the caller
        keeps those that hold it."""
        ...

    def balance(self, participant_id: str, asset_id: str) -> Balance:
        """The balance, all zero when it never moved."""
        ...

    def ledger_page(
        self, participant_id: str, asset_id: str, page: PageRequest
    ) -> tuple[list[LedgerEntry], str]:
        """One page of a participant's entries, newest first: of one asset (`asset_id`) in
        the account's commit order, else of every asset in id order."""
        ...

    def post(
        self,
        *,
        program_id: str,
        participant_id: str,
        asset: Asset,
        delta: int,
        kind: int,
        reason: str = "",
        request_id: str | None = None,
        request_hash: str = "",
        field: str = "quantity",
    ) -> LedgerEntry | GroupLedgerEntry:
        """store.ledger.post: moves the balance by `delta` minor units and records the entry,
        or refuses (INSUFFICIENT_BALANCE, too large) and changes nothing."""
        ...


class CatalogStore(Creates, Protocol):
    """A program's assets, its code pools with their codes, and its rewards. Rows of another
    program are not found; the get_ methods raise NotFound (ASSET_NOT_FOUND,
    CODE_POOL_NOT_FOUND, REWARD_NOT_FOUND) where the find_ ones return None."""

    def find_asset(self, program_id: str, asset_id: str) -> Asset | None: ...

    def get_asset(self, program_id: str, asset_id: str) -> Asset: ...

    def has_asset_code(self, program_id: str, code: str) -> bool: ...

    def assets(self, program_id: str, page: PageRequest) -> tuple[list[Asset], str]: ...

    def find_code_pool(self, program_id: str, pool_id: str) -> CodePool | None: ...

    def get_code_pool(self, program_id: str, pool_id: str, *, for_update: bool = False) -> CodePool:
        """for_update: locked until the transaction ends, which serialises it with draws."""
        ...

    def reload_code_pool(self, pool_id: str) -> CodePool:
        """The pool as this transaction has changed it."""
        ...

    def code_pools(self, program_id: str, page: PageRequest) -> tuple[list[CodePool], str]: ...

    def with_expired_count(self, pool: CodePool, now: datetime | None = None) -> CodePool:
        """`pool` with its expired_count set: its codes never issued that expired by `now`."""
        ...

    def has_live_code(self, pool_id: str, now: datetime) -> bool:
        """Whether the pool has a code to draw: never issued and not expired by `now`."""
        ...

    def add_codes(self, pool_id: str, codes: list[tuple[str, datetime | None]]) -> int:
        """Inserts (code, expires_at) pairs, skipping codes the pool holds; how many it
        added. The pool's counts are the caller's to move."""
        ...

    def add_to_pool_counts(self, pool_id: str, added: int) -> None:
        """total_count and available_count up by `added`."""

    def restock_pool_rewards(self, pool_id: str) -> int:
        """Rewards of the pool that were OUT_OF_STOCK only for lack of codes are ACTIVE again,
        each with its event; how many."""
        ...

    def get_reward(self, program_id: str, reward_id: str, *, for_update: bool = False) -> Reward:
        """for_update: locked until the transaction ends."""
        ...

    def save_reward(self, row: Reward) -> Reward:
        """Writes a changed reward, moving its version (the etag) and updated_at."""
        ...

    def rewards(
        self,
        program_id: str,
        page: PageRequest,
        *,
        status: int,
        reward_type: int,
        category: str,
        show_archived: bool,
    ) -> tuple[list[Reward], str]:
        """One page in id order; archived rewards only when asked for by status or
        show_archived."""
        ...

    def count_rewards(
        self, program_id: str, *, status: int, reward_type: int, category: str, show_archived: bool
    ) -> int:
        """What `rewards` pages through, counted."""
        ...


class EventStore(Transacts, Protocol):
    """A program's event feed (store/outbox.py): events by position, the last committed
    position, named consumers' positions, and retention."""

    def last_position(self, program_id: str) -> int:
        """The program's last committed position: every event up to it is committed."""
        ...

    def read_events(
        self, program_id: str, after: int, upto: int, types: frozenset[int], limit: int
    ) -> list[StoredEvent]:
        """Up to `limit` events in (after, upto], in position order; of `types` only, unless
        it is empty."""
        ...

    def consumer_position(self, program_id: str, name: str) -> int | None:
        """The named consumer's acknowledged position; None for a name never acked."""
        ...

    def consumer_count(self, program_id: str) -> int: ...

    def ack(self, program_id: str, name: str, position: int) -> int:
        """Moves the consumer to `position`, never back; the position it keeps."""
        ...

    def delete_expired(self, older_than: datetime, max_rows: int) -> int:
        """Deletes up to `max_rows` events created before `older_than`, oldest first,
        keeping those after the lowest position a consumer of their program acked; how many."""
        ...

    def asset_scale(self, asset_id: str) -> int:
        """The scale of an asset an event's record names."""
        ...


class ProgramStore(Transacts, Protocol):
    """Programs and their API keys. Keys are found by the hash of their secret, which is
    unique; the secret itself is never stored."""

    def add(self, row: Program | ApiKey) -> None:
        """Inserts a new row; one that breaks a unique key raises Conflict."""

    def save(self, row: ApiKey) -> None:
        """Writes the changes of a key that exists."""

    def has_any_program(self) -> bool: ...

    def has_program(self, program_id: str) -> bool: ...

    def programs(self) -> list[Program]:
        """Every program, in id order."""
        ...

    def find_key(self, key_id: str) -> ApiKey | None: ...

    def key_by_hash(self, key_hash: str) -> ApiKey | None:
        """The key whose secret hashes to `key_hash`, revoked or not: one indexed read."""
        ...

    def keys(self, program_id: str) -> list[ApiKey]:
        """The program's keys, revoked ones too, in id order."""
        ...


class IssuanceStore(ParticipantStore, Protocol):
    """What IssueReward and the issuance lifecycle ask of the store. It is the participants'
    store too, which resolves each issue's participant; `post` moves a participant's balance
    or, with group_id, the group's, and is the one way either moves. Most of these run on
    every issue, on the store's single writer."""

    @property
    def registries(self) -> RegistryStore:
        """The program's registry, which an issue's custom fields and status must fit."""
        ...

    def session(self) -> AbstractContextManager[None]:
        """A connection for reads made outside the writer."""
        ...

    async def write(
        self,
        work: Callable[[], T],
        *,
        on_conflict: Callable[[], T] | None = None,
        locks: Sequence[RowKey] = (),
        reads: Sequence[RequestKey] = (),
    ) -> T:
        """`transaction` awaited from the event loop (store.db.write)."""
        ...

    def post(
        self,
        *,
        program_id: str,
        participant_id: str,
        asset: Asset,
        delta: int,
        kind: int,
        issuance_id: str | None = None,
        reason: str = "",
        request_id: str | None = None,
        request_hash: str = "",
        field: str = "quantity",
        group_id: str | None = None,
    ) -> LedgerEntry | GroupLedgerEntry: ...

    # Rewards and their stock

    def take_reward_for(
        self, program_id: str, reward_id: str, units: int, ref: tuple[str, str] | None
    ) -> tuple[Reward, int, Participant | None] | None:
        """queries.take_reward_for: takes `units` of an ACTIVE reward with enough left, in one
        statement: the reward after it, locked, its program's registry_version and, where
        the store reads it in the same statement, the participant `ref` (a unique
        identifier's column and normalised value) names; None when it took nothing."""
        ...

    def reward_to_issue(self, program_id: str, reward_id: str) -> tuple[Reward, int]:
        """The reward, locked, and its program's registry_version; NotFound (REWARD_NOT_FOUND)."""
        ...

    def take_stock(self, reward_id: str, units: int) -> tuple[int, int | None] | None:
        """Takes `units` of an ACTIVE reward with enough left: (redeemed_count, max_total)
        after it, or None when it took nothing."""
        ...

    def reward(self, reward_id: str) -> Reward:
        """Any program's reward, by id, as it is now; it must exist."""
        ...

    def issued_units(
        self, reward_id: str, participant_id: str | None, since: datetime | None
    ) -> int:
        """Units of the reward issued and not revoked, to one participant or to all (None),
        after `since` or ever (None)."""
        ...

    def group_of(self, participant_id: str) -> str | None:
        """The id of the group the participant is in, if any."""
        ...

    def known_asset(self, asset_id: str) -> Asset | None:
        """An asset a stored row names, any program's, by id (from memory after one read)."""
        ...

    def sell_out(self, reward_id: str) -> None:
        """The reward turns OUT_OF_STOCK, with its event, if ACTIVE with none left."""

    def give_back_stock(self, reward_id: str, units: int) -> None:
        """redeemed_count down by `units`, whatever the status."""

    def set_reward_status(self, reward_id: str, status: int) -> None:
        """A status change of the service's own, with its event."""

    # Code pools and their codes

    def code_pool(self, pool_id: str) -> CodePool | None:
        """Any program's pool, by id."""
        ...

    def get_code_pool(self, program_id: str, pool_id: str, *, for_update: bool = False) -> CodePool:
        """for_update: locked until the transaction ends; NotFound (CODE_POOL_NOT_FOUND)."""
        ...

    def has_live_code(self, pool_id: str, now: datetime) -> bool:
        """Whether the pool has a code to draw: never issued and not expired by `now`."""
        ...

    def with_expired_count(self, pool: CodePool, now: datetime | None = None) -> CodePool:
        """`pool` with its expired_count set: its codes never issued that expired by `now`."""
        ...

    def draw_code(self, pool_id: str, now: datetime) -> tuple[int, str, datetime | None] | None:
        """(id, code, expires_at) of a code never issued nor expired, the first to expire,
        locked; None when the pool has none."""
        ...

    def issue_code(self, code_id: int, issuance_id: str) -> None:
        """The drawn code is the issuance's."""

    def take_from_pool(self, pool_id: str) -> CodePool:
        """One code fewer available and one more issued: the pool with its counts after."""
        ...

    def pool_has_active_reward(self, pool_id: str) -> bool: ...

    def sell_out_pool(self, pool_id: str) -> None:
        """The pool's ACTIVE rewards turn OUT_OF_STOCK, each with its event."""

    def void_codes(self, issuance_id: str) -> None:
        """The issuance's codes are voided: never drawn again."""

    # Issuances

    def insert_issuance(self, row: Issuance) -> Issuance:
        """queries.insert: the issue's own INSERT (`add` is any other's); a request_id the
        program used already raises Conflict."""
        ...

    def find_issuance(
        self, program_id: str, issuance_id: str, *, for_update: bool = False
    ) -> Issuance | None:
        """for_update: locked until the transaction ends."""
        ...

    def save_issuance(self, row: Issuance) -> None:
        """Writes the changes of an issuance that exists."""

    def issuances(
        self,
        program_id: str,
        page: PageRequest,
        *,
        participant_id: str,
        reward_id: str,
        status: int,
        reward_type: int,
        created_after: datetime | None,
        created_before: datetime | None,
        issuer_key_id: str,
        source_event_id: str,
        action_code: str,
    ) -> tuple[list[Issuance], str]:
        """One page, newest first (by id), of those matching every filter given; ("" or 0:
        any). Filtered pages look at a bounded stretch of the program's issuances."""
        ...
