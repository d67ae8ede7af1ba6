"""Participants and balances: one function per RPC, one transaction each."""

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
from rewards_service.services.replay import Once
from rewards_service.services.scaled import Scaled, scaled, scaled_page
from rewards_service.store import ledger, queries
from rewards_service.store.db import in_transaction
from rewards_service.store.fields import utcnow
from rewards_service.store.models import LedgerEntry, Participant

K = common.LedgerEntryKind


@dataclass(frozen=True)
class BalanceView:
    participant_id: str
    asset_id: str
    scale: int
    available: int
    lifetime_earned: int
    lifetime_spent: int


def same_participant(ref: ParticipantRef, participant_id: str) -> bool:
    """For replays: does `ref` name the participant of the original call?"""
    if ref.kind == "id":
        return ref.value == participant_id
    return refers_to(ref, Participant.get_by_id(participant_id))


def resolve(program_id: str, ref: ParticipantRef) -> Participant:
    """id and external_id are unique; email and mobile may be shared and then are ambiguous.
    Identifiers are looked up in the normalised form they are stored in."""
    ref = normalised_ref(ref)
    found = queries.participants_with(program_id, ref.kind, ref.value, limit=2)
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


def upsert_participant(program_id: str, spec: ParticipantSpec, paths: set[str]) -> Participant:
    v = Violations()
    spec = check_participant(v, spec)
    for path in paths - UPDATABLE_PATHS:
        v.add("update_mask", f"names an unknown or immutable field: {path}")
    v.raise_if_any()
    paths = paths or set(UPDATABLE_PATHS)

    def work() -> Participant:
        row = (
            Participant.select()
            .where(
                (Participant.program == program_id) & (Participant.external_id == spec.external_id)
            )
            .first()
        )
        now = utcnow()
        if row is None:
            return Participant.create(
                id=new_id("par"),
                program=program_id,
                external_id=spec.external_id,
                email=spec.email or None,
                mobile=spec.mobile or None,
                segments=spec.segments,
                created_at=now,
                updated_at=now,
            )
        if "email" in paths:
            row.email = spec.email or None
        if "mobile" in paths:
            row.mobile = spec.mobile or None
        if "segments" in paths:
            row.segments = spec.segments
        row.updated_at = now
        row.save()
        return row

    # Two first upserts of one external_id race on the unique key: the loser updates instead.
    return in_transaction(work, on_conflict=work)


def get_participant(
    program_id: str, participant_id: str, ref: ParticipantRef | None = None
) -> Participant:
    """By id, or by any of its identifiers (`ref`): one of the two."""
    if ref is None:
        return resolve(program_id, ParticipantRef("id", participant_id))
    v = Violations()
    check_ref(v, "participant", ref)
    v.check(not participant_id, "id", "must be empty when participant is set")
    v.raise_if_any()
    return resolve(program_id, ref)


def list_participants(
    program_id: str, page: PageRequest, *, segment: str, partition: str, email: str, mobile: str
) -> tuple[list[Participant], str]:
    query = Participant.select().where(Participant.program == program_id)
    if email:
        query = query.where(Participant.email == email)
    if mobile:
        query = query.where(Participant.mobile == mobile)
    scope = None
    if segment:
        # Matched by text (no index): bounded pages.
        scope, query = query, query.where(queries.mentions_segment(segment))
    rows, token = queries.keyset_page(query, Participant.id, page, scope=scope)
    if segment:
        rows = [
            r
            for r in rows
            if any(
                s["segment"] == segment and (not partition or s["partition"] == partition)
                for s in r.segments
            )
        ]
    return rows, token


def _view(participant_id: str, asset_id: str, scale: int) -> BalanceView:
    row = ledger.balance_of(participant_id, asset_id)
    return BalanceView(
        participant_id, asset_id, scale, row.available, row.lifetime_earned, row.lifetime_spent
    )


def get_balance(program_id: str, ref: ParticipantRef, asset_id: str) -> BalanceView:
    participant = resolve(program_id, ref)
    asset = queries.get_asset(program_id, asset_id)
    return _view(participant.id, asset.id, asset.scale)


def list_ledger_entries(
    program_id: str, ref: ParticipantRef, asset_id: str, page: PageRequest
) -> tuple[list[Scaled[LedgerEntry]], str]:
    participant = resolve(program_id, ref)
    query = LedgerEntry.select().where(LedgerEntry.participant == participant.id)
    if asset_id:
        # One account: in commit order, by its sequence.
        query = query.where(LedgerEntry.asset == queries.get_asset(program_id, asset_id).id)
        return scaled_page(queries.keyset_page(query, LedgerEntry.seq, page, descending=True))
    return scaled_page(queries.keyset_page(query, LedgerEntry.id, page, descending=True))


def adjust_balance(
    program_id: str,
    ref: ParticipantRef | None,
    asset_id: str,
    delta: str,
    reason: str,
    request_id: str,
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
        entry = queries.find_by_request_id(LedgerEntry, program_id, request_id)
        if entry is None:
            return None
        if entry.request_hash != fingerprint or not same_participant(ref, entry.participant_id):
            raise idempotency_key_reused(request_id, entry_id=entry.id)
        return entry

    def post() -> LedgerEntry:
        participant = resolve(program_id, ref)
        asset = queries.get_asset(program_id, asset_id)
        checks = Violations()
        units = parse_amount(checks, "delta", delta, scale=asset.scale, allow_negative=True)
        checks.raise_if_any()
        assert units is not None
        return ledger.post(
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
        found = scaled(entry)
        scale = found.scale(entry.asset_id)
        return found, _view(entry.participant_id, entry.asset_id, scale), replayed

    return Once(request_id, earlier, post, answer).run()
