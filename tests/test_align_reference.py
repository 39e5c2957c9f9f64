"""The image path (decode, align) against an independent computation, on the six photos of the pinned-score tests;
and the committed crops of those tests (fixtures/pinned_inputs.npz) against the same.

The reference: Pillow's JPEG decoder, and the ArcFace 5-point warp written here in numpy: insightface's template
(typed in here, not fiqa_bench's constant), the similarity by linear least squares over its four parameters (not
fiqa_bench's Umeyama SVD), bilinear sampling in float64 with pixel centres at integer coordinates and zeros outside
the photo, rounded to the nearest level.

Tolerances, from measurement and why (OpenCV 4.10.0.84, 4.12.0.88, 5.0.0.93, 5.1.0.95; Pillow 13.0.0; numpy 2.4.6):

* decode: every decoder measured gives these photos byte for byte the same (OpenCV's and Pillow's are libjpeg-turbo,
  whose default accurate integer IDCT and fancy upsampling are exact integer arithmetic, the same in its C and SIMD
  code). A decoder on another libjpeg (IJG 9 scales chroma in the DCT domain) may differ by a level or two, hence
  ``DECODE_MAX`` = 2, ``DECODE_MEAN`` = 0.1 levels; the wrong channel order is 13 to 45 levels off on average.
* warp: OpenCV 5.x warps INTER_LINEAR in floating point: against the reference, max 1 level, on at most 8 of 225,792
  values (a float32 sum landing within ~1e-3 of a half level rounds the other way). OpenCV <= 4.12 computes the
  source point in fixed point, rounded to 1/32 px (INTER_BITS = 5: up to 1/64 px off per axis) with 15-bit
  interpolation weights: a sample moves by up to (|d/dx| + |d/dy|) / 64 levels, about 2.5 on the 99.9th-percentile
  edges of these photos (150 levels/px); measured with 4.10 and 4.12: max 3, mean 0.082 levels, 8% of values off.
  ``WARP_MAX`` = 4 (the measured 3 and a level) and ``WARP_MEAN`` = 0.25 admit both, and no wrong warp: the
  landmarks a quarter pixel off give a mean of 2.4 levels, the template half a pixel off (the pixel-centre
  convention) 5.3 to 8.6, a pixel off 7.4 to 11.8, the colour order flipped 30, the eyes swapped 92 (checked below).
* the committed crops were made with OpenCV 5.0.0.93's float warp: within 1 level of the reference, on 8 of 225,792
  values at 112 px and 1 of 73,728 at 64 px (``COMMITTED_MEAN`` = 1e-3 levels). OpenCV 5.1.0.95 moves them by
  1 level on 4 and 1 values, enough to move the pinned scores by up to 4e-4 (relative; faceqnet), 40 times the 1e-5
  they are pinned to, which is why they are pinned on the committed crops; 4.10 and 4.12 move them by up to 3
  levels, mean 0.082.
"""

from __future__ import annotations

import numpy as np
import pytest

from _pinned_inputs import LANDMARKS, PHOTOS, load

pytestmark = pytest.mark.shared

#: insightface's ``arcface_dst`` (its ``face_align.py``), 112x112: eyes, nose tip, mouth corners, image-left first
INSIGHTFACE_ARCFACE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
)
DECODE_MAX, DECODE_MEAN = 2, 0.1
WARP_MAX, WARP_MEAN = 4, 0.25
COMMITTED_MAX, COMMITTED_MEAN = 1, 1e-3
SIZES = (112, 64)


def reference_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(2, 3) ``[[a, -b, tx], [b, a, ty]]`` minimising the squared distance of ``src`` mapped onto ``dst``: linear in
    (a, b, tx, ty), so one least-squares solve (a rotation with scale, never a reflection)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    n = len(src)
    rows = np.zeros((2 * n, 4))
    rows[0::2] = np.column_stack([src[:, 0], -src[:, 1], np.ones(n), np.zeros(n)])
    rows[1::2] = np.column_stack([src[:, 1], src[:, 0], np.zeros(n), np.ones(n)])
    (a, b, tx, ty), *_ = np.linalg.lstsq(rows, dst.reshape(-1), rcond=None)
    return np.array([[a, -b, tx], [b, a, ty]])


