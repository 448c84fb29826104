"""Our OpenCV SSIM and blur metric agree with scikit-image's reference implementations."""

import cv2
import numpy as np
import pytest
from skimage.measure import blur_effect as sk_blur_effect
from skimage.metrics import structural_similarity

from tiktok_assets.lib.media.image_metrics import blur_effect, ssim
from tiktok_assets_tests.conftest import ffmpeg


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    folder = tmp_path_factory.mktemp("metric_frames")
    out = {}
    for name, source in [("bars", "smptebars"), ("test", "testsrc2"), ("fractal", "mandelbrot")]:
        ffmpeg("-f", "lavfi", "-i", f"{source}=s=270x480", "-frames:v", "1", str(folder / f"{name}.png"))
        out[name] = cv2.imread(str(folder / f"{name}.png"), cv2.IMREAD_GRAYSCALE)
    out["blurred"] = cv2.GaussianBlur(out["test"], (0, 0), 6)
    out["noisy"] = np.clip(out["test"].astype(int) + np.random.default_rng(0).normal(0, 12, out["test"].shape),
                           0, 255).astype(np.uint8)
    return out


def test_ssim_matches_scikit_image(frames):
    pairs = [("test", "test"), ("test", "noisy"), ("test", "blurred"), ("bars", "fractal"), ("test", "bars")]
    for a, b in pairs:
        ours = ssim(frames[a], frames[b])
        reference = structural_similarity(frames[a], frames[b], data_range=255)
        assert ours == pytest.approx(reference, abs=0.01), (a, b)
    assert ssim(frames["test"], frames["test"]) == pytest.approx(1.0)
    assert ssim(frames["test"], frames["bars"]) < 0.5


def test_blur_effect_matches_scikit_image(frames):
    for name, image in frames.items():
        assert blur_effect(image) == pytest.approx(sk_blur_effect(image), abs=0.02), name
    assert blur_effect(frames["blurred"]) > blur_effect(frames["test"]) + 0.3
