"""The face pipeline: decode an image, find its face (5 landmarks), align it onto the ArcFace template.

Cheap to import: OpenCV and onnxruntime are imported only when an image is decoded or a detector runs.
"""

from __future__ import annotations

from fiqa_bench.faces.align import ARCFACE_TEMPLATE, align_face, align_faces, arcface_template, similarity_transform
from fiqa_bench.faces.detect import (
    SCRFD_WEIGHTS,
    YUNET_WEIGHTS,
    Detection,
    ScrfdDetector,
    YuNetDetector,
    detect_face,
    make_detector,
    select_face,
)
from fiqa_bench.faces.io import load_image
from fiqa_bench.faces.pipeline import Face, fallback_landmarks, load_face, to_input

__all__ = [
    "ARCFACE_TEMPLATE",
    "Detection",
    "Face",
    "SCRFD_WEIGHTS",
    "ScrfdDetector",
    "YUNET_WEIGHTS",
    "YuNetDetector",
    "align_face",
    "align_faces",
    "arcface_template",
    "detect_face",
    "fallback_landmarks",
    "load_face",
    "load_image",
    "make_detector",
    "select_face",
    "similarity_transform",
    "to_input",
]
