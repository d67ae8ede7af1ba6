"""Participants methods: participants, balances and the points ledger."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rewards.v1 import participants_pb2

from rewards_client import _build
from rewards_client._transport import Transport, walk
from rewards_client.messages import DecimalLike, MaskLike, ParticipantLike


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
        server sets all of email, mobile and segments on an existing participant. Keyed by
        external_id and setting the same values again, so safe to retry."""
        request = _build.upsert_participant(participant, update_mask, fields)
        return self._invoke(self._participants.UpsertParticipant, request, timeout=timeout)

    def get_participant(
        self, id: str, *, timeout: float | None = None
    ) -> participants_pb2.Participant:
        """One participant by id. ParticipantNotFound if there is none."""
        request = participants_pb2.GetParticipantRequest(id=id)
        return self._invoke(self._participants.GetParticipant, request, timeout=timeout)

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
        """One page of participants, filtered by segment (and partition), email or mobile."""
        request = _build.list_participants(
            page_size=page_size,
            page_token=page_token,
            segment=segment,
            partition=partition,
            email=email,
            mobile=mobile,
        )
        return self._invoke(self._participants.ListParticipants, request, timeout=timeout)

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
        """Every participant matching the filters, page by page."""
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
        """A participant's balance of one asset: available, lifetime_earned, lifetime_spent."""
        request = _build.get_balance(participant, asset_id)
        return self._invoke(self._participants.GetBalance, request, timeout=timeout)

    def list_ledger_entries(
        self,
        participant: ParticipantLike,
        *,
        asset_id: str = "",
        page_size: int = 0,
        page_token: str = "",
        timeout: float | None = None,
    ) -> participants_pb2.ListLedgerEntriesResponse:
        """One page of a participant's ledger entries, of one asset or all of them."""
        request = _build.list_ledger_entries(
            participant, asset_id=asset_id, page_size=page_size, page_token=page_token
        )
        return self._invoke(self._participants.ListLedgerEntries, request, timeout=timeout)

    def iter_ledger_entries(
        self,
        participant: ParticipantLike,
        *,
        asset_id: str = "",
        page_size: int = 0,
        timeout: float | None = None,
    ) -> Iterator[participants_pb2.LedgerEntry]:
        """Every ledger entry of a participant, page by page."""
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
        """Add a signed delta to a balance (admin only); InsufficientBalance if it would go
        below zero. A request_id is made when none is given, once per call, so a retried
        adjustment is applied once."""
        request = _build.adjust_balance(
            participant, asset_id=asset_id, delta=delta, reason=reason, request_id=request_id
        )
        return self._invoke(self._participants.AdjustBalance, request, timeout=timeout)
