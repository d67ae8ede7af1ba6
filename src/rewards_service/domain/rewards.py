"""Pure rules of catalog rewards: the shape of a valid reward, its lifecycle, its stock."""

from dataclasses import dataclass, field, fields
from datetime import datetime

from rewards.v1 import common_pb2 as common

from rewards_service.domain import pricing
from rewards_service.domain.errors import (
    Aborted,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
)
from rewards_service.domain.validation import (
    Violations,
    check_name,
    check_string_map,
    check_text,
    one_of,
    parse_decimal,
)

T = common.RewardType
S = common.RewardStatus
R = common.RedemptionType

# The `config` oneof member each catalog type must use.
CONFIG_FOR_TYPE = {
    T.REWARD_TYPE_POINTS: "points",
    T.REWARD_TYPE_PRODUCT: "product",
    T.REWARD_TYPE_COMPETITION_ENTRY: "competition_entry",
    T.REWARD_TYPE_UNIQUE_COUPON: "unique_coupon",
    T.REWARD_TYPE_NON_UNIQUE_COUPON: "non_unique_coupon",
}
CONFIG_MEMBERS = frozenset(CONFIG_FOR_TYPE.values())

IMMUTABLE_FIELDS = ("type", "redemption_type", "cost_asset_id")
OUTPUT_ONLY_FIELDS = frozenset(
    {"id", "redeemed_count", "created_at", "updated_at", "etag", "program_id"}
)
CREATABLE_STATUSES = (S.REWARD_STATUS_DRAFT, S.REWARD_STATUS_ACTIVE, S.REWARD_STATUS_INACTIVE)

# Transitions an operator may ask for. OUT_OF_STOCK comes and goes only by the service.
ALLOWED_TRANSITIONS = {
    S.REWARD_STATUS_DRAFT: {S.REWARD_STATUS_ACTIVE, S.REWARD_STATUS_ARCHIVED},
    S.REWARD_STATUS_ACTIVE: {S.REWARD_STATUS_INACTIVE, S.REWARD_STATUS_ARCHIVED},
    S.REWARD_STATUS_INACTIVE: {S.REWARD_STATUS_ACTIVE, S.REWARD_STATUS_ARCHIVED},
    S.REWARD_STATUS_OUT_OF_STOCK: {S.REWARD_STATUS_ARCHIVED},
    S.REWARD_STATUS_ARCHIVED: set(),
}

MAX_SEGMENTS = 100
MAX_LIMITS = 20
MAX_WINDOW_SECONDS = 100 * 366 * 86_400
MAX_ID_LEN = 128


@dataclass
class RewardLimit:
    scope: int
    max_quantity: int
    window_seconds: int

    def as_dict(self) -> dict[str, int]:
        return {
            "scope": self.scope,
            "max_quantity": self.max_quantity,
            "window_seconds": self.window_seconds,
        }


@dataclass
class RewardSpec:
    """A reward's caller-settable fields, as plain values (config keeps proto field names)."""

    name: str = ""
    description: str = ""
    category: str = ""
    type: int = T.REWARD_TYPE_UNSPECIFIED
    status: int = S.REWARD_STATUS_UNSPECIFIED
    config_kind: str | None = None
    config: dict[str, object] = field(default_factory=dict)
    redemption_type: int = R.REDEMPTION_TYPE_UNSPECIFIED
    cost_asset_id: str = ""
    unit_cost: str = ""
    max_total: int | None = None
    max_per_participant: int | None = None
    limits: list[RewardLimit] = field(default_factory=list)
    available_from: datetime | None = None
    available_until: datetime | None = None
    segments: list[dict[str, str]] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    conversion_ratio: str = ""
    cost_rounding: int = 0
    # PaymentOption fields by proto name (id, unit_cost, conversion_ratio, cash_...).
    payment_options: list[dict[str, str]] = field(default_factory=list)
    redemption_unit: str = ""


# Mask paths map to spec fields; a config member path replaces the whole config.
SPEC_FIELDS = frozenset(f.name for f in fields(RewardSpec)) - {"config_kind", "config"}
UPDATABLE_PATHS = SPEC_FIELDS | CONFIG_MEMBERS


