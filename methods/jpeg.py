"""``jpeg``: no-reference JPEG compression quality of the face, measured on the image's own 8x8 block grid.

Measure: Wang, Sheikh & Bovik (2002), "No-reference perceptual quality assessment of JPEG compressed images"
(ICIP 2002), implemented here from the paper's description. On the luminance ``x`` (M rows, N columns) with
horizontal differences ``d_h(m, n) = x(m, n+1) - x(m, n)``:

* blockiness ``B_h``: mean ``|d_h|`` across the vertical 8x8 block boundaries (between columns 8k-1 and 8k,
  k = 1 .. floor(N/8) - 1);
* activity ``A_h = (8 * mean|d_h| over all columns - B_h) / 7``: the average in-block difference (compression
  flattens blocks, so activity drops);
* zero-crossing rate ``Z_h``: fraction of adjacent pairs of ``d_h`` with strictly opposite signs;

the same vertically (``B_v, A_v, Z_v``), averaged: ``B, A, Z``, and combined with the paper's fitted constants
``S = -245.9 + 261.9 * B^-0.0240 * A^0.0160 * Z^0.0064`` (about 1 = very blocky to 10 = no visible artefact; not
clipped). Higher = less compression. ``B, A, Z`` are floored at 1e-3 so that a flat region gives a finite score
(``A`` is negative for perfectly blocky content, where all differences sit on block boundaries).

**Why the ``face`` input and not the aligned crop.** JPEG's artefacts live on the 8x8 grid of the *file's* pixels.
The alignment warp rotates, scales and resamples that grid away: on 200 LFW and 200 CelebA faces re-compressed at
JPEG quality 90/50/20/10, the score of the aligned crop fell at every step for only 59% and 68% of the faces
(median drop from 90 to 10: 0.7 points), against 100% and 100% (median drop 5.4 and 5.9 points) on the original
grid. So this method asks for ``InputSpec("face")`` (the decoded image, landmarks and box) and measures on the
original pixels:

* **region**: the face region of the blur method (rows 24-103, columns 24-87 of the 112 ArcFace crop) mapped into
  the image by the least-squares similarity from the template to the landmarks, as its axis-aligned bounding box.
  Landmarks rather than the detector box, so that the region covers the same part of the face whichever detector
  (or protocol file) supplied the face. Without finite landmarks the box is used, without a box the whole image.
* **grid**: the region is clipped to the image and its top-left corner moved down to a multiple of 8, so its block
  boundaries are those of the file. This assumes the decoded image is the JPEG's own pixel grid (no crop or resize
  after decoding; an EXIF rotation keeps the grid only when the rotated side is a multiple of 8). Regions are at
  least 16x16 (the paper's minimum) where the image allows.
* **luminance**: ``0.299 R + 0.587 G + 0.114 B`` in float64 (JPEG's Y), not rounded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fiqa_bench.api import QualityMethod
from fiqa_bench.api.cards import InputSpec, MethodCard

#: Wang, Sheikh & Bovik (2002), fitted to subjective scores: S = ALPHA + BETA * B^G1 * A^G2 * Z^G3.
ALPHA, BETA = -245.8909, 261.9373
G1, G2, G3 = -0.02398886, 0.01601664, 0.00642859
FLOOR = 1e-3
BLOCK = 8
MIN_SIDE = 16
#: Face region in the 112x112 ArcFace crop, (x0, y0, x1, y1), end exclusive (same as the blur method's).
CROP_REGION = (24.0, 24.0, 88.0, 104.0)


def _features_along_rows(x: np.ndarray) -> tuple[float, float, float]:
    """(B, A, Z) for horizontal differences of ``x`` (M, N), with block boundaries at column 8k | 8k-1."""
    n = x.shape[1]
    if n < 2:
        return 0.0, 0.0, 0.0
    d = x[:, 1:] - x[:, :-1]  # d[:, j] = x[:, j+1] - x[:, j]
    # j = 8k - 1 for k = 1 .. floor(N/8) - 1: between columns 8k-1 and 8k, as in the paper (a last boundary
    # before a partial block is left out)
    boundaries = np.arange(1, n // BLOCK) * BLOCK - 1
    absd = np.abs(d)
    b = float(absd[:, boundaries].mean()) if len(boundaries) else 0.0
    a = (BLOCK * float(absd.mean()) - b) / (BLOCK - 1)
    s = np.sign(d)
    z = float((s[:, :-1] * s[:, 1:] < 0).mean()) if d.shape[1] >= 2 else 0.0
    return b, a, z


def wang_features(luma: np.ndarray) -> tuple[float, float, float]:
    """Blockiness, activity and zero-crossing rate of a 2-D luminance array whose (0, 0) is a block corner."""
    x = np.asarray(luma, dtype=np.float64)
    bh, ah, zh = _features_along_rows(x)
    bv, av, zv = _features_along_rows(x.T)
    return (bh + bv) / 2.0, (ah + av) / 2.0, (zh + zv) / 2.0


def wang_score(luma: np.ndarray) -> float:
    """The Wang-Sheikh-Bovik quality S of a luminance array aligned to the 8x8 grid (higher = less blocky)."""
    b, a, z = (max(v, FLOOR) for v in wang_features(luma))
    return ALPHA + BETA * b**G1 * a**G2 * z**G3


def luminance(image_bgr: np.ndarray) -> np.ndarray:
    img = np.asarray(image_bgr)
    if img.ndim == 2:
        return img.astype(np.float64)
    f = img.astype(np.float64)
    return 0.114 * f[..., 0] + 0.587 * f[..., 1] + 0.299 * f[..., 2]


def _landmark_region(landmarks: np.ndarray | None) -> tuple[float, float, float, float] | None:
    from fiqa_bench.faces.align import arcface_template, similarity_transform

    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (5, 2) or not np.isfinite(lm).all():
        return None
    try:
        m = similarity_transform(arcface_template(112), lm)  # crop -> image
    except ValueError:
        return None
    x0, y0, x1, y1 = CROP_REGION
    corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]], dtype=np.float64)
    pts = corners @ m[:, :2].T + m[:, 2]
    return float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())


def _span(lo: float, hi: float, size: int) -> tuple[int, int]:
    """Integer [start, end) within [0, size), start snapped down to the block grid, at least MIN_SIDE long."""
    start = int(np.floor(max(lo, 0.0)))
    end = int(np.ceil(min(hi, float(size))))
    if end - start < MIN_SIDE:  # too small (or outside the image): grow around the centre
        centre = 0.5 * (lo + hi)
        start = int(np.floor(centre - MIN_SIDE / 2))
        end = start + MIN_SIDE
        if start < 0:
            start, end = 0, MIN_SIDE
        if end > size:
            start, end = max(0, size - MIN_SIDE), size
    start = (min(max(start, 0), max(size - 1, 0)) // BLOCK) * BLOCK
    end = min(max(end, start + 1), size)
    return start, end


def face_region(face: Any) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the measured region in image pixels; x0, y0 are multiples of 8."""
    h, w = np.asarray(face.image).shape[:2]
    region = _landmark_region(getattr(face, "landmarks", None))
    box = getattr(face, "box", None)
    if region is None and box is not None and np.isfinite(np.asarray(box, dtype=np.float64)).all():
        bx, by, bw, bh = (float(v) for v in np.asarray(box, dtype=np.float64).reshape(4))
        region = (bx, by, bx + bw, by + bh)
    if region is None:
        region = (0.0, 0.0, float(w), float(h))
    x0, x1 = _span(region[0], region[2], w)
    y0, y1 = _span(region[1], region[3], h)
    return x0, y0, x1, y1


