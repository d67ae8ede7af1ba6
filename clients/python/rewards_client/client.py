"""RewardsClient: one channel, one API key, a method per RPC of every rewards.v1 service.

Each method is made by sync_method from the function that says what it sends (_catalog.py,
_issuance.py, ...); AsyncRewardsClient makes its methods from the same functions.
"""

from __future__ import annotations

from types import TracebackType

import grpc

from rewards_client import _catalog as catalog
from rewards_client import _events as events
from rewards_client import _groups as groups
from rewards_client import _issuance as issuance
from rewards_client import _participants as participants
from rewards_client import _registry as registry
from rewards_client._events import EventsMethods
from rewards_client._methods import sync_method


class RewardsClient(EventsMethods):
    """A client of the rewards service. Thread-safe; use one per process and close it.

        with RewardsClient("localhost:50051", api_key) as client:
            reward = client.get_reward("rew_...")

    Every method takes keyword arguments, returns the generated message, and raises a
    RewardsError subclass on failure. `timeout` is the deadline of each attempt in seconds;
    UNAVAILABLE is retried for every call and DEADLINE_EXCEEDED for idempotent ones, at most
    `max_attempts` tries in all, with exponential backoff and jitter, while the client's
    `retry_budget` allows (a RetryBudget of its own unless given one to share). `on_retry` is
    told about each retry (e.g. to log it). private_key/certificate_chain present a client
    certificate (mTLS); giving any certificate implies tls.
    """

    @property
    def channel(self) -> grpc.Channel:
        """The gRPC channel, e.g. for stubs of other services on the same connection."""
        return self._channel

    def close(self) -> None:
        """Close the channel; calls in flight are cancelled."""
        self._channel.close()

    def __enter__(self) -> RewardsClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # RewardCatalog
    create_reward = sync_method(catalog.create_reward)
    get_reward = sync_method(catalog.get_reward)
    list_rewards = sync_method(catalog.list_rewards)
    iter_rewards = sync_method(catalog.iter_rewards)
    update_reward = sync_method(catalog.update_reward)
    delete_reward = sync_method(catalog.delete_reward)
    create_asset = sync_method(catalog.create_asset)
    get_asset = sync_method(catalog.get_asset)
    list_assets = sync_method(catalog.list_assets)
    iter_assets = sync_method(catalog.iter_assets)
    create_code_pool = sync_method(catalog.create_code_pool)
    get_code_pool = sync_method(catalog.get_code_pool)
    list_code_pools = sync_method(catalog.list_code_pools)
    iter_code_pools = sync_method(catalog.iter_code_pools)
    add_codes = sync_method(catalog.add_codes)

    # RewardIssuance
    issue_reward = sync_method(issuance.issue_reward)
    batch_issue_rewards = sync_method(issuance.batch_issue_rewards)
    grant_custom_reward = sync_method(issuance.grant_custom_reward)
    get_issuance = sync_method(issuance.get_issuance)
    list_issuances = sync_method(issuance.list_issuances)
    iter_issuances = sync_method(issuance.iter_issuances)
    claim_issuance = sync_method(issuance.claim_issuance)
    revoke_issuance = sync_method(issuance.revoke_issuance)
    update_fulfillment = sync_method(issuance.update_fulfillment)

    # Participants
    upsert_participant = sync_method(participants.upsert_participant)
    get_participant = sync_method(participants.get_participant)
    list_participants = sync_method(participants.list_participants)
    iter_participants = sync_method(participants.iter_participants)
    get_balance = sync_method(participants.get_balance)
    list_ledger_entries = sync_method(participants.list_ledger_entries)
    iter_ledger_entries = sync_method(participants.iter_ledger_entries)
    adjust_balance = sync_method(participants.adjust_balance)

    # ParticipantGroups
    create_group = sync_method(groups.create_group)
    get_group = sync_method(groups.get_group)
    list_groups = sync_method(groups.list_groups)
    iter_groups = sync_method(groups.iter_groups)
    add_group_member = sync_method(groups.add_group_member)
    remove_group_member = sync_method(groups.remove_group_member)
    list_group_members = sync_method(groups.list_group_members)
    iter_group_members = sync_method(groups.iter_group_members)
    get_group_balance = sync_method(groups.get_group_balance)
    list_group_ledger_entries = sync_method(groups.list_group_ledger_entries)
    iter_group_ledger_entries = sync_method(groups.iter_group_ledger_entries)
    adjust_group_balance = sync_method(groups.adjust_group_balance)

    # ProgramRegistry
    create_custom_field = sync_method(registry.create_custom_field)
    get_custom_field = sync_method(registry.get_custom_field)
    list_custom_fields = sync_method(registry.list_custom_fields)
    iter_custom_fields = sync_method(registry.iter_custom_fields)
    delete_custom_field = sync_method(registry.delete_custom_field)
    create_fulfillment_status = sync_method(registry.create_fulfillment_status)
    get_fulfillment_status = sync_method(registry.get_fulfillment_status)
    list_fulfillment_statuses = sync_method(registry.list_fulfillment_statuses)
    iter_fulfillment_statuses = sync_method(registry.iter_fulfillment_statuses)
    delete_fulfillment_status = sync_method(registry.delete_fulfillment_status)

    # Events
    list_events = sync_method(events.list_events)
    iter_events = sync_method(events.iter_events)
    ack_events = sync_method(events.ack_events)
