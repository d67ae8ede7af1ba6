"""Participants and balances: one function per RPC, one transaction each.

Each use case reaches the database through `store` (services/ports.ParticipantStore): the
store's own by default, an in-memory one in unit tests."""

from dataclasses import dataclass

from rewards.v1 import common_pb2 as common

from rewards_service.domain.errors import FailedPrecondition, NotFound, idempotency_key_reused
from rewards_service.domain.ids import new_id
from rewards_service.domain.issuance import canonical_decimal, digest
from rewards_service.domain.pagination import PageRequest
from rewards_service.domain.participants import (
    UPDATABLE_PATHS,
    ParticipantRef,
    ParticipantSpec,
    check_participant,
    check_ref,
    normalised_ref,
    refers_to,
)
from rewards_service.domain.validation import (
    Violations,
    check_request_id,
    check_text,
    parse_amount,
    parse_decimal,
    to_minor,
)
from rewards_service.services.ports import FindsParticipants, ParticipantStore
from rewards_service.services.replay import Once
from rewards_service.services.scaled import Scaled, scaled, scaled_page
from rewards_service.store.fields import utcnow
from rewards_service.store.models import LedgerEntry, Participant
from rewards_service.store.participants import PARTICIPANTS

K = common.LedgerEntryKind


@dataclass(frozen=True)
class BalanceView:
    participant_id: str
    asset_id: str
    scale: int
    available: int
    lifetime_earned: int
    lifetime_spent: int


def same_participant(
    ref: ParticipantRef, participant_id: str, *, store: ParticipantStore = PARTICIPANTS
) -> bool:
    """For replays: does `ref` name the participant of the original call?"""
    if ref.kind == "id":
        return ref.value == participant_id
    return refers_to(ref, store.participant(participant_id))


def resolve(
    program_id: str, ref: ParticipantRef, *, store: FindsParticipants = PARTICIPANTS
) -> Participant:
    """id and external_id are unique; email and mobile may be shared and then are ambiguous.
    Identifiers are looked up in the normalised form they are stored in."""
    ref = normalised_ref(ref)
    found = store.participants_with(program_id, ref.kind, ref.value, limit=2)
    if not found:
        raise NotFound(
            f"No participant with {ref.kind} {ref.value!r}.",
            reason="PARTICIPANT_NOT_FOUND",
            metadata={ref.kind: ref.value},
        )
    if len(found) > 1:
        raise FailedPrecondition(
            f"Several participants share {ref.kind} {ref.value!r}; use id or external_id.",
            reason="AMBIGUOUS_PARTICIPANT",
            metadata={ref.kind: ref.value},
        )
    return found[0]


def upsert_participant(
    program_id: str,
    spec: ParticipantSpec,
    paths: set[str],
    *,
    store: ParticipantStore = PARTICIPANTS,
) -> Participant:
    v = Violations()
    spec = check_participant(v, spec)
    for path in paths - UPDATABLE_PATHS:
        v.add("update_mask", f"names an unknown or immutable field: {path}")
    v.raise_if_any()
    paths = paths or set(UPDATABLE_PATHS)

    def work() -> Participant:
        row = store.find_external(program_id, spec.external_id)
        now = utcnow()
        if row is None:
            row = Participant(
                id=new_id("par"),
                program=program_id,
                external_id=spec.external_id,
                email=spec.email or None,
                mobile=spec.mobile or None,
                segments=spec.segments,
                created_at=now,
                updated_at=now,
            )
            store.add(row)
            return row
        if "email" in paths:
            row.email = spec.email or None
        if "mobile" in paths:
            row.mobile = spec.mobile or None
        if "segments" in paths:
            row.segments = spec.segments
        row.updated_at = now
        store.save(row)
        return row

    # Two first upserts of one external_id race on the unique key: the loser updates instead.
    return store.transaction(work, on_conflict=work)