def reference_warp(image: np.ndarray, landmarks, size: int, template_shift=(0.0, 0.0)) -> np.ndarray:
    """uint8 (size, size, C): output pixel (x, y) is ``image`` bilinearly interpolated at the point the similarity
    (landmarks -> template scaled by size/112) maps onto (x, y); zero outside the image; rounded to nearest."""
    template = INSIGHTFACE_ARCFACE_112 * (size / 112.0) + np.asarray(template_shift, np.float64)
    m = reference_similarity(np.asarray(landmarks, np.float32), template)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    src = (np.stack([xs, ys], axis=-1) - m[:, 2]) @ np.linalg.inv(m[:, :2]).T
    x0, y0 = np.floor(src[..., 0]).astype(int), np.floor(src[..., 1]).astype(int)
    fx, fy = src[..., 0] - x0, src[..., 1] - y0
    h, w = image.shape[:2]
    pixels = image.astype(np.float64)
    out = np.zeros((size, size, image.shape[2]))
    for dy, dx, weight in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)), (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
        yy, xx = y0 + dy, x0 + dx
        inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        value = np.zeros_like(out)
        value[inside] = pixels[yy[inside], xx[inside]]
        out += weight[..., None] * value
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def difference(a: np.ndarray, b: np.ndarray) -> tuple[int, float]:
    """(max, mean) absolute difference in grey levels."""
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return int(d.max()), float(d.mean())


@pytest.fixture(scope="module")
def pillow_rgb(shared):
    """The six photos decoded by Pillow, RGB."""
    from PIL import Image

    out = []
    for p in PHOTOS:
        with Image.open(shared / p) as im:
            out.append(np.asarray(im.convert("RGB")))
    return out


@pytest.fixture(scope="module")
def installed_faces(shared):
    """The six faces through today's decoder (fiqa_bench.faces.io, OpenCV)."""
    from fiqa_bench.faces import Face, load_image

    return [Face(load_image(shared / p), np.asarray(lm, np.float32), None, p) for p, lm in zip(PHOTOS, LANDMARKS)]


def references(pillow_rgb, size, landmarks=LANDMARKS, template_shift=(0.0, 0.0)) -> np.ndarray:
    return np.stack([reference_warp(im, lm, size, template_shift) for im, lm in zip(pillow_rgb, landmarks)])


def test_decoder_agrees_with_pillow(installed_faces, pillow_rgb):
    """load_image (OpenCV, BGR) gives Pillow's pixels, and so do the committed jpeg windows of the fixture."""
    data = load()
    for i, (face, rgb) in enumerate(zip(installed_faces, pillow_rgb)):
        top, mean = difference(face.image[..., ::-1], rgb)
        assert top <= DECODE_MAX and mean <= DECODE_MEAN, (PHOTOS[i], top, mean)
        x0, y0, x1, y1 = data["windows"][i]
        top, mean = difference(data[f"window_{i}"][..., ::-1], rgb[y0:y1, x0:x1])
        assert top <= DECODE_MAX and mean <= DECODE_MEAN, (PHOTOS[i], "committed window", top, mean)
        assert difference(face.image, rgb)[1] > DECODE_MEAN  # the channel order matters to the bound


@pytest.mark.parametrize("size", SIZES)
def test_alignment_agrees_with_an_independent_warp(size, installed_faces, pillow_rgb):
    from fiqa_bench.api.cards import InputSpec
    from fiqa_bench.faces import to_input

    got = to_input(installed_faces, InputSpec("aligned", size, "RGB"))
    top, mean = difference(got, references(pillow_rgb, size))
    assert top <= WARP_MAX and mean <= WARP_MEAN, (top, mean)


@pytest.mark.parametrize("size", SIZES)
def test_a_wrong_warp_exceeds_the_bound(size, installed_faces, pillow_rgb):
    """Each of these mistakes, made in the reference, puts today's crops beyond ``WARP_MEAN`` (and the mean alone
    suffices): the tolerance cannot hide a wrong warp."""
    from fiqa_bench.api.cards import InputSpec
    from fiqa_bench.faces import to_input

    got = to_input(installed_faces, InputSpec("aligned", size, "RGB"))
    eyes_swapped = [np.asarray(lm)[[1, 0, 2, 4, 3]] for lm in LANDMARKS]
    wrong = {
        "colour order flipped": references(pillow_rgb, size)[..., ::-1],
        "eyes and mouth corners swapped": references(pillow_rgb, size, eyes_swapped),
        "template one pixel off": references(pillow_rgb, size, template_shift=(1.0, 0.0)),
        "template half a pixel off": references(pillow_rgb, size, template_shift=(0.5, 0.5)),
        "landmarks a quarter pixel off": references(pillow_rgb, size, [np.asarray(lm) + 0.25 for lm in LANDMARKS]),
    }
    for what, crops in wrong.items():
        top, mean = difference(got, crops)
        assert mean > WARP_MEAN and top > WARP_MAX, (what, top, mean)


@pytest.mark.parametrize("size", SIZES)
def test_committed_crops_are_the_independent_warp(size, pillow_rgb):
    """The crops the pinned scores are computed on are a correct ArcFace warp of these photos, to float rounding."""
    top, mean = difference(load()[f"aligned_{size}_RGB"], references(pillow_rgb, size))
    assert top <= COMMITTED_MAX and mean <= COMMITTED_MEAN, (top, mean)


@pytest.mark.parametrize("size", SIZES)
def test_the_installed_build_moves_the_committed_crops_within_the_bound(size, installed_faces):
    """How far today's OpenCV moves the pinned scores' crops (5.0.0.93: not at all; 5.1.0.95: 1 level on 4 values;
    4.10, 4.12: up to 3 levels, mean 0.082)."""
    from fiqa_bench.api.cards import InputSpec
    from fiqa_bench.faces import to_input

    got = to_input(installed_faces, InputSpec("aligned", size, "RGB"))
    top, mean = difference(got, load()[f"aligned_{size}_RGB"])
    assert top <= WARP_MAX and mean <= WARP_MEAN, (top, mean)
