"""RewardIssuance methods: issue, grant, read, claim, revoke and fulfil."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rewards.v1 import common_pb2, issuance_pb2

from rewards_client._call import Call, Pages
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

UNSET_STATUS = common_pb2.ISSUANCE_STATUS_UNSPECIFIED
UNSET_TYPE = common_pb2.REWARD_TYPE_UNSPECIFIED


# IssueReward, each batch item and GrantCustomReward get a request_id made once per method
# call when the caller gives none; every retry of that call resends it, so the server
# answers a retry with the original issuance (idempotent_replay) and never issues twice.
def issue_reward(
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
    payment_option_id: str = "",
    payment_method: str = "",
    manual: bool = False,
    source_event_id: str = "",
    pay_from: int = 0,
    timeout: float | None = None,
) -> Call[issuance_pb2.IssueRewardResponse]:
    """Issue a reward to a participant: every check, the cost, the credit and the code in
    one transaction, or nothing at all.

    Give the request_id of your business event (an order number) so that sending it again,
    from any process, returns the original issuance with idempotent_replay=True; the same
    request_id with other attributes raises IdempotencyKeyReused. quantity defaults to 1;
    AMOUNT_BASED rewards take `amount` (and quantity multiplies its cost). A reward with
    several payment options needs payment_option_id (PaymentOptionRequired); manual=True
    (admin keys only) skips the window, segments and rolling limits. Refusals are
    FailedPrecondition subclasses (OutOfStock, InsufficientBalance, ...) and change
    nothing."""
    request = issue_request(
        reward_id,
        participant,
        request_id=request_id or new_request_id(),
        quantity=quantity,
        amount=amount,
        transaction_number=transaction_number,
        notes=notes,
        metadata=metadata,
        custom_fields=custom_fields,
        fulfillment_status=fulfillment_status,
        event_time=event_time,
        owner=owner,
        payment_option_id=payment_option_id,
        payment_method=payment_method,
        manual=manual,
        source_event_id=source_event_id,
        pay_from=pay_from,
    )
    return Call(request, issuance_pb2.IssueRewardResponse, timeout)


def batch_issue_rewards(
    requests: Iterable[issuance_pb2.IssueRewardRequest | Mapping[str, Any]],
    *,
    timeout: float | None = None,
) -> Call[issuance_pb2.BatchIssueRewardsResponse]:
    """Issue up to 500 rewards; each item succeeds or fails on its own.

    Items are IssueRewardRequest messages or dicts of issue_request() keywords; an item
    without a request_id gets one. results are in request order; a failed item carries a
    google.rpc.Status: rewards_client.from_status(result.error) makes it a typed error."""
    items = []
    for item in requests:
        if not isinstance(item, issuance_pb2.IssueRewardRequest):
            item = issue_request(**item)
        if not item.request_id:
            filled = issuance_pb2.IssueRewardRequest()
            filled.CopyFrom(item)
            filled.request_id = new_request_id()
            item = filled
        items.append(item)
    request = issuance_pb2.BatchIssueRewardsRequest(requests=items)
    return Call(request, issuance_pb2.BatchIssueRewardsResponse, timeout)


def grant_custom_reward(
    participant: ParticipantLike,
    *,
    amount: DecimalLike,
    action_code: str,
    client_reference: str | None = None,
    notes: str = "",
    metadata: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> Call[issuance_pb2.GrantCustomRewardResponse]:
    """Grant a CUSTOM reward for an external action (admin only): amount in dollars
    (1.00-100.00), claimable at once. client_reference is the request_id: give your own
    to make a replay return the first grant; one is made when none is given."""
    request = issuance_pb2.GrantCustomRewardRequest(
        participant=to_ref(participant),
        amount=decimal_str(amount),
        action_code=action_code,
        client_reference=client_reference or new_request_id(),
        notes=notes,
        metadata=metadata,
    )
    return Call(request, issuance_pb2.GrantCustomRewardResponse, timeout)


def get_issuance(id: str, *, timeout: float | None = None) -> Call[issuance_pb2.Issuance]:
    """One issuance by id. IssuanceNotFound if there is none."""
    return Call(issuance_pb2.GetIssuanceRequest(id=id), issuance_pb2.Issuance, timeout)


def list_issuances(
    *,
    page_size: int = 0,
    page_token: str = "",
    participant: ParticipantLike | None = None,
    reward_id: str = "",
    status: common_pb2.IssuanceStatus.ValueType = UNSET_STATUS,
    type: common_pb2.RewardType.ValueType = UNSET_TYPE,
    created_after: TimeLike | None = None,
    created_before: TimeLike | None = None,
    issuer_key_id: str = "",
    source_event_id: str = "",
    action_code: str = "",
    timeout: float | None = None,
) -> Call[issuance_pb2.ListIssuancesResponse]:
    """One page of issuances, newest first, filtered by participant, reward, status, type,
    creation time, issuing key, source_event_id and action_code."""
    request = issuance_pb2.ListIssuancesRequest(
        page_size=page_size,
        page_token=page_token,
        participant=None if participant is None else to_ref(participant),
        reward_id=reward_id,
        status=status,
        type=type,
        created_after=timestamp(created_after),
        created_before=timestamp(created_before),
        issuer_key_id=issuer_key_id,
        source_event_id=source_event_id,
        action_code=action_code,
    )
    return Call(request, issuance_pb2.ListIssuancesResponse, timeout)


def iter_issuances(
    *,
    page_size: int = 0,
    participant: ParticipantLike | None = None,
    reward_id: str = "",
    status: common_pb2.IssuanceStatus.ValueType = UNSET_STATUS,
    type: common_pb2.RewardType.ValueType = UNSET_TYPE,
    created_after: TimeLike | None = None,
    created_before: TimeLike | None = None,
    issuer_key_id: str = "",
    source_event_id: str = "",
    action_code: str = "",
    timeout: float | None = None,
) -> Pages[issuance_pb2.ListIssuancesResponse, issuance_pb2.Issuance]:
    """Every issuance matching the filters, newest first, page by page."""
    return Pages(
        lambda token: list_issuances(
            page_size=page_size,
            page_token=token,
            participant=participant,
            reward_id=reward_id,
            status=status,
            type=type,
            created_after=created_after,
            created_before=created_before,
            issuer_key_id=issuer_key_id,
            source_event_id=source_event_id,
            action_code=action_code,
            timeout=timeout,
        ),
        lambda page: page.issuances,
    )


# Claiming a CLAIMED issuance and revoking a REVOKED one return it unchanged, so both
# are safe to retry after a deadline.
def claim_issuance(id: str, *, timeout: float | None = None) -> Call[issuance_pb2.Issuance]:
    """Mark a CONFIRMED issuance CLAIMED; a CLAIMED one comes back unchanged, a REVOKED
    one raises InvalidStateTransition."""
    return Call(issuance_pb2.ClaimIssuanceRequest(id=id), issuance_pb2.Issuance, timeout)


def revoke_issuance(
    id: str, *, reason: str = "", timeout: float | None = None
) -> Call[issuance_pb2.Issuance]:
    """Revoke an issuance (admin only): refunds its cost, takes back credited points
    (InsufficientBalance if already spent) and releases its units from every cap."""
    request = issuance_pb2.RevokeIssuanceRequest(id=id, reason=reason)
    return Call(request, issuance_pb2.Issuance, timeout)


def update_fulfillment(
    id: str, *, status: str, note: str = "", timeout: float | None = None
) -> Call[issuance_pb2.Issuance]:
    """Append a fulfillment status (free text such as SHIPPED) to the issuance's history.
    Not retried after a deadline: a retry would append it twice."""
    request = issuance_pb2.UpdateFulfillmentRequest(id=id, status=status, note=note)
    return Call(request, issuance_pb2.Issuance, timeout, idempotent=False)