def check_reward(v: Violations, spec: RewardSpec, *, prefix: str = "reward.") -> None:
    """Everything that can be checked without the store. Asset/pool existence is the caller's."""
    check_name(v, prefix + "name", spec.name)
    check_text(v, prefix + "description", spec.description, max_len=1000)
    check_text(v, prefix + "category", spec.category, max_len=100)
    expected_config = CONFIG_FOR_TYPE.get(spec.type)
    if expected_config is None:
        v.add(prefix + "type", one_of(T, CONFIG_FOR_TYPE))
    elif spec.config_kind is None:
        v.add(prefix + expected_config, "is required for this reward type")
    elif spec.config_kind != expected_config:
        v.add(prefix + spec.config_kind, f"does not match type; set {expected_config} instead")
    else:
        _check_config(v, prefix + expected_config + ".", spec.config_kind, spec.config)
    _check_pricing(v, prefix, spec)
    _check_inventory(v, prefix, spec)
    if spec.available_from and spec.available_until:
        v.check(
            spec.available_from < spec.available_until,
            prefix + "available_until",
            "must be after available_from",
        )
    _check_segments(v, prefix + "segments", spec.segments)
    check_string_map(v, prefix + "metadata", spec.metadata)


def _check_config(v: Violations, path: str, kind: str, config: dict[str, object]) -> None:
    def text(name: str, *, required: bool = True) -> None:
        check_text(v, path + name, str(config.get(name, "")), max_len=MAX_ID_LEN, required=required)

    if kind == "points":
        text("asset_id")
        amount = parse_decimal(v, path + "amount", str(config.get("amount", "")))
        if amount is not None:
            v.check(amount > 0, path + "amount", "must be greater than zero")
    elif kind == "product":
        text("product_id")
        v.check(int(config.get("quantity", 0)) >= 0, path + "quantity", "must be at least 1")
    elif kind == "competition_entry":
        text("competition_id")
        v.check(int(config.get("entries", 0)) >= 0, path + "entries", "must be at least 1")
    elif kind == "unique_coupon":
        text("code_pool_id")
    elif kind == "non_unique_coupon":
        text("code")
        discount_type = config.get("discount_type", 0)
        v.check(
            discount_type in (common.DISCOUNT_TYPE_PERCENTAGE, common.DISCOUNT_TYPE_FIXED),
            path + "discount_type",
            "must be PERCENTAGE or FIXED",
        )
        value = parse_decimal(v, path + "discount_value", str(config.get("discount_value", "")))
        if value is not None:
            if value < 0:
                v.add(path + "discount_value", "must not be negative")
            elif discount_type == common.DISCOUNT_TYPE_PERCENTAGE and value > 100:
                v.add(path + "discount_value", "must be at most 100 for PERCENTAGE")


def normalize_config(kind: str, config: dict[str, object]) -> dict[str, object]:
    """Apply documented defaults so stored configs are explicit."""
    if kind == "product" and not config.get("quantity"):
        return {**config, "quantity": 1}
    if kind == "competition_entry" and not config.get("entries"):
        return {**config, "entries": 1}
    return config


def _check_pricing(v: Violations, prefix: str, spec: RewardSpec) -> None:
    if spec.redemption_type not in (
        R.REDEMPTION_TYPE_UNSPECIFIED,
        R.REDEMPTION_TYPE_UNIT_BASED,
        R.REDEMPTION_TYPE_AMOUNT_BASED,
    ):
        v.add(
            prefix + "redemption_type",
            one_of(R, (R.REDEMPTION_TYPE_UNIT_BASED, R.REDEMPTION_TYPE_AMOUNT_BASED)),
        )
    amount_based = spec.redemption_type == R.REDEMPTION_TYPE_AMOUNT_BASED
    if spec.cost_asset_id and spec.payment_options:
        for name in ("unit_cost", "conversion_ratio"):
            v.check(
                not getattr(spec, name), prefix + name, "must be empty when payment_options are set"
            )
        pricing.check_payment_options(
            v, prefix + "payment_options", spec.payment_options, amount_based=amount_based
        )
    elif spec.cost_asset_id:
        pricing.check_price_form(
            v, prefix, spec.unit_cost, spec.conversion_ratio, amount_based=amount_based
        )
    elif spec.unit_cost:
        v.add(prefix + "cost_asset_id", "is required when unit_cost is set")
    elif spec.conversion_ratio or spec.payment_options:
        v.add(prefix + "cost_asset_id", "is required when the reward has a price")
    elif amount_based:
        v.add(prefix + "cost_asset_id", "is required for AMOUNT_BASED rewards")
    v.check(
        spec.cost_rounding in pricing.CR.values(),
        prefix + "cost_rounding",
        one_of(pricing.CR),
    )
    check_text(v, prefix + "redemption_unit", spec.redemption_unit, max_len=32)


