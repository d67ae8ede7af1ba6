"""Participants methods: participants, balances and the points ledger."""

from __future__ import annotations

from typing import Any

from rewards.v1 import participants_pb2

from rewards_client._call import Call, Pages
from rewards_client.messages import (
    DecimalLike,
    MaskLike,
    ParticipantLike,
    decimal_str,
    field_mask,
    new_request_id,
    resource,
    to_ref,
)


def upsert_participant(
    participant: participants_pb2.Participant | None = None,
    *,
    update_mask: MaskLike | None = None,
    timeout: float | None = None,
    **fields: Any,
) -> Call[participants_pb2.Participant]:
    """Create or update the participant with this external_id. Without update_mask the
    server sets all of email, mobile and segments on an existing participant. Keyed by
    external_id and setting the same values again, so safe to retry."""
    request = participants_pb2.UpsertParticipantRequest(
        participant=resource(participants_pb2.Participant, participant, fields),
        update_mask=None if update_mask is None else field_mask(update_mask),
    )
    return Call(request, participants_pb2.Participant, timeout)


def get_participant(
    id: str = "",
    *,
    participant: ParticipantLike | None = None,
    timeout: float | None = None,
) -> Call[participants_pb2.Participant]:
    """One participant by id, or by any of its identifiers (`participant`, e.g.
    ref(email="ada@example.com")). ParticipantNotFound if there is none."""
    ref = None if participant is None else to_ref(participant)
    request = participants_pb2.GetParticipantRequest(id=id, participant=ref)
    return Call(request, participants_pb2.Participant, timeout)


def list_participants(
    *,
    page_size: int = 0,
    page_token: str = "",
    segment: str = "",
    partition: str = "",
    email: str = "",
    mobile: str = "",
    timeout: float | None = None,
) -> Call[participants_pb2.ListParticipantsResponse]:
    """One page of participants, filtered by segment (and partition), email or mobile."""
    request = participants_pb2.ListParticipantsRequest(
        page_size=page_size,
        page_token=page_token,
        segment=segment,
        partition=partition,
        email=email,
        mobile=mobile,
    )
    return Call(request, participants_pb2.ListParticipantsResponse, timeout)


def iter_participants(
    *,
    page_size: int = 0,
    segment: str = "",
    partition: str = "",
    email: str = "",
    mobile: str = "",
    timeout: float | None = None,
) -> Pages[participants_pb2.ListParticipantsResponse, participants_pb2.Participant]:
    """Every participant matching the filters, page by page."""
    return Pages(
        lambda token: list_participants(
            page_size=page_size,
            page_token=token,
            segment=segment,
            partition=partition,
            email=email,
            mobile=mobile,
            timeout=timeout,
        ),
        lambda page: page.participants,
    )


def get_balance(
    participant: ParticipantLike, asset_id: str, *, timeout: float | None = None
) -> Call[participants_pb2.Balance]:
    """A participant's balance of one asset: available, lifetime_earned, lifetime_spent."""
    request = participants_pb2.GetBalanceRequest(participant=to_ref(participant), asset_id=asset_id)
    return Call(request, participants_pb2.Balance, timeout)


def list_ledger_entries(
    participant: ParticipantLike,
    *,
    asset_id: str = "",
    page_size: int = 0,
    page_token: str = "",
    timeout: float | None = None,
) -> Call[participants_pb2.ListLedgerEntriesResponse]:
    """One page of a participant's ledger entries, of one asset or all of them."""
    request = participants_pb2.ListLedgerEntriesRequest(
        participant=to_ref(participant),
        asset_id=asset_id,
        page_size=page_size,
        page_token=page_token,
    )
    return Call(request, participants_pb2.ListLedgerEntriesResponse, timeout)


def iter_ledger_entries(
    participant: ParticipantLike,
    *,
    asset_id: str = "",
    page_size: int = 0,
    timeout: float | None = None,
) -> Pages[participants_pb2.ListLedgerEntriesResponse, participants_pb2.LedgerEntry]:
    """Every ledger entry of a participant, page by page."""
    return Pages(
        lambda token: list_ledger_entries(
            participant, asset_id=asset_id, page_size=page_size, page_token=token, timeout=timeout
        ),
        lambda page: page.entries,
    )


def adjust_balance(
    participant: ParticipantLike,
    *,
    asset_id: str,
    delta: DecimalLike,
    reason: str = "",
    request_id: str | None = None,
    timeout: float | None = None,
) -> Call[participants_pb2.AdjustBalanceResponse]:
    """Add a signed delta to a balance (admin only); InsufficientBalance if it would go
    below zero. A request_id is made when none is given, once per call, so a retried
    adjustment is applied once."""
    request = participants_pb2.AdjustBalanceRequest(
        participant=to_ref(participant),
        asset_id=asset_id,
        delta=decimal_str(delta),
        reason=reason,
        request_id=request_id or new_request_id(),
    )
    return Call(request, participants_pb2.AdjustBalanceResponse, timeout)
