"""RewardCatalog methods: rewards, assets and code pools."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from rewards.v1 import catalog_pb2, common_pb2

from rewards_client._transport import Transport, walk
from rewards_client.messages import MaskLike, field_mask, new_request_id, populated_paths, resource

_UNSET_STATUS = common_pb2.REWARD_STATUS_UNSPECIFIED
_UNSET_TYPE = common_pb2.REWARD_TYPE_UNSPECIFIED
# Never part of an implied update mask: identity, concurrency token and output-only fields.
_NOT_UPDATED = ("id", "etag", "redeemed_count", "created_at", "updated_at")


class CatalogMethods(Transport):
    # Creates send a request_id (one per method call, reused by its retries): a retried
    # create returns the first result instead of making a second resource.
    def create_reward(
        self,
        reward: catalog_pb2.Reward | None = None,
        *,
        request_id: str | None = None,
        timeout: float | None = None,
        **fields: Any,
    ) -> catalog_pb2.Reward:
        request = catalog_pb2.CreateRewardRequest(
            reward=resource(catalog_pb2.Reward, reward, fields),
            request_id=request_id or new_request_id(),
        )
        return self._invoke(self._catalog.CreateReward, request, idempotent=True, timeout=timeout)

    def get_reward(self, id: str, *, timeout: float | None = None) -> catalog_pb2.Reward:
        request = catalog_pb2.GetRewardRequest(id=id)
        return self._invoke(self._catalog.GetReward, request, idempotent=True, timeout=timeout)

    def list_rewards(
        self,
        *,
        page_size: int = 0,
        page_token: str = "",
        status: common_pb2.RewardStatus.ValueType = _UNSET_STATUS,
        type: common_pb2.RewardType.ValueType = _UNSET_TYPE,
        category: str = "",
        show_archived: bool = False,
        timeout: float | None = None,
    ) -> catalog_pb2.ListRewardsResponse:
        request = catalog_pb2.ListRewardsRequest(
            page_size=page_size,
            page_token=page_token,
            status=status,
            type=type,
            category=category,
            show_archived=show_archived,
        )
        return self._invoke(self._catalog.ListRewards, request, idempotent=True, timeout=timeout)

    def iter_rewards(
        self,
        *,
        page_size: int = 0,
        status: common_pb2.RewardStatus.ValueType = _UNSET_STATUS,
        type: common_pb2.RewardType.ValueType = _UNSET_TYPE,
        category: str = "",
        show_archived: bool = False,
        timeout: float | None = None,
    ) -> Iterator[catalog_pb2.Reward]:
        return walk(
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

    def update_reward(
        self,
        reward: catalog_pb2.Reward | None = None,
        *,
        update_mask: MaskLike | None = None,
        timeout: float | None = None,
        **fields: Any,
    ) -> catalog_pb2.Reward:
        """update_reward(id=..., etag=..., name="New") updates the fields named as keywords
        (description="" clears one); with a Reward and no update_mask, every populated field
        is updated (AIP-134's implied mask)."""
        patch = resource(catalog_pb2.Reward, reward, fields)
        if update_mask is None and reward is None:
            update_mask = [name for name in fields if name not in _NOT_UPDATED]
        elif update_mask is None:
            update_mask = populated_paths(patch, _NOT_UPDATED)
        request = catalog_pb2.UpdateRewardRequest(reward=patch, update_mask=field_mask(update_mask))
        return self._invoke(self._catalog.UpdateReward, request, idempotent=False, timeout=timeout)

    def delete_reward(
        self, id: str, *, etag: str = "", timeout: float | None = None
    ) -> catalog_pb2.Reward:
        request = catalog_pb2.DeleteRewardRequest(id=id, etag=etag)
        return self._invoke(self._catalog.DeleteReward, request, idempotent=False, timeout=timeout)

    def create_asset(
        self,
        asset: catalog_pb2.Asset | None = None,
        *,
        request_id: str | None = None,
        timeout: float | None = None,
        **fields: Any,
    ) -> catalog_pb2.Asset:
        request = catalog_pb2.CreateAssetRequest(
            asset=resource(catalog_pb2.Asset, asset, fields),
            request_id=request_id or new_request_id(),
        )
        return self._invoke(self._catalog.CreateAsset, request, idempotent=True, timeout=timeout)

    def get_asset(self, id: str, *, timeout: float | None = None) -> catalog_pb2.Asset:
        request = catalog_pb2.GetAssetRequest(id=id)
        return self._invoke(self._catalog.GetAsset, request, idempotent=True, timeout=timeout)

    def list_assets(
        self, *, page_size: int = 0, page_token: str = "", timeout: float | None = None
    ) -> catalog_pb2.ListAssetsResponse:
        request = catalog_pb2.ListAssetsRequest(page_size=page_size, page_token=page_token)
        return self._invoke(self._catalog.ListAssets, request, idempotent=True, timeout=timeout)

    def iter_assets(
        self, *, page_size: int = 0, timeout: float | None = None
    ) -> Iterator[catalog_pb2.Asset]:
        return walk(
            lambda token: self.list_assets(page_size=page_size, page_token=token, timeout=timeout),
            lambda page: page.assets,
        )

    def create_code_pool(
        self,
        code_pool: catalog_pb2.CodePool | None = None,
        *,
        request_id: str | None = None,
        timeout: float | None = None,
        **fields: Any,
    ) -> catalog_pb2.CodePool:
        request = catalog_pb2.CreateCodePoolRequest(
            code_pool=resource(catalog_pb2.CodePool, code_pool, fields),
            request_id=request_id or new_request_id(),
        )
        return self._invoke(self._catalog.CreateCodePool, request, idempotent=True, timeout=timeout)

    def get_code_pool(self, id: str, *, timeout: float | None = None) -> catalog_pb2.CodePool:
        request = catalog_pb2.GetCodePoolRequest(id=id)
        return self._invoke(self._catalog.GetCodePool, request, idempotent=True, timeout=timeout)

    def list_code_pools(
        self, *, page_size: int = 0, page_token: str = "", timeout: float | None = None
    ) -> catalog_pb2.ListCodePoolsResponse:
        request = catalog_pb2.ListCodePoolsRequest(page_size=page_size, page_token=page_token)
        return self._invoke(self._catalog.ListCodePools, request, idempotent=True, timeout=timeout)

    def iter_code_pools(
        self, *, page_size: int = 0, timeout: float | None = None
    ) -> Iterator[catalog_pb2.CodePool]:
        return walk(
            lambda token: self.list_code_pools(
                page_size=page_size, page_token=token, timeout=timeout
            ),
            lambda page: page.code_pools,
        )

    def add_codes(
        self, code_pool_id: str, codes: Iterable[str], *, timeout: float | None = None
    ) -> catalog_pb2.AddCodesResponse:
        """Add up to 10,000 codes; codes the pool already holds are skipped and counted."""
        request = catalog_pb2.AddCodesRequest(code_pool_id=code_pool_id, codes=list(codes))
        return self._invoke(self._catalog.AddCodes, request, idempotent=False, timeout=timeout)
