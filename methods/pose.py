"""``pose``: how frontal the face is, from its 5 landmarks: q = cos(yaw) * cos(pitch).

The paper's perceptual "Pose" baseline (tinyFQnet paper, Sec. 4.1 and Tables 3-5, no recipe given): a face turned
away from the camera shows less of itself to the recogniser. Recipe, exactly:

1. **Model.** :data:`REFERENCE_MODEL_MM`, a rigid 3-D model of the five points in mm (x to the image's right,
   y down, z away from the camera; origin at the midpoint of the eyes). Derived, not copied: the orthographic
   factorisation of Tomasi & Kanade (1992) of 2,099 YuNet landmark sets (1,499 CelebA-wild loose crops, 600 LFW
   crops; each also mirrored with left and right swapped, so the model is bilaterally symmetric), rank 3 with the
   scaled-orthographic metric upgrade (:func:`reference_model_from_landmarks`); axes: x along the eye and mouth
   lines, y from the eyes to the mouth in the face plane, so **zero pitch means the eye midpoint and the mouth
   midpoint are at the same distance from the camera**; scaled to an interpupillary distance of 63 mm (adult mean,
   Dodgson 2004, SPIE 5291). Its frontal layout is that of the YuNet points (eye-to-mouth height = 0.98 x eye
   distance), not the ArcFace template's (1.15 x; the median YuNet and SCRFD faces give 1.00-1.06). The nose tip comes
   out 30.4 mm in front of the eye-mouth plane; an independent fit of the nose's sideways offset against the
   foreshortening of the eye distance over the same faces gives 30-34 mm. ``python
   benchmarks/calibrate_combination.py pose-model`` re-derives the model from the shared data.
2. **Camera.** A pinhole camera centred on the face: principal point at the centroid of the 5 landmarks, focal
   length ``f = VIEW_DISTANCE_MM * s`` (``s`` = px per mm, the RMS spread of the landmarks about their centroid
   over the model's frontal spread), no distortion. That puts the face on the optical axis 1 m from the camera,
   whatever the crop: the pose is relative to the line of sight, which is what decides how the face looks. (With
   the image centre and ``f = image width``, a frontal face at the edge of a wide photo would read as turned by the
   angle of its ray, and a 150 px LFW crop would be seen as from 27 cm; ``estimate_pose(..., camera="image")``
   gives that variant.)
3. **Solver.** ``cv2.solvePnP`` with ``SOLVEPNP_SQPNP`` (globally optimal, no initial guess), refined by
   ``SOLVEPNP_ITERATIVE`` (Levenberg-Marquardt on the reprojection error) from that solution.
4. **Angles** (degrees) of ``R = Rz(roll) @ Ry(yaw) @ Rx(pitch)`` (model -> camera): yaw > 0 turns the nose to
   the image's left (the subject's right), pitch > 0 tilts it down, roll > 0 turns the eye line clockwise on
   screen. Mirroring the image negates yaw and roll; rotating it in-plane adds to roll only.
5. **Quality** ``q = cos(yaw) * cos(pitch) = R[2, 2]``: the cosine of the angle between the face's forward axis
   and the line of sight, i.e. the foreshortening of the face plane (its projected area shrinks by that factor).
   Roll is ignored because the ArcFace alignment removes it. Clipped to [0, 1]; landmarks that are not finite or
   all at one point give 0.

Limitations: 5 points give 10 equations for 6 unknowns, and 4 of the points are nearly coplanar, so pitch rests
on the nose alone (and on expression: an open mouth reads as pitch); the model is one mean face (identity and
expression shift yaw and pitch by a few degrees); the landmarks' noise dominates: on the same 798 LFW and
CelebA-wild photos, YuNet's and SCRFD's points give yaws that differ by 3-4 deg (median; 10-13 at the 95th
percentile) and pitches by 7 deg (median), and YuNet is neither mirror- nor rotation-consistent (a mirrored photo's
yaw is off by 4 deg median; a photo turned in-plane by 20 deg turns YuNet's eye line by only 6-12 deg), while
SCRFD is within 1-1.5 deg median on both; the calibration faces reach about 50 deg of yaw, beyond which the
model is untested. A dense
3DMM fit such as 3DDFA-V2 (weights in ``shared/models/3ddfa_v2``; needs torch or an ONNX export) would be more
accurate and could replace the solver behind the same :func:`estimate_pose`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from fiqa_bench.api import QualityMethod
from fiqa_bench.api.cards import InputSpec, MethodCard

#: The 5 points in fiqa-bench order (image-left eye, image-right eye, nose tip, image-left mouth corner,
#: image-right mouth corner), in mm; x right, y down, z away from the camera, origin at the eye midpoint.
REFERENCE_MODEL_MM = np.array(
    [
        [-31.50, 0.00, 0.00],
        [31.50, 0.00, 0.00],
        [0.00, 32.45, -30.42],
        [-26.85, 61.75, 0.00],
        [26.85, 61.75, 0.00],
    ],
    dtype=np.float64,
)
REFERENCE_MODEL_MM.setflags(write=False)
#: Scale of the model: the adult mean interpupillary distance (Dodgson 2004).
INTERPUPILLARY_MM = 63.0
#: Distance from the virtual camera to the face (sets the strength of perspective).
VIEW_DISTANCE_MM = 1000.0
#: Landmark order after a horizontal flip (left and right swap).
MIRROR_ORDER = (1, 0, 2, 4, 3)
CAMERAS = ("face", "image")


# ------------------------------------------------------------------------------------------ the reference model
def _quadratic_row(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Coefficients of a^T L b in the 6 unknowns of a symmetric 3x3 L (l00, l01, l02, l11, l12, l22)."""
    return np.array(
        [
            a[0] * b[0],
            a[0] * b[1] + a[1] * b[0],
            a[0] * b[2] + a[2] * b[0],
            a[1] * b[1],
            a[1] * b[2] + a[2] * b[1],
            a[2] * b[2],
        ]
    )


