"""RewardCatalog servicer: parse the request, call the use case, build the response."""

from rewards.v1 import catalog_pb2, catalog_pb2_grpc

from rewards_service.api import convert
from rewards_service.auth import caller
from rewards_service.domain import rewards as rules
from rewards_service.domain.validation import Violations
from rewards_service.services import catalog


def update_paths(v: Violations, mask_paths: list[str], patch: rules.RewardSpec) -> set[str]:
    """AIP-134 mask -> spec paths. "*" means every updatable field; output-only ones are ignored."""
    if not mask_paths:
        v.add("update_mask", "must name at least one field (or *)")
        return set()
    if "*" in mask_paths:
        paths = set(rules.SPEC_FIELDS)
        if patch.config_kind:
            paths.add(patch.config_kind)
        if not patch.status:
            paths.discard("status")
        return paths
    paths = set()
    for path in mask_paths:
        head = path.split(".", 1)[0]
        if path in rules.OUTPUT_ONLY_FIELDS:
            continue
        if path in rules.SPEC_FIELDS or (head in rules.CONFIG_MEMBERS):
            paths.add(path)
        else:
            v.add("update_mask", f"names an unknown or read-only field: {path}")
    return paths


class RewardCatalogServicer(catalog_pb2_grpc.RewardCatalogServicer):
    def CreateReward(self, request, context):
        v = Violations()
        spec = convert.reward_spec_in(v, request.reward)
        v.raise_if_any()
        row = catalog.create_reward(caller().program_id, spec, request.request_id)
        return convert.reward_out(row)

    def GetReward(self, request, context):
        return convert.reward_out(catalog.get_reward(caller().program_id, request.id))

    def ListRewards(self, request, context):
        v = Violations()
        filters = {
            "status": request.status,
            "type": request.type,
            "category": request.category,
            "show_archived": request.show_archived,
        }
        page = convert.page_in(v, request, filters)
        v.raise_if_any()
        filtered = {
            "status": request.status,
            "reward_type": request.type,
            "category": request.category,
            "show_archived": request.show_archived,
        }
        rows, token = catalog.list_rewards(caller().program_id, page, **filtered)
        return catalog_pb2.ListRewardsResponse(
            rewards=[convert.reward_out(r) for r in rows],
            next_page_token=token,
            total_size=(
                min(catalog.count_rewards(caller().program_id, **filtered), 2**31 - 1)
                if request.include_total_size
                else 0
            ),
        )

    def UpdateReward(self, request, context):
        v = Violations()
        v.check(bool(request.reward.id), "reward.id", "is required")
        patch = convert.reward_spec_in(v, request.reward)
        paths = update_paths(v, list(request.update_mask.paths), patch)
        v.raise_if_any()
        row = catalog.update_reward(
            caller().program_id, request.reward.id, patch, paths, request.reward.etag
        )
        return convert.reward_out(row)

    def DeleteReward(self, request, context):
        row = catalog.delete_reward(caller().program_id, request.id, request.etag)
        return convert.reward_out(row)

    def CreateAsset(self, request, context):
        asset = request.asset
        row = catalog.create_asset(
            caller().program_id, asset.code, asset.name, asset.scale, request.request_id
        )
        return convert.asset_out(row)

    def GetAsset(self, request, context):
        return convert.asset_out(catalog.get_asset(caller().program_id, request.id))

    def ListAssets(self, request, context):
        v = Violations()
        page = convert.page_in(v, request, {})
        v.raise_if_any()
        rows, token = catalog.list_assets(caller().program_id, page)
        return catalog_pb2.ListAssetsResponse(
            assets=[convert.asset_out(r) for r in rows], next_page_token=token
        )

    def CreateCodePool(self, request, context):
        pool = request.code_pool
        row = catalog.create_code_pool(
            caller().program_id,
            pool.name,
            pool.description,
            request.request_id,
            low_stock_threshold=pool.low_stock_threshold,
        )
        return convert.code_pool_out(row)

    def GetCodePool(self, request, context):
        return convert.code_pool_out(catalog.get_code_pool(caller().program_id, request.id))

    def ListCodePools(self, request, context):
        v = Violations()
        page = convert.page_in(v, request, {})
        v.raise_if_any()
        rows, token = catalog.list_code_pools(caller().program_id, page)
        return catalog_pb2.ListCodePoolsResponse(
            code_pools=[convert.code_pool_out(r) for r in rows], next_page_token=token
        )

    def AddCodes(self, request, context):
        v = Violations()
        expires_at = convert.timestamp_in(v, "expires_at", request, "expires_at")
        entries = [
            (
                entry.code,
                convert.timestamp_in(v, f"code_entries[{i}].expires_at", entry, "expires_at"),
            )
            for i, entry in enumerate(request.code_entries)
        ]
        v.raise_if_any()
        added, duplicates, pool = catalog.add_codes(
            caller().program_id, request.code_pool_id, list(request.codes), expires_at, entries
        )
        return catalog_pb2.AddCodesResponse(
            added_count=added,
            duplicate_count=duplicates,
            code_pool=convert.code_pool_out(pool),
        )
