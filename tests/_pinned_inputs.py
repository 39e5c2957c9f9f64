"""The committed inputs of the pinned-score tests (``tests/fixtures/pinned_inputs.npz``): what the methods received
when their scores were pinned, so that the scores are checked without decoding or warping anything.

Made once with opencv-python-headless 5.0.0.93 by ``tests/fixtures/make_pinned_inputs.py`` (which says what each
array is); ``tests/test_align_reference.py`` checks them, and today's image path, against an independent warp.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "pinned_inputs.npz"
#: six celeba-wild photos (under ../shared) and their landmarks: YuNet's, rounded to 0.01 px and written here
PHOTOS = [
    "data/celeba-wild/images/7201/001085.jpg",
    "data/celeba-wild/images/7202/006155.jpg",
    "data/celeba-wild/images/7204/004623.jpg",
    "data/celeba-wild/images/7205/018774.jpg",
    "data/celeba-wild/images/7207/001321.jpg",
    "data/celeba-wild/images/7208/015339.jpg",
]
LANDMARKS = [
    [[106.22, 100.16], [155.89, 99.69], [134.36, 126.93], [109.92, 142.11], [149.23, 142.43]],
    [[82.6, 87.9], [113.64, 87.72], [103.96, 108.55], [84.26, 116.15], [108.35, 120.74]],
    [[105.67, 111.37], [151.75, 110.78], [128.62, 137.06], [111.02, 158.33], [148.72, 156.91]],
    [[112.44, 94.76], [162.63, 97.91], [139.0, 122.92], [111.24, 142.65], [156.73, 146.26]],
    [[98.42, 112.74], [154.34, 109.47], [128.16, 136.74], [108.48, 159.74], [153.74, 155.83]],
    [[114.2, 113.71], [153.58, 114.91], [142.02, 138.48], [115.24, 156.27], [149.1, 157.6]],
]
#: arrays that are not pixels, stored as they are
PLAIN = ("paths", "landmarks", "image_shapes", "windows", "ladder_paths")


def encode(pixels: np.ndarray) -> np.ndarray:
    """uint8 (..., H, W, C) -> the same shape: each pixel minus its left neighbour, then each row minus the row
    above (mod 256; the first column and row keep their values). A lossless predictor, as PNG's filters are: the
    stored file deflates to half the size of the plain pixels."""
    a = np.asarray(pixels)
    if a.dtype != np.uint8 or a.ndim < 3:
        raise ValueError(f"expected uint8 (..., H, W, C) pixels, got {a.dtype} {a.shape}")
    d = np.diff(a, axis=-2, prepend=np.zeros_like(a[..., :1, :]))
    return np.diff(d, axis=-3, prepend=np.zeros_like(d[..., :1, :, :]))


def decode(coded: np.ndarray) -> np.ndarray:
    """The inverse of :func:`encode`: running sums (mod 256) down the rows, then along each row."""
    d = np.cumsum(np.asarray(coded, np.uint8), axis=-3, dtype=np.uint8)
    return np.cumsum(d, axis=-2, dtype=np.uint8)


@lru_cache(maxsize=2)
def _load(path: str) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        out = {k: z[k] if k in PLAIN else decode(z[k]) for k in z.files}
    for v in out.values():
        v.setflags(write=False)  # shared between tests: none may change them
    return out


def load(path: str | Path = FIXTURE) -> dict[str, np.ndarray]:
    """Every array of the fixture, pixels decoded (read-only)."""
    return _load(str(path))


def faces(path: str | Path = FIXTURE) -> list:
    """The six faces as the ``face`` methods receive them: the landmarks, an image of the decoded photo's size
    holding its pixels in the jpeg method's face region and zeros elsewhere. The pinned ``face`` methods read
    nothing else (pose the landmarks, jpeg that region); the tests check that the region is the stored one."""
    from fiqa_bench.faces import Face

    data = load(path)
    out = []
    for i, (shape, (x0, y0, x1, y1)) in enumerate(zip(data["image_shapes"], data["windows"])):
        image = np.zeros(tuple(int(v) for v in shape), np.uint8)
        image[y0:y1, x0:x1] = data[f"window_{i}"]
        out.append(Face(image, data["landmarks"][i], None, str(data["paths"][i])))
    return out
