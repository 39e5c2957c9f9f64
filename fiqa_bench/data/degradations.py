"""Image degradations with documented strengths, to build mixed-quality templates (and tinyFQnet training data).

Every degradation is a pure function ``f(image, **params) -> image`` on a uint8 BGR (H, W, 3) or grey (H, W)
array: same shape, same dtype, and the output is fully determined by the parameters (the one random
degradation, noise, takes an integer ``seed``). Randomness lives only in :func:`apply_random`, which draws a
degradation, a strength level and the free parameters from a ``numpy.random.Generator`` and returns a record
(``name``, ``level``, ``params``) that :func:`apply_record` replays exactly.

Strength levels (pixel units are those of the image given; the benchmark applies them to loose crops whose long
side is <= 256 px, the face spanning about half of it):

====================  =============================================  =========  =========  =========
name                  parameters (drawn ones in brackets)            light      medium     strong
====================  =============================================  =========  =========  =========
gaussian_blur         sigma px                                       1.0        2.0        4.0
motion_blur           length px [angle 0..179 deg]                   5          9          15
downscale             factor (down INTER_AREA, up INTER_LINEAR)      2          4          8
jpeg                  quality (OpenCV libjpeg, 4:2:0 chroma)         40         20         10
gaussian_noise        sigma grey levels [seed]                       5.0        10.0       20.0
occlusion             fraction of face-box area [position, fill 0]   0.1        0.25       0.4
brightness_contrast   contrast, brightness [sign +1/-1]              0.8, 30.0  0.6, 60.0  0.4, 90.0
====================  =============================================  =========  =========  =========
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LEVELS = ("light", "medium", "strong")


def _check(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3))):
        raise ValueError(f"degradations take uint8 (H, W) or (H, W, 3) images, got {image.dtype} {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"empty image {image.shape}")
    return np.ascontiguousarray(image)


def _same_layout(out: np.ndarray, like: np.ndarray) -> np.ndarray:
    """cv2 drops a trailing channel axis of size 1; put it back so the shape is preserved."""
    return out.reshape(like.shape)


def gaussian_blur(image: np.ndarray, *, sigma: float) -> np.ndarray:
    """Isotropic gaussian blur (out-of-focus); kernel side = OpenCV's default for ``sigma`` (about 6 sigma)."""
    import cv2

    image = _check(image)
    if sigma <= 0:
        return image.copy()
    out = cv2.GaussianBlur(image, (0, 0), sigmaX=float(sigma), sigmaY=float(sigma), borderType=cv2.BORDER_REFLECT_101)
    return _same_layout(out, image)


def motion_kernel(length: int, angle_deg: float) -> np.ndarray:
    """A normalised (length x length) line kernel through the centre at ``angle_deg`` (0 = horizontal)."""
    import cv2

    length = int(length)
    if length < 1:
        raise ValueError(f"motion blur length must be >= 1, got {length}")
    if length % 2 == 0:
        length += 1  # odd side so that the line is centred on a pixel
    k: np.ndarray = np.zeros((length, length), np.float32)
    k[length // 2, :] = 1.0
    centre = (length / 2.0 - 0.5, length / 2.0 - 0.5)
    rot = cv2.getRotationMatrix2D(centre, float(angle_deg), 1.0)
    k = cv2.warpAffine(k, rot, (length, length), flags=cv2.INTER_LINEAR)
    total = float(k.sum())
    return k / total if total > 0 else k


def motion_blur(image: np.ndarray, *, length: int, angle: float) -> np.ndarray:
    """Linear motion blur of ``length`` px at ``angle`` degrees (camera shake / subject motion)."""
    import cv2

    image = _check(image)
    if int(length) <= 1:
        return image.copy()
    out = cv2.filter2D(image, -1, motion_kernel(length, angle), borderType=cv2.BORDER_REFLECT_101)
    return _same_layout(out, image)


def downscale(image: np.ndarray, *, factor: float) -> np.ndarray:
    """Low resolution: shrink by ``factor`` (INTER_AREA, at least 1 px), then enlarge back (INTER_LINEAR)."""
    import cv2

    image = _check(image)
    if factor <= 1:
        return image.copy()
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, round(w / factor)), max(1, round(h / factor))), interpolation=cv2.INTER_AREA)
    out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return _same_layout(out, image)


