"""Face detectors (YuNet via OpenCV, SCRFD-500M via onnxruntime) and the rule that picks *the* face of an image.

Both detectors return :class:`Detection` objects in the fiqa-bench landmark order (image-left eye, image-right
eye, nose, image-left mouth corner, image-right mouth corner), highest score first. Weights resolve lazily on
first use, so constructing a detector is cheap.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from fiqa_bench.api.cards import Weights

YUNET_WEIGHTS = Weights(
    filename="face_detection_yunet_2026may.onnx",
    url="https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/face_detection_yunet_2026may.onnx",
    sha256="ebafce4e3c118d6554634be5c27ab333b4c047a9a8c3faf1d7cf93101c22f0f0",
)
SCRFD_WEIGHTS = Weights(
    filename="scrfd_500m_kps.onnx",
    url="https://github.com/yakhyo/uniface/releases/download/weights/scrfd_500m_kps.onnx",
    sha256="5e4447f50245bbd7966bd6c0fa52938c61474a04ec7def48753668a9d8b4ea3a",
)

#: Default ``pad`` for tight crops such as LFW's 150x150 (see :func:`detect_face`). Measured on all 7701 LFW
#: View-2 images: YuNet finds every face at any pad in 0..0.5; SCRFD-500M finds almost none unpadded, misses
#: 89 at 0.2 and needs ~0.35 (it is given a 640 px input, and a tight 150 px face blown up to ~450 px is
#: outside its training range). MobileFaceNet LFW accuracy with YuNet landmarks: 98.35% (pad 0), 98.50% (0.2),
#: 98.68% (0.35), 98.60% (0.5).
LFW_PAD = 0.35

# Bumped whenever decoding or post-processing changes, so cached detections are not reused across versions.
_PIPELINE_VERSION = "1"
_CV_LOG_LOCK = threading.Lock()  # OpenCV's log level is process-wide (see YuNetDetector._net)


@dataclass(frozen=True, eq=False)
class Detection:
    """One detected face: ``box`` (x, y, w, h), ``landmarks`` (5, 2) in image pixels, detector ``score``."""

    box: np.ndarray
    landmarks: np.ndarray
    score: float

    def __post_init__(self) -> None:
        box = np.array(self.box, dtype=np.float32).reshape(4)
        lm = np.array(self.landmarks, dtype=np.float32).reshape(5, 2)
        box.setflags(write=False)
        lm.setflags(write=False)
        object.__setattr__(self, "box", box)
        object.__setattr__(self, "landmarks", lm)
        object.__setattr__(self, "score", float(self.score))

    def shifted(self, dx: float, dy: float) -> Detection:
        """The same detection with every coordinate moved by (dx, dy)."""
        box = self.box.copy()
        box[:2] += (dx, dy)
        return Detection(box, self.landmarks + np.array([dx, dy], np.float32), self.score)


class Detector(Protocol):
    def detect(self, image_bgr: np.ndarray) -> list[Detection]: ...

    def identity(self) -> str: ...


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _resolve(model_path: str | Path | None, weights: Weights) -> Path:
    if model_path is not None:
        path = Path(model_path).expanduser()
        if not path.is_file():
            from fiqa_bench.errors import FiqaBenchError

            raise FiqaBenchError(f"{path}: face detector weights not found")
        return path
    from fiqa_bench.data.download import resolve_weights

    return Path(resolve_weights(weights))


@dataclass
class _WeightsFile:
    """Lazily resolved weights path plus its sha256 (for identity())."""

    model_path: str | Path | None
    weights: Weights
    _path: Path | None = field(default=None, init=False, repr=False)
    _sha: str | None = field(default=None, init=False, repr=False)

    def path(self) -> Path:
        if self._path is None:
            self._path = _resolve(self.model_path, self.weights)
        return self._path

    def sha256(self) -> str:
        if self._sha is None:
            self._sha = _sha256_file(self.path())
        return self._sha


def _weights_error(path: str, exc: Exception):
    from fiqa_bench.errors import FiqaBenchError

    last = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    return FiqaBenchError(f"{path}: cannot load face detector weights ({last})")


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"detectors take uint8 (H, W, 3) BGR images, got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)


class YuNetDetector:
    """OpenCV's YuNet (``cv2.FaceDetectorYN``): fast, any input size (the input size is set per image).

    ``min_side`` (default 0 = off): images whose longer side is shorter are enlarged (bilinear) to it before
    detection and the results mapped back. YuNet's landmarks are coarse on small faces; on LFW's 150x150 crops
    (pad 0.2) MobileFaceNet verification accuracy was 98.50% without enlarging, 99.00% with 448 and 98.95% with
    640 (SCRFD's landmarks: 99.07%), at about 4x the detection time. A ``cv2.FaceDetectorYN`` is stateful (its input
    size), so each thread gets its own instance.
    """

    name = "yunet"
    #: YuNet's landmarks move by a few px when the image is shifted by a non-multiple of its largest stride
    #: (32); :func:`detect_face` rounds padding up to this so that padded and unpadded results agree.
    pad_multiple = 32

    def __init__(
        self,
        model_path: str | Path | None = None,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        top_k: int = 50,
        min_side: int = 0,
    ) -> None:
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.top_k = int(top_k)
        self.min_side = int(min_side)
        self._weights = _WeightsFile(model_path, YUNET_WEIGHTS)
        self._local = threading.local()

    def __getstate__(self) -> dict:  # picklable for process pools: the per-thread nets are rebuilt lazily
        state = self.__dict__.copy()
        del state["_local"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    def _net(self):
        net = getattr(self._local, "net", None)
        if net is None:
            import cv2

            path = str(self._weights.path())
            # OpenCV 5 warns on every create that its new graph engine ignores the (default) target: noise. The
            # log level is process-wide and create releases the GIL, so creations in worker threads are serialised:
            # one thread restoring the level must not un-silence another's create (the warning then lands inside
            # the first progress bar).
            with _CV_LOG_LOCK:
                previous = cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
                try:
                    net = cv2.FaceDetectorYN.create(
                        path, "", (320, 320), self.score_threshold, self.nms_threshold, self.top_k
                    )
                except cv2.error as exc:
                    raise _weights_error(path, exc) from None
                finally:
                    cv2.utils.logging.setLogLevel(previous)
            self._local.net = net
        return net

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        image = _check_image(image_bgr)
        h, w = image.shape[:2]
        fx = fy = 1.0
        if self.min_side and max(h, w) < self.min_side:
            import cv2

            f = self.min_side / max(h, w)
            new_w, new_h = max(1, int(round(w * f))), max(1, int(round(h * f)))
            image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
            fx, fy = new_w / w, new_h / h
            h, w = new_h, new_w
        net = self._net()
        net.setInputSize((w, h))
        _, rows = net.detect(image)
        if rows is None:
            return []
        rows = np.asarray(rows, dtype=np.float64).reshape(-1, 15)
        if fx != 1.0 or fy != 1.0:  # back to the caller's pixels (pixel centres at integers, as cv2.resize)
            scale = np.array([fx, fy])
            rows[:, 0:2] = (rows[:, 0:2] + 0.5) / scale - 0.5
            rows[:, 2:4] = rows[:, 2:4] / scale
            rows[:, 4:14] = ((rows[:, 4:14].reshape(-1, 5, 2) + 0.5) / scale - 0.5).reshape(-1, 10)
        dets = [Detection(r[0:4], r[4:14], r[14]) for r in rows]
        dets.sort(key=lambda d: -d.score)
        return dets

    def identity(self) -> str:
        return (
            f"yunet-v{_PIPELINE_VERSION}-{self._weights.sha256()[:16]}"
            f"-score{self.score_threshold:g}-nms{self.nms_threshold:g}-top{self.top_k}-min{self.min_side}"
        )


def nms(boxes_xyxy: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression; returns kept indices, highest score first."""
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    x1, y1, x2, y2 = boxes.T
    areas = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        iw = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        ih = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = iw * ih
        union = areas[i] + areas[rest] - inter
        iou = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


