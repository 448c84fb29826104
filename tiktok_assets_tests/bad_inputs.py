"""A generated corpus of bad or odd inputs, each with what the pipeline must make of it.

:func:`build_corpus` writes every case into a folder (the watched folder of a test) and returns one
:class:`BadInput` per case: the file as it is to be registered, the row statuses that are correct for
it, words its error or partial reason must contain, and facts known from how the file was built
(duration, display size after rotation, audio facts). Everything is made with FFmpeg and espeak-ng,
small and short except where size or length is the point. A case whose encoder this FFmpeg lacks is
skipped with a printed reason.

Case builders are registered in :data:`CASES` (name -> builder), so a test can list the names at
collection time and report each case on its own.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pandas as pd

from tiktok_assets.lib.samples import SPEECH_EN_SHORT, make_clip

OK_ROW = frozenset({"ok", "partial"})  # partial: model stages whose weights are not installed here
FAILED_ROW = frozenset({"failed"})
PARTIAL_ROW = frozenset({"partial"})
NOT_MEDIA = ("refused", "not a readable media file")  # a file that is not a video container
LIMIT = ("refused", "limit")
PLAYLIST = ("refused", "playlist")
DEFAULT_TIME_LIMIT_S = 30.0  # all stages of one video, seconds (its recorded stage times, summed)


# --- facts: what a column of an ok / partial row must hold -------------------------------------------


@dataclass(frozen=True)
class Near:
    value: float
    tolerance: float


@dataclass(frozen=True)
class Above:
    value: float


@dataclass(frozen=True)
class Below:
    value: float


@dataclass(frozen=True)
class OneOf:
    values: tuple[object, ...]


@dataclass(frozen=True)
class Empty:
    """The column is empty (NaN / None / NA), not 0."""


Fact = Near | Above | Below | OneOf | Empty | int | float | str | bool


def is_empty(value: object) -> bool:
    """None, NaN or pandas' NA: a cell without a value."""
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def fact_holds(actual: object, expected: Fact) -> bool:
    """``actual`` (a table cell) satisfies ``expected``."""
    if isinstance(expected, Empty):
        return is_empty(actual)
    if is_empty(actual):
        return False
    if isinstance(expected, Near):
        return abs(float(actual) - expected.value) <= expected.tolerance  # type: ignore[arg-type]
    if isinstance(expected, Above):
        return float(actual) > expected.value  # type: ignore[arg-type]
    if isinstance(expected, Below):
        return float(actual) < expected.value  # type: ignore[arg-type]
    if isinstance(expected, OneOf):
        return actual in expected.values
    if isinstance(expected, bool):
        return bool(actual) is expected
    return actual == expected


def describe_fact(expected: Fact) -> str:
    if isinstance(expected, Near):
        return f"{expected.value:g} ± {expected.tolerance:g}"
    if isinstance(expected, Above):
        return f"> {expected.value:g}"
    if isinstance(expected, Below):
        return f"< {expected.value:g}"
    if isinstance(expected, OneOf):
        return f"one of {expected.values}"
    if isinstance(expected, Empty):
        return "empty"
    return repr(expected)


@dataclass(frozen=True)
class BadInput:
    name: str  # case id, printed in the table
    path: Path  # the file as it is registered (may hold `..` components or odd characters)
    what: str  # one line: what the file is
    outcomes: frozenset[str]  # row statuses that are correct for it
    error_all: tuple[str, ...] = ()  # a failed row's error contains each of these (case-insensitive)
    error_any: tuple[str, ...] = ()  # ... and at least one of these
    reason_all: tuple[str, ...] = ()  # a partial row's partial_reason contains each of these
    facts: dict[str, Fact] = field(default_factory=dict)  # column -> truth, checked on ok / partial rows
    time_limit_s: float = DEFAULT_TIME_LIMIT_S
    same_features_as: str | None = None  # a byte copy of that case's file: the same feature values


# --- FFmpeg helpers -----------------------------------------------------------------------------------

W, H, FPS = 144, 256, 15  # the small vertical picture most cases use
X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
AAC = ["-c:a", "aac", "-b:a", "64k"]


def ffmpeg(*args: str | Path) -> None:
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.strip()[-500:]}")


@cache
def encoders() -> frozenset[str]:
    cmd = ["ffmpeg", "-hide_banner", "-encoders"]
    lines = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()
    return frozenset(line.split()[1] for line in lines if line.startswith(" ") and len(line.split()) > 1)