def jpeg(image: np.ndarray, *, quality: int) -> np.ndarray:
    """JPEG re-compression at ``quality`` (0-100, OpenCV's libjpeg, default 4:2:0 chroma), decoded back."""
    import cv2

    image = _check(image)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        raise RuntimeError("JPEG encoding failed")
    flag = cv2.IMREAD_GRAYSCALE if image.ndim == 2 or image.shape[2] == 1 else cv2.IMREAD_COLOR
    decoded = cv2.imdecode(buf, flag)
    if decoded is None:  # pragma: no cover - OpenCV decodes the JPEG it just encoded
        raise RuntimeError("JPEG decoding failed")
    return _same_layout(decoded, image)


def gaussian_noise(image: np.ndarray, *, sigma: float, seed: int) -> np.ndarray:
    """Additive white gaussian noise, independent per pixel and channel, rounded and clipped to 0..255."""
    image = _check(image)
    noise = np.random.default_rng(int(seed)).normal(0.0, float(sigma), size=image.shape)
    return np.clip(np.rint(image.astype(np.float64) + noise), 0, 255).astype(np.uint8)


def occlusion_rect(
    shape: Sequence[int], *, fraction: float, box: Sequence[float] | None = None, position: Sequence[float] = (0.5, 0.5)
) -> tuple[int, int, int, int]:
    """The occluder (x0, y0, x1, y1), half-open, clipped to the image.

    Its sides are ``sqrt(fraction)`` times the box sides (so its area is ``fraction`` of the box area, same
    aspect ratio); ``position`` (px, py) in [0, 1] places it inside the box: (0, 0) top-left, (0.5, 0.5) centred.
    ``box=None`` takes the whole image as the face (aligned crops).
    """
    h, w = int(shape[0]), int(shape[1])
    bx, by, bw, bh = (0.0, 0.0, float(w), float(h)) if box is None else (float(v) for v in box)
    s = float(np.sqrt(np.clip(fraction, 0.0, 1.0)))
    rw, rh = s * bw, s * bh
    px, py = (float(np.clip(v, 0.0, 1.0)) for v in position)
    x0 = bx + px * (bw - rw)
    y0 = by + py * (bh - rh)
    x0i, y0i = int(round(x0)), int(round(y0))
    x1i, y1i = x0i + int(round(rw)), y0i + int(round(rh))
    return max(0, x0i), max(0, y0i), min(w, x1i), min(h, y1i)


def occlusion(
    image: np.ndarray,
    *,
    fraction: float,
    box: Sequence[float] | None = None,
    position: Sequence[float] = (0.5, 0.5),
    fill: int = 0,
) -> np.ndarray:
    """A rectangle of grey level ``fill`` covering ``fraction`` of the face box (see :func:`occlusion_rect`)."""
    image = _check(image)
    x0, y0, x1, y1 = occlusion_rect(image.shape, fraction=fraction, box=box, position=position)
    out = image.copy()
    out[y0:y1, x0:x1] = int(fill)
    return out


def brightness_contrast(image: np.ndarray, *, contrast: float, brightness: float) -> np.ndarray:
    """``clip(contrast * (x - 127.5) + 127.5 + brightness)``: contrast < 1 flattens, brightness shifts."""
    image = _check(image)
    out = float(contrast) * (image.astype(np.float64) - 127.5) + 127.5 + float(brightness)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Degradation:
    """A degradation: its function, the fixed parameters of each level, and how free parameters are drawn.

    ``draw(rng, image_shape, box) -> dict`` returns the free parameters (angle, seed, position, sign); it is
    called after the level is chosen, so a record's parameters are ``levels[level] | draw(...)``.
    """

    name: str
    function: Callable[..., np.ndarray]
    levels: Mapping[str, Mapping[str, Any]]
    draw: Callable[[np.random.Generator, tuple, Any], dict] = field(default=lambda rng, shape, box: {})
    summary: str = ""


def _draw_angle(rng, shape, box):
    return {"angle": int(rng.integers(0, 180))}


def _draw_seed(rng, shape, box):
    return {"seed": int(rng.integers(0, 2**31 - 1))}


def _draw_occluder(rng, shape, box):
    pos = rng.random(2)
    return {
        "box": None if box is None else [round(float(v), 2) for v in box],
        "position": [round(float(pos[0]), 3), round(float(pos[1]), 3)],
        "fill": 0,
    }


