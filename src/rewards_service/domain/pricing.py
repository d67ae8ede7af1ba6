"""Cost and credit arithmetic, exact (Decimal products, integer quotients), rounded once at
the asset's scale: costs by the reward's cost_rounding, credits up (ceil)."""

import re
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from rewards.v1 import catalog_pb2

from rewards_service.domain.errors import FieldViolation, InvalidArgument, NotFound
from rewards_service.domain.validation import EXACT, Violations, parse_decimal, to_minor

CR = catalog_pb2.CostRounding
_DECIMAL_ROUNDING = {
    CR.COST_ROUNDING_HALF_UP: ROUND_HALF_UP,
    CR.COST_ROUNDING_CEILING: ROUND_CEILING,
    CR.COST_ROUNDING_FLOOR: ROUND_FLOOR,
}
MAX_PAYMENT_OPTIONS = 10
OPTION_ID_RE = re.compile(r"[a-zA-Z0-9._-]{1,64}", re.ASCII)
CURRENCY_RE = re.compile(r"[A-Z]{3}", re.ASCII)
MAX_CASH_PLACES = 4


def ceil_at_scale(value: Decimal, scale: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_CEILING, context=EXACT)


def effective_rounding(rounding: int, *, by_ratio: bool) -> int:
    """Unset: HALF_UP for conversion ratios (Capillary's 1 / 0.44 -> 2), CEILING for unit
    costs, which is how they were always rounded."""
    if rounding:
        return rounding
    return CR.COST_ROUNDING_HALF_UP if by_ratio else CR.COST_ROUNDING_CEILING


def round_at_scale(value: Decimal, scale: int, rounding: int) -> int:
    """A positive exact value in minor units of an asset of `scale` places."""
    step = Decimal(1).scaleb(-scale)
    return to_minor(value.quantize(step, _DECIMAL_ROUNDING[rounding], context=EXACT), scale)


def _round_quotient(numerator: int, denominator: int, rounding: int) -> int:
    """numerator / denominator (both > 0) rounded to an integer, in integers alone."""
    whole, rest = divmod(numerator, denominator)
    if rest == 0 or rounding == CR.COST_ROUNDING_FLOOR:
        return whole
    if rounding == CR.COST_ROUNDING_CEILING:
        return whole + 1
    return whole + 1 if 2 * rest >= denominator else whole  # HALF_UP


def unit_based_cost(
    unit_cost: Decimal, quantity: int, scale: int, rounding: int = CR.COST_ROUNDING_CEILING
) -> int:
    """unit_cost x quantity, in minor units of the cost asset."""
    return round_at_scale(EXACT.multiply(unit_cost, quantity), scale, rounding)


def amount_based_cost(
    unit_cost: Decimal,
    amount: Decimal,
    scale: int,
    rounding: int = CR.COST_ROUNDING_CEILING,
    quantity: int = 1,
) -> int:
    """amount x unit_cost x quantity, in minor units of the cost asset."""
    exact = EXACT.multiply(EXACT.multiply(amount, unit_cost), quantity)
    return round_at_scale(exact, scale, rounding)


def ratio_cost(
    conversion_ratio: Decimal,
    amount: Decimal,
    scale: int,
    rounding: int = CR.COST_ROUNDING_HALF_UP,
    quantity: int = 1,
) -> int:
    """amount / conversion_ratio x quantity, exact (no inverse, no truncated quotient), then
    rounded once: 1000 / 0.44 -> 2273 and 1 / 0.44 -> 2 at scale 0, HALF_UP."""
    # amount = a / b and ratio = c / d, so the cost in minor units is a*d*quantity*10^scale
    # over b*c: integers (no Fraction normalising, no truncated Decimal quotient).
    a, b = amount.as_integer_ratio()
    c, d = conversion_ratio.as_integer_ratio()
    return _round_quotient(a * d * quantity * 10**scale, b * c, rounding)


def points_credit(amount_per_unit: Decimal, quantity: int, scale: int) -> int:
    return to_minor(ceil_at_scale(EXACT.multiply(amount_per_unit, quantity), scale), scale)


def cash_total(cash_amount: str, quantity: int) -> str:
    """The cash part of a payment: exact, so it needs no rounding."""
    return format(EXACT.multiply(Decimal(cash_amount), quantity), "f")


# Payment options


@dataclass(frozen=True)
class Price:
    """One way to pay: the points part by unit_cost or conversion_ratio, and a cash part."""

    option_id: str
    unit_cost: str = ""
    conversion_ratio: str = ""
    cash_amount: str = ""
    cash_currency: str = ""

    @classmethod
    def of(cls, option: dict[str, str]) -> "Price":
        return cls(
            option_id=option.get("id", ""),
            unit_cost=option.get("unit_cost", ""),
            conversion_ratio=option.get("conversion_ratio", ""),
            cash_amount=option.get("cash_amount", ""),
            cash_currency=option.get("cash_currency", ""),
        )

    def cost(self, *, units: int, amount: Decimal | None, scale: int, cost_rounding: int) -> int:
        """Points in minor units: units x unit_cost, or amount (x unit_cost or
        / conversion_ratio) x units for AMOUNT_BASED."""
        by_ratio = bool(self.conversion_ratio)
        rounding = effective_rounding(cost_rounding, by_ratio=by_ratio)
        if by_ratio:
            assert amount is not None  # conversion ratios are AMOUNT_BASED only
            return ratio_cost(Decimal(self.conversion_ratio), amount, scale, rounding, units)
        if amount is not None:
            return amount_based_cost(Decimal(self.unit_cost), amount, scale, rounding, units)
        return unit_based_cost(Decimal(self.unit_cost), units, scale, rounding)


