"""Which rounds of a comparison count. A round that had errors measured failures, not work,
and a round whose reference ran far below its own other rounds measured a stall of the
machine (one such round once printed a ratio of 6706): each is marked with the reason and
left out of the median."""

import statistics
from dataclasses import dataclass

# A reference below this share of its median over the rounds was stalled.
LOW_REFERENCE = 0.5


@dataclass(frozen=True)
class Round:
    ratio: float
    left_out: str | None = None  # why the round does not count


def judge(rates: list[float], references: list[float], errors: list[bool]) -> list[Round]:
    """Each round's ratio of `rates` to `references`, marked when it had errors (ours or the
    reference's) or when its reference was below LOW_REFERENCE of the references' median."""
    usual = statistics.median(references) if references else 0.0
    judged = []
    for rate, reference, failed in zip(rates, references, errors, strict=True):
        ratio = rate / reference if reference > 0 else float("inf")
        if failed:
            judged.append(Round(ratio, "errors"))
        elif reference < LOW_REFERENCE * usual or reference <= 0:
            judged.append(Round(ratio, f"reference {reference:.0f}/s, median {usual:.0f}/s"))
        else:
            judged.append(Round(ratio))
    return judged


def median_ratio(judged: list[Round]) -> float | None:
    """The median of the rounds that count; None when none does."""
    kept = [r.ratio for r in judged if r.left_out is None]
    return statistics.median(kept) if kept else None


def text(judged: list[Round]) -> str:
    """Each round's ratio, the marked ones with their reason: (0.21 0.22 [6706: errors])."""
    if len(judged) <= 1 and all(r.left_out is None for r in judged):
        return ""
    shown = [
        f"{r.ratio:.2f}" if r.left_out is None else f"[{r.ratio:.2f} left out: {r.left_out}]"
        for r in sorted(judged, key=lambda r: r.ratio)
    ]
    return " (" + " ".join(shown) + ")"