class ScrfdDetector:
    """InsightFace SCRFD-500M with keypoints, run with onnxruntime; decoding written here.

    The image is resized (aspect kept) into the top-left corner of a 640x640 black canvas, converted to RGB and
    normalised as (x - 127.5) / 128. Each stride (8, 16, 32) has 2 anchors per grid cell whose centre is
    (col * stride, row * stride); boxes are (left, top, right, bottom) distances and keypoints offsets from that
    centre, both in units of the stride. ``threads`` sets onnxruntime's intra-op threads (None: its default).
    """

    name = "scrfd"
    input_size = 640
    strides = (8, 16, 32)
    anchors_per_cell = 2

    def __init__(
        self,
        model_path: str | Path | None = None,
        score_threshold: float = 0.5,
        nms_threshold: float = 0.4,
        threads: int | None = None,
    ) -> None:
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.threads = threads
        self._weights = _WeightsFile(model_path, SCRFD_WEIGHTS)
        self._session = None
        self._lock = threading.Lock()
        self._centres: dict[int, np.ndarray] = {}

    def __getstate__(self) -> dict:  # picklable for process pools: the session is rebuilt lazily
        state = self.__dict__.copy()
        state["_session"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _get_session(self):
        with self._lock:
            if self._session is None:
                import onnxruntime as ort

                opts = ort.SessionOptions()
                if self.threads is not None:
                    opts.intra_op_num_threads = int(self.threads)
                    opts.inter_op_num_threads = 1
                opts.log_severity_level = 3
                path = str(self._weights.path())
                try:
                    self._session = ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
                except Exception as exc:  # onnxruntime raises its own, unexported exception types
                    raise _weights_error(path, exc) from None
                self._input_name = self._session.get_inputs()[0].name
        return self._session

    def _anchor_centres(self, stride: int) -> np.ndarray:
        c = self._centres.get(stride)
        if c is None:
            n = self.input_size // stride
            ys, xs = np.mgrid[0:n, 0:n]
            c = np.stack([xs, ys], axis=-1).reshape(-1, 2).astype(np.float32) * stride
            c = np.repeat(c, self.anchors_per_cell, axis=0)  # anchors of one cell are consecutive rows
            self._centres[stride] = c
        return c

    def _letterbox(self, image: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
        import cv2

        h, w = image.shape[:2]
        scale = self.input_size / max(h, w)
        new_w = max(1, min(self.input_size, int(round(w * scale))))
        new_h = max(1, min(self.input_size, int(round(h * scale))))
        canvas = np.zeros((self.input_size, self.input_size, 3), dtype=np.uint8)
        canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        # Effective per-axis scales differ by < 1 px after rounding; use the exact ones when mapping back.
        return canvas, (new_w / w, new_h / h)

    def _group_outputs(self, outputs: list[np.ndarray]) -> dict[int, dict[int, np.ndarray]]:
        """{stride: {1: scores, 4: boxes, 10: keypoints}}, matched by shape, not by output order."""
        rows_to_stride = {(self.input_size // s) ** 2 * self.anchors_per_cell: s for s in self.strides}
        grouped: dict[int, dict[int, np.ndarray]] = {s: {} for s in self.strides}
        for out in outputs:
            out = np.asarray(out, dtype=np.float32)
            width = out.shape[-1]
            out = out.reshape(-1, width)
            stride = rows_to_stride.get(out.shape[0])
            if stride is None or width not in (1, 4, 10):
                raise ValueError(f"unexpected SCRFD output shape {out.shape}")
            grouped[stride][width] = out
        for s, g in grouped.items():
            if set(g) != {1, 4, 10}:
                raise ValueError(f"SCRFD outputs for stride {s} incomplete: {sorted(g)}")
        return grouped

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        import cv2

        image = _check_image(image_bgr)
        canvas, (sx, sy) = self._letterbox(image)
        blob = cv2.dnn.blobFromImage(
            canvas, 1.0 / 128.0, (self.input_size, self.input_size), (127.5, 127.5, 127.5), swapRB=True
        )
        session = self._get_session()
        grouped = self._group_outputs(session.run(None, {self._input_name: blob}))
        all_boxes, all_kps, all_scores = [], [], []
        for stride in self.strides:
            g = grouped[stride]
            scores = g[1][:, 0]
            keep = scores >= self.score_threshold
            if not keep.any():
                continue
            centres = self._anchor_centres(stride)[keep]
            dist = g[4][keep] * stride
            kps = g[10][keep].reshape(-1, 5, 2) * stride
            boxes = np.concatenate([centres - dist[:, :2], centres + dist[:, 2:]], axis=1)
            all_boxes.append(boxes)
            all_kps.append(kps + centres[:, None, :])
            all_scores.append(scores[keep])
        if not all_boxes:
            return []
        boxes = np.concatenate(all_boxes)
        kps = np.concatenate(all_kps)
        scores = np.concatenate(all_scores)
        boxes = boxes / np.array([sx, sy, sx, sy], np.float32)
        kps = kps / np.array([sx, sy], np.float32)
        dets = []
        for i in nms(boxes, scores, self.nms_threshold):
            x1, y1, x2, y2 = boxes[i]
            dets.append(Detection(np.array([x1, y1, x2 - x1, y2 - y1]), kps[i], scores[i]))
        return dets

    def identity(self) -> str:
        return (
            f"scrfd-v{_PIPELINE_VERSION}-{self._weights.sha256()[:16]}"
            f"-score{self.score_threshold:g}-nms{self.nms_threshold:g}"
        )


def make_detector(name: str = "yunet", **kw):
    """A face detector by its registered name (entry-point group ``fiqa_bench.detectors``: ``yunet``, ``scrfd`` and
    any a package registers); keyword arguments go to its constructor."""
    from fiqa_bench import registry
    from fiqa_bench.errors import UnknownNameError

    known = registry.names("detector")
    if name.lower() not in known:
        raise UnknownNameError(f"unknown face detector {name!r}; choose one of {', '.join(known)}")
    return registry.create("detector", name.lower(), **kw)


def _box_centre(det: Detection) -> np.ndarray:
    x, y, w, h = det.box
    return np.array([x + w / 2.0, y + h / 2.0])


def select_face(detections: Sequence[Detection], image_shape: tuple[int, ...]) -> Detection | None:
    """The subject of a face crop: the detection maximising ``score * sqrt(area) * centrality``.

    Datasets of crops (LFW, CelebA, IJB crops) put the subject near the centre and make it the largest face;
    bystanders are small or cut by the border. ``centrality = exp(-2 d^2)``, with ``d`` the distance from the box
    centre to the image centre divided by half the image diagonal (centrality 1 at the centre, 0.61 halfway
    to a corner, 0.14 at a corner). ``None`` when there is no detection.
    """
    if not detections:
        return None
    h, w = image_shape[:2]
    centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    half_diag = max(0.5 * float(np.hypot(w, h)), 1e-6)

    def weight(det: Detection) -> float:
        area = max(float(det.box[2]) * float(det.box[3]), 0.0)
        d = float(np.linalg.norm(_box_centre(det) - centre)) / half_diag
        return det.score * np.sqrt(area) * np.exp(-2.0 * d * d)

    return max(detections, key=weight)


def detect_face(detector, image: np.ndarray, pad: float = 0.0) -> Detection | None:
    """Detect and select the subject's face in ``image``, in the image's own coordinates.

    ``pad``: the image is first surrounded by a black border of ``pad * max(h, w)`` px on every side (rounded up
    to the detector's ``pad_multiple``, if it has one). Tight crops (LFW's 150x150, whose face fills most of the
    frame and touches the border) give better landmarks with some context (SCRFD finds almost no face in them
    without it); the box and landmarks are shifted back, so they may lie outside the image.
    """
    import cv2

    image = _check_image(image)
    h, w = image.shape[:2]
    p = int(np.ceil(float(pad) * max(h, w) - 1e-9)) if pad > 0 else 0
    multiple = int(getattr(detector, "pad_multiple", 1) or 1)
    p = -(-p // multiple) * multiple
    if p > 0:
        padded = cv2.copyMakeBorder(image, p, p, p, p, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        dets = [d.shifted(-p, -p) for d in detector.detect(padded)]
    else:
        dets = detector.detect(image)
    return select_face(dets, image.shape)
