"""AsyncRewardsClient: RewardsClient on grpc.aio, every method a coroutine.

Each method builds its request with the same function as RewardsClient's (_build.py) and
sends it through AsyncTransport, which shares the retry decisions, the budget and the error
mapping with the sync transport. Methods without a docstring of their own take the one of
the RewardsClient method of the same name; a test checks that both clients have the same
methods with the same parameters.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import grpc
import grpc.aio
from rewards.v1 import (
    catalog_pb2,
    common_pb2,
    groups_pb2,
    issuance_pb2,
    participants_pb2,
    programs_pb2,
)

from rewards_client import _build
from rewards_client._catalog import UNSET_STATUS as UNSET_REWARD_STATUS
from rewards_client._catalog import UNSET_TYPE
from rewards_client._events import AsyncEventsMethods
from rewards_client._issuance import UNSET_STATUS as UNSET_ISSUANCE_STATUS
from rewards_client._transport import (
    AsyncTransport,
    Options,
    awalk,
    channel_credentials,
    channel_options,
)
from rewards_client.client import RewardsClient
from rewards_client.messages import (
    DecimalLike,
    MaskLike,
    ParticipantLike,
    TimeLike,
    decimal_str,
    new_request_id,
    to_ref,
)
from rewards_client.retry import RetryBudget, RetryEvent, RetryPolicy

_C = TypeVar("_C", bound=type)


def _docs_from(sync: type) -> Callable[[_C], _C]:
    """Give each public method without a docstring the docstring of sync's method."""

    def apply(cls: _C) -> _C:
        for name, method in vars(cls).items():
            if name.startswith("_") or not callable(method) or method.__doc__:
                continue
            method.__doc__ = getattr(sync, name).__doc__
        return cls

    return apply