def _check_inventory(v: Violations, prefix: str, spec: RewardSpec) -> None:
    if spec.redemption_type == R.REDEMPTION_TYPE_AMOUNT_BASED:
        # Scrip: "AMOUNT_BASED rewards allow variable amounts with no inventory limits".
        for name, value in (
            ("max_total", spec.max_total),
            ("max_per_participant", spec.max_per_participant),
            ("limits", spec.limits),
        ):
            if value is not None and value != []:
                v.add(
                    prefix + name,
                    "applies to REDEMPTION_TYPE_UNIT_BASED rewards only: AMOUNT_BASED rewards "
                    "take no inventory limits",
                )
        return
    if spec.max_total is not None:
        v.check(spec.max_total > 0, prefix + "max_total", "must be greater than zero")
    if spec.max_per_participant is not None and spec.max_per_participant <= 0:
        v.add(prefix + "max_per_participant", "must be greater than zero")
    if len(spec.limits) > MAX_LIMITS:
        v.add(prefix + "limits", f"must have at most {MAX_LIMITS} entries")
    for i, limit in enumerate(spec.limits):
        path = f"{prefix}limits[{i}]."
        v.check(
            limit.scope in (common.LIMIT_SCOPE_PARTICIPANT, common.LIMIT_SCOPE_GLOBAL),
            path + "scope",
            "must be PARTICIPANT or GLOBAL",
        )
        v.check(limit.max_quantity > 0, path + "max_quantity", "must be greater than zero")
        v.check(
            0 < limit.window_seconds <= MAX_WINDOW_SECONDS,
            path + "window",
            "must be from one second to 100 years",
        )


def _check_segments(v: Violations, path: str, segments: list[dict[str, str]]) -> None:
    if len(segments) > MAX_SEGMENTS:
        v.add(path, f"must have at most {MAX_SEGMENTS} entries")
        return
    for i, pair in enumerate(segments):
        check_text(v, f"{path}[{i}].segment", pair["segment"], max_len=100, required=True)
        check_text(v, f"{path}[{i}].partition", pair["partition"], max_len=100, required=True)


def check_create_status(v: Violations, status: int) -> int:
    """The status a new reward starts in (ACTIVE unless DRAFT or INACTIVE is asked for)."""
    if status == S.REWARD_STATUS_UNSPECIFIED:
        return S.REWARD_STATUS_ACTIVE
    v.check(status in CREATABLE_STATUSES, "reward.status", "must be DRAFT, ACTIVE or INACTIVE")
    return status


def check_transition(current: int, wanted: int) -> None:
    if wanted == current:
        return
    if wanted not in ALLOWED_TRANSITIONS:
        raise InvalidArgument(
            "reward.status is not a known status.",
            violations=(FieldViolation("reward.status", one_of(S, ALLOWED_TRANSITIONS)),),
        )
    if wanted not in ALLOWED_TRANSITIONS.get(current, set()):
        raise FailedPrecondition(
            f"A reward cannot move from {S.Name(current)} to {S.Name(wanted)}.",
            reason="INVALID_STATE_TRANSITION",
            metadata={"from": S.Name(current), "to": S.Name(wanted)},
        )


def check_immutable(existing: RewardSpec, updated: RewardSpec, paths: set[str]) -> None:
    changed = [
        name
        for name in IMMUTABLE_FIELDS
        if name in paths and getattr(existing, name) != getattr(updated, name)
    ]
    if changed:
        raise InvalidArgument(
            f"{', '.join(changed)} cannot change after a reward is created.",
            reason="IMMUTABLE_FIELD",
            metadata={"fields": ",".join(changed)},
        )


def stock_status(
    status: int, *, redeemed_count: int, max_total: int | None, pool_available: int | None
) -> int:
    """ACTIVE <-> OUT_OF_STOCK as the stock runs out or comes back; other statuses stay."""
    sold_out = (max_total is not None and redeemed_count >= max_total) or (
        pool_available is not None and pool_available <= 0
    )
    if status == S.REWARD_STATUS_ACTIVE and sold_out:
        return S.REWARD_STATUS_OUT_OF_STOCK
    if status == S.REWARD_STATUS_OUT_OF_STOCK and not sold_out:
        return S.REWARD_STATUS_ACTIVE
    return status


def participant_cap(reward_type: int, max_per_participant: int | None) -> int | None:
    """Most units one participant may ever get: a unique coupon is one per participant unless
    max_per_participant says more (SPEC §6); None is unlimited."""
    if max_per_participant is None and reward_type == T.REWARD_TYPE_UNIQUE_COUPON:
        return 1
    return max_per_participant


def etag(version: int) -> str:
    """A reward's etag (AIP-154): its version, bumped on every change the etag covers."""
    return f"v{version}"


def check_etag(version: int, expected: str) -> None:
    if expected and expected != etag(version):
        raise Aborted(
            "The reward changed since it was read; read it again and retry.",
            reason="ETAG_MISMATCH",
            metadata={"current_etag": etag(version)},
        )