class MissingEncoder(Exception):
    """This FFmpeg cannot build the case."""


def need(*names: str) -> None:
    for name in names:
        if name not in encoders():
            raise MissingEncoder(f"FFmpeg has no {name} encoder")


def picture(w: int = W, h: int = H, fps: float = FPS, seconds: float = 2.0) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc2=s={w}x{h}:r={fps}:d={seconds}"]


def tone(seconds: float = 2.0, rate: int = 44100, freq: int = 300) -> list[str]:
    return ["-f", "lavfi", "-i", f"sine=f={freq}:sample_rate={rate}:d={seconds}"]


@dataclass(frozen=True)
class Corpus:
    """Where a case builder writes: ``folder`` (the watched folder), ``sources`` (media that playlists
    point at, inside it), ``outside`` (a folder outside it), and the clips derived cases start from."""

    folder: Path
    outside: Path
    sources: Path
    good: Path  # the control: 6 s, 144x256, 15 fps, H.264 + AAC with speech from 1 s
    base: Path  # 8 s, 144x256, 15 fps, a keyframe every second, a tone, moov at the start
    speech_wav: Path  # espeak-ng, 44.1 kHz mono

    def out(self, name: str) -> Path:
        return self.folder / name


GOOD_FACTS: dict[str, Fact] = {
    "duration_s": Near(6.0, 0.1), "width": W, "height": H, "has_audio": True, "video_codec": "h264",
    "audio_codec": "aac", "sample_rate": 44100, "channels": 1, "speech_seconds": Above(1.0),
}
BASE_SECONDS = 8.0
Builder = Callable[[Corpus], BadInput]
CASES: dict[str, Builder] = {}


def case(name: str) -> Callable[[Builder], Builder]:
    def register(fn: Builder) -> Builder:
        CASES[name] = fn
        return fn

    return register


def video_facts(seconds: float = 2.0, w: int = W, h: int = H, audio: bool = False,
                **extra: Fact) -> dict[str, Fact]:
    return {"duration_s": Near(seconds, 0.1), "width": w, "height": h, "has_audio": audio, **extra}


def encoded(c: Corpus, name: str, what: str, args: list[str], facts: dict[str, Fact], container: str = "mp4",
            time_limit_s: float = DEFAULT_TIME_LIMIT_S) -> BadInput:
    """A file made by ``ffmpeg args... -f container <name>.mp4`` that must give a correct row."""
    path = c.out(f"{name}.mp4")
    ffmpeg(*args, "-f", container, path)
    return BadInput(name, path, what, OK_ROW, facts=facts, time_limit_s=time_limit_s)


def refused(c: Corpus, name: str, what: str, args: list[str], error_all: tuple[str, ...]) -> BadInput:
    """A file made by ``ffmpeg args... <name>.mp4`` that must fail with ``error_all`` in its error."""
    path = c.out(f"{name}.mp4")
    ffmpeg(*args, "-f", "mp4", path)
    return BadInput(name, path, what, FAILED_ROW, error_all=error_all)


# --- the control --------------------------------------------------------------------------------------


@case("good")
def _good(c: Corpus) -> BadInput:
    return BadInput("good", c.good, "the control: a normal 6 s clip with speech", OK_ROW,
                    facts=dict(GOOD_FACTS))


# --- broken containers and streams --------------------------------------------------------------------


def _cut(c: Corpus, fraction: float) -> BadInput:
    name = f"truncated_{round(fraction * 100)}pct"
    data = c.base.read_bytes()
    path = c.out(f"{name}.mp4")
    path.write_bytes(data[: int(len(data) * fraction)])
    return BadInput(name, path, f"8 s mp4 (moov first) cut to {fraction:.0%} of its bytes", PARTIAL_ROW,
                    reason_all=("decode",),
                    facts={"duration_s": Near(BASE_SECONDS, 0.1), "width": W, "height": H,
                           "decoded_seconds": Below(min(fraction + 0.3, 0.9) * BASE_SECONDS)})


@case("truncated_10pct")
def _truncated_10(c: Corpus) -> BadInput:
    return _cut(c, 0.10)


@case("truncated_50pct")
def _truncated_50(c: Corpus) -> BadInput:
    return _cut(c, 0.50)


