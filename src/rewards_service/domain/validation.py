"""Field checks shared by every request. Collect all violations, then raise once."""

import re
import unicodedata
from decimal import Context, Decimal, InvalidOperation

from rewards_service.domain.errors import FieldViolation, InvalidArgument

REQUEST_ID_RE = re.compile(r"[\x21-\x7e]{1,128}")
ACTION_CODE_RE = re.compile(r"[a-zA-Z0-9._-]{1,64}")
# Control characters and lone surrogates (which no store can hold as text).
_CONTROL = frozenset({"Cc", "Cs"})
# Plain ASCII decimal notation only: no exponents, NaN, infinities or other scripts' digits.
# Patterns are used with fullmatch, so a trailing newline does not slip through.
DECIMAL_RE = re.compile(r"-?\d{1,20}(\.\d{1,18})?", re.ASCII)
MAX_MAP_ENTRIES = 50
MESSAGE_FIELDS = 20
MAX_MAP_KEY = 64
MAX_MAP_VALUE = 1024
# Balances and amounts are stored as integer minor units in a signed 64-bit column.
MAX_MINOR_UNITS = 10**18
# Inputs have up to 20 integer and 18 decimal digits: products need more than the default 28.
EXACT = Context(prec=100)


class Violations:
    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.items.append(FieldViolation(field, description))

    def check(self, ok: bool, field: str, description: str) -> bool:
        if not ok:
            self.add(field, description)
        return ok

    def __bool__(self) -> bool:
        return bool(self.items)

    def error(self) -> InvalidArgument:
        # Name the fields (as many as BadRequest lists), not an unbounded message.
        fields = ", ".join(v.field for v in self.items[:MESSAGE_FIELDS])
        if len(self.items) > MESSAGE_FIELDS:
            fields += f" and {len(self.items) - MESSAGE_FIELDS} more"
        return InvalidArgument(
            f"The request has invalid fields: {fields}.", violations=tuple(self.items)
        )

    def raise_if_any(self) -> None:
        if self.items:
            raise self.error()


def check_text(
    v: Violations, field: str, value: str, *, max_len: int, required: bool = False
) -> None:
    if required and not value.strip():
        v.add(field, "is required")
    elif len(value) > max_len:
        v.add(field, f"must be at most {max_len} characters")


def check_name(v: Violations, field: str, value: str) -> None:
    check_text(v, field, value, max_len=255, required=True)


def check_request_id(v: Violations, field: str, value: str, *, required: bool = False) -> None:
    if not value:
        if required:
            v.add(field, "is required")
        return
    v.check(bool(REQUEST_ID_RE.fullmatch(value)), field, "must be 1-128 printable ASCII characters")


def one_of(enum, values=None) -> str:
    """A refusal naming the accepted values of a proto enum as they are sent on the wire
    (REWARD_TYPE_POINTS, not POINTS); all but UNSPECIFIED unless `values` says which."""
    if values is None:
        values = [x for x in enum.values() if not enum.Name(x).endswith("_UNSPECIFIED")]
    return "must be one of " + ", ".join(enum.Name(x) for x in values)


def check_label(
    v: Violations, field: str, value: str, *, max_len: int, required: bool = False
) -> None:
    """Text that names something (a status, a client reference): any characters but
    control characters, which would split it across lines wherever it is shown."""
    found = len(v.items)
    check_text(v, field, value, max_len=max_len, required=required)
    if len(v.items) == found and any(unicodedata.category(c) in _CONTROL for c in value):
        v.add(field, "must not contain control characters")


def check_client_reference(v: Violations, field: str, value: str) -> None:
    """GrantCustomReward's client_reference (Ownli): any text of 1-128 characters without
    control characters, e.g. "order 1". IssueReward's request_id stays printable ASCII."""
    check_label(v, field, value, max_len=128, required=True)


def check_action_code(v: Violations, field: str, value: str) -> None:
    v.check(bool(ACTION_CODE_RE.fullmatch(value)), field, "must be 1-64 of [a-zA-Z0-9._-]")


def check_string_map(v: Violations, field: str, values: dict[str, str]) -> None:
    if len(values) > MAX_MAP_ENTRIES:
        v.add(field, f"must have at most {MAX_MAP_ENTRIES} entries")
        return
    for key, value in values.items():
        if not key or len(key) > MAX_MAP_KEY:
            v.add(f"{field}[{key[:MAX_MAP_KEY]}]", f"keys must be 1-{MAX_MAP_KEY} characters")
        elif len(value) > MAX_MAP_VALUE:
            v.add(f"{field}[{key}]", f"values must be at most {MAX_MAP_VALUE} characters")


def parse_decimal(v: Violations, field: str, text: str, *, required: bool = True) -> Decimal | None:
    """A plain decimal string, e.g. "12.50"; None (with a violation) when it is not one."""
    if not text:
        if required:
            v.add(field, "is required")
        return None
    if not DECIMAL_RE.fullmatch(text):
        v.add(field, 'must be a plain decimal string such as "12.50"')
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern already excludes these
        v.add(field, "must be a decimal number")
        return None


def parse_amount(
    v: Violations,
    field: str,
    text: str,
    *,
    scale: int,
    required: bool = True,
    allow_zero: bool = False,
    allow_negative: bool = False,
) -> Decimal | None:
    """A decimal at an asset's scale: no more places than the scale, within the stored range."""
    value = parse_decimal(v, field, text, required=required)
    if value is None:
        return None
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > scale:
        v.add(field, f"must have at most {scale} decimal places")
        return None
    if value < 0 and not allow_negative:
        v.add(field, "must not be negative")
        return None
    if value == 0 and not allow_zero:
        v.add(field, "must not be zero" if allow_negative else "must be greater than zero")
        return None
    if abs(to_minor(value, scale)) >= MAX_MINOR_UNITS:
        v.add(field, "is too large")
        return None
    return value


def to_minor(value: Decimal, scale: int) -> int:
    return int(value.scaleb(scale, context=EXACT))


def from_minor(units: int, scale: int) -> Decimal:
    return Decimal(units).scaleb(-scale, context=EXACT)


def format_amount(units: int, scale: int) -> str:
    """Integer minor units as a decimal string at the asset's scale, e.g. 100050 -> "1000.50"."""
    return f"{from_minor(units, scale):.{scale}f}"


# An operator-chosen API key (REWARDS_BOOTSTRAP_API_KEY) is an admin key: it must be as hard
# to guess as the ones the service makes (43 random URL-safe characters).
MIN_KEY_CHARS = 32
MIN_KEY_DISTINCT_CHARS = 12


def weak_key_reason(key: str) -> str | None:
    """Why `key` is too weak to be an API key, or None. Never says what the key is."""
    if len(key) < MIN_KEY_CHARS:
        return f"it must be at least {MIN_KEY_CHARS} characters long"
    if not (key.isascii() and key.isprintable()) or any(c.isspace() for c in key):
        return "it must be printable ASCII without spaces"
    if len(set(key)) < MIN_KEY_DISTINCT_CHARS:
        return f"it must use at least {MIN_KEY_DISTINCT_CHARS} different characters"
    return None