def _draw_sign(rng, shape, box):
    return {"sign": 1 if rng.random() < 0.5 else -1}


DEGRADATIONS: dict[str, Degradation] = {
    d.name: d
    for d in (
        Degradation(
            "gaussian_blur",
            gaussian_blur,
            {"light": {"sigma": 1.0}, "medium": {"sigma": 2.0}, "strong": {"sigma": 4.0}},
            summary="out-of-focus blur",
        ),
        Degradation(
            "motion_blur",
            motion_blur,
            {"light": {"length": 5}, "medium": {"length": 9}, "strong": {"length": 15}},
            _draw_angle,
            "linear motion blur, angle uniform in 0..179 degrees",
        ),
        Degradation(
            "downscale",
            downscale,
            {"light": {"factor": 2}, "medium": {"factor": 4}, "strong": {"factor": 8}},
            summary="low resolution (down then up)",
        ),
        Degradation(
            "jpeg",
            jpeg,
            {"light": {"quality": 40}, "medium": {"quality": 20}, "strong": {"quality": 10}},
            summary="JPEG re-compression",
        ),
        Degradation(
            "gaussian_noise",
            gaussian_noise,
            {"light": {"sigma": 5.0}, "medium": {"sigma": 10.0}, "strong": {"sigma": 20.0}},
            _draw_seed,
            "additive white gaussian noise",
        ),
        Degradation(
            "occlusion",
            occlusion,
            {"light": {"fraction": 0.10}, "medium": {"fraction": 0.25}, "strong": {"fraction": 0.40}},
            _draw_occluder,
            "black rectangle over part of the face box",
        ),
        Degradation(
            "brightness_contrast",
            brightness_contrast,
            {
                "light": {"contrast": 0.8, "brightness": 30.0},
                "medium": {"contrast": 0.6, "brightness": 60.0},
                "strong": {"contrast": 0.4, "brightness": 90.0},
            },
            _draw_sign,
            "lower contrast and a brighter or darker exposure",
        ),
    )
}


def _resolve_params(name: str, params: Mapping[str, Any]) -> dict:
    """Record parameters -> function keyword arguments (the drawn sign multiplies the brightness)."""
    kw = dict(params)
    if name == "brightness_contrast" and "sign" in kw:
        kw["brightness"] = kw["brightness"] * kw.pop("sign")
    return kw


def apply_record(image: np.ndarray, record: Mapping[str, Any]) -> np.ndarray:
    """Replay a record returned by :func:`apply_random` (same image in, same pixels out)."""
    name = record["name"]
    try:
        deg = DEGRADATIONS[name]
    except KeyError:
        raise KeyError(f"unknown degradation {name!r}; known: {', '.join(DEGRADATIONS)}") from None
    return deg.function(image, **_resolve_params(name, record["params"]))


def apply_random(
    image: np.ndarray,
    rng: np.random.Generator,
    box: Sequence[float] | None = None,
    *,
    names: Sequence[str] | None = None,
    levels: Sequence[str] = LEVELS,
) -> tuple[np.ndarray, dict]:
    """Apply one degradation chosen at random; return ``(image, record)``.

    Draw order (fixed, so a seed reproduces a run): the name uniformly from ``names`` (default: all of
    :data:`DEGRADATIONS`, in table order), then the level uniformly from ``levels``, then the free parameters.
    ``box`` (x, y, w, h) is the face box that occlusion covers (None: the whole image).
    The record is ``{"name", "level", "params"}`` with JSON-serialisable ``params``.
    """
    image = _check(image)
    names = list(DEGRADATIONS) if names is None else list(names)
    levels = list(levels)
    if not names or not levels:
        raise ValueError("apply_random needs at least one degradation name and one level")
    name = names[int(rng.integers(len(names)))]
    deg = DEGRADATIONS[name]
    level = levels[int(rng.integers(len(levels)))]
    if level not in deg.levels:
        raise ValueError(f"unknown level {level!r} for {name}; known: {', '.join(deg.levels)}")
    params = {**deg.levels[level], **deg.draw(rng, image.shape, box)}
    record = {"name": name, "level": level, "params": params}
    return apply_record(image, record), record