@_docs_from(RewardsClient)
class AsyncRewardsClient(AsyncEventsMethods, AsyncTransport):
    """RewardsClient for asyncio: the same methods, arguments, typed errors, request ids,
    retries (awaiting the backoff), retry budget and deadlines; each method is awaited, and
    the iter_* methods are async iterators. Use it from one event loop and close it:

        async with AsyncRewardsClient("localhost:50051", api_key) as client:
            reward = await client.get_reward("rew_...")
            async for issuance in client.iter_issuances(reward_id=reward.id):
                ...
    """

    def __init__(
        self,
        target: str,
        api_key: str | None,
        *,
        tls: bool = False,
        root_certificates: bytes | None = None,
        private_key: bytes | None = None,
        certificate_chain: bytes | None = None,
        timeout: float | None = 10.0,
        max_attempts: int = 4,
        initial_backoff: float = 0.1,
        max_backoff: float = 2.0,
        retry_budget: RetryBudget | None = None,
        on_retry: Callable[[RetryEvent], None] | None = None,
        options: Options = (),
    ) -> None:
        policy = RetryPolicy(
            max_attempts=max_attempts, initial_backoff=initial_backoff, max_backoff=max_backoff
        )
        settings = channel_options(initial_backoff, max_backoff, options)
        credentials = channel_credentials(tls, root_certificates, private_key, certificate_chain)
        if credentials is None:
            channel = grpc.aio.insecure_channel(target, options=settings)
        else:
            channel = grpc.aio.secure_channel(target, credentials, options=settings)
        super().__init__(
            channel,
            api_key,
            timeout=timeout,
            retry=policy,
            budget=retry_budget,
            on_retry=on_retry,
        )
        self.target = target

    @property
    def channel(self) -> grpc.aio.Channel:
        """The grpc.aio channel, e.g. for stubs of other services on the same connection."""
        return self._channel

    async def close(self) -> None:
        """Close the channel; calls in flight are cancelled."""
        await self._channel.close()

    async def __aenter__(self) -> AsyncRewardsClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncRewardsClient({self.target!r})"

    # RewardCatalog

    async def create_reward(
        self,
        reward: catalog_pb2.Reward | None = None,
        *,
        request_id: str | None = None,
        timeout: float | None = None,
        **fields: Any,
    ) -> catalog_pb2.Reward:
        request = _build.create_reward(reward, request_id, fields)
        return await self._invoke(self._catalog.CreateReward, request, timeout=timeout)

    async def get_reward(self, id: str, *, timeout: float | None = None) -> catalog_pb2.Reward:
        request = catalog_pb2.GetRewardRequest(id=id)
        return await self._invoke(self._catalog.GetReward, request, timeout=timeout)

    async def list_rewards(
        self,
        *,
        page_size: int = 0,
        page_token: str = "",
        status: common_pb2.RewardStatus.ValueType = UNSET_REWARD_STATUS,
        type: common_pb2.RewardType.ValueType = UNSET_TYPE,
        category: str = "",
        show_archived: bool = False,
        include_total_size: bool = False,
        timeout: float | None = None,
    ) -> catalog_pb2.ListRewardsResponse:
        request = _build.list_rewards(
            page_size=page_size,
            page_token=page_token,
            status=status,
            type=type,
            category=category,
            show_archived=show_archived,
            include_total_size=include_total_size,
        )
        return await self._invoke(self._catalog.ListRewards, request, timeout=timeout)

    def iter_rewards(
        self,
        *,
        page_size: int = 0,
        status: common_pb2.RewardStatus.ValueType = UNSET_REWARD_STATUS,
        type: common_pb2.RewardType.ValueType = UNSET_TYPE,
        category: str = "",
        show_archived: bool = False,
        timeout: float | None = None,
    ) -> AsyncIterator[catalog_pb2.Reward]:
        return awalk(
            lambda token: self.list_rewards(
                page_size=page_size,
                page_token=token,
                status=status,
                type=type,
                category=category,
                show_archived=show_archived,
                timeout=timeout,
            ),
            lambda page: page.rewards,
        )

    async def update_reward(
        self,
        reward: catalog_pb2.Reward | None = None,
        *,
        update_mask: MaskLike | None = None,
        timeout: float | None = None,
        **fields: Any,
    ) -> catalog_pb2.Reward:
        request = _build.update_reward(reward, update_mask, fields)
        return await self._invoke(self._catalog.UpdateReward, request, timeout=timeout)

    async def delete_reward(
        self, id: str, *, etag: str = "", timeout: float | None = None
    ) -> catalog_pb2.Reward:
        request = catalog_pb2.DeleteRewardRequest(id=id, etag=etag)
        return await self._invoke(self._catalog.DeleteReward, request, timeout=timeout)

    async def create_asset(
        self,
        asset: catalog_pb2.Asset | None = None,
        *,
        request_id: str | None = None,
        timeout: float | None = None,
        **fields: Any,
    ) -> catalog_pb2.Asset:
        request = _build.create_asset(asset, request_id, fields)
        return await self._invoke(self._catalog.CreateAsset, request, timeout=timeout)

    async def get_asset(self, id: str, *, timeout: float | None = None) -> catalog_pb2.Asset:
        request = catalog_pb2.GetAssetRequest(id=id)
        return await self._invoke(self._catalog.GetAsset, request, timeout=timeout)

    async def list_assets(
        self, *, page_size: int = 0, page_token: str = "", timeout: float | None = None
    ) -> catalog_pb2.ListAssetsResponse:
        request = catalog_pb2.ListAssetsRequest(page_size=page_size, page_token=page_token)
        return await self._invoke(self._catalog.ListAssets, request, timeout=timeout)

    def iter_assets(
        self, *, page_size: int = 0, timeout: float | None = None
    ) -> AsyncIterator[catalog_pb2.Asset]:
        return awalk(
            lambda token: self.list_assets(page_size=page_size, page_token=token, timeout=timeout),
            lambda page: page.assets,
        )

    async def create_code_pool(
        self,
        code_pool: catalog_pb2.CodePool | None = None,
        *,
        request_id: str | None = None,
        timeout: float | None = None,
        **fields: Any,
    ) -> catalog_pb2.CodePool:
        request = _build.create_code_pool(code_pool, request_id, fields)
        return await self._invoke(self._catalog.CreateCodePool, request, timeout=timeout)

    async def get_code_pool(self, id: str, *, timeout: float | None = None) -> catalog_pb2.CodePool:
        request = catalog_pb2.GetCodePoolRequest(id=id)
        return await self._invoke(self._catalog.GetCodePool, request, timeout=timeout)

    async def list_code_pools(
        self, *, page_size: int = 0, page_token: str = "", timeout: float | None = None
    ) -> catalog_pb2.ListCodePoolsResponse:
        request = catalog_pb2.ListCodePoolsRequest(page_size=page_size, page_token=page_token)
        return await self._invoke(self._catalog.ListCodePools, request, timeout=timeout)

    def iter_code_pools(
        self, *, page_size: int = 0, timeout: float | None = None
    ) -> AsyncIterator[catalog_pb2.CodePool]:
        return awalk(
            lambda token: self.list_code_pools(
                page_size=page_size, page_token=token, timeout=timeout
            ),
            lambda page: page.code_pools,
        )

    async def add_codes(
        self,
        code_pool_id: str,
        codes: Iterable[str] = (),
        *,
        expires_at: TimeLike | None = None,
        code_entries: Iterable[tuple[str, TimeLike | None]] = (),
        timeout: float | None = None,
    ) -> catalog_pb2.AddCodesResponse:
        request = _build.add_codes(code_pool_id, codes, expires_at, code_entries)
        return await self._invoke(self._catalog.AddCodes, request, timeout=timeout)

    # RewardIssuance

    async def issue_reward(
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
        payment_option_id: str = "",
        payment_method: str = "",
        manual: bool = False,
        source_event_id: str = "",
        pay_from: int = 0,
        timeout: float | None = None,
    ) -> issuance_pb2.IssueRewardResponse:
        request = _build.issue_reward(
            reward_id,
            participant,
            request_id,
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
        return await self._invoke(self._issuance.IssueReward, request, timeout=timeout)

    async def batch_issue_rewards(
        self,
        requests: Iterable[issuance_pb2.IssueRewardRequest | Mapping[str, Any]],
        *,
        timeout: float | None = None,
    ) -> issuance_pb2.BatchIssueRewardsResponse:
        request = _build.batch_issue_rewards(requests)
        return await self._invoke(self._issuance.BatchIssueRewards, request, timeout=timeout)

    async def grant_custom_reward(
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
        request = _build.grant_custom_reward(
            participant,
            amount=amount,
            action_code=action_code,
            client_reference=client_reference,
            notes=notes,
            metadata=metadata,
        )
        return await self._invoke(self._issuance.GrantCustomReward, request, timeout=timeout)

    async def get_issuance(self, id: str, *, timeout: float | None = None) -> issuance_pb2.Issuance:
        request = issuance_pb2.GetIssuanceRequest(id=id)
        return await self._invoke(self._issuance.GetIssuance, request, timeout=timeout)

    async def list_issuances(
        self,
        *,
        page_size: int = 0,
        page_token: str = "",
        participant: ParticipantLike | None = None,
        reward_id: str = "",
        status: common_pb2.IssuanceStatus.ValueType = UNSET_ISSUANCE_STATUS,
        type: common_pb2.RewardType.ValueType = UNSET_TYPE,
        created_after: TimeLike | None = None,
        created_before: TimeLike | None = None,
        issuer_key_id: str = "",
        source_event_id: str = "",
        action_code: str = "",
        timeout: float | None = None,
    ) -> issuance_pb2.ListIssuancesResponse:
        request = _build.list_issuances(
            page_size=page_size,
            page_token=page_token,
            participant=participant,
            reward_id=reward_id,
            status=status,
            type=type,
            created_after=created_after,
            created_before=created_before,
            issuer_key_id=issuer_key_id,
            source_event_id=source_event_id,
            action_code=action_code,
        )
        return await self._invoke(self._issuance.ListIssuances, request, timeout=timeout)

    def iter_issuances(
        self,
        *,
        page_size: int = 0,
        participant: ParticipantLike | None = None,
        reward_id: str = "",
        status: common_pb2.IssuanceStatus.ValueType = UNSET_ISSUANCE_STATUS,
        type: common_pb2.RewardType.ValueType = UNSET_TYPE,
        created_after: TimeLike | None = None,
        created_before: TimeLike | None = None,
        issuer_key_id: str = "",
        source_event_id: str = "",
        action_code: str = "",
        timeout: float | None = None,
    ) -> AsyncIterator[issuance_pb2.Issuance]:
        return awalk(
            lambda token: self.list_issuances(
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

    async def claim_issuance(
        self, id: str, *, timeout: float | None = None
    ) -> issuance_pb2.Issuance:
        request = issuance_pb2.ClaimIssuanceRequest(id=id)
        return await self._invoke(self._issuance.ClaimIssuance, request, timeout=timeout)

    async def revoke_issuance(
        self, id: str, *, reason: str = "", timeout: float | None = None
    ) -> issuance_pb2.Issuance:
        request = issuance_pb2.RevokeIssuanceRequest(id=id, reason=reason)
        return await self._invoke(self._issuance.RevokeIssuance, request, timeout=timeout)

    async def update_fulfillment(
        self, id: str, *, status: str, note: str = "", timeout: float | None = None
    ) -> issuance_pb2.Issuance:
        request = issuance_pb2.UpdateFulfillmentRequest(id=id, status=status, note=note)
        return await self._invoke(self._issuance.UpdateFulfillment, request, timeout=timeout)

    # Participants

    async def upsert_participant(
        self,
        participant: participants_pb2.Participant | None = None,
        *,
        update_mask: MaskLike | None = None,
        timeout: float | None = None,
        **fields: Any,
    ) -> participants_pb2.Participant:
        request = _build.upsert_participant(participant, update_mask, fields)
        return await self._invoke(self._participants.UpsertParticipant, request, timeout=timeout)

    async def get_participant(
        self, id: str, *, timeout: float | None = None
    ) -> participants_pb2.Participant:
        request = participants_pb2.GetParticipantRequest(id=id)
        return await self._invoke(self._participants.GetParticipant, request, timeout=timeout)

    async def list_participants(
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
        request = _build.list_participants(
            page_size=page_size,
            page_token=page_token,
            segment=segment,
            partition=partition,
            email=email,
            mobile=mobile,
        )
        return await self._invoke(self._participants.ListParticipants, request, timeout=timeout)

    def iter_participants(
        self,
        *,
        page_size: int = 0,
        segment: str = "",
        partition: str = "",
        email: str = "",
        mobile: str = "",
        timeout: float | None = None,
    ) -> AsyncIterator[participants_pb2.Participant]:
        return awalk(
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

    async def get_balance(
        self, participant: ParticipantLike, asset_id: str, *, timeout: float | None = None
    ) -> participants_pb2.Balance:
        request = _build.get_balance(participant, asset_id)
        return await self._invoke(self._participants.GetBalance, request, timeout=timeout)

    async def list_ledger_entries(
        self,
        participant: ParticipantLike,
        *,
        asset_id: str = "",
        page_size: int = 0,
        page_token: str = "",
        timeout: float | None = None,
    ) -> participants_pb2.ListLedgerEntriesResponse:
        request = _build.list_ledger_entries(
            participant, asset_id=asset_id, page_size=page_size, page_token=page_token
        )
        return await self._invoke(self._participants.ListLedgerEntries, request, timeout=timeout)

    def iter_ledger_entries(
        self,
        participant: ParticipantLike,
        *,
        asset_id: str = "",
        page_size: int = 0,
        timeout: float | None = None,
    ) -> AsyncIterator[participants_pb2.LedgerEntry]:
        return awalk(
            lambda token: self.list_ledger_entries(
                participant,
                asset_id=asset_id,
                page_size=page_size,
                page_token=token,
                timeout=timeout,
            ),
            lambda page: page.entries,
        )

    async def adjust_balance(
        self,
        participant: ParticipantLike,
        *,
        asset_id: str,
        delta: DecimalLike,
        reason: str = "",
        request_id: str | None = None,
        timeout: float | None = None,
    ) -> participants_pb2.AdjustBalanceResponse:
        request = _build.adjust_balance(
            participant, asset_id=asset_id, delta=delta, reason=reason, request_id=request_id
        )
        return await self._invoke(self._participants.AdjustBalance, request, timeout=timeout)

    # ParticipantGroups

    async def create_group(
        self,
        name: str,
        *,
        metadata: Mapping[str, str] | None = None,
        request_id: str | None = None,
        timeout: float | None = None,
    ) -> groups_pb2.Group:
        request = groups_pb2.CreateGroupRequest(
            group=groups_pb2.Group(name=name, metadata=metadata),
            request_id=request_id or new_request_id(),
        )
        return await self._invoke(self._groups.CreateGroup, request, timeout=timeout)

    async def get_group(self, id: str, *, timeout: float | None = None) -> groups_pb2.Group:
        request = groups_pb2.GetGroupRequest(id=id)
        return await self._invoke(self._groups.GetGroup, request, timeout=timeout)

    async def list_groups(
        self, *, page_size: int = 0, page_token: str = "", timeout: float | None = None
    ) -> groups_pb2.ListGroupsResponse:
        request = groups_pb2.ListGroupsRequest(page_size=page_size, page_token=page_token)
        return await self._invoke(self._groups.ListGroups, request, timeout=timeout)

    def iter_groups(
        self, *, page_size: int = 0, timeout: float | None = None
    ) -> AsyncIterator[groups_pb2.Group]:
        return awalk(
            lambda token: self.list_groups(page_size=page_size, page_token=token, timeout=timeout),
            lambda page: page.groups,
        )

    async def add_group_member(
        self, group_id: str, participant: ParticipantLike, *, timeout: float | None = None
    ) -> groups_pb2.GroupMember:
        request = groups_pb2.AddGroupMemberRequest(
            group_id=group_id, participant=to_ref(participant)
        )
        return await self._invoke(self._groups.AddGroupMember, request, timeout=timeout)

    async def remove_group_member(
        self, group_id: str, participant: ParticipantLike, *, timeout: float | None = None
    ) -> groups_pb2.GroupMember:
        request = groups_pb2.RemoveGroupMemberRequest(
            group_id=group_id, participant=to_ref(participant)
        )
        return await self._invoke(self._groups.RemoveGroupMember, request, timeout=timeout)

    async def list_group_members(
        self,
        group_id: str,
        *,
        page_size: int = 0,
        page_token: str = "",
        timeout: float | None = None,
    ) -> groups_pb2.ListGroupMembersResponse:
        request = groups_pb2.ListGroupMembersRequest(
            group_id=group_id, page_size=page_size, page_token=page_token
        )
        return await self._invoke(self._groups.ListGroupMembers, request, timeout=timeout)

    def iter_group_members(
        self, group_id: str, *, page_size: int = 0, timeout: float | None = None
    ) -> AsyncIterator[groups_pb2.GroupMember]:
        return awalk(
            lambda token: self.list_group_members(
                group_id, page_size=page_size, page_token=token, timeout=timeout
            ),
            lambda page: page.members,
        )

    async def get_group_balance(
        self, group_id: str, asset_id: str, *, timeout: float | None = None
    ) -> groups_pb2.GroupBalance:
        request = groups_pb2.GetGroupBalanceRequest(group_id=group_id, asset_id=asset_id)
        return await self._invoke(self._groups.GetGroupBalance, request, timeout=timeout)

    async def list_group_ledger_entries(
        self,
        group_id: str,
        *,
        asset_id: str = "",
        page_size: int = 0,
        page_token: str = "",
        timeout: float | None = None,
    ) -> groups_pb2.ListGroupLedgerEntriesResponse:
        request = groups_pb2.ListGroupLedgerEntriesRequest(
            group_id=group_id, asset_id=asset_id, page_size=page_size, page_token=page_token
        )
        return await self._invoke(self._groups.ListGroupLedgerEntries, request, timeout=timeout)

    def iter_group_ledger_entries(
        self,
        group_id: str,
        *,
        asset_id: str = "",
        page_size: int = 0,
        timeout: float | None = None,
    ) -> AsyncIterator[groups_pb2.GroupLedgerEntry]:
        return awalk(
            lambda token: self.list_group_ledger_entries(
                group_id, asset_id=asset_id, page_size=page_size, page_token=token, timeout=timeout
            ),
            lambda page: page.entries,
        )

    async def adjust_group_balance(
        self,
        group_id: str,
        *,
        asset_id: str,
        delta: DecimalLike,
        reason: str = "",
        request_id: str | None = None,
        timeout: float | None = None,
    ) -> groups_pb2.AdjustGroupBalanceResponse:
        request = groups_pb2.AdjustGroupBalanceRequest(
            group_id=group_id,
            asset_id=asset_id,
            delta=decimal_str(delta),
            reason=reason,
            request_id=request_id or new_request_id(),
        )
        return await self._invoke(self._groups.AdjustGroupBalance, request, timeout=timeout)

    # ProgramRegistry

    async def create_custom_field(
        self,
        key: str,
        type: int,
        *,
        required: bool = False,
        request_id: str | None = None,
        timeout: float | None = None,
    ) -> programs_pb2.CustomField:
        request = programs_pb2.CreateCustomFieldRequest(
            custom_field=programs_pb2.CustomField(key=key, type=type, required=required),  # type: ignore[arg-type]
            request_id=request_id or new_request_id(),
        )
        return await self._invoke(self._registry.CreateCustomField, request, timeout=timeout)

    async def list_custom_fields(
        self, *, page_size: int = 0, page_token: str = "", timeout: float | None = None
    ) -> programs_pb2.ListCustomFieldsResponse:
        request = programs_pb2.ListCustomFieldsRequest(page_size=page_size, page_token=page_token)
        return await self._invoke(self._registry.ListCustomFields, request, timeout=timeout)

    def iter_custom_fields(
        self, *, page_size: int = 0, timeout: float | None = None
    ) -> AsyncIterator[programs_pb2.CustomField]:
        return awalk(
            lambda token: self.list_custom_fields(
                page_size=page_size, page_token=token, timeout=timeout
            ),
            lambda page: page.custom_fields,
        )

    async def delete_custom_field(
        self, id: str, *, timeout: float | None = None
    ) -> programs_pb2.CustomField:
        request = programs_pb2.DeleteCustomFieldRequest(id=id)
        return await self._invoke(self._registry.DeleteCustomField, request, timeout=timeout)

    async def create_fulfillment_status(
        self, status: str, *, request_id: str | None = None, timeout: float | None = None
    ) -> programs_pb2.FulfillmentStatus:
        request = programs_pb2.CreateFulfillmentStatusRequest(
            fulfillment_status=programs_pb2.FulfillmentStatus(status=status),
            request_id=request_id or new_request_id(),
        )
        return await self._invoke(self._registry.CreateFulfillmentStatus, request, timeout=timeout)

    async def list_fulfillment_statuses(
        self, *, page_size: int = 0, page_token: str = "", timeout: float | None = None
    ) -> programs_pb2.ListFulfillmentStatusesResponse:
        request = programs_pb2.ListFulfillmentStatusesRequest(
            page_size=page_size, page_token=page_token
        )
        return await self._invoke(self._registry.ListFulfillmentStatuses, request, timeout=timeout)

    def iter_fulfillment_statuses(
        self, *, page_size: int = 0, timeout: float | None = None
    ) -> AsyncIterator[programs_pb2.FulfillmentStatus]:
        return awalk(
            lambda token: self.list_fulfillment_statuses(
                page_size=page_size, page_token=token, timeout=timeout
            ),
            lambda page: page.fulfillment_statuses,
        )

    async def delete_fulfillment_status(
        self, id: str, *, timeout: float | None = None
    ) -> programs_pb2.FulfillmentStatus:
        request = programs_pb2.DeleteFulfillmentStatusRequest(id=id)
        return await self._invoke(self._registry.DeleteFulfillmentStatus, request, timeout=timeout)
