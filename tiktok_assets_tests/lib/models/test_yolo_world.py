"""YOLO-World: a random WorldModel saved as an ultralytics .pt, prompts set offline from a tiny CLIP."""

import copy
import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from tiktok_assets.lib.errors import ModelUnavailableError
from tiktok_assets.lib.models.base import MODEL_CACHE
from tiktok_assets.lib.models.clip import load_clip
from tiktok_assets.lib.models.yolo_world import (
    Detection,
    load_yolo_world,
    load_yolo_world_model,
    set_offline_classes,
)
from tiktok_assets.lib.vision.vocabulary import load_vocabulary
from tiktok_assets_tests.lib.vision_fixtures import *

CLASSES = ["lipstick", "sneaker", "handbag", "person"]
IMGSZ = 320  # small input keeps the random 's' model fast on CPU; the structure is what is tested


@pytest.fixture(scope="module")
def clip(tiny_clip_dir):
    return load_clip(tiny_clip_dir, device="cpu")


@pytest.fixture(scope="module")
def detector(clip, tiny_yolo_world_pt):
    return load_yolo_world(clip, CLASSES, product_classes=CLASSES[:3], model=tiny_yolo_world_pt, device="cpu",
                           imgsz=IMGSZ)


def test_prompts_are_set_offline_from_clip(detector, clip):
    world = detector.yolo.model
    expected = clip.text_features(CLASSES)
    assert world.txt_feats.shape == (1, len(CLASSES), 512)
    assert torch.allclose(world.txt_feats[0], expected)
    assert torch.allclose(world.txt_feats.norm(dim=-1), torch.ones(1, len(CLASSES)), atol=1e-5)
    assert world.model[-1].nc == len(CLASSES)
    assert list(world.names) == CLASSES
    assert "clip" not in sys.modules  # the `clip` package was never imported (nor pip-installed)


def test_same_state_as_ultralytics_set_classes(clip, tiny_yolo_world_pt, frame_files):
    """ultralytics' own set_classes, with its CLIP text encoder swapped for ours, gives the same model."""
    ours = load_yolo_world_model(tiny_yolo_world_pt, "cpu")
    theirs = copy.deepcopy(ours)
    set_offline_classes(ours, CLASSES, clip.text_features(CLASSES))
    theirs.model.get_text_pe = lambda text, batch=80, cache_clip_model=False: clip.text_features(text).reshape(
        -1, len(text), 512)
    theirs.set_classes(CLASSES)
    assert torch.equal(ours.model.txt_feats, theirs.model.txt_feats)
    assert ours.model.model[-1].nc == theirs.model.model[-1].nc
    assert list(ours.model.names) == list(theirs.model.names) and ours.names == theirs.names
    frame = str(frame_files[0])
    a = ours.predict(frame, conf=0.0001, imgsz=IMGSZ, verbose=False)[0].boxes
    b = theirs.predict(frame, conf=0.0001, imgsz=IMGSZ, verbose=False)[0].boxes
    assert torch.equal(a.data, b.data)


def test_detect_on_real_frames_batched(detector, frame_files):
    frames = [frame_files[0], str(frame_files[1]), Image.open(frame_files[2]), frame_files[3]]
    results = detector.detect(frames, conf=0.0001, batch_size=3)  # random weights: a tiny threshold
    assert len(results) == len(frames)
    assert sum(len(r) for r in results) > 0
    for per_frame in results:
        assert [d.confidence for d in per_frame] == sorted((d.confidence for d in per_frame), reverse=True)
        for det in per_frame:
            assert isinstance(det, Detection)
            assert det.label in CLASSES
            assert det.is_product == (det.label != "person")
            assert 0.0 < det.confidence <= 1.0
            x1, y1, x2, y2 = det.box_xyxy_norm
            assert 0.0 <= x1 <= x2 <= 1.0 and 0.0 <= y1 <= y2 <= 1.0
            json.dumps(det.to_json())
    # batching does not change the answer
    one_by_one = detector.detect(frames, conf=0.0001, batch_size=1)
    assert [[d.label for d in r] for r in one_by_one] == [[d.label for d in r] for r in results]
    assert detector.detect([], conf=0.5) == []
    high = detector.detect(frames[:1], conf=0.99)
    assert all(d.confidence >= 0.99 for d in high[0])


def test_vocabulary_prompts_and_cache(clip, tiny_yolo_world_pt, frame_files):
    vocabulary = load_vocabulary()
    MODEL_CACHE.release("yolo_world")  # an earlier test in this process may hold the same detector
    before = MODEL_CACHE.load_count("yolo_world")
    det = load_yolo_world(clip, vocabulary.names, vocabulary.product_names, model=tiny_yolo_world_pt, device="cpu",
                          imgsz=IMGSZ)
    again = load_yolo_world(clip, vocabulary.names, vocabulary.product_names, model=tiny_yolo_world_pt,
                            device="cpu", imgsz=IMGSZ)
    assert det is again and MODEL_CACHE.load_count("yolo_world") == before + 1
    assert det.yolo.model.txt_feats.shape == (1, len(vocabulary.names), 512)
    labels = {d.label for r in det.detect(frame_files[:2], conf=0.0001) for d in r}
    assert labels <= set(vocabulary.names)
    assert all(d.is_product == vocabulary.is_product(d.label) for r in det.detect(frame_files[:1], conf=0.0001)
               for d in r)


def test_checkpoint_is_loaded_with_weights_only(tiny_yolo_world_pt, monkeypatch):
    from ultralytics.nn import tasks

    calls = []
    real = tasks.torch_load

    def recording(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(tasks, "torch_load", recording)
    before = tasks.SAFE_LOAD
    load_yolo_world_model(tiny_yolo_world_pt, "cpu")
    assert calls == [True]
    assert tasks.SAFE_LOAD == before  # ultralytics' global flag is restored after the load


def test_wrong_text_dimension_is_refused(tiny_yolo_world_pt):
    yolo = load_yolo_world_model(tiny_yolo_world_pt, "cpu")
    with pytest.raises(ValueError, match="dimension 256"):
        set_offline_classes(yolo, ["a", "b"], np.zeros((2, 256), dtype=np.float32))


def test_missing_weights(clip, tmp_path):
    with pytest.raises(ModelUnavailableError, match="tiktok-assets models pull yolo-world-s"):
        load_yolo_world(clip, CLASSES, models_dir=tmp_path, device="cpu")