def choose_price(
    options: list[dict[str, str]],
    unit_cost: str,
    conversion_ratio: str,
    wanted: str,
    payment_method: str = "",
) -> Price | None:
    """The price an issue pays by: the option named `wanted`, the only option, or the reward's
    own unit_cost / conversion_ratio (which has no id); None for a free reward. A
    payment_method is for the cash part of an option that has one."""
    price = _chosen(options, unit_cost, conversion_ratio, wanted)
    if payment_method and (price is None or not price.cash_amount):
        raise InvalidArgument(
            "payment_method applies to payment options with a cash part only.",
            violations=(
                FieldViolation("payment_method", "applies to payment options with a cash part"),
            ),
        )
    return price


def _chosen(
    options: list[dict[str, str]], unit_cost: str, conversion_ratio: str, wanted: str
) -> Price | None:
    if not options:
        if wanted:
            raise _unknown_option(wanted)
        if not unit_cost and not conversion_ratio:
            return None
        return Price("", unit_cost=unit_cost, conversion_ratio=conversion_ratio)
    if not wanted:
        if len(options) > 1:
            raise InvalidArgument(
                "This reward has several payment options: name one in payment_option_id.",
                reason="PAYMENT_OPTION_REQUIRED",
                violations=(
                    FieldViolation(
                        "payment_option_id", "is required: the reward has several payment options"
                    ),
                ),
                metadata={"payment_option_ids": ",".join(o["id"] for o in options)},
            )
        return Price.of(options[0])
    for option in options:
        if option["id"] == wanted:
            return Price.of(option)
    raise _unknown_option(wanted)


def _unknown_option(option_id: str) -> NotFound:
    return NotFound(
        f"The reward has no payment option {option_id}.",
        reason="PAYMENT_OPTION_NOT_FOUND",
        metadata={"payment_option_id": option_id},
    )


def check_price_form(
    v: Violations, path: str, unit_cost: str, conversion_ratio: str, *, amount_based: bool
) -> None:
    """Exactly one of unit_cost and conversion_ratio, > 0; ratios for AMOUNT_BASED only."""
    if unit_cost and conversion_ratio:
        v.add(path + "conversion_ratio", "must not be set together with unit_cost")
        return
    if conversion_ratio:
        ratio = parse_decimal(v, path + "conversion_ratio", conversion_ratio)
        if ratio is not None:
            v.check(ratio > 0, path + "conversion_ratio", "must be greater than zero")
        v.check(
            amount_based,
            path + "conversion_ratio",
            "applies to REDEMPTION_TYPE_AMOUNT_BASED rewards only",
        )
        return
    value = parse_decimal(v, path + "unit_cost", unit_cost)
    if value is not None:
        v.check(value > 0, path + "unit_cost", "must be greater than zero")


def check_payment_options(
    v: Violations, path: str, options: list[dict[str, str]], *, amount_based: bool
) -> None:
    if len(options) > MAX_PAYMENT_OPTIONS:
        v.add(path, f"must have at most {MAX_PAYMENT_OPTIONS} entries")
        return
    seen: set[str] = set()
    for i, option in enumerate(options):
        at = f"{path}[{i}]."
        option_id = option.get("id", "")
        if option_id:
            if not OPTION_ID_RE.fullmatch(option_id):
                v.add(at + "id", "must be 1-64 of [a-zA-Z0-9._-]")
            elif option_id in seen:
                v.add(at + "id", "is used by another payment option of this reward")
            seen.add(option_id)
        check_price_form(
            v,
            at,
            option.get("unit_cost", ""),
            option.get("conversion_ratio", ""),
            amount_based=amount_based,
        )
        cash, currency = option.get("cash_amount", ""), option.get("cash_currency", "")
        if cash:
            value = parse_decimal(v, at + "cash_amount", cash)
            if value is not None:
                exponent = value.as_tuple().exponent
                assert isinstance(exponent, int)
                if value <= 0:
                    v.add(at + "cash_amount", "must be greater than zero")
                elif -exponent > MAX_CASH_PLACES:
                    v.add(at + "cash_amount", f"must have at most {MAX_CASH_PLACES} places")
            v.check(
                bool(CURRENCY_RE.fullmatch(currency)),
                at + "cash_currency",
                'must be an ISO 4217 code such as "USD"',
            )
        elif currency:
            v.add(at + "cash_amount", "is required when cash_currency is set")
