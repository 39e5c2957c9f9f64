"""Real faces for the tests of the training-free methods: LFW photos with YuNet landmarks, and degraded copies."""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: three identities with two photos each, then two single photos of two more (LFW View 2 images)
LFW_IMAGES = (
    "Aaron_Peirsol/Aaron_Peirsol_0001.jpg",
    "Aaron_Peirsol/Aaron_Peirsol_0003.jpg",
    "Aaron_Sorkin/Aaron_Sorkin_0001.jpg",
    "Aaron_Sorkin/Aaron_Sorkin_0002.jpg",
    "Abdoulaye_Wade/Abdoulaye_Wade_0001.jpg",
    "Abdoulaye_Wade/Abdoulaye_Wade_0002.jpg",
    "Abel_Pacheco/Abel_Pacheco_0001.jpg",
    "Abdullah/Abdullah_0001.jpg",
)


def lfw_faces(shared: Path, names=LFW_IMAGES) -> list:
    """``Face`` objects (decoded BGR photo, YuNet landmarks with the LFW protocol's padding) for ``names``."""
    from fiqa_bench.faces import Face, detect_face, load_image, make_detector

    det = make_detector("yunet")
    out = []
    for rel in names:
        path = shared / "data/lfw/lfw" / rel
        image = load_image(path)
        found = detect_face(det, image, pad=0.25)
        assert found is not None, rel
        out.append(Face(image, found.landmarks, found.box, rel, detected=True))
    return out


def degraded(faces: list, kind: str = "blur") -> list:
    """The same faces (same landmarks) after a strong degradation of the whole photo."""
    import cv2

    from fiqa_bench.faces import Face

    out = []
    for f in faces:
        if kind == "blur":
            img = cv2.GaussianBlur(f.image, (0, 0), 4.0)
        elif kind == "downscale":
            h, w = f.image.shape[:2]
            img = cv2.resize(
                cv2.resize(f.image, (w // 8, h // 8), interpolation=cv2.INTER_AREA),
                (w, h),
                interpolation=cv2.INTER_LINEAR,
            )
        else:
            raise ValueError(kind)
        out.append(Face(np.ascontiguousarray(img), f.landmarks, f.box, f.path + f"#{kind}", detected=True))
    return out


def rgb_crops(faces: list) -> np.ndarray:
    from fiqa_bench.api.cards import InputSpec
    from fiqa_bench.faces import to_input

    return to_input(faces, InputSpec("aligned", 112, "RGB"))
