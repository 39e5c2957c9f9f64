"""dlib's 128-d ResNet face descriptor, with dlib's own 5-point chip extraction (``dlib``).

dlib's network was trained on chips cut by ``get_face_chip`` from its own 5-point landmarks (eye corners and
nose base, not eye centres), and its 5-point shape predictor was trained on boxes from dlib's HOG face
detector. So this backbone does what dlib intends: it turns the pipeline's face into a dlib-detector-like
square box, runs the 5-point predictor in it, cuts the 150x150 chip with padding 0.25, and describes it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fiqa_bench.api import Backbone
from fiqa_bench.api.cards import BackboneCard, InputSpec, Weights
from fiqa_bench.errors import AdapterError, MissingDependencyError

RECOGNITION_FILE = "dlib_face_recognition_resnet_model_v1.dat"
RECOGNITION_SHA256 = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"
SHAPE_FILE = "shape_predictor_5_face_landmarks.dat"
SHAPE_SHA256 = "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888"
INSTALL_HINT = "pip install 'fiqa-bench[dlib]'  (installs dlib-bin and face-recognition-models)"

#: dlib's HOG detector box as a function of the 5 ArcFace-order landmarks, fitted on 7,647 LFW faces where
#: both dlib's detector and YuNet found the face: a square centred on the landmarks' mean, side
#: ``BOX_SCALE`` x the mean of the eye distance and the eye-to-mouth distance (median ratio; 10% spread).
BOX_SCALE = 2.29


def models_dir() -> Path:
    """Folder holding dlib's model files (found without importing face_recognition_models: its import needs
    pkg_resources, which recent setuptools no longer provides)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(f"the dlib backbone needs the face-recognition-models package: {INSTALL_HINT}")
    for loc in spec.submodule_search_locations:
        d = Path(loc) / "models"
        if (d / RECOGNITION_FILE).is_file():
            return d
    raise MissingDependencyError(
        f"face-recognition-models is installed but {RECOGNITION_FILE} is missing from it; reinstall: {INSTALL_HINT}"
    )


def _import_dlib():
    try:
        import dlib
    except ImportError as exc:
        raise MissingDependencyError(f"the dlib backbone needs dlib: {INSTALL_HINT}") from exc
    return dlib


def dlib_box(landmarks: np.ndarray) -> tuple[float, float, float, float]:
    """A dlib-detector-like square (left, top, right, bottom) from 5 landmarks in ArcFace order."""
    lm = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    eye_distance = np.linalg.norm(lm[1] - lm[0])
    eye_to_mouth = np.linalg.norm((lm[3] + lm[4]) / 2 - (lm[0] + lm[1]) / 2)
    half = BOX_SCALE * (eye_distance + eye_to_mouth) / 4
    cx, cy = lm.mean(axis=0)
    return cx - half, cy - half, cx + half, cy + half


class DlibResNet(Backbone):
    """dlib_face_recognition_resnet_model_v1 on dlib 5-point chips (150x150, padding 0.25)."""

    OPTION_HELP = {"flip": "add the mirrored chip's features (or --flip)", "batch_size": "chips per dlib call"}

    argument: ClassVar[str | None] = None
    card = BackboneCard(
        name="dlib",
        version="1",
        summary="dlib ResNet-29 face descriptor (99.38% LFW as published); dlib 5-point landmarks + face chip",
        licence="model files CC0 (dlib-models, via face-recognition-models); dlib: Boost Software License",
        paper="D. E. King, 'Dlib-ml: A Machine Learning Toolkit', JMLR 10, 2009; "
        "http://blog.dlib.net/2017/02/high-quality-face-recognition-with-deep.html",
        input=InputSpec("face"),
        normalisation="dlib shape_predictor_5 in a dlib-detector-like box from the 5 landmarks, "
        "get_face_chip(size=150, padding=0.25), RGB (dlib scales pixels internally)",
        embedding_dim=128,
        weights=Weights(
            RECOGNITION_FILE,
            sha256=RECOGNITION_SHA256,
            note=f"{RECOGNITION_FILE} (sha256 {RECOGNITION_SHA256[:12]}...) and {SHAPE_FILE} "
            f"(sha256 {SHAPE_SHA256[:12]}...) from PyPI face-recognition-models, installed by "
            f"pip install 'fiqa-bench[dlib]'",
        ),
    )

    def __init__(self, flip: bool = False, batch_size: int = 32):
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.flip = bool(flip)
        self.batch_size = int(batch_size)
        self._models = None

    def identity(self) -> str:
        return (
            f"{self.card.name}-{self.card.version}-chip150pad0.25-flip{int(self.flip)}"
            f"-sha256-{RECOGNITION_SHA256}-{SHAPE_SHA256[:16]}-{self.card.card_hash()}"
        )

    def _load(self):
        if self._models is None:
            from fiqa_bench.data.download import verify_local

            dlib = _import_dlib()
            d = models_dir()
            rec = verify_local(d / RECOGNITION_FILE, RECOGNITION_SHA256)
            shape = verify_local(d / SHAPE_FILE, SHAPE_SHA256)
            self._models = (dlib, dlib.shape_predictor(str(shape)), dlib.face_recognition_model_v1(str(rec)))
        return self._models

    def chip(self, face: Any) -> np.ndarray:
        """The 150x150 RGB chip dlib's network sees for ``face`` (a ``fiqa_bench.faces.Face``)."""
        dlib, predictor, _ = self._load()
        image = np.asarray(face.image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise AdapterError(f"dlib: expected a BGR uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
        rgb = np.ascontiguousarray(image[:, :, ::-1])
        left, top, right, bottom = dlib_box(face.landmarks)
        rect = dlib.rectangle(int(round(left)), int(round(top)), int(round(right)), int(round(bottom)))
        shape = predictor(rgb, rect)
        return dlib.get_face_chip(rgb, shape, size=150, padding=0.25)

    def embed(self, images: Sequence[Any]) -> np.ndarray:
        """Raw float32 (N, 128) descriptors of a list of ``Face`` (image BGR uint8, 5 landmarks)."""
        _, _, net = self._load()
        faces = list(images)
        out = np.zeros((len(faces), 128), np.float32)
        for start in range(0, len(faces), self.batch_size):
            chips = [self.chip(f) for f in faces[start : start + self.batch_size]]
            if self.flip:
                chips += [np.ascontiguousarray(c[:, ::-1]) for c in chips]
            desc = np.asarray(net.compute_face_descriptor(chips), np.float32).reshape(len(chips), 128)
            n = len(chips) // 2 if self.flip else len(chips)
            out[start : start + n] = desc[:n] + desc[n:] if self.flip else desc
        return out
