"""Did a decode deliver what the container declares? One rule for the video and the audio track."""

from __future__ import annotations

# A decode may fall short of the declared duration by this much (container rounding, a last frame's
# duration, priming samples) before it counts as incomplete.
TOLERANCE_S = 0.5
TOLERANCE_RATIO = 0.05


def decode_warning(what: str, decoded_s: float, declared_s: float | None, errors: int) -> str | None:
    """``None`` when ``what`` ("video", "audio") decoded in full and cleanly, else why it did not, e.g.
    "decode: video 2.9 s of 6.0 s decoded, 5 decoder errors"."""
    problems = []
    if declared_s and declared_s - decoded_s > max(TOLERANCE_S, TOLERANCE_RATIO * declared_s):
        problems.append(f"{what} {decoded_s:.1f} s of {declared_s:.1f} s decoded")
    if errors:
        problems.append(f"{errors} {what} decoder error{'s' if errors != 1 else ''}")
    return f"decode: {', '.join(problems)}" if problems else None