def get_participant(
    program_id: str,
    participant_id: str,
    ref: ParticipantRef | None = None,
    *,
    store: ParticipantStore = PARTICIPANTS,
) -> Participant:
    """By id, or by any of its identifiers (`ref`): one of the two."""
    if ref is None:
        return resolve(program_id, ParticipantRef("id", participant_id), store=store)
    v = Violations()
    check_ref(v, "participant", ref)
    v.check(not participant_id, "id", "must be empty when participant is set")
    v.raise_if_any()
    return resolve(program_id, ref, store=store)


def list_participants(
    program_id: str,
    page: PageRequest,
    *,
    segment: str,
    partition: str,
    email: str,
    mobile: str,
    store: ParticipantStore = PARTICIPANTS,
) -> tuple[list[Participant], str]:
    rows, token = store.page(program_id, page, segment=segment, email=email, mobile=mobile)
    if segment:
        # The store matched the segment by text: keep the participants that hold it.
        rows = [
            r
            for r in rows
            if any(
                s["segment"] == segment and (not partition or s["partition"] == partition)
                for s in r.segments
            )
        ]
    return rows, token


def _view(store: ParticipantStore, participant_id: str, asset_id: str, scale: int) -> BalanceView:
    row = store.balance(participant_id, asset_id)
    return BalanceView(
        participant_id, asset_id, scale, row.available, row.lifetime_earned, row.lifetime_spent
    )


def get_balance(
    program_id: str, ref: ParticipantRef, asset_id: str, *, store: ParticipantStore = PARTICIPANTS
) -> BalanceView:
    participant = resolve(program_id, ref, store=store)
    asset = store.get_asset(program_id, asset_id)
    return _view(store, participant.id, asset.id, asset.scale)


def list_ledger_entries(
    program_id: str,
    ref: ParticipantRef,
    asset_id: str,
    page: PageRequest,
    *,
    store: ParticipantStore = PARTICIPANTS,
) -> tuple[list[Scaled[LedgerEntry]], str]:
    participant = resolve(program_id, ref, store=store)
    if asset_id:
        asset_id = store.get_asset(program_id, asset_id).id
    return scaled_page(
        store.ledger_page(participant.id, asset_id, page), scale_of=store.asset_scale
    )


def adjust_balance(
    program_id: str,
    ref: ParticipantRef | None,
    asset_id: str,
    delta: str,
    reason: str,
    request_id: str,
    *,
    store: ParticipantStore = PARTICIPANTS,
) -> tuple[Scaled[LedgerEntry], BalanceView, bool]:
    v = Violations()
    check_ref(v, "participant", ref)
    check_text(v, "asset_id", asset_id, max_len=128, required=True)
    check_text(v, "reason", reason, max_len=1000)
    check_request_id(v, "request_id", request_id)
    parse_decimal(v, "delta", delta)  # its places are checked against the asset's scale later
    v.raise_if_any()
    assert ref is not None
    fingerprint = digest("adjust", asset_id, canonical_decimal(delta))

    def earlier() -> LedgerEntry | None:
        if not request_id:
            return None
        entry = store.find_by_request_id(LedgerEntry, program_id, request_id)
        if entry is None:
            return None
        if entry.request_hash != fingerprint or not same_participant(
            ref, entry.participant_id, store=store
        ):
            raise idempotency_key_reused(request_id, entry_id=entry.id)
        return entry

    def post() -> LedgerEntry:
        participant = resolve(program_id, ref, store=store)
        asset = store.get_asset(program_id, asset_id)
        checks = Violations()
        units = parse_amount(checks, "delta", delta, scale=asset.scale, allow_negative=True)
        checks.raise_if_any()
        assert units is not None
        return store.post(
            program_id=program_id,
            participant_id=participant.id,
            asset=asset,
            delta=to_minor(units, asset.scale),
            kind=K.LEDGER_ENTRY_KIND_ADJUST,
            reason=reason,
            request_id=request_id or None,
            request_hash=fingerprint,
            field="delta",
        )

    def answer(entry: LedgerEntry, replayed: bool) -> tuple[Scaled[LedgerEntry], BalanceView, bool]:
        found = scaled(entry, scale_of=store.asset_scale)
        scale = found.scale(entry.asset_id)
        return found, _view(store, entry.participant_id, entry.asset_id, scale), replayed

    return Once(request_id, earlier, post, answer).run(store.transaction)
