"""ArcFace 5-point alignment: the similarity transform that puts a face's landmarks onto the ArcFace template.

Landmark order everywhere in fiqa-bench (= YuNet's output order = the ArcFace template's order): image-left eye,
image-right eye, nose tip, image-left mouth corner, image-right mouth corner ("image-left" is the subject's
right). Coordinates are in pixels with the centre of the top-left pixel at (0, 0), as OpenCV uses them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: The ArcFace (insightface) 112x112 template, in the landmark order above.
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)
ARCFACE_TEMPLATE.setflags(write=False)


def arcface_template(size: int = 112) -> np.ndarray:
    """The template for a ``size`` x ``size`` crop: ``ARCFACE_TEMPLATE * size / 112`` (float32, (5, 2)).

    Plain scaling about the origin, as insightface's ``norm_crop`` does for sizes that are multiples of 112:
    the crop covers the same part of the face at every size. (Resizing a 112 crop with ``cv2.resize`` would put
    the points at ``(p + 0.5) * size / 112 - 0.5`` instead, at most 0.5 * |1 - size/112| px away. insightface's
    special 128 layout, which adds an 8 px margin on x, is *not* used.)
    """
    size = int(size)
    if size <= 0:
        raise ValueError(f"template size must be positive, got {size}")
    return (ARCFACE_TEMPLATE.astype(np.float64) * (size / 112.0)).astype(np.float32)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection) mapping ``src`` onto ``dst``.

    Umeyama (1991): closed form from the SVD of the cross-covariance. Returns the (2, 3) float64 matrix ``M`` with
    ``dst ~ M[:, :2] @ p + M[:, 2]``, ready for ``cv2.warpAffine``.
    """
    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    if src.shape != dst.shape or src.shape[0] < 2:
        raise ValueError(f"need two matching point sets of >= 2 points, got {src.shape} and {dst.shape}")
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise ValueError("landmarks contain NaN or inf")
    n = src.shape[0]
    src_mean = src.mean(axis=0)
    dst_mean = dst.mean(axis=0)
    src_c = src - src_mean
    dst_c = dst - dst_mean
    src_var = float((src_c**2).sum()) / n
    if src_var <= 1e-12:
        raise ValueError("source landmarks are all at the same point")
    cov = dst_c.T @ src_c / n
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # best orthogonal fit is a reflection: flip the weakest axis
        d[-1] = -1.0
    rotation = u @ np.diag(d) @ vt
    scale = float((s * d).sum()) / src_var
    translation = dst_mean - scale * rotation @ src_mean
    m = np.empty((2, 3), dtype=np.float64)
    m[:, :2] = scale * rotation
    m[:, 2] = translation
    return m


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """Warp ``image`` so that ``landmarks`` (5, 2) land on :func:`arcface_template` (``size``).

    Bilinear interpolation, black outside the image. Returns uint8 (size, size, 3) in the input's colour order.
    """
    import cv2

    image = np.asarray(image)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape != (5, 2):
        raise ValueError(f"landmarks must have shape (5, 2), got {landmarks.shape}")
    m = similarity_transform(landmarks, arcface_template(size))
    return cv2.warpAffine(
        image,
        m,
        (int(size), int(size)),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )


def similarity_transforms(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """:func:`similarity_transform` of each of ``src`` (N, P, 2) onto ``dst`` (P, 2) at once: (N, 2, 3) float64.

    The same operations in the same order on stacked arrays (the SVDs and determinants are LAPACK calls per
    matrix, as for one), so each matrix equals :func:`similarity_transform`'s bit for bit (tests pin it on
    real and random landmark sets); a tenth of the cost of a Python loop over it. A set that the single
    function would refuse raises its error."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    if src.ndim != 3 or src.shape[1:] != dst.shape or dst.shape[0] < 2:
        raise ValueError(f"need (N, {dst.shape[0]}, 2) point sets for a ({dst.shape[0]}, 2) target, got {src.shape}")
    k, n = src.shape[0], src.shape[1]
    if not len(src):
        return np.zeros((0, 2, 3), dtype=np.float64)
    src_mean = src.mean(axis=1)
    dst_mean = dst.mean(axis=0)
    src_c = src - src_mean[:, None, :]
    dst_c = dst - dst_mean
    src_var = (src_c**2).reshape(k, -1).sum(axis=1) / n
    if not (np.isfinite(src).all() and np.isfinite(dst).all()) or (src_var <= 1e-12).any():
        for one in src:  # the single function names the problem
            similarity_transform(one, dst)
    cov = dst_c.T @ src_c / n
    u, s, vt = np.linalg.svd(cov)
    d = np.ones((k, 2))
    d[np.linalg.det(u) * np.linalg.det(vt) < 0, -1] = -1.0  # reflections: flip the weakest axis
    diag = np.zeros((k, 2, 2))
    diag[:, 0, 0], diag[:, 1, 1] = d[:, 0], d[:, 1]
    rotation = u @ diag @ vt
    scale = (s * d).sum(axis=1) / src_var
    m = np.empty((k, 2, 3), dtype=np.float64)
    m[:, :, :2] = scale[:, None, None] * rotation
    m[:, :, 2] = dst_mean - (m[:, :, :2] @ src_mean[:, :, None])[:, :, 0]
    return m


def align_faces(images: Sequence[np.ndarray], landmarks_list: Sequence[np.ndarray], size: int = 112) -> np.ndarray:
    """:func:`align_face` over a batch: uint8 (N, size, size, 3), the same pixels (one transform call for all,
    each crop warped straight into the output)."""
    import cv2

    if len(images) != len(landmarks_list):
        raise ValueError(f"{len(images)} images but {len(landmarks_list)} landmark sets")
    size = int(size)
    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    if not len(images):
        return out
    landmarks = np.stack([np.asarray(lm, dtype=np.float64) for lm in landmarks_list])
    if landmarks.shape[1:] != (5, 2):
        raise ValueError(f"landmarks must have shape (5, 2), got {landmarks.shape[1:]}")
    matrices = similarity_transforms(landmarks, arcface_template(size))
    for i, image in enumerate(images):
        image = np.asarray(image)
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            out[i] = align_face(image, landmarks_list[i], size)  # what align_face makes of it
            continue
        cv2.warpAffine(
            image,
            matrices[i],
            (size, size),
            dst=out[i],
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0, 0, 0),
        )
    return out