def reference_model_from_landmarks(landmark_sets: Any, interpupillary_mm: float = INTERPUPILLARY_MM) -> np.ndarray:
    """A symmetric rigid 3-D model (5, 3) in mm from many 2-D landmark sets (N, 5, 2) of faces in varied poses.

    Tomasi-Kanade factorisation under scaled orthography: each set (and its mirror image, left and right swapped)
    is centred and scaled to unit RMS, the 2N x 5 measurement matrix is cut to rank 3, and the affine ambiguity is
    removed by asking every view's two camera rows to be orthogonal and of equal length (least squares for
    ``L = Q Q^T``, normalised to a mean squared row length of 1). The result is put in the frame of
    :data:`REFERENCE_MODEL_MM` (x along the eye and mouth lines, y from the eye midpoint to the mouth midpoint,
    nose towards the camera), scaled to ``interpupillary_mm`` and made exactly symmetric.
    """
    sets = np.asarray(landmark_sets, dtype=np.float64).reshape(-1, 5, 2)
    sets = sets[np.isfinite(sets).all(axis=(1, 2))]
    mirrored = sets[:, MIRROR_ORDER] * np.array([-1.0, 1.0])
    views = np.concatenate([sets, mirrored])
    views = views - views.mean(axis=1, keepdims=True)
    rms = np.sqrt((views**2).sum(axis=(1, 2)) / 5.0)
    views = views[rms > 1e-9] / rms[rms > 1e-9, None, None]
    n = len(views)
    if n < 10:
        raise ValueError(f"need at least 5 usable landmark sets, got {n // 2}")
    w = np.concatenate([views[:, :, 0], views[:, :, 1]])  # (2n, 5): every view's x row, then every y row
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    motion = u[:, :3] * np.sqrt(s[:3])
    shape = np.sqrt(s[:3])[:, None] * vt[:3]
    rows_x, rows_y = motion[:n], motion[n:]
    a = np.array(
        [
            r
            for mx, my in zip(rows_x, rows_y)
            for r in (_quadratic_row(mx, mx) - _quadratic_row(my, my), _quadratic_row(mx, my))
        ]
    )
    c = np.mean([_quadratic_row(mx, mx) for mx in rows_x], axis=0)
    # minimise |A l|^2 subject to c . l = 1 (Lagrange): l = (A^T A)^-1 c / (c^T (A^T A)^-1 c)
    g = np.linalg.solve(a.T @ a, c)
    l = g / float(c @ g)
    gram = np.array([[l[0], l[1], l[2]], [l[1], l[3], l[4]], [l[2], l[4], l[5]]])
    try:
        q = np.linalg.cholesky(gram)
    except np.linalg.LinAlgError:
        raise ValueError("metric upgrade failed: the landmark sets do not vary enough in pose") from None
    points = (np.linalg.solve(q, shape)).T  # (5, 3), an arbitrary rotation of the face
    eyes_l, eyes_r, nose, mouth_l, mouth_r = points
    ex = (eyes_r - eyes_l) + (mouth_r - mouth_l)
    ex /= np.linalg.norm(ex)
    ey = (mouth_l + mouth_r - eyes_l - eyes_r) / 2.0
    ey -= ex * float(ey @ ex)
    ey /= np.linalg.norm(ey)
    frame = np.stack([ex, ey, np.cross(ex, ey)])
    model = (points - (eyes_l + eyes_r) / 2.0) @ frame.T
    if model[2, 2] > 0:  # depth is only known up to a reflection: the nose points at the camera
        model[:, 2] *= -1.0
    model *= interpupillary_mm / np.linalg.norm(model[1] - model[0])
    return 0.5 * (model + model[list(MIRROR_ORDER)] * np.array([-1.0, 1.0, 1.0]))


# ------------------------------------------------------------------------------------------ pose
def _camera(lm: np.ndarray, image_shape: Sequence[int] | None, camera: str) -> np.ndarray:
    if camera == "face":
        centre = lm.mean(axis=0)
        model_xy = REFERENCE_MODEL_MM[:, :2]
        spread_px = np.sqrt(((lm - centre) ** 2).sum() / 5.0)
        spread_mm = np.sqrt(((model_xy - model_xy.mean(axis=0)) ** 2).sum() / 5.0)
        f = VIEW_DISTANCE_MM * spread_px / spread_mm
        cx, cy = centre
    elif camera == "image":
        if image_shape is None:
            raise ValueError("camera='image' needs image_shape")
        h, w = int(image_shape[0]), int(image_shape[1])
        f, cx, cy = float(w), (w - 1) / 2.0, (h - 1) / 2.0
    else:
        raise ValueError(f"camera must be one of {CAMERAS}, got {camera!r}")
    return np.array([[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]])


