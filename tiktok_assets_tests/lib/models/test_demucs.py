"""Demucs loading (demucs checkpoint layouts, weights_only) and bounded-memory two-stem separation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tiktok_assets.lib.audio.audio import load_wav
from tiktok_assets.lib.errors import ModelUnavailableError
from tiktok_assets.lib.models.base import MODEL_CACHE
from tiktok_assets.lib.models.demucs import (
    LoadedDemucs,
    Stems,
    demucs_weights,
    describe,
    load_demucs,
    separate,
)
from tiktok_assets_tests.lib.audio_fixtures import *


def test_checkpoint_folder_loads_through_loader_once(tiny_demucs: Path) -> None:
    from demucs.apply import BagOfModels

    loaded = load_demucs(tiny_demucs, "auto", name="tiny_htdemucs")
    assert isinstance(loaded.model, BagOfModels)
    assert loaded.device == "cpu" and loaded.samplerate == 44100 and "vocals" in loaded.sources
    assert loaded.max_segment_s == pytest.approx(4.0)
    before = MODEL_CACHE.load_count("demucs")
    assert load_demucs(tiny_demucs, "cpu", name="tiny_htdemucs") is loaded
    assert MODEL_CACHE.load_count("demucs") == before
    json.dumps(describe(loaded))


def test_single_checkpoint_file_and_hub_cache_layout(tiny_demucs: Path, tmp_path: Path) -> None:
    from demucs.htdemucs import HTDemucs

    (th,) = tiny_demucs.glob("*.th")
    single = load_demucs(th, "cpu")
    assert isinstance(single.model, HTDemucs)
    # A folder without yaml holding one checkpoint (e.g. models/htdemucs/<sig>-<sum>.th) loads it too.
    folder = tmp_path / "htdemucs"
    folder.mkdir()
    shutil.copy(th, folder / th.name)
    assert isinstance(load_demucs(folder, "cpu").model, HTDemucs)


def test_separates_real_clip_into_two_stems_of_input_length(
    tiny_demucs: Path, speech_music_clip, tmp_path: Path
) -> None:
    loaded = load_demucs(tiny_demucs, "cpu", name="tiny_htdemucs")
    n_in = load_wav(speech_music_clip.wav).size
    # 10 s of audio in 6 s blocks with 1 s cross-fades: two blocks, bounded memory.
    stems = separate(loaded, speech_music_clip.wav, tmp_path / "stems", segment_s=8.0, block_s=6.0)
    assert isinstance(stems, Stems) and stems.sample_rate == 16000
    vocals, rest = load_wav(stems.vocals_path), load_wav(stems.no_vocals_path)
    assert vocals.size == rest.size == n_in
    assert stems.seconds == pytest.approx(n_in / 16000, abs=1e-3)
    assert np.abs(vocals).max() > 0 and np.abs(rest).max() > 0
    assert np.all(np.isfinite(vocals)) and np.all(np.isfinite(rest))
    json.dumps(stems.to_json())


class _PassThrough(torch.nn.Module):
    """A 'separator' whose vocals are its input and the rest silence: checks the block plumbing."""

    samplerate, audio_channels, segment, sources = 44100, 2, 4.0, ["other", "vocals"]

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.zeros_like(mix), mix], dim=1)


def test_blocks_and_resampling_keep_audio_in_place(speech_music_clip, tmp_path: Path) -> None:
    loaded = LoadedDemucs(_PassThrough(), tmp_path, "cpu")
    stems = separate(loaded, speech_music_clip.wav, tmp_path / "stems", block_s=3.0, overlap_s=1.0)
    original, vocals = load_wav(speech_music_clip.wav), load_wav(stems.vocals_path)
    assert vocals.size == original.size
    assert np.corrcoef(original, vocals)[0, 1] > 0.99  # no shift or seam at the 3 s block borders
    assert (
        np.abs(load_wav(stems.no_vocals_path)).max() < 5e-3
    )  # demucs adds the mix mean back to every source
    assert not list((tmp_path / "stems").glob(".*.tmp"))  # atomic writes leave no temp files


def test_no_audio_track_gives_empty_stems(tiny_demucs: Path, no_audio_clip, tmp_path: Path) -> None:
    loaded = load_demucs(tiny_demucs, "cpu", name="tiny_htdemucs")
    stems = separate(loaded, no_audio_clip.video, tmp_path / "stems")
    assert stems.seconds == 0.0
    assert load_wav(stems.vocals_path).size == 0 and load_wav(stems.no_vocals_path).size == 0


def test_missing_or_tampered_weights_raise_model_unavailable(
    tiny_demucs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ModelUnavailableError, match="do not exist"):
        load_demucs(tmp_path / "nothing", "cpu")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(ModelUnavailableError, match="models pull htdemucs"):
        demucs_weights("htdemucs", "htdemucs", models_dir=tmp_path)
    (th,) = tiny_demucs.glob("*.th")
    bad = tmp_path / th.name
    bad.write_bytes(th.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ModelUnavailableError, match="checksum"):
        load_demucs(bad, "cpu")


def test_pickled_code_is_refused(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "evil.th"
    torch.save({"klass": shutil.rmtree, "args": [], "kwargs": {}, "state": {}}, path)
    with pytest.raises(ModelUnavailableError, match="weights_only"):
        load_demucs(path, "cpu")