@case("corrupt_middle")
def _corrupt_middle(c: Corpus) -> BadInput:
    data = bytearray(c.base.read_bytes())
    rng = random.Random(7)
    for start in (len(data) // 2, len(data) * 2 // 3):  # two 4 KiB blocks of media data, bytes flipped
        for i in range(start, start + 4096):
            data[i] ^= rng.randrange(1, 256)
    path = c.out("corrupt_middle.mp4")
    path.write_bytes(bytes(data))
    return BadInput("corrupt_middle", path, "8 s mp4 with bytes flipped in two places mid-file", PARTIAL_ROW,
                    reason_all=("decode",),
                    facts={"duration_s": Near(BASE_SECONDS, 0.1), "width": W, "height": H,
                           "decoded_seconds": Above(0.75 * BASE_SECONDS), "decode_errors": Above(0)})


@case("missing_moov")
def _missing_moov(c: Corpus) -> BadInput:
    plain = c.sources / "moov_at_end.mp4"
    ffmpeg("-i", c.base, "-c", "copy", plain)  # no faststart: the moov atom is written last
    data = plain.read_bytes()
    path = c.out("missing_moov.mp4")
    path.write_bytes(data[: data.rfind(b"moov") - 4])
    return BadInput("missing_moov", path, "mp4 whose moov atom (at the end) was never written", FAILED_ROW,
                    error_any=("moov", "not a readable media file"))


@case("ftyp_only")
def _ftyp_only(c: Corpus) -> BadInput:
    path = c.out("ftyp_only.mp4")
    path.write_bytes(c.base.read_bytes()[:40])
    return BadInput("ftyp_only", path, "the first 40 bytes of an mp4", FAILED_ROW,
                    error_any=("moov", "not a readable media file", "refused", "no video stream"))


def _scale_declared_durations(data: bytearray, factor: int) -> None:
    """Multiply the durations the movie, track and media headers declare (version 0 boxes)."""
    for box, offset in ((b"mvhd", 16), (b"mdhd", 16), (b"tkhd", 20)):
        at = data.find(box)
        while at >= 0:
            if data[at + 4] == 0:  # version 0: 32-bit times
                where = at + 4 + offset
                (value,) = struct.unpack(">I", data[where: where + 4])
                struct.pack_into(">I", data, where, min(value * factor, 0xFFFFFFFF))
            at = data.find(box, at + 4)


@case("huge_declared_duration")
def _huge_duration(c: Corpus) -> BadInput:
    two_seconds = c.sources / "two_seconds.mp4"
    ffmpeg(*picture(), *tone(), *X264, *AAC, "-movflags", "+faststart", two_seconds)
    data = bytearray(two_seconds.read_bytes())
    _scale_declared_durations(data, 18_000)  # 2 s declared as 10 h
    path = c.out("huge_declared_duration.mp4")
    path.write_bytes(bytes(data))
    return BadInput("huge_declared_duration", path, "2 s of media whose headers declare 10 hours", FAILED_ROW,
                    error_all=LIMIT)


# --- not a video --------------------------------------------------------------------------------------


@case("zero_bytes")
def _zero_bytes(c: Corpus) -> BadInput:
    path = c.out("zero_bytes.mp4")
    path.write_bytes(b"")
    return BadInput("zero_bytes", path, "an empty file", FAILED_ROW, error_all=("empty file",))


@case("random_bytes")
def _random_bytes(c: Corpus) -> BadInput:
    path = c.out("random_bytes.mp4")
    path.write_bytes(random.Random(11).randbytes(200_000))
    return BadInput("random_bytes", path, "200 kB of random bytes", FAILED_ROW, error_any=NOT_MEDIA)


@case("text_file")
def _text_file(c: Corpus) -> BadInput:
    path = c.out("text_file.mp4")
    path.write_text("These are my notes for the shoot.\nNot a video.\n" * 50)
    return BadInput("text_file", path, "a text file named .mp4", FAILED_ROW, error_any=NOT_MEDIA)


@case("png_renamed")
def _png(c: Corpus) -> BadInput:
    path = c.out("png_renamed.mp4")
    ffmpeg(*picture(seconds=0.1), "-frames:v", "1", "-c:v", "png", "-f", "image2", path)
    return BadInput("png_renamed", path, "a PNG image renamed .mp4", FAILED_ROW, error_any=NOT_MEDIA)


@case("gif_renamed")
def _gif(c: Corpus) -> BadInput:
    path = c.out("gif_renamed.mp4")
    ffmpeg(*picture(fps=5, seconds=1), "-f", "gif", path)
    return BadInput("gif_renamed", path, "an animated GIF renamed .mp4", FAILED_ROW, error_any=NOT_MEDIA)


@case("hls_playlist")
def _hls(c: Corpus) -> BadInput:
    hls = c.sources / "hls"
    hls.mkdir(exist_ok=True)
    ffmpeg("-i", c.base, "-c", "copy", "-f", "hls", "-hls_time", "2", "-hls_list_size", "0",
           "-hls_segment_filename", hls / "seg%02d.ts", hls / "list.m3u8")
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:3"]
    for segment in sorted(hls.glob("seg*.ts")):
        lines += ["#EXTINF:2.0,", str(segment.absolute())]  # absolute paths of other local files
    path = c.out("hls_playlist.mp4")
    path.write_text("\n".join([*lines, "#EXT-X-ENDLIST", ""]))
    return BadInput("hls_playlist", path, "an HLS playlist named .mp4 that points at local .ts files",
                    FAILED_ROW, error_all=PLAYLIST)


@case("ffconcat")
def _ffconcat(c: Corpus) -> BadInput:
    path = c.out("ffconcat.mp4")
    relative = c.base.relative_to(c.folder).as_posix()  # a "safe" relative name: FFmpeg would follow it
    path.write_text(f"ffconcat version 1.0\nfile '{relative}'\nfile '{relative}'\n")
    return BadInput("ffconcat", path, "an ffconcat list named .mp4 that points at a local mp4", FAILED_ROW,
                    error_all=PLAYLIST)


@case("dash_manifest")
def _dash(c: Corpus) -> BadInput:
    path = c.out("dash_manifest.mp4")  # its segments are written next to it (.m4s: not videos)
    ffmpeg("-i", c.base, "-c", "copy", "-f", "dash", "-seg_duration", "2",
           "-init_seg_name", "dash-init-$RepresentationID$.m4s",
           "-media_seg_name", "dash-chunk-$RepresentationID$-$Number%05d$.m4s", path)
    return BadInput("dash_manifest", path, "a DASH manifest named .mp4 with its local segments", FAILED_ROW,
                    error_all=PLAYLIST)


# --- which streams there are --------------------------------------------------------------------------


@case("audio_only")
def _audio_only(c: Corpus) -> BadInput:
    path = c.out("audio_only.mp4")
    ffmpeg(*tone(), *AAC, "-f", "mp4", path)
    return BadInput("audio_only", path, "an mp4 with an AAC track and no video", FAILED_ROW,
                    error_all=("audio-only",))


@case("audio_with_cover_art")
def _cover_art(c: Corpus) -> BadInput:
    cover = c.sources / "cover.png"
    ffmpeg(*picture(seconds=0.1), "-frames:v", "1", "-f", "image2", cover)
    path = c.out("audio_with_cover_art.mp4")
    ffmpeg(*tone(), "-i", cover, "-map", "0:a", "-map", "1:v", *AAC, "-c:v", "png",
           "-disposition:v:0", "attached_pic", "-f", "mp4", path)
    return BadInput("audio_with_cover_art", path, "audio with an attached cover picture, no video",
                    FAILED_ROW, error_all=("audio-only",))


@case("video_only")
def _video_only(c: Corpus) -> BadInput:
    return encoded(c, "video_only", "H.264, no audio track", [*picture(), *X264],
                   video_facts(audio=False, speech_ratio=Empty(), music_ratio=Empty(), silence_ratio=Empty(),
                               speech_seconds=Empty(), audio_rms_dbfs=Empty()))


@case("two_audio_tracks")
def _two_tracks(c: Corpus) -> BadInput:
    silence = ["-f", "lavfi", "-i", "anullsrc=r=44100:cl=mono:d=4"]
    return encoded(c, "two_audio_tracks", "first audio track silent, the second has speech",
                   [*picture(seconds=4), *silence, "-i", c.speech_wav,
                    "-map", "0:v", "-map", "1:a", "-map", "2:a", *X264, *AAC, "-t", "4"],
                   video_facts(4.0, audio=True, audio_track=1, audio_track_count=2,
                               speech_seconds=Above(0.5)))


@case("silent_track")
def _silent(c: Corpus) -> BadInput:
    silence = ["-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo:d=2"]
    return encoded(c, "silent_track", "an audio track of digital silence",
                   [*picture(), *silence, *X264, *AAC, "-t", "2"],
                   video_facts(audio=True, speech_segment_count=0, silence_ratio=Near(1.0, 0.05)))


@case("clipped_audio")
def _clipped(c: Corpus) -> BadInput:
    return encoded(c, "clipped_audio", "speech amplified by 30 dB: hard clipped",
                   [*picture(seconds=4), "-i", c.speech_wav, "-af", "volume=30dB,apad", *X264, "-c:a", "aac",
                    "-t", "4"],
                   video_facts(4.0, audio=True, speech_seconds=Above(0.5)))


@case("audio_6ch")
def _six_channels(c: Corpus) -> BadInput:
    upmix = "pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0"
    return encoded(c, "audio_6ch", "5.1 AAC audio",
                   [*picture(), *tone(rate=48000), "-af", upmix, *X264, *AAC],
                   video_facts(audio=True, channels=6, sample_rate=48000))


@case("audio_8khz")
def _8khz(c: Corpus) -> BadInput:
    return encoded(c, "audio_8khz", "8 kHz mono AAC", [*picture(), *tone(rate=8000), *X264, "-c:a", "aac"],
                   video_facts(audio=True, sample_rate=8000))


@case("audio_192khz")
def _192khz(c: Corpus) -> BadInput:
    return encoded(c, "audio_192khz", "192 kHz 16-bit PCM (a MOV container named .mp4)",
                   [*picture(), *tone(rate=192000), *X264, "-c:a", "pcm_s16le"],
                   video_facts(audio=True, sample_rate=192000, audio_codec="pcm_s16le"), container="mov")


# --- length, size, rate -------------------------------------------------------------------------------


@case("one_frame")
def _one_frame(c: Corpus) -> BadInput:
    return encoded(c, "one_frame", "a single H.264 frame", [*picture(seconds=1), "-frames:v", "1", *X264],
                   video_facts(1 / FPS, frame_count=1))


@case("short_0_2s")
def _short(c: Corpus) -> BadInput:
    return encoded(c, "short_0_2s", "0.2 s with audio", [*picture(seconds=0.2), *tone(0.2), *X264, *AAC],
                   video_facts(0.2, audio=True))


@case("long_10min")
def _long(c: Corpus) -> BadInput:
    return encoded(c, "long_10min", "10 minutes: 64x112 at 5 fps, an 8 kHz tone",
                   [*picture(64, 112, 5, 600), *tone(600, 8000, 200), *X264, "-g", "50",
                    "-c:a", "aac", "-b:a", "16k"],
                   video_facts(600.0, 64, 112, audio=True), time_limit_s=150.0)


@case("uhd_4k")
def _4k(c: Corpus) -> BadInput:
    return encoded(c, "uhd_4k", "2160x3840, 1 s at 5 fps", [*picture(2160, 3840, 5, 1), *X264],
                   video_facts(1.0, 2160, 3840), time_limit_s=60.0)


@case("uhd_8k")
def _8k(c: Corpus) -> BadInput:
    return encoded(c, "uhd_8k", "4320x7680, 1 s at 2 fps", [*picture(4320, 7680, 2, 1), *X264],
                   video_facts(1.0, 4320, 7680), time_limit_s=90.0)


@case("too_wide_9000")
def _too_wide(c: Corpus) -> BadInput:
    return refused(c, "too_wide_9000", "9000x16: the longer side over the 8192 limit",
                   ["-f", "lavfi", "-i", "color=c=blue:s=9000x16:r=5:d=1", *X264], LIMIT)


@case("tiny_1x1")
def _tiny(c: Corpus) -> BadInput:
    return encoded(c, "tiny_1x1", "1x1 pixel (H.264 4:4:4)",
                   [*picture(2, 2, FPS, 1), "-vf", "scale=1:1", "-c:v", "libx264", "-pix_fmt", "yuv444p"],
                   video_facts(1.0, 1, 1))


@case("odd_4097x3")
def _odd(c: Corpus) -> BadInput:
    return encoded(c, "odd_4097x3", "4097x3 pixels (H.264 4:4:4)",
                   [*picture(4098, 4, 5, 1), "-vf", "scale=4097:3", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv444p"],
                   video_facts(1.0, 4097, 3))


def _rotated(c: Corpus, degrees: int) -> BadInput:
    name = f"rotate_{degrees}"
    path = c.out(f"{name}.mp4")
    ffmpeg("-i", c.good, "-c", "copy", "-metadata:s:v:0", f"rotate={degrees}", "-f", "mp4", path)
    w, h = (H, W) if degrees in (90, 270) else (W, H)
    # FFmpeg's `rotate` tag and its display-matrix angle have turned opposite ways across versions:
    # pin the axis (and the display size), not the sign.
    rotation: Fact = 180 if degrees == 180 else OneOf((90, 270))
    return BadInput(name, path, f"the control with a {degrees} degree display rotation", OK_ROW,
                    facts={**GOOD_FACTS, "width": w, "height": h, "rotation": rotation})


@case("rotate_90")
def _rotate_90(c: Corpus) -> BadInput:
    return _rotated(c, 90)


@case("rotate_180")
def _rotate_180(c: Corpus) -> BadInput:
    return _rotated(c, 180)


@case("rotate_270")
def _rotate_270(c: Corpus) -> BadInput:
    return _rotated(c, 270)


@case("vfr")
def _vfr(c: Corpus) -> BadInput:
    # from 30 fps keep the first 5 frames of every second and every 3rd frame: bursts and gaps
    keep = "select='lt(mod(n\\,30)\\,5)+eq(mod(n\\,3)\\,0)'"
    frames = sum(1 for n in range(120) if n % 30 < 5 or n % 3 == 0)
    return encoded(c, "vfr", "variable frame rate: bursts and gaps",
                   [*picture(fps=30, seconds=4), "-vf", keep, "-fps_mode", "vfr", *X264],
                   video_facts(3.93, frame_count=frames, variable_frame_rate=True))


@case("fps_120")
def _fps_120(c: Corpus) -> BadInput:
    return encoded(c, "fps_120", "120 fps", [*picture(fps=120), *X264],
                   video_facts(frame_count=240, nominal_frame_rate=Near(120.0, 0.5)))


@case("fps_300")
def _fps_300(c: Corpus) -> BadInput:
    return refused(c, "fps_300", "300 fps: over the 240 fps limit",
                   [*picture(fps=300, seconds=1), *X264], LIMIT)


# --- codecs and pixel formats -------------------------------------------------------------------------


@case("hevc")
def _hevc(c: Corpus) -> BadInput:
    need("libx265")
    x265 = ["-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hvc1", "-x265-params", "log-level=error"]
    return encoded(c, "hevc", "HEVC (hvc1)", [*picture(), *x265], video_facts(video_codec="hevc"))


VP9 = ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"]


@case("vp9")
def _vp9(c: Corpus) -> BadInput:
    need("libvpx-vp9")
    return encoded(c, "vp9", "VP9 in mp4", [*picture(), *VP9], video_facts(video_codec="vp9"))


@case("av1")
def _av1(c: Corpus) -> BadInput:
    for encoder, options in (("libsvtav1", ["-preset", "12"]), ("libaom-av1", ["-cpu-used", "8"]),
                             ("librav1e", ["-speed", "10"])):
        if encoder in encoders():
            return encoded(c, "av1", f"AV1 ({encoder})", [*picture(), "-c:v", encoder, *options],
                           video_facts(video_codec="av1"))
    raise MissingEncoder("FFmpeg has no AV1 encoder (libsvtav1, libaom-av1, librav1e)")


@case("mpeg2")
def _mpeg2(c: Corpus) -> BadInput:
    need("mpeg2video")
    return encoded(c, "mpeg2", "MPEG-2 video", [*picture(), "-c:v", "mpeg2video"],
                   video_facts(video_codec="mpeg2video"))


@case("mjpeg")
def _mjpeg(c: Corpus) -> BadInput:
    need("mjpeg")
    return encoded(c, "mjpeg", "Motion JPEG", [*picture(), "-c:v", "mjpeg", "-q:v", "5"],
                   video_facts(video_codec="mjpeg"))


@case("webm_named_mp4")
def _webm(c: Corpus) -> BadInput:
    need("libvpx-vp9", "libopus")
    return encoded(c, "webm_named_mp4", "a WebM (VP9 + Opus) named .mp4",
                   [*picture(), *tone(rate=48000), *VP9, "-c:a", "libopus"],
                   video_facts(audio=True, video_codec="vp9", audio_codec="opus"), container="webm")


@case("bit10")
def _bit10(c: Corpus) -> BadInput:
    return encoded(c, "bit10", "H.264 High 10 (yuv420p10le)",
                   [*picture(), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le"],
                   video_facts(pixel_format="yuv420p10le"))


@case("grayscale")
def _grayscale(c: Corpus) -> BadInput:
    return encoded(c, "grayscale", "grayscale H.264",
                   [*picture(), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "gray"],
                   video_facts(pixel_format=OneOf(("gray", "yuvj420p", "yuv420p"))))


# --- names and paths ----------------------------------------------------------------------------------


def _copy_of_good(name: str, path: Path, what: str) -> BadInput:
    return BadInput(name, path, what, OK_ROW, facts=dict(GOOD_FACTS), same_features_as="good")


def _named(c: Corpus, name: str, file_name: str, what: str) -> BadInput:
    path = c.out(file_name)
    shutil.copy(c.good, path)
    return _copy_of_good(name, path, what)


@case("name_dotdot")
def _name_dotdot(c: Corpus) -> BadInput:
    return _named(c, "name_dotdot", "..%2f..%2fescape.mp4", "the control named '..%2f..%2fescape.mp4'")


@case("name_unicode")
def _name_unicode(c: Corpus) -> BadInput:
    return _named(c, "name_unicode", "crème brûlée 🎬 日本.mp4", "the control with accents, an emoji and CJK")


@case("name_newline")
def _name_newline(c: Corpus) -> BadInput:
    return _named(c, "name_newline", "new\nline.mp4", "the control with a newline in its name")


@case("name_leading_dash")
def _name_leading_dash(c: Corpus) -> BadInput:
    return _named(c, "name_leading_dash", "-i -y.mp4", "the control named '-i -y.mp4' (reads like options)")


@case("path_dotdot_inside")
def _path_dotdot_inside(c: Corpus) -> BadInput:
    (c.folder / "sub").mkdir(exist_ok=True)
    shutil.copy(c.good, c.out("dotdot_inside.mp4"))
    path = c.folder / "sub" / ".." / "dotdot_inside.mp4"  # registered with the `..` left in
    return _copy_of_good("path_dotdot_inside", path, "the control registered as sub/../dotdot_inside.mp4")


@case("path_dotdot_outside")
def _path_dotdot_outside(c: Corpus) -> BadInput:
    target = c.outside / "dotdot_outside.mp4"
    shutil.copy(c.good, target)
    path = c.folder / os.path.relpath(target, c.folder)  # <watched>/../../outside/dotdot_outside.mp4
    return _copy_of_good("path_dotdot_outside", path,
                         "a regular file outside the watched folder, registered through <watched>/..")


# --- building -----------------------------------------------------------------------------------------


def _speech_wav(target: Path) -> None:
    raw = target.with_name("speech_raw.wav")
    cmd = ["espeak-ng", "-v", "en-us", "-w", str(raw), SPEECH_EN_SHORT]
    subprocess.run(cmd, check=True, capture_output=True)
    ffmpeg("-i", raw, "-ac", "1", "-ar", "44100", target)


def build_corpus(folder: Path, outside: Path, names: list[str] | None = None) -> list[BadInput]:
    """Write every case (or those in ``names``) into ``folder``; ``outside`` is a folder outside it, for
    the case registered through ``..``. Cases this FFmpeg cannot build are skipped with a printed reason."""
    folder.mkdir(parents=True, exist_ok=True)
    outside.mkdir(parents=True, exist_ok=True)
    sources = folder / "sources"
    sources.mkdir(exist_ok=True)
    good = folder / "good.mp4"
    make_clip(good, width=W, height=H, fps=FPS, duration=6.0, speech_text=SPEECH_EN_SHORT, speech_delay=1.0)
    base = sources / "base.mp4"
    ffmpeg(*picture(seconds=BASE_SECONDS), *tone(BASE_SECONDS), *X264, "-g", str(FPS), *AAC,
           "-movflags", "+faststart", base)
    speech = sources / "speech.wav"
    _speech_wav(speech)
    corpus = Corpus(folder, outside, sources, good, base, speech)
    cases = []
    for name, build in CASES.items():
        if names is not None and name not in names:
            continue
        try:
            cases.append(build(corpus))
        except MissingEncoder as exc:
            print(f"bad-input corpus: skipped {name}: {exc}")
    return cases
