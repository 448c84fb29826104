"""A clip with captions drawn by ffmpeg (a real system font), for the OCR tests of lib/ and defs/."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import jiwer
import pytest

from tiktok_assets_tests.conftest import ffmpeg

# (text, first second, last second): drawn at the same place, over a moving gradient, on a 9 s clip
CAPTIONS = [("NEW WIRELESS HEADPHONES", 0, 3), ("50% OFF TODAY ONLY", 4, 7)]
CLIP_SECONDS = 9
BACKGROUND_SEED = 7  # the gradient's colours (random by default)


def font_file() -> str:
    """DejaVu Sans Bold, or the system font fontconfig gives instead."""
    if shutil.which("fc-match") is None:
        pytest.skip("fc-match (fontconfig) not found: apt-get install fontconfig fonts-dejavu-core")
    return subprocess.run(["fc-match", "-f", "%{file}", "DejaVuSans:bold"], check=True, capture_output=True,
                          text=True).stdout


def caption_clip(target: Path, captions: list[tuple[str, int, int]] = CAPTIONS, seconds: int = CLIP_SECONDS) -> Path:
    """720x1280, 10 fps, a moving gradient: each caption white on a half-transparent box from y = 0.75 h."""
    font = font_file()
    drawn = ",".join(
        f"drawtext=fontfile={font}:expansion=none:text='{text}':fontsize=40:fontcolor=white:box=1:boxborderw=12:"
        f"boxcolor=black@0.6:x=(w-tw)/2:y=h*0.75:enable='between(t,{start},{end})'"
        for text, start, end in captions
    ) or "null"
    ffmpeg("-f", "lavfi", "-i", f"gradients=s=720x1280:r=10:d={seconds}:speed=0.5:n=3:seed={BACKGROUND_SEED}",
           "-vf", drawn, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(target))
    return target


def cer(truth: str, read: str) -> float:
    """Character error rate (edit distance / length of the truth) of the text without spaces: PP-OCRv4's
    recogniser often drops the space between two Latin words (`50%OFF`), which these tests do not count."""
    return jiwer.cer("".join(truth.split()), "".join(read.split()))
