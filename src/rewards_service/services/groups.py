"""Participant groups: membership, and balances the members share (one ledger, the
participants' rules: store/ledger.py with the group as owner). One function per RPC.

Each use case reaches the database through `store` (services/ports.GroupStore): the store's
own by default, an in-memory one in unit tests."""

from dataclasses import dataclass

from rewards.v1 import common_pb2 as common

from rewards_service.domain.errors import FailedPrecondition, NotFound, idempotency_key_reused
from rewards_service.domain.ids import new_id
from rewards_service.domain.issuance import canonical_decimal, digest
from rewards_service.domain.pagination import PageRequest
from rewards_service.domain.participants import ParticipantRef, check_ref
from rewards_service.domain.validation import (
    Violations,
    check_name,
    check_request_id,
    check_string_map,
    check_text,
    parse_amount,
    parse_decimal,
    to_minor,
)
from rewards_service.services.catalog import create_once
from rewards_service.services.participants import resolve
from rewards_service.services.ports import GroupStore
from rewards_service.services.replay import Once
from rewards_service.services.scaled import Scaled, scaled, scaled_page
from rewards_service.store.groups import GROUPS
from rewards_service.store.models import GroupLedgerEntry, GroupMember, ParticipantGroup

K = common.LedgerEntryKind
# The row every write to a group's balances or members names (store.db.in_transaction's
# `locks`), so that replicas take a group's rows in one order.
GROUP_TABLE = ParticipantGroup._meta.table_name


@dataclass(frozen=True)
class GroupBalanceView:
    group_id: str
    asset_id: str
    scale: int
    available: int
    lifetime_earned: int
    lifetime_spent: int


def not_a_member(participant_id: str, group_id: str = "") -> FailedPrecondition:
    where = f"group {group_id}" if group_id else "any group"
    return FailedPrecondition(
        f"The participant is not a member of {where}.",
        reason="NOT_GROUP_MEMBER",
        metadata={"participant_id": participant_id, **({"group_id": group_id} if group_id else {})},
    )


def _get(store: GroupStore, program_id: str, group_id: str) -> ParticipantGroup:
    group = store.find_group(program_id, group_id)
    if group is None:
        raise NotFound(f"No group {group_id}.", reason="GROUP_NOT_FOUND", metadata={"id": group_id})
    return group


def create_group(
    program_id: str,
    name: str,
    metadata: dict[str, str],
    request_id: str,
    *,
    store: GroupStore = GROUPS,
) -> ParticipantGroup:
    v = Violations()
    check_name(v, "group.name", name)
    check_string_map(v, "group.metadata", metadata)
    check_request_id(v, "request_id", request_id)
    v.raise_if_any()

    def create() -> ParticipantGroup:
        return ParticipantGroup(id=new_id("grp"), program=program_id, name=name, metadata=metadata)

    fingerprint = digest("group", name, sorted(metadata.items()))
    return create_once(ParticipantGroup, program_id, request_id, fingerprint, create, store=store)


def get_group(program_id: str, group_id: str, *, store: GroupStore = GROUPS) -> ParticipantGroup:
    return _get(store, program_id, group_id)


def list_groups(
    program_id: str, page: PageRequest, *, store: GroupStore = GROUPS
) -> tuple[list[ParticipantGroup], str]:
    return store.groups_page(program_id, page)


def _checked_ref(ref: ParticipantRef | None) -> ParticipantRef:
    v = Violations()
    check_ref(v, "participant", ref)
    v.raise_if_any()
    assert ref is not None
    return ref


def add_member(
    program_id: str, group_id: str, ref: ParticipantRef | None, *, store: GroupStore = GROUPS
) -> GroupMember:
    ref = _checked_ref(ref)

    def work() -> GroupMember:
        _get(store, program_id, group_id)
        participant = resolve(program_id, ref, store=store)
        found = store.membership(participant.id)
        if found is not None and found.group_id == group_id:
            return found
        if found is not None:
            raise FailedPrecondition(
                "The participant is already in another group; remove it there first.",
                reason="ALREADY_IN_GROUP",
                metadata={"participant_id": participant.id, "group_id": found.group_id},
            )
        member = GroupMember(participant=participant.id, group=group_id)
        store.add(member)
        return member

    # Two first adds of one participant race on its key: the loser reports what won.
    return store.transaction(work, on_conflict=work, locks=[(GROUP_TABLE, group_id)])


