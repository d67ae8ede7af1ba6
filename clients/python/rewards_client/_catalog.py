"""RewardCatalog methods: rewards, assets and code pools."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rewards.v1 import catalog_pb2, common_pb2

from rewards_client._call import Call, Pages
from rewards_client.messages import (
    MaskLike,
    TimeLike,
    field_mask,
    new_request_id,
    populated_paths,
    resource,
    timestamp,
)

UNSET_STATUS = common_pb2.REWARD_STATUS_UNSPECIFIED
UNSET_TYPE = common_pb2.REWARD_TYPE_UNSPECIFIED
# Never part of an implied update mask: identity, concurrency token and output-only fields.
_NOT_UPDATED = ("id", "etag", "redeemed_count", "created_at", "updated_at")


# Creates send a request_id (one per method call, reused by its retries): a retried
# create returns the first result instead of making a second resource.
def create_reward(
    reward: catalog_pb2.Reward | None = None,
    *,
    request_id: str | None = None,
    timeout: float | None = None,
    **fields: Any,
) -> Call[catalog_pb2.Reward]:
    """Create a reward from a Reward message or its fields as keywords (admin only).

    A request_id is made when none is given, so a retried create makes one reward; the
    same request_id again returns the reward it first created."""
    request = catalog_pb2.CreateRewardRequest(
        reward=resource(catalog_pb2.Reward, reward, fields),
        request_id=request_id or new_request_id(),
    )
    return Call(request, catalog_pb2.Reward, timeout)


def get_reward(id: str, *, timeout: float | None = None) -> Call[catalog_pb2.Reward]:
    """One reward by id, archived ones included. RewardNotFound if there is none."""
    return Call(catalog_pb2.GetRewardRequest(id=id), catalog_pb2.Reward, timeout)


def list_rewards(
    *,
    page_size: int = 0,
    page_token: str = "",
    status: common_pb2.RewardStatus.ValueType = UNSET_STATUS,
    type: common_pb2.RewardType.ValueType = UNSET_TYPE,
    category: str = "",
    show_archived: bool = False,
    include_total_size: bool = False,
    timeout: float | None = None,
) -> Call[catalog_pb2.ListRewardsResponse]:
    """One page of rewards, oldest first, filtered by status, type and category; archived
    ones only with show_archived. Pass the response's next_page_token for the next.
    include_total_size also counts every match (total_size), at the cost of a query."""
    request = catalog_pb2.ListRewardsRequest(
        page_size=page_size,
        page_token=page_token,
        status=status,
        type=type,
        category=category,
        show_archived=show_archived,
        include_total_size=include_total_size,
    )
    return Call(request, catalog_pb2.ListRewardsResponse, timeout)


def iter_rewards(
    *,
    page_size: int = 0,
    status: common_pb2.RewardStatus.ValueType = UNSET_STATUS,
    type: common_pb2.RewardType.ValueType = UNSET_TYPE,
    category: str = "",
    show_archived: bool = False,
    timeout: float | None = None,
) -> Pages[catalog_pb2.ListRewardsResponse, catalog_pb2.Reward]:
    """Every reward matching the filters, fetching pages as the iteration reaches them."""
    return Pages(
        lambda token: list_rewards(
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


def update_reward(
    reward: catalog_pb2.Reward | None = None,
    *,
    update_mask: MaskLike | None = None,
    timeout: float | None = None,
    **fields: Any,
) -> Call[catalog_pb2.Reward]:
    """Update a reward (admin only); returns it as stored.

    update_reward(id=..., etag=..., name="New") updates the fields named as keywords
    (description="" clears one); with a Reward and no update_mask, every populated field
    is updated (AIP-134's implied mask). A stale etag raises EtagMismatch; changing type,
    redemption_type or cost_asset_id raises ImmutableField. Not retried after a deadline.
    """
    patch = resource(catalog_pb2.Reward, reward, fields)
    if update_mask is None and reward is None:
        update_mask = [name for name in fields if name not in _NOT_UPDATED]
    elif update_mask is None:
        update_mask = populated_paths(patch, _NOT_UPDATED)
    request = catalog_pb2.UpdateRewardRequest(reward=patch, update_mask=field_mask(update_mask))
    return Call(request, catalog_pb2.Reward, timeout, idempotent=False)


def delete_reward(
    id: str, *, etag: str = "", timeout: float | None = None
) -> Call[catalog_pb2.Reward]:
    """Archive a reward (admin only): it stays readable but can no longer be issued."""
    request = catalog_pb2.DeleteRewardRequest(id=id, etag=etag)
    return Call(request, catalog_pb2.Reward, timeout, idempotent=False)


def create_asset(
    asset: catalog_pb2.Asset | None = None,
    *,
    request_id: str | None = None,
    timeout: float | None = None,
    **fields: Any,
) -> Call[catalog_pb2.Asset]:
    """Create a program currency such as POINTS (code, name, scale; admin only).
    AssetExists if the program already has one with that code."""
    request = catalog_pb2.CreateAssetRequest(
        asset=resource(catalog_pb2.Asset, asset, fields),
        request_id=request_id or new_request_id(),
    )
    return Call(request, catalog_pb2.Asset, timeout)


def get_asset(id: str, *, timeout: float | None = None) -> Call[catalog_pb2.Asset]:
    """One asset by id. AssetNotFound if there is none."""
    return Call(catalog_pb2.GetAssetRequest(id=id), catalog_pb2.Asset, timeout)


def list_assets(
    *, page_size: int = 0, page_token: str = "", timeout: float | None = None
) -> Call[catalog_pb2.ListAssetsResponse]:
    """One page of assets, oldest first."""
    request = catalog_pb2.ListAssetsRequest(page_size=page_size, page_token=page_token)
    return Call(request, catalog_pb2.ListAssetsResponse, timeout)


def iter_assets(
    *, page_size: int = 0, timeout: float | None = None
) -> Pages[catalog_pb2.ListAssetsResponse, catalog_pb2.Asset]:
    """Every asset, fetching pages as the iteration reaches them."""
    return Pages(
        lambda token: list_assets(page_size=page_size, page_token=token, timeout=timeout),
        lambda page: page.assets,
    )


def create_code_pool(
    code_pool: catalog_pb2.CodePool | None = None,
    *,
    request_id: str | None = None,
    timeout: float | None = None,
    **fields: Any,
) -> Call[catalog_pb2.CodePool]:
    """Create an empty pool of unique coupon codes (admin only); fill it with add_codes."""
    request = catalog_pb2.CreateCodePoolRequest(
        code_pool=resource(catalog_pb2.CodePool, code_pool, fields),
        request_id=request_id or new_request_id(),
    )
    return Call(request, catalog_pb2.CodePool, timeout)


def get_code_pool(id: str, *, timeout: float | None = None) -> Call[catalog_pb2.CodePool]:
    """One code pool with its counts (total, available, issued)."""
    return Call(catalog_pb2.GetCodePoolRequest(id=id), catalog_pb2.CodePool, timeout)


def list_code_pools(
    *, page_size: int = 0, page_token: str = "", timeout: float | None = None
) -> Call[catalog_pb2.ListCodePoolsResponse]:
    """One page of code pools, oldest first."""
    request = catalog_pb2.ListCodePoolsRequest(page_size=page_size, page_token=page_token)
    return Call(request, catalog_pb2.ListCodePoolsResponse, timeout)


def iter_code_pools(
    *, page_size: int = 0, timeout: float | None = None
) -> Pages[catalog_pb2.ListCodePoolsResponse, catalog_pb2.CodePool]:
    """Every code pool, fetching pages as the iteration reaches them."""
    return Pages(
        lambda token: list_code_pools(page_size=page_size, page_token=token, timeout=timeout),
        lambda page: page.code_pools,
    )


def add_codes(
    code_pool_id: str,
    codes: Iterable[str] = (),
    *,
    expires_at: TimeLike | None = None,
    code_entries: Iterable[tuple[str, TimeLike | None]] = (),
    timeout: float | None = None,
) -> Call[catalog_pb2.AddCodesResponse]:
    """Add up to 10,000 codes (admin only); codes the pool already holds are skipped and
    counted. `expires_at` is the expiry of `codes` (and of code_entries without their
    own); code_entries are (code, expiry) pairs. Not retried after a deadline."""
    request = catalog_pb2.AddCodesRequest(
        code_pool_id=code_pool_id,
        codes=list(codes),
        expires_at=timestamp(expires_at),
        code_entries=[
            catalog_pb2.CodeEntry(code=code, expires_at=timestamp(at)) for code, at in code_entries
        ],
    )
    return Call(request, catalog_pb2.AddCodesResponse, timeout, idempotent=False)
