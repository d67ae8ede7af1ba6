"""Participants methods: participants, balances and the points ledger."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rewards.v1 import participants_pb2

from rewards_client._transport import Transport, walk
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


class ParticipantsMethods(Transport):
    def upsert_participant(
        self,
        participant: participants_pb2.Participant | None = None,
        *,
        update_mask: MaskLike | None = None,
        timeout: float | None = None,
        **fields: Any,
    ) -> participants_pb2.Participant:
        """Create or update the participant with this external_id. Without update_mask the
        server sets all of email, mobile and segments on an existing participant."""
        request = participants_pb2.UpsertParticipantRequest(
            participant=resource(participants_pb2.Participant, participant, fields),
            update_mask=None if update_mask is None else field_mask(update_mask),
        )
        # Keyed by external_id and setting the same values again: safe to retry.
        return self._invoke(
            self._participants.UpsertParticipant, request, idempotent=True, timeout=timeout
        )

    def get_participant(
        self, id: str, *, timeout: float | None = None
    ) -> participants_pb2.Participant:
        request = participants_pb2.GetParticipantRequest(id=id)
        return self._invoke(
            self._participants.GetParticipant, request, idempotent=True, timeout=timeout
        )

    def list_participants(
        self,
        *,
        page_size: int = 0,
        page_token: str = "",
        segment: str = "",
        partition: str = "",
        email: str = "",
        mobile: str = "",
        timeout: float | None = None,
    ) -> participants_pb2.ListParticipantsResponse:
        request = participants_pb2.ListParticipantsRequest(
            page_size=page_size,
            page_token=page_token,
            segment=segment,
            partition=partition,
            email=email,
            mobile=mobile,
        )
        return self._invoke(
            self._participants.ListParticipants, request, idempotent=True, timeout=timeout
        )

    def iter_participants(
        self,
        *,
        page_size: int = 0,
        segment: str = "",
        partition: str = "",
        email: str = "",
        mobile: str = "",
        timeout: float | None = None,
    ) -> Iterator[participants_pb2.Participant]:
        return walk(
            lambda token: self.list_participants(
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
        self, participant: ParticipantLike, asset_id: str, *, timeout: float | None = None
    ) -> participants_pb2.Balance:
        request = participants_pb2.GetBalanceRequest(
            participant=to_ref(participant), asset_id=asset_id
        )
        return self._invoke(
            self._participants.GetBalance, request, idempotent=True, timeout=timeout
        )

    def list_ledger_entries(
        self,
        participant: ParticipantLike,
        *,
        asset_id: str = "",
        page_size: int = 0,
        page_token: str = "",
        timeout: float | None = None,
    ) -> participants_pb2.ListLedgerEntriesResponse:
        request = participants_pb2.ListLedgerEntriesRequest(
            participant=to_ref(participant),
            asset_id=asset_id,
            page_size=page_size,
            page_token=page_token,
        )
        return self._invoke(
            self._participants.ListLedgerEntries, request, idempotent=True, timeout=timeout
        )

    def iter_ledger_entries(
        self,
        participant: ParticipantLike,
        *,
        asset_id: str = "",
        page_size: int = 0,
        timeout: float | None = None,
    ) -> Iterator[participants_pb2.LedgerEntry]:
        return walk(
            lambda token: self.list_ledger_entries(
                participant,
                asset_id=asset_id,
                page_size=page_size,
                page_token=token,
                timeout=timeout,
            ),
            lambda page: page.entries,
        )

    def adjust_balance(
        self,
        participant: ParticipantLike,
        *,
        asset_id: str,
        delta: DecimalLike,
        reason: str = "",
        request_id: str | None = None,
        timeout: float | None = None,
    ) -> participants_pb2.AdjustBalanceResponse:
        """Add a signed delta. A request_id is made when none is given, once per call, so a
        retried adjustment is applied once."""
        request = participants_pb2.AdjustBalanceRequest(
            participant=to_ref(participant),
            asset_id=asset_id,
            delta=decimal_str(delta),
            reason=reason,
            request_id=request_id or new_request_id(),
        )
        return self._invoke(
            self._participants.AdjustBalance, request, idempotent=True, timeout=timeout
        )
