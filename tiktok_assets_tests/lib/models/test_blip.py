"""BLIP captioning: a tiny random BlipForConditionalGeneration saved with save_pretrained, loaded by load_blip."""

import pytest
from PIL import Image

from tiktok_assets.lib.errors import ModelUnavailableError
from tiktok_assets.lib.models.base import MODEL_CACHE
from tiktok_assets.lib.models.blip import load_blip
from tiktok_assets_tests.lib.vision_fixtures import *


@pytest.fixture(scope="module")
def captioner(tiny_blip_dir):
    return load_blip(tiny_blip_dir, device="cpu")


def test_captions_real_frames_batched(captioner, frame_files):
    images = [frame_files[0], Image.open(frame_files[1]), str(frame_files[2])]
    captions = captioner.caption(images, max_new_tokens=6, batch_size=2)  # batches of 2 + 1
    assert len(captions) == len(images)
    assert all(isinstance(c, str) for c in captions)
    # a random model says nothing meaningful, but it does generate tokens from the real vocabulary
    assert any(c for c in captions)
    assert all(len(c.split()) <= 6 for c in captions)
    assert captioner.caption([], max_new_tokens=5) == []


def test_batching_does_not_change_captions(captioner, frame_files):
    assert captioner.caption(frame_files[:3], max_new_tokens=5, batch_size=1) == captioner.caption(
        frame_files[:3], max_new_tokens=5, batch_size=3)


def test_loaded_once(tiny_blip_dir, captioner):
    before = MODEL_CACHE.load_count("blip")
    assert load_blip(str(tiny_blip_dir), device="cpu") is captioner
    assert MODEL_CACHE.load_count("blip") == before


def test_missing_weights(tmp_path):
    with pytest.raises(ModelUnavailableError, match="tiktok-assets models pull blip-base"):
        load_blip(models_dir=tmp_path, device="cpu")
    folder = tmp_path / "blip-base"
    folder.mkdir()
    (folder / "notes.txt").write_text("x")
    with pytest.raises(ModelUnavailableError, match="no config.json"):
        load_blip(models_dir=tmp_path, device="cpu")
