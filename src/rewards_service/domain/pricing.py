"""Cost and credit arithmetic in Decimal, rounded up (ceil) at the asset's scale."""

from decimal import ROUND_CEILING, Decimal

from rewards_service.domain.validation import EXACT, to_minor


def ceil_at_scale(value: Decimal, scale: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_CEILING, context=EXACT)


def unit_based_cost(unit_cost: Decimal, quantity: int, scale: int) -> int:
    """unit_cost x quantity, in minor units of the cost asset."""
    return to_minor(ceil_at_scale(EXACT.multiply(unit_cost, quantity), scale), scale)


def amount_based_cost(unit_cost: Decimal, amount: Decimal, scale: int) -> int:
    """ceil(amount x unit_cost): 1000 miles at 0.44 value per point (unit_cost 1/0.44) = 2273."""
    return to_minor(ceil_at_scale(EXACT.multiply(amount, unit_cost), scale), scale)


def points_credit(amount_per_unit: Decimal, quantity: int, scale: int) -> int:
    return to_minor(ceil_at_scale(EXACT.multiply(amount_per_unit, quantity), scale), scale)
