"""AsyncRewardsClient: RewardsClient on grpc.aio, every method a coroutine.

Each method is made by async_method from the same function as RewardsClient's (_catalog.py,
_issuance.py, ...): the same parameters, docstring and request, sent through AsyncTransport,
which shares the retry decisions, the budget and the error mapping with the sync transport.
"""

from __future__ import annotations

from types import TracebackType

import grpc.aio

from rewards_client import _catalog as catalog
from rewards_client import _events as events
from rewards_client import _groups as groups
from rewards_client import _issuance as issuance
from rewards_client import _participants as participants
from rewards_client import _registry as registry
from rewards_client._events import AsyncEventsMethods
from rewards_client._methods import async_method


class AsyncRewardsClient(AsyncEventsMethods):
    """RewardsClient for asyncio: the same methods, arguments, typed errors, request ids,
    retries (awaiting the backoff), retry budget and deadlines; each method is awaited, and
    the iter_* methods are async iterators. Use it from one event loop and close it:

        async with AsyncRewardsClient("localhost:50051", api_key) as client:
            reward = await client.get_reward("rew_...")
            async for issuance in client.iter_issuances(reward_id=reward.id):
                ...
    """

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

    # RewardCatalog
    create_reward = async_method(catalog.create_reward)
    get_reward = async_method(catalog.get_reward)
    list_rewards = async_method(catalog.list_rewards)
    iter_rewards = async_method(catalog.iter_rewards)
    update_reward = async_method(catalog.update_reward)
    delete_reward = async_method(catalog.delete_reward)
    create_asset = async_method(catalog.create_asset)
    get_asset = async_method(catalog.get_asset)
    list_assets = async_method(catalog.list_assets)
    iter_assets = async_method(catalog.iter_assets)
    create_code_pool = async_method(catalog.create_code_pool)
    get_code_pool = async_method(catalog.get_code_pool)
    list_code_pools = async_method(catalog.list_code_pools)
    iter_code_pools = async_method(catalog.iter_code_pools)
    add_codes = async_method(catalog.add_codes)

    # RewardIssuance
    issue_reward = async_method(issuance.issue_reward)
    batch_issue_rewards = async_method(issuance.batch_issue_rewards)
    grant_custom_reward = async_method(issuance.grant_custom_reward)
    get_issuance = async_method(issuance.get_issuance)
    list_issuances = async_method(issuance.list_issuances)
    iter_issuances = async_method(issuance.iter_issuances)
    claim_issuance = async_method(issuance.claim_issuance)
    revoke_issuance = async_method(issuance.revoke_issuance)
    update_fulfillment = async_method(issuance.update_fulfillment)

    # Participants
    upsert_participant = async_method(participants.upsert_participant)
    get_participant = async_method(participants.get_participant)
    list_participants = async_method(participants.list_participants)
    iter_participants = async_method(participants.iter_participants)
    get_balance = async_method(participants.get_balance)
    list_ledger_entries = async_method(participants.list_ledger_entries)
    iter_ledger_entries = async_method(participants.iter_ledger_entries)
    adjust_balance = async_method(participants.adjust_balance)

    # ParticipantGroups
    create_group = async_method(groups.create_group)
    get_group = async_method(groups.get_group)
    list_groups = async_method(groups.list_groups)
    iter_groups = async_method(groups.iter_groups)
    add_group_member = async_method(groups.add_group_member)
    remove_group_member = async_method(groups.remove_group_member)
    list_group_members = async_method(groups.list_group_members)
    iter_group_members = async_method(groups.iter_group_members)
    get_group_balance = async_method(groups.get_group_balance)
    list_group_ledger_entries = async_method(groups.list_group_ledger_entries)
    iter_group_ledger_entries = async_method(groups.iter_group_ledger_entries)
    adjust_group_balance = async_method(groups.adjust_group_balance)

    # ProgramRegistry
    create_custom_field = async_method(registry.create_custom_field)
    get_custom_field = async_method(registry.get_custom_field)
    list_custom_fields = async_method(registry.list_custom_fields)
    iter_custom_fields = async_method(registry.iter_custom_fields)
    delete_custom_field = async_method(registry.delete_custom_field)
    create_fulfillment_status = async_method(registry.create_fulfillment_status)
    get_fulfillment_status = async_method(registry.get_fulfillment_status)
    list_fulfillment_statuses = async_method(registry.list_fulfillment_statuses)
    iter_fulfillment_statuses = async_method(registry.iter_fulfillment_statuses)
    delete_fulfillment_status = async_method(registry.delete_fulfillment_status)

    # Events
    list_events = async_method(events.list_events)
    iter_events = async_method(events.iter_events)
    ack_events = async_method(events.ack_events)
