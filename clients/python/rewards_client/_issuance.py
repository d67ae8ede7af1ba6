"""RewardIssuance methods: issue, grant, read, claim, revoke and fulfil."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from rewards.v1 import common_pb2, issuance_pb2

from rewards_client._transport import Transport, walk
from rewards_client.messages import (
    DecimalLike,
    ParticipantLike,
    TimeLike,
    decimal_str,
    issue_request,
    new_request_id,
    timestamp,
    to_ref,
)

_UNSET_STATUS = common_pb2.ISSUANCE_STATUS_UNSPECIFIED
_UNSET_TYPE = common_pb2.REWARD_TYPE_UNSPECIFIED


def _with_request_id(request: issuance_pb2.IssueRewardRequest) -> issuance_pb2.IssueRewardRequest:
    if request.request_id:
        return request
    filled = issuance_pb2.IssueRewardRequest()
    filled.CopyFrom(request)
    filled.request_id = new_request_id()
    return filled


class IssuanceMethods(Transport):
    # IssueReward, each batch item and GrantCustomReward get a request_id made once per method
    # call when the caller gives none; every retry of that call resends it, so the server
    # answers a retry with the original issuance (idempotent_replay) and never issues twice.
    def issue_reward(
        self,
        reward_id: str,
        participant: ParticipantLike,
        *,
        quantity: int = 0,
        amount: DecimalLike = "",
        request_id: str | None = None,
        transaction_number: str = "",
        notes: str = "",
        metadata: Mapping[str, str] | None = None,
        custom_fields: Mapping[str, str] | None = None,
        fulfillment_status: str = "",
        event_time: TimeLike | None = None,
        owner: common_pb2.Owner | None = None,
        timeout: float | None = None,
    ) -> issuance_pb2.IssueRewardResponse:
        request = issue_request(
            reward_id,
            participant,
            quantity=quantity,
            amount=amount,
            request_id=request_id or new_request_id(),
            transaction_number=transaction_number,
            notes=notes,
            metadata=metadata,
            custom_fields=custom_fields,
            fulfillment_status=fulfillment_status,
            event_time=event_time,
            owner=owner,
        )
        return self._invoke(self._issuance.IssueReward, request, idempotent=True, timeout=timeout)

    def batch_issue_rewards(
        self,
        requests: Iterable[issuance_pb2.IssueRewardRequest | Mapping[str, Any]],
        *,
        timeout: float | None = None,
    ) -> issuance_pb2.BatchIssueRewardsResponse:
        """Items are IssueRewardRequest messages or dicts of issue_request() keywords.
        Failed items carry a google.rpc.Status: rewards_client.from_status(result.error)."""
        items = [
            _with_request_id(
                r if isinstance(r, issuance_pb2.IssueRewardRequest) else issue_request(**r)
            )
            for r in requests
        ]
        request = issuance_pb2.BatchIssueRewardsRequest(requests=items)
        return self._invoke(
            self._issuance.BatchIssueRewards, request, idempotent=True, timeout=timeout
        )

    def grant_custom_reward(
        self,
        participant: ParticipantLike,
        *,
        amount: DecimalLike,
        action_code: str,
        client_reference: str | None = None,
        notes: str = "",
        metadata: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> issuance_pb2.GrantCustomRewardResponse:
        request = issuance_pb2.GrantCustomRewardRequest(
            participant=to_ref(participant),
            amount=decimal_str(amount),
            action_code=action_code,
            client_reference=client_reference or new_request_id(),
            notes=notes,
            metadata=metadata,
        )
        return self._invoke(
            self._issuance.GrantCustomReward, request, idempotent=True, timeout=timeout
        )

    def get_issuance(self, id: str, *, timeout: float | None = None) -> issuance_pb2.Issuance:
        request = issuance_pb2.GetIssuanceRequest(id=id)
        return self._invoke(self._issuance.GetIssuance, request, idempotent=True, timeout=timeout)

    def list_issuances(
        self,
        *,
        page_size: int = 0,
        page_token: str = "",
        participant: ParticipantLike | None = None,
        reward_id: str = "",
        status: common_pb2.IssuanceStatus.ValueType = _UNSET_STATUS,
        type: common_pb2.RewardType.ValueType = _UNSET_TYPE,
        created_after: TimeLike | None = None,
        created_before: TimeLike | None = None,
        timeout: float | None = None,
    ) -> issuance_pb2.ListIssuancesResponse:
        request = issuance_pb2.ListIssuancesRequest(
            page_size=page_size,
            page_token=page_token,
            participant=None if participant is None else to_ref(participant),
            reward_id=reward_id,
            status=status,
            type=type,
            created_after=timestamp(created_after),
            created_before=timestamp(created_before),
        )
        return self._invoke(self._issuance.ListIssuances, request, idempotent=True, timeout=timeout)

    def iter_issuances(
        self,
        *,
        page_size: int = 0,
        participant: ParticipantLike | None = None,
        reward_id: str = "",
        status: common_pb2.IssuanceStatus.ValueType = _UNSET_STATUS,
        type: common_pb2.RewardType.ValueType = _UNSET_TYPE,
        created_after: TimeLike | None = None,
        created_before: TimeLike | None = None,
        timeout: float | None = None,
    ) -> Iterator[issuance_pb2.Issuance]:
        return walk(
            lambda token: self.list_issuances(
                page_size=page_size,
                page_token=token,
                participant=participant,
                reward_id=reward_id,
                status=status,
                type=type,
                created_after=created_after,
                created_before=created_before,
                timeout=timeout,
            ),
            lambda page: page.issuances,
        )

    # Claiming a CLAIMED issuance and revoking a REVOKED one return it unchanged, so both
    # are safe to retry after a deadline.
    def claim_issuance(self, id: str, *, timeout: float | None = None) -> issuance_pb2.Issuance:
        request = issuance_pb2.ClaimIssuanceRequest(id=id)
        return self._invoke(self._issuance.ClaimIssuance, request, idempotent=True, timeout=timeout)

    def revoke_issuance(
        self, id: str, *, reason: str = "", timeout: float | None = None
    ) -> issuance_pb2.Issuance:
        request = issuance_pb2.RevokeIssuanceRequest(id=id, reason=reason)
        return self._invoke(
            self._issuance.RevokeIssuance, request, idempotent=True, timeout=timeout
        )

    def update_fulfillment(
        self, id: str, *, status: str, note: str = "", timeout: float | None = None
    ) -> issuance_pb2.Issuance:
        request = issuance_pb2.UpdateFulfillmentRequest(id=id, status=status, note=note)
        return self._invoke(
            self._issuance.UpdateFulfillment, request, idempotent=False, timeout=timeout
        )