def pose_rotation(landmarks: Any, image_shape: Sequence[int] | None = None, camera: str = "face") -> np.ndarray | None:
    """The rotation (3, 3) taking :data:`REFERENCE_MODEL_MM` into the camera frame, or None when the landmarks are
    not finite, all at one point, or the solver fails."""
    import cv2

    lm = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    if not np.isfinite(lm).all() or np.sqrt(((lm - lm.mean(axis=0)) ** 2).sum() / 5.0) < 1e-6:
        return None
    k = _camera(lm, image_shape, camera)
    try:
        ok, rvec, tvec = cv2.solvePnP(REFERENCE_MODEL_MM, lm, k, None, flags=cv2.SOLVEPNP_SQPNP)
        if not ok:
            return None
        ok, rvec, tvec = cv2.solvePnP(REFERENCE_MODEL_MM, lm, k, None, rvec, tvec, True, cv2.SOLVEPNP_ITERATIVE)
    except cv2.error:
        return None
    if not ok or not (np.isfinite(rvec).all() and np.isfinite(tvec).all()):
        return None
    rotation, _ = cv2.Rodrigues(rvec)
    return rotation


def euler_angles(rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of ``rotation = Rz(roll) @ Ry(yaw) @ Rx(pitch)``; yaw in [-90, 90]."""
    r = np.asarray(rotation, dtype=np.float64)
    yaw = np.degrees(np.arcsin(np.clip(-r[2, 0], -1.0, 1.0)))
    pitch = np.degrees(np.arctan2(r[2, 1], r[2, 2]))
    roll = np.degrees(np.arctan2(r[1, 0], r[0, 0]))
    return float(yaw), float(pitch), float(roll)


def estimate_pose(
    landmarks: Any, image_shape: Sequence[int] | None = None, camera: str = "face"
) -> tuple[float, float, float]:
    """Head pose (yaw, pitch, roll) in degrees from 5 landmarks (fiqa-bench order, image pixels).

    ``camera="face"`` (default; ``image_shape`` unused): principal point at the landmark centroid, the face 1 m
    away. ``camera="image"``: principal point at the centre of ``image_shape`` (H, W, ...), focal length = W.
    Sign conventions in the module docstring. NaN for all three when no pose can be computed.
    """
    rotation = pose_rotation(landmarks, image_shape, camera)
    if rotation is None:
        return float("nan"), float("nan"), float("nan")
    return euler_angles(rotation)


def pose_quality(landmarks: Any) -> float:
    """cos(yaw) * cos(pitch) of the face camera's pose, clipped to [0, 1]; 0 when no pose can be computed."""
    rotation = pose_rotation(landmarks)
    if rotation is None:
        return 0.0
    return float(np.clip(rotation[2, 2], 0.0, 1.0))


class PoseQuality(QualityMethod):
    """Frontality cos(yaw) cos(pitch) from a 5-point PnP head pose; higher = more frontal."""

    card = MethodCard(
        name="pose",
        version="1",
        summary=(
            "Head pose: cv2.solvePnP (SQPNP, then ITERATIVE) of the 5 landmarks onto a 5-point 3-D mean face "
            "(orthographic factorisation of YuNet landmarks on LFW + CelebA, interpupillary 63 mm), pinhole camera "
            "centred on the landmarks 1 m away; q = cos(yaw) * cos(pitch) (roll ignored: alignment removes it), "
            "clipped to [0, 1]"
        ),
        licence="MIT",
        paper=(
            "tinyFQnet paper's perceptual 'Pose' baseline (Sec. 4.1, Tables 3-5; recipe not given). Model: "
            "C. Tomasi, T. Kanade, 'Shape and motion from image streams under orthography: a factorization method', "
            "IJCV 9(2), 1992; solver: G. Terzakis, M. Lourakis, 'A consistently fast and globally optimal solution "
            "to the perspective-n-point problem' (SQPnP), ECCV 2020"
        ),
        input=InputSpec("face"),
        higher_is_better=True,
        score_range="[0, 1], 1 = frontal; cosine of the angle between face axis and line of sight",
        weights=None,
    )

    def identity(self) -> str:
        """The model and camera constants are part of the method: changing them never reuses cached scores."""
        blob = REFERENCE_MODEL_MM.tobytes() + repr(VIEW_DISTANCE_MM).encode()
        return f"{super().identity()}-m{hashlib.sha256(blob).hexdigest()[:12]}"

    def score(self, images: Sequence[Any]) -> np.ndarray:
        out = np.empty(len(images), dtype=np.float32)
        for i, face in enumerate(images):
            out[i] = pose_quality(face.landmarks)
        return out
