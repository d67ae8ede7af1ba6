"""Pure rules of participants: identifiers, segments, eligibility."""

import re
import unicodedata
from dataclasses import dataclass, field, replace

from rewards_service.domain.validation import Violations, check_text

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")
MOBILE_RE = re.compile(r"\+?[0-9 ()-]{3,32}", re.ASCII)
REF_KINDS = ("id", "external_id", "email", "mobile")
# The identifiers no two participants of a program share: email and mobile may be shared.
UNIQUE_KINDS = ("id", "external_id")
UPDATABLE_PATHS = frozenset({"email", "mobile", "segments"})
MAX_SEGMENTS = 100


@dataclass(frozen=True)
class ParticipantRef:
    kind: str  # one of REF_KINDS
    value: str


@dataclass
class ParticipantSpec:
    external_id: str
    email: str = ""
    mobile: str = ""
    segments: list[dict[str, str]] = field(default_factory=list)


# Identifiers are compared as people read them: NFKC folds compatibility forms (full-width
# letters, ligatures, non-breaking spaces) into one spelling, and format characters (Unicode
# category Cf: zero-width spaces and joiners, BOMs, bidi marks, soft hyphens) are dropped.
_MAX_ROUNDS = 4


def _without_format_characters(text: str) -> str:
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


def _fold(text: str) -> str:
    # Dropping a format character may let its neighbours compose, so NFKC comes after; the
    # rounds repeat until nothing changes, so a normalised value normalises to itself.
    for _ in range(_MAX_ROUNDS):
        folded = unicodedata.normalize("NFKC", _without_format_characters(text)).strip()
        if folded == text:
            break
        text = folded
    return text


def normalise_external_id(text: str) -> str:
    """NFKC, format characters removed, surrounding whitespace stripped."""
    return _fold(text)


def normalise_email(text: str) -> str:
    """As an external_id, then lower-cased: the whole address, local part included."""
    return _fold(text).lower()


def normalise_mobile(text: str) -> str:
    """NFKC, format characters and every space removed; a leading + stays."""
    return "".join(c for c in _fold(text) if not c.isspace())


NORMALISERS = {
    "external_id": normalise_external_id,
    "email": normalise_email,
    "mobile": normalise_mobile,
}


def normalise_identifier(kind: str, text: str) -> str:
    """The stored and looked-up form of an identifier; server ids (kind "id") are as given."""
    normalise = NORMALISERS.get(kind)
    return normalise(text) if normalise else text


def normalised_ref(ref: ParticipantRef) -> ParticipantRef:
    return replace(ref, value=normalise_identifier(ref.kind, ref.value))


def normalised_spec(spec: ParticipantSpec) -> ParticipantSpec:
    return replace(
        spec,
        external_id=normalise_external_id(spec.external_id),
        email=normalise_email(spec.email),
        mobile=normalise_mobile(spec.mobile),
    )


VISIBLE = "must have a visible character: it has only spaces and format characters"


def check_normalisable(v: Violations, field: str, kind: str, text: str) -> None:
    """A given identifier must keep a visible character once normalised."""
    if text and not normalise_identifier(kind, text):
        v.add(field, VISIBLE)


def refers_to(ref: ParticipantRef, participant: object) -> bool:
    """Whether `ref` names this participant (by any of its identifiers)."""
    return getattr(participant, ref.kind) == normalised_ref(ref).value


def check_ref(v: Violations, path: str, ref: ParticipantRef | None) -> None:
    if ref is None:
        v.add(path, "is required: set one of id, external_id, email or mobile")
        return
    field = f"{path}.{ref.kind}"
    if not ref.value:
        v.add(field, "is required")
        return
    check_normalisable(v, field, ref.kind, ref.value)
    check_text(v, field, ref.value, max_len=320)


def check_participant(
    v: Violations, given: ParticipantSpec, prefix: str = "participant."
) -> ParticipantSpec:
    """Checks the participant as it will be stored, and returns that (normalised) form."""
    spec = normalised_spec(given)
    emptied = {kind for kind in NORMALISERS if getattr(given, kind) and not getattr(spec, kind)}
    for kind in sorted(emptied):
        v.add(prefix + kind, VISIBLE)
    if "external_id" not in emptied:
        check_text(v, prefix + "external_id", spec.external_id, max_len=128, required=True)
    if spec.email:
        v.check(
            len(spec.email) <= 320 and bool(EMAIL_RE.fullmatch(spec.email)),
            prefix + "email",
            "must be an email address",
        )
    if spec.mobile:
        v.check(
            len(spec.mobile) <= 32
            and bool(MOBILE_RE.fullmatch(spec.mobile))
            and sum(c.isdigit() for c in spec.mobile) >= 3,
            prefix + "mobile",
            "must be a phone number: an optional leading +, then 3-32 digits, spaces and ()-",
        )
    if len(spec.segments) > MAX_SEGMENTS:
        v.add(prefix + "segments", f"must have at most {MAX_SEGMENTS} entries")
    for i, pair in enumerate(spec.segments[:MAX_SEGMENTS]):
        check_text(v, f"{prefix}segments[{i}].segment", pair["segment"], max_len=100, required=True)
        check_text(
            v, f"{prefix}segments[{i}].partition", pair["partition"], max_len=100, required=True
        )
    return spec


def is_eligible(reward_segments: list[dict[str, str]], held: list[dict[str, str]]) -> bool:
    """Empty means everyone; otherwise at least one identical {segment, partition} pair."""
    if not reward_segments:
        return True
    wanted = {(s["segment"], s["partition"]) for s in reward_segments}
    return any((s["segment"], s["partition"]) in wanted for s in held)


def check_filters(
    v: Violations, segment: str, partition: str, email: str, mobile: str
) -> dict[str, str]:
    """ListParticipants' filters, returned with email and mobile normalised as stored: no
    longer than the values they match can be, and not emptied by normalisation."""
    check_text(v, "segment", segment, max_len=100)
    check_text(v, "partition", partition, max_len=100)
    check_normalisable(v, "email", "email", email)
    check_normalisable(v, "mobile", "mobile", mobile)
    email, mobile = normalise_email(email), normalise_mobile(mobile)
    check_text(v, "email", email, max_len=320)
    check_text(v, "mobile", mobile, max_len=32)
    return {"segment": segment, "partition": partition, "email": email, "mobile": mobile}
