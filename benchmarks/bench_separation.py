"""Separation speed: Spleeter 2-stems (the cpu preset's separator) against an htdemucs-sized Demucs
(the gpu preset's) in the same run, on the same audio, through the same ``separate()`` the audio_stems
asset calls (FFmpeg decode, model, 16 kHz mono stems written).

    .venv/bin/python benchmarks/bench_separation.py [--seconds 60] [--repeats 3] [--threads 2] [--wav MIX]

Audio: espeak-ng speech over a generated band loop (kick, hi-hat, bass, chords) at 0 dB, 16 kHz mono
(what audio_wav is). Spleeter: the real weights in models/spleeter-2stems when pulled, else random
weights of the same network (the same work: the output is not looked at). Demucs: random weights in
htdemucs' shape (HTDemucs, 4 sources, dconv_mode 3, 512 bottom channels, 7.8 s segments: 42.0 M
parameters, as the released 955717e8), so no download is needed. Runs alternate between the two and
report medians.

Prints, per backend: speed (audio seconds per processing second, "x real time": higher is faster) and
its inverse, the real-time factor (processing / audio: lower is faster), and Demucs / Spleeter time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from tiktok_assets.lib.audio.audio import load_wav, write_wav
from tiktok_assets.lib.models import demucs, spleeter
from tiktok_assets.lib.samples import SPEECH_EN, SPEECH_EN_SHORT
from tiktok_assets_tests.lib.audio_fixtures import band_music, espeak_wav

ROOT = Path(__file__).parents[1]


def make_audio(folder: Path, seconds: float) -> Path:
    """``seconds`` of espeak speech (with pauses) over generated music at 0 dB, 16 kHz mono WAV."""
    rate = 16_000
    parts, total = [], 0
    for i in range(1000):
        speech = load_wav(espeak_wav([SPEECH_EN, SPEECH_EN_SHORT][i % 2], folder / f"speech{i % 2}.wav"))
        parts += [speech, np.zeros(rate // 2, np.float32)]
        total += speech.size + rate // 2
        if total >= seconds * rate:
            break
    speech = np.concatenate(parts)[: round(seconds * rate)]
    music = band_music(seconds, rate)[: speech.size]
    music *= np.sqrt(np.mean(speech**2) / np.mean(music**2))
    mix = speech + music
    path = folder / "mix.wav"
    write_wav(path, 0.9 * mix / np.abs(mix).max())
    return path


def load_spleeter_for_bench(models_dir: Path) -> tuple[spleeter.LoadedSpleeter, str]:
    folder = models_dir / "spleeter-2stems"
    if spleeter.is_spleeter_folder(folder):
        return spleeter.load_spleeter(folder, "cpu"), f"real weights ({folder})"
    import torch

    torch.manual_seed(0)
    nets = {
        stem: spleeter.build_unet().eval().to(memory_format=torch.channels_last) for stem in spleeter.STEMS
    }
    return spleeter.LoadedSpleeter(nets, folder, "cpu"), "random weights (models/spleeter-2stems not pulled)"


def htdemucs_sized() -> demucs.LoadedDemucs:
    import torch
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(0)
    model = HTDemucs(
        sources=["drums", "bass", "other", "vocals"],
        dconv_mode=3,
        bottom_channels=512,
        segment=Fraction(39, 5),
    )
    return demucs.LoadedDemucs(model.eval(), Path("random-htdemucs"), "cpu")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument(
        "--wav", type=Path, help="this 16 kHz mono WAV instead of generating one (no espeak-ng)"
    )
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    models_dir = Path(os.environ.get("TIKTOK_ASSETS_MODELS_DIR") or ROOT / "models")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        wav = args.wav or make_audio(folder, args.seconds)
        seconds = load_wav(wav).size / 16_000
        started = time.perf_counter()
        spl, spl_weights = load_spleeter_for_bench(models_dir)
        spl_load = time.perf_counter() - started
        started = time.perf_counter()
        dmc = htdemucs_sized()
        dmc_load = time.perf_counter() - started
        runs = {
            "spleeter-2stems": lambda audio, out: spleeter.separate(spl, audio, out),
            "htdemucs-sized (random)": lambda audio, out: demucs.separate(dmc, audio, out),
        }
        print(
            f"audio: {seconds:.1f} s; torch threads {torch.get_num_threads()} of {os.cpu_count()} CPUs; "
            f"load average {os.getloadavg()[0]:.2f}"
        )
        print(
            f"spleeter: {spl_weights}, loaded in {spl_load:.2f} s; demucs: 42.0 M random parameters, built in "
            f"{dmc_load:.2f} s"
        )
        for run in runs.values():  # the first calls set up oneDNN's kernels: not timed
            run(wav, folder / "warmup")
        times: dict[str, list[float]] = {name: [] for name in runs}
        for i in range(args.repeats):
            for name, run in runs.items():
                started = time.perf_counter()
                run(wav, folder / f"{name.split()[0]}-{i}")
                times[name].append(time.perf_counter() - started)
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        print("| separator | median time | x real time | real-time factor |")
        print("| --- | --- | --- | --- |")
        for name, values in times.items():
            median = statistics.median(values)
            print(f"| {name} | {median:.2f} s | {seconds / median:.1f}x | {median / seconds:.3f} |")
        ratio = statistics.median(times["htdemucs-sized (random)"]) / statistics.median(
            times["spleeter-2stems"]
        )
        print(f"Demucs / Spleeter time: {ratio:.1f}x")


if __name__ == "__main__":
    main()
