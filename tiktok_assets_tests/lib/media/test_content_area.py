"""The models see the content area inside letterbox / pillarbox bars; saved frames stay full-size."""

from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image
from skimage import data

from tiktok_assets.lib.media.bars import ContentBox
from tiktok_assets.lib.media.crop import ContentFrames, box_to_frame, model_inputs, open_image
from tiktok_assets.lib.models.blip import load_blip
from tiktok_assets.lib.models.clip import load_clip
from tiktok_assets.lib.models.yolo_world import Detection
from tiktok_assets.lib.vision.multimodal import analyse_frames
from tiktok_assets_tests.lib.vision_fixtures import *

# landscape footage letterboxed into a portrait frame: a 720 x 405 picture between black bars
W, H, CW, CH = 720, 1280, 720, 405
TOP = (H - CH) // 2
LETTERBOX = ContentBox(0, TOP, CW, CH, W, H)


@dataclass
class Frame:
    time: float
    file: str


@pytest.fixture(scope="module")
def letterboxed(tmp_path_factory):
    """(folder, full frame file, pre-cropped content file, the content pixels)."""
    folder = tmp_path_factory.mktemp("letterbox")
    photo = np.asarray(Image.fromarray(data.astronaut()).resize((CW, CH), Image.Resampling.BILINEAR))
    canvas = np.zeros((H, W, 3), dtype=np.uint8)
    canvas[TOP:TOP + CH] = photo
    Image.fromarray(canvas).save(folder / "frame.png")  # lossless: the crop is exact to the pixel
    Image.fromarray(photo).save(folder / "content.png")
    return folder, "frame.png", "content.png", photo


def test_open_image_crops_exactly_the_content_area(letterboxed):
    folder, frame, _, photo = letterboxed
    assert np.array_equal(np.asarray(open_image(folder / frame, LETTERBOX)), photo)
    full = np.asarray(Image.open(folder / frame).convert("RGB"))
    assert np.array_equal(np.asarray(open_image(folder / frame, ContentBox(0, 0, W, H, W, H))), full)
    assert np.array_equal(np.asarray(open_image(folder / frame, None)), full)
    # the box is in display pixels of the video; a frame saved at half size is cropped at half scale
    small = folder / "small.png"
    Image.open(folder / frame).resize((W // 2, H // 2)).save(small)
    assert open_image(small, LETTERBOX).size == (CW // 2, round((TOP + CH) / 2) - round(TOP / 2))


def test_model_inputs_are_paths_without_bars_and_lazy_crops_with_them(letterboxed):
    folder, frame, _, photo = letterboxed
    paths = [folder / frame] * 3
    assert model_inputs(paths, None) == paths
    assert model_inputs(paths, ContentBox(0, 0, W, H, W, H)) == paths  # no bars: no extra work
    crops = model_inputs(paths, LETTERBOX)
    assert isinstance(crops, ContentFrames) and len(crops) == 3
    batch = crops[1:3]  # the wrappers batch by slicing
    assert len(batch) == 2 and all(np.array_equal(np.asarray(im), photo) for im in batch)
    assert np.array_equal(np.asarray(crops[0]), photo)


def test_boxes_found_in_the_content_area_map_back_to_the_full_frame():
    # letterbox: 720 x 720 picture at y = 280 in a 720 x 1280 frame
    square = ContentBox(0, 280, 720, 720, 720, 1280)
    assert box_to_frame((0.25, 0.5, 0.75, 1.0), square) == pytest.approx((0.25, 0.5, 0.75, 0.78125))
    assert box_to_frame((0.0, 0.0, 1.0, 1.0), square) == pytest.approx((0.0, 280 / 1280, 1.0, 1000 / 1280))
    # pillarbox: 960 x 720 picture at x = 160 in a 1280 x 720 frame
    pillar = ContentBox(160, 0, 960, 720, 1280, 720)
    assert box_to_frame((0.0, 0.0, 1.0, 1.0), pillar) == pytest.approx((0.125, 0.0, 0.875, 1.0))
    assert box_to_frame((0.5, 0.25, 0.75, 0.5), pillar) == pytest.approx((0.5, 0.25, 0.6875, 0.5))
    # no bars: unchanged
    assert box_to_frame((0.1, 0.2, 0.3, 0.4), None) == (0.1, 0.2, 0.3, 0.4)
    assert box_to_frame((0.1, 0.2, 0.3, 0.4), ContentBox(0, 0, W, H, W, H)) == (0.1, 0.2, 0.3, 0.4)
    det = Detection("lipstick", 0.9, (0.25, 0.5, 0.75, 1.0), True)
    mapped = det.in_frame(square)
    assert mapped.box_xyxy_norm == pytest.approx((0.25, 0.5, 0.75, 0.78125))
    assert (mapped.label, mapped.confidence, mapped.is_product) == ("lipstick", 0.9, True)
    assert det.in_frame(None) == det


def test_clip_sees_the_content_area(letterboxed, tiny_clip_dir):
    folder, frame, content, photo = letterboxed
    clip = load_clip(tiny_clip_dir, device="cpu")
    cropped = clip.encode_images(model_inputs([folder / frame], LETTERBOX))
    assert np.allclose(cropped, clip.encode_images([folder / content]), atol=1e-5)
    assert np.allclose(cropped, clip.encode_images([Image.fromarray(photo)]), atol=1e-5)
    full = clip.encode_images([folder / frame])
    # CLIP's centre crop of the full frame would have kept half bars, half picture
    assert not np.allclose(cropped, full, atol=1e-3)
    # through analyse_frames (representative_frames): the box gives the pre-cropped embedding
    prompts = clip.encode_texts(["a photo of a person"])
    boxed = analyse_frames([Frame(0.0, frame)], folder, clip, prompts, content_box=LETTERBOX)
    pre = analyse_frames([Frame(0.0, content)], folder, clip, prompts)
    plain = analyse_frames([Frame(0.0, frame)], folder, clip, prompts)
    assert np.allclose(boxed.embeddings, pre.embeddings, atol=1e-5)
    assert np.allclose(plain.embeddings, full, atol=1e-5)


def test_blip_captions_the_content_area(letterboxed, tiny_blip_dir):
    folder, frame, content, _ = letterboxed
    captioner = load_blip(tiny_blip_dir, device="cpu")
    assert captioner.caption(model_inputs([folder / frame], LETTERBOX), max_new_tokens=5) == captioner.caption(
        [folder / content], max_new_tokens=5)
