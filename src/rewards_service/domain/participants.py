"""Pure rules of participants: identifiers, segments, eligibility."""

import re
from dataclasses import dataclass, field

from rewards_service.domain.validation import Violations, check_text

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")
MOBILE_RE = re.compile(r"\+?[0-9 ()-]{3,32}", re.ASCII)
REF_KINDS = ("id", "external_id", "email", "mobile")
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


def refers_to(ref: ParticipantRef, participant: object) -> bool:
    """Whether `ref` names this participant (by any of its identifiers)."""
    return getattr(participant, ref.kind) == ref.value


def check_ref(v: Violations, path: str, ref: ParticipantRef | None) -> None:
    if ref is None:
        v.add(path, "is required: set one of id, external_id, email or mobile")
    else:
        check_text(v, f"{path}.{ref.kind}", ref.value, max_len=320, required=True)


def check_participant(v: Violations, spec: ParticipantSpec, prefix: str = "participant.") -> None:
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


def is_eligible(reward_segments: list[dict[str, str]], held: list[dict[str, str]]) -> bool:
    """Empty means everyone; otherwise at least one identical {segment, partition} pair."""
    if not reward_segments:
        return True
    wanted = {(s["segment"], s["partition"]) for s in reward_segments}
    return any((s["segment"], s["partition"]) in wanted for s in held)


def check_filters(v: Violations, segment: str, partition: str, email: str, mobile: str) -> None:
    """ListParticipants' filters: no longer than the values they match can be."""
    check_text(v, "segment", segment, max_len=100)
    check_text(v, "partition", partition, max_len=100)
    check_text(v, "email", email, max_len=320)
    check_text(v, "mobile", mobile, max_len=32)