def remove_member(
    program_id: str, group_id: str, ref: ParticipantRef | None, *, store: GroupStore = GROUPS
) -> GroupMember:
    ref = _checked_ref(ref)

    def work() -> GroupMember:
        _get(store, program_id, group_id)
        participant = resolve(program_id, ref, store=store)
        found = store.member(group_id, participant.id)
        if found is None:
            raise not_a_member(participant.id, group_id)
        store.delete(found)
        return found

    return store.transaction(work, locks=[(GROUP_TABLE, group_id)])


def list_members(
    program_id: str, group_id: str, page: PageRequest, *, store: GroupStore = GROUPS
) -> tuple[list[GroupMember], str]:
    _get(store, program_id, group_id)
    return store.members_page(group_id, page)


def _view(store: GroupStore, group_id: str, asset_id: str, scale: int) -> GroupBalanceView:
    row = store.balance(group_id, asset_id)
    return GroupBalanceView(
        group_id, asset_id, scale, row.available, row.lifetime_earned, row.lifetime_spent
    )


def get_group_balance(
    program_id: str, group_id: str, asset_id: str, *, store: GroupStore = GROUPS
) -> GroupBalanceView:
    group = _get(store, program_id, group_id)
    asset = store.get_asset(program_id, asset_id)
    return _view(store, group.id, asset.id, asset.scale)


def list_group_ledger_entries(
    program_id: str, group_id: str, asset_id: str, page: PageRequest, *, store: GroupStore = GROUPS
) -> tuple[list[Scaled[GroupLedgerEntry]], str]:
    group = _get(store, program_id, group_id)
    if asset_id:
        asset_id = store.get_asset(program_id, asset_id).id
    found = store.ledger_page(group.id, asset_id, page)
    return scaled_page(found, scale_of=store.asset_scale)


def adjust_group_balance(
    program_id: str,
    group_id: str,
    asset_id: str,
    delta: str,
    reason: str,
    request_id: str,
    *,
    store: GroupStore = GROUPS,
) -> tuple[Scaled[GroupLedgerEntry], GroupBalanceView, bool]:
    v = Violations()
    check_text(v, "group_id", group_id, max_len=128, required=True)
    check_text(v, "asset_id", asset_id, max_len=128, required=True)
    check_text(v, "reason", reason, max_len=1000)
    check_request_id(v, "request_id", request_id)
    parse_decimal(v, "delta", delta)  # its places are checked against the asset's scale later
    v.raise_if_any()
    fingerprint = digest("adjust_group", group_id, asset_id, canonical_decimal(delta))

    def earlier() -> GroupLedgerEntry | None:
        if not request_id:
            return None
        entry = store.find_by_request_id(GroupLedgerEntry, program_id, request_id)
        if entry is not None and entry.request_hash != fingerprint:
            raise idempotency_key_reused(request_id, entry_id=entry.id)
        return entry

    def post() -> GroupLedgerEntry:
        group = _get(store, program_id, group_id)
        asset = store.get_asset(program_id, asset_id)
        checks = Violations()
        units = parse_amount(checks, "delta", delta, scale=asset.scale, allow_negative=True)
        checks.raise_if_any()
        assert units is not None
        return store.post(
            program_id=program_id,
            group_id=group.id,
            asset=asset,
            delta=to_minor(units, asset.scale),
            kind=K.LEDGER_ENTRY_KIND_ADJUST,
            reason=reason,
            request_id=request_id or None,
            request_hash=fingerprint,
            field="delta",
        )

    def answer(
        entry: GroupLedgerEntry, replayed: bool
    ) -> tuple[Scaled[GroupLedgerEntry], GroupBalanceView, bool]:
        found = scaled(entry, scale_of=store.asset_scale)
        scale = found.scale(entry.asset_id)
        return found, _view(store, entry.group_id, entry.asset_id, scale), replayed

    once = Once(request_id, earlier, post, answer, locks=[(GROUP_TABLE, group_id)])
    return once.run(store.transaction)