class JpegQuality(QualityMethod):
    """Wang-Sheikh-Bovik (2002) no-reference JPEG quality, on the face region of the undistorted image."""

    card = MethodCard(
        name="jpeg",
        version="1",
        summary=(
            "JPEG compression quality: Wang-Sheikh-Bovik 2002 blockiness/activity/zero-crossing score of the "
            "luminance of the face region (ArcFace crop rows 24-103, cols 24-87 mapped back by the landmarks), "
            "on the decoded image's own 8x8 grid (not the aligned crop, whose warp destroys the grid)"
        ),
        licence="MIT",
        paper=(
            "Z. Wang, H. R. Sheikh, A. C. Bovik, 'No-reference perceptual quality assessment of JPEG compressed "
            "images', ICIP 2002"
        ),
        input=InputSpec("face"),
        higher_is_better=True,
        score_range="about 1 (blocky) to 10 (no artefact), not clipped",
        weights=None,
    )

    def score(self, images: Sequence[Any]) -> np.ndarray:
        out = np.empty(len(images), dtype=np.float32)
        for i, face in enumerate(images):
            image = np.asarray(face.image)
            if image.dtype != np.uint8 or image.ndim not in (2, 3) or min(image.shape[:2]) < 1:
                raise ValueError(f"face {i}: expected a uint8 BGR image, got {image.dtype} {image.shape}")
            x0, y0, x1, y1 = face_region(face)
            out[i] = wang_score(luminance(image[y0:y1, x0:x1]))
        return out
