"""CLIP wrapper: tiny random open_clip models in both on-disk layouts, loaded through load_clip."""

import numpy as np
import pytest
from PIL import Image

from tiktok_assets.lib.errors import ModelUnavailableError
from tiktok_assets.lib.models.base import MODEL_CACHE
from tiktok_assets.lib.models.clip import load_clip
from tiktok_assets_tests.lib.vision_fixtures import *


def test_hub_folder_layout_encodes_real_frames(tiny_clip_dir, frame_files):
    clip = load_clip(tiny_clip_dir, device="cpu")
    images = clip.encode_images(frame_files, batch_size=3)  # two batches: 3 + 1
    assert images.shape == (len(frame_files), 512) and images.dtype == np.float32
    assert np.allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(images[0], images[1])  # different frames, different embeddings
    texts = clip.encode_texts(["a photo of a lipstick", "a photo of a sneaker", "a photo of a sneaker"])
    assert texts.shape == (3, 512)
    assert np.allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    assert np.allclose(texts[1], texts[2]) and not np.allclose(texts[0], texts[1])


def test_pil_and_paths_give_the_same_embedding_and_batching_does_not_change_it(tiny_clip_dir, frame_files):
    clip = load_clip(tiny_clip_dir, device="cpu")
    from_paths = clip.encode_images(frame_files[:2], batch_size=1)
    from_pil = clip.encode_images([Image.open(p) for p in frame_files[:2]], batch_size=2)
    assert np.allclose(from_paths, from_pil, atol=1e-5)


def test_checkpoint_file_with_registered_architecture(tiny_clip_file, tiny_clip_dir, frame_files):
    clip = load_clip(tiny_clip_file, arch=TINY_CLIP_ARCH, device="cpu")
    same_weights = load_clip(tiny_clip_dir, device="cpu")  # both fixtures use seed 0
    assert np.allclose(clip.encode_images(frame_files[:1]), same_weights.encode_images(frame_files[:1]), atol=1e-5)
    assert clip.encode_images([]).shape == (0, 512)


def test_loaded_once_per_process(tiny_clip_dir):
    before = MODEL_CACHE.load_count("clip")
    a = load_clip(tiny_clip_dir, device="cpu")
    b = load_clip(str(tiny_clip_dir), device="cpu")
    assert a is b
    assert MODEL_CACHE.load_count("clip") - before <= 1


def test_missing_weights_name_the_model_and_the_pull_command(tmp_path):
    with pytest.raises(ModelUnavailableError, match=r"clip-vit-b-32.*tiktok-assets models pull clip-vit-b-32"):
        load_clip("org/not-here", models_dir=tmp_path, device="cpu")
    empty = tmp_path / "clip-vit-b-32"
    empty.mkdir()
    (empty / "README.md").write_text("no weights")
    with pytest.raises(ModelUnavailableError, match="no open_clip checkpoint"):
        load_clip("org/not-here", models_dir=tmp_path, device="cpu")
