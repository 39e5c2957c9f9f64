"""From files to what adapters receive: a :class:`Face` per image, turned into the input an :class:`InputSpec` asks
for."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fiqa_bench.api.cards import InputSpec
from fiqa_bench.faces.align import ARCFACE_TEMPLATE, align_faces

ON_NO_FACE = ("error", "skip", "center")


@dataclass(eq=False)
class Face:
    """A decoded image and where its face is.

    ``image``: uint8 (H, W, 3) BGR as decoded; ``landmarks``: float32 (5, 2) in image pixels (fiqa-bench order);
    ``box``: float32 (x, y, w, h) or None when the landmarks came from a protocol file or the fallback;
    ``detected``: the landmarks come from a detector run; ``fallback``: no face was found and
    :func:`fallback_landmarks` was used (``--on-no-face center``); ``stat``: see the field.
    """

    image: np.ndarray
    landmarks: np.ndarray
    box: np.ndarray | None = None
    path: str = ""
    detected: bool = False
    fallback: bool = False
    stat: tuple[int, int] | None = None  # (size, mtime_ns) of the bytes decoded: the file's part of its cache key

    def __post_init__(self) -> None:
        self.landmarks = np.asarray(self.landmarks, dtype=np.float32).reshape(5, 2)
        if self.box is not None:
            self.box = np.asarray(self.box, dtype=np.float32).reshape(4)


def fallback_landmarks(image_shape: tuple[int, ...]) -> np.ndarray:
    """Landmarks for an image in which no face was found: the ArcFace template on the centred square.

    Assumes the image is a tight, upright, centred face crop framed like an ArcFace 112x112 crop: the template is
    scaled by ``min(h, w) / 112`` and placed on the centred ``min(h, w)`` square, so aligning with these
    landmarks is just a resize of that square. Wrong for loose crops or full photos (the face is then smaller
    than assumed), which is why it is used only when the user asks for it (``--on-no-face center``).
    """
    h, w = int(image_shape[0]), int(image_shape[1])
    side = min(h, w)
    scale = side / 112.0
    offset = np.array([(w - side) / 2.0, (h - side) / 2.0])
    return (ARCFACE_TEMPLATE.astype(np.float64) * scale + offset).astype(np.float32)


def load_face(
    path: str | os.PathLike,
    detector=None,
    landmarks: np.ndarray | None = None,
    pad: float = 0.0,
    on_no_face: str = "error",
) -> Face | None:
    """Decode ``path`` and locate its face: given ``landmarks`` (if finite) win, else ``detector`` is run.

    ``on_no_face``: ``error`` raises :class:`fiqa_bench.errors.NoFaceError`, ``skip`` returns None, ``center``
    returns a Face with :func:`fallback_landmarks` and ``fallback=True``.
    """
    from fiqa_bench.errors import NoFaceError
    from fiqa_bench.faces.detect import detect_face
    from fiqa_bench.faces.io import load_image

    if on_no_face not in ON_NO_FACE:
        raise ValueError(f"on_no_face must be one of {ON_NO_FACE}, got {on_no_face!r}")
    image = load_image(path)
    if landmarks is not None:
        lm = np.asarray(landmarks, dtype=np.float32).reshape(5, 2)
        if np.isfinite(lm).all():
            return Face(image, lm, None, str(path), detected=False, fallback=False)
    det = detect_face(detector, image, pad) if detector is not None else None
    if det is not None:
        return Face(image, det.landmarks, det.box, str(path), detected=True, fallback=False)
    if on_no_face == "center":
        return Face(image, fallback_landmarks(image.shape), None, str(path), detected=False, fallback=True)
    if on_no_face == "skip":
        return None
    raise NoFaceError(path, "no face detected" if detector is not None else "no landmarks and no detector given")


def _convert_colour(crops: np.ndarray, colour: str) -> np.ndarray:
    if colour == "BGR":
        return crops
    if colour == "RGB":
        if len(crops) == 0:
            return crops
        import cv2

        # the channel swap as one OpenCV call over the batch: the same bytes, 30x faster than numpy's copy
        n, h, w, _ = crops.shape
        return cv2.cvtColor(crops.reshape(n * h, w, 3), cv2.COLOR_BGR2RGB).reshape(n, h, w, 3)
    if colour == "GRAY":
        import cv2

        # cv2's BGR->grey (BT.601 luma), repeated on 3 channels so every adapter gets (N, S, S, 3).
        if len(crops) == 0:
            return crops
        n, h, w, _ = crops.shape
        grey = cv2.cvtColor(crops.reshape(n * h, w, 3), cv2.COLOR_BGR2GRAY).reshape(n, h, w)
        return np.repeat(grey[..., None], 3, axis=-1)
    raise ValueError(f"unknown colour {colour!r}")


def to_input(faces: Sequence[Face], spec: InputSpec):
    """What an adapter with input ``spec`` receives for ``faces``.

    ``aligned``: uint8 (N, size, size, 3) ArcFace-aligned crops in ``spec.colour`` (GRAY: 3 equal channels);
    ``face``: the list of :class:`Face` itself.
    """
    if spec.kind == "face":
        return list(faces)
    crops = align_faces([f.image for f in faces], [f.landmarks for f in faces], spec.size)
    return _convert_colour(crops, spec.colour)
