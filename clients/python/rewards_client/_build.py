"""What goes on the wire for each method, shared by RewardsClient and AsyncRewardsClient.

One function per RPC turns a method's arguments into its request message: request ids made
when the caller gives none (once per method call, so every retry resends the same one),
implied update masks, participant refs, decimals and times. The clients only send the result.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf.message import Message
from rewards.v1 import catalog_pb2, common_pb2, issuance_pb2, participants_pb2

from rewards_client.messages import (
    DecimalLike,
    MaskLike,
    ParticipantLike,
    TimeLike,
    decimal_str,
    field_mask,
    issue_request,
    new_request_id,
    populated_paths,
    resource,
    timestamp,
    to_ref,
)

# Writes that may act twice when retried after a deadline: they carry no request_id and a
# repeat is not a no-op. Everything else is safe to resend; see retry.py.
_NOT_IDEMPOTENT = frozenset(
    {
        catalog_pb2.UpdateRewardRequest,
        catalog_pb2.DeleteRewardRequest,
        catalog_pb2.AddCodesRequest,
        issuance_pb2.UpdateFulfillmentRequest,
    }
)
# Never part of an implied update mask: identity, concurrency token and output-only fields.
_NOT_UPDATED = ("id", "etag", "redeemed_count", "created_at", "updated_at")


def idempotent(request: Message) -> bool:
    """Whether sending `request` twice has the effect of sending it once."""
    return type(request) not in _NOT_IDEMPOTENT


def method_name(request: Message) -> str:
    """The RPC a request message is for: GetRewardRequest -> "GetReward"."""
    return type(request).__name__.removesuffix("Request")


# RewardCatalog


def create_reward(
    reward: catalog_pb2.Reward | None, request_id: str | None, fields: Mapping[str, Any]
) -> catalog_pb2.CreateRewardRequest:
    return catalog_pb2.CreateRewardRequest(
        reward=resource(catalog_pb2.Reward, reward, fields),
        request_id=request_id or new_request_id(),
    )


def list_rewards(
    *,
    page_size: int,
    page_token: str,
    status: common_pb2.RewardStatus.ValueType,
    type: common_pb2.RewardType.ValueType,
    category: str,
    show_archived: bool,
    include_total_size: bool = False,
) -> catalog_pb2.ListRewardsRequest:
    return catalog_pb2.ListRewardsRequest(
        page_size=page_size,
        page_token=page_token,
        status=status,
        type=type,
        category=category,
        show_archived=show_archived,
        include_total_size=include_total_size,
    )


def update_reward(
    reward: catalog_pb2.Reward | None, update_mask: MaskLike | None, fields: Mapping[str, Any]
) -> catalog_pb2.UpdateRewardRequest:
    patch = resource(catalog_pb2.Reward, reward, fields)
    if update_mask is None and reward is None:
        update_mask = [name for name in fields if name not in _NOT_UPDATED]
    elif update_mask is None:
        update_mask = populated_paths(patch, _NOT_UPDATED)
    return catalog_pb2.UpdateRewardRequest(reward=patch, update_mask=field_mask(update_mask))


def create_asset(
    asset: catalog_pb2.Asset | None, request_id: str | None, fields: Mapping[str, Any]
) -> catalog_pb2.CreateAssetRequest:
    return catalog_pb2.CreateAssetRequest(
        asset=resource(catalog_pb2.Asset, asset, fields),
        request_id=request_id or new_request_id(),
    )


def create_code_pool(
    code_pool: catalog_pb2.CodePool | None, request_id: str | None, fields: Mapping[str, Any]
) -> catalog_pb2.CreateCodePoolRequest:
    return catalog_pb2.CreateCodePoolRequest(
        code_pool=resource(catalog_pb2.CodePool, code_pool, fields),
        request_id=request_id or new_request_id(),
    )


def add_codes(
    code_pool_id: str,
    codes: Iterable[str],
    expires_at: TimeLike | None = None,
    code_entries: Iterable[tuple[str, TimeLike | None]] = (),
) -> catalog_pb2.AddCodesRequest:
    return catalog_pb2.AddCodesRequest(
        code_pool_id=code_pool_id,
        codes=list(codes),
        expires_at=timestamp(expires_at),
        code_entries=[
            catalog_pb2.CodeEntry(code=code, expires_at=timestamp(at)) for code, at in code_entries
        ],
    )


# RewardIssuance


def issue_reward(
    reward_id: str, participant: ParticipantLike, request_id: str | None, **fields: Any
) -> issuance_pb2.IssueRewardRequest:
    return issue_request(
        reward_id, participant, request_id=request_id or new_request_id(), **fields
    )


def batch_issue_rewards(
    requests: Iterable[issuance_pb2.IssueRewardRequest | Mapping[str, Any]],
) -> issuance_pb2.BatchIssueRewardsRequest:
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
    return issuance_pb2.BatchIssueRewardsRequest(requests=items)


def grant_custom_reward(
    participant: ParticipantLike,
    *,
    amount: DecimalLike,
    action_code: str,
    client_reference: str | None,
    notes: str,
    metadata: Mapping[str, str] | None,
) -> issuance_pb2.GrantCustomRewardRequest:
    return issuance_pb2.GrantCustomRewardRequest(
        participant=to_ref(participant),
        amount=decimal_str(amount),
        action_code=action_code,
        client_reference=client_reference or new_request_id(),
        notes=notes,
        metadata=metadata,
    )


def list_issuances(
    *,
    page_size: int,
    page_token: str,
    participant: ParticipantLike | None,
    reward_id: str,
    status: common_pb2.IssuanceStatus.ValueType,
    type: common_pb2.RewardType.ValueType,
    created_after: TimeLike | None,
    created_before: TimeLike | None,
    issuer_key_id: str = "",
    source_event_id: str = "",
    action_code: str = "",
) -> issuance_pb2.ListIssuancesRequest:
    return issuance_pb2.ListIssuancesRequest(
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


# Participants


def upsert_participant(
    participant: participants_pb2.Participant | None,
    update_mask: MaskLike | None,
    fields: Mapping[str, Any],
) -> participants_pb2.UpsertParticipantRequest:
    return participants_pb2.UpsertParticipantRequest(
        participant=resource(participants_pb2.Participant, participant, fields),
        update_mask=None if update_mask is None else field_mask(update_mask),
    )


def list_participants(
    *, page_size: int, page_token: str, segment: str, partition: str, email: str, mobile: str
) -> participants_pb2.ListParticipantsRequest:
    return participants_pb2.ListParticipantsRequest(
        page_size=page_size,
        page_token=page_token,
        segment=segment,
        partition=partition,
        email=email,
        mobile=mobile,
    )


def get_balance(participant: ParticipantLike, asset_id: str) -> participants_pb2.GetBalanceRequest:
    return participants_pb2.GetBalanceRequest(participant=to_ref(participant), asset_id=asset_id)


def list_ledger_entries(
    participant: ParticipantLike, *, asset_id: str, page_size: int, page_token: str
) -> participants_pb2.ListLedgerEntriesRequest:
    return participants_pb2.ListLedgerEntriesRequest(
        participant=to_ref(participant),
        asset_id=asset_id,
        page_size=page_size,
        page_token=page_token,
    )


def adjust_balance(
    participant: ParticipantLike,
    *,
    asset_id: str,
    delta: DecimalLike,
    reason: str,
    request_id: str | None,
) -> participants_pb2.AdjustBalanceRequest:
    return participants_pb2.AdjustBalanceRequest(
        participant=to_ref(participant),
        asset_id=asset_id,
        delta=decimal_str(delta),
        reason=reason,
        request_id=request_id or new_request_id(),
    )
