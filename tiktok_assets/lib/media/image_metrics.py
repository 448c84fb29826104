"""Image quality metrics on small grayscale uint8 images, with OpenCV only (fast, few imports).

- ``ssim``: structural similarity with scikit-image's defaults (7x7 uniform window, sample
  covariance, K1=0.01, K2=0.03, border cropped);
- ``blur_effect``: the no-reference blur metric of Crete-Roffet et al. (2007) as scikit-image
  computes it (0 sharp .. 1 blurred, re-blur with an 11-pixel line filter, max over both axes).
The tests check both against scikit-image on real frames.
"""

from __future__ import annotations

import cv2
import numpy as np

_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2
_WIN = 7


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    x, y = a.astype(np.float32), b.astype(np.float32)

    def mean(img: np.ndarray) -> np.ndarray:
        return cv2.blur(img, (_WIN, _WIN), borderType=cv2.BORDER_REFLECT)

    n = _WIN * _WIN
    cov_norm = n / (n - 1)
    ux, uy = mean(x), mean(y)
    vx = cov_norm * (mean(x * x) - ux * ux)
    vy = cov_norm * (mean(y * y) - uy * uy)
    vxy = cov_norm * (mean(x * y) - ux * uy)
    s = ((2 * ux * uy + _C1) * (2 * vxy + _C2)) / ((ux * ux + uy * uy + _C1) * (vx + vy + _C2))
    pad = (_WIN - 1) // 2
    return float(s[pad:-pad, pad:-pad].astype(np.float64).mean())


def blur_effect(gray: np.ndarray, h_size: int = 11) -> float:
    image = gray.astype(np.float32) / 255.0
    rows, cols = image.shape
    inner = (slice(2, rows - 1), slice(2, cols - 1))
    scores = []
    for axis in (0, 1):
        ksize = (1, h_size) if axis == 0 else (h_size, 1)  # OpenCV sizes are (width, height)
        blurred = cv2.blur(image, ksize, borderType=cv2.BORDER_REFLECT)
        dx, dy = (0, 1) if axis == 0 else (1, 0)
        sharp_edges = np.abs(cv2.Sobel(image, cv2.CV_32F, dx, dy, ksize=3, borderType=cv2.BORDER_REFLECT)) / 4
        blur_edges = np.abs(cv2.Sobel(blurred, cv2.CV_32F, dx, dy, ksize=3, borderType=cv2.BORDER_REFLECT)) / 4
        lost = np.maximum(0.0, sharp_edges - blur_edges)
        m1 = float(sharp_edges[inner].sum(dtype=np.float64))
        m2 = float(lost[inner].sum(dtype=np.float64))
        scores.append(abs(m1 - m2) / m1 if m1 > 0 else 1.0)
    return max(scores)
