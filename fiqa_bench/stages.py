"""Per-image stages: decode faces (with landmarks given or detected), and run an adapter over them in batches
through an on-disk cache (``per_image_stage``). The score and embed stages of the evaluation core are both this
one function with a different producer; an adapter's failure is reported with its name (``call_adapter``).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .benchmark import Benchmark
from .cache import ArrayCache, image_key
from .errors import AdapterError, FiqaBenchError, ImageError, NoFaceError

def call_adapter(who: str, fn: Callable, arg: Any, where: str = "") -> Any:
    """``fn(arg)``; anything an adapter raises other than our own errors becomes an AdapterError naming it."""
    try:
        return fn(arg)
    except FiqaBenchError:
        raise
    except Exception as exc:
        raise AdapterError(f"{who} raised {type(exc).__name__}: {exc}{where}") from exc


def scores_run_embeddings(method: Any, backbone: Any) -> bool:
    """True for a method that scores the run's own FR embeddings (``score_embeddings``, built on the run's
    backbone): the runner then feeds it embeddings from its cache."""
    return (callable(getattr(method, "score_embeddings", None))
            and getattr(method, "backbone", None) is backbone)


# ----------------------------------------------------------------------------------------------- faces
@dataclass
class Skipped:
    row: int
    path: str
    reason: str


class FaceSource:
    """Decodes a benchmark's images and supplies landmarks: as the protocol gives them, else detected (cached)."""

    DET_WIDTH = 15  # box (4), landmarks (10), score (1); NaN row = no face found

    def __init__(self, bench: Benchmark, detector: str, on_bad_image: str, on_no_face: str, workers: int):
        self.bench = bench
        self.detector_name = detector
        self.on_bad_image = on_bad_image
        self.on_no_face = on_no_face
        self.workers = max(1, workers)
        self.paths = bench.faces["path"].astype(str).to_numpy()
        self.given = bench.landmarks()
        self.given_ok = np.isfinite(self.given).all(axis=(1, 2))
        self._local = threading.local()
        self._det_cache: ArrayCache | None = None
        self._det_identity: str | None = None
        self._lock = threading.Lock()
        self.fallback_rows: set[int] = set()

    # -- detection cache -------------------------------------------------------------------------
    def _detector(self):
        det = getattr(self._local, "detector", None)
        if det is None:
            from .faces.detect import make_detector

            det = make_detector(self.detector_name)
            self._local.detector = det
        return det

    def _cache(self) -> ArrayCache:
        if self._det_cache is None:
            ident = self._detector().identity() + f"|pad={self.bench.detect_pad}"
            self._det_identity = ident
            self._det_cache = ArrayCache.for_producer("detections", ident, self.bench.name, self.DET_WIDTH)
        return self._det_cache

    def detector_identity(self) -> str | None:
        return self._det_identity

    # -- loading ---------------------------------------------------------------------------------
    def _load_one(self, row: int):
        from .faces.io import load_image
        from .faces.pipeline import Face, fallback_landmarks

        rel = self.paths[row]
        full = self.bench.root / rel
        try:
            image = load_image(full)
        except ImageError as exc:
            if self.on_bad_image == "skip":
                return Skipped(row, rel, f"bad image: {exc.reason}")
            raise
        if self.given_ok[row]:
            return Face(image=image, landmarks=self.given[row], box=None, path=rel, detected=False, fallback=False)
        cache = self._cache()
        key = image_key(self.bench.root, rel)
        hit = cache.get(key)
        if hit is None:
            from .faces.detect import detect_face

            det = detect_face(self._detector(), image, pad=self.bench.detect_pad)
            if det is None:
                hit = np.full(self.DET_WIDTH, np.nan, np.float32)
            else:
                hit = np.concatenate([det.box, det.landmarks.reshape(-1), [det.score]]).astype(np.float32)
            with self._lock:
                cache.put_many([key], hit[None])
        if not np.isfinite(hit).all():
            if self.on_no_face == "center":
                with self._lock:
                    self.fallback_rows.add(row)
                return Face(image=image, landmarks=fallback_landmarks(image.shape), box=None, path=rel,
                            detected=False, fallback=True)
            if self.on_no_face == "skip":
                return Skipped(row, rel, "no face detected")
            raise NoFaceError(full, "no face detected (use --on-no-face skip or center to go on)")
        return Face(image=image, landmarks=hit[4:14].reshape(5, 2), box=hit[:4], path=rel, detected=True,
                    fallback=False)

    def load(self, rows: np.ndarray, pool: ThreadPoolExecutor) -> list:
        return list(pool.map(self._load_one, rows.tolist()))

    def flush(self) -> None:
        if self._det_cache is not None:
            self._det_cache.flush()


def crop_key(root: Path, face) -> str:
    """Cache key of an image as an adapter sees it: file identity plus the landmarks/box used to crop it."""
    extra = np.round(np.asarray(face.landmarks, np.float64), 2).tobytes()
    if face.box is not None:
        extra += np.round(np.asarray(face.box, np.float64), 2).tobytes()
    return image_key(root, face.path, extra)


# ----------------------------------------------------------------------------------------------- stages
def progress_bar(iterable, total: int, desc: str, enabled: bool):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="batch", leave=False, dynamic_ncols=True)


def batches(rows: np.ndarray, size: int) -> list[np.ndarray]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def per_image_stage(
    name: str,
    rows: np.ndarray,
    source: FaceSource,
    cache: ArrayCache,
    width: int,
    compute: Callable[[list], np.ndarray],
    pool: ThreadPoolExecutor,
    skipped: dict[int, Skipped],
    batch_size: int = 32,
    progress: bool = False,
) -> tuple[np.ndarray, int]:
    """Run ``compute`` on the faces of ``rows`` (cached); returns (values (len(rows), width), n computed).

    Rows already in ``skipped`` are not loaded; rows whose image is skipped now are added to it."""
    values = np.full((len(rows), width), np.nan, dtype=np.float32)
    computed = 0
    position = {r: i for i, r in enumerate(rows.tolist())}
    chunks = batches(rows, batch_size)
    try:
        for batch in progress_bar(chunks, len(chunks), name, progress):
            batch = np.asarray([r for r in batch.tolist() if r not in skipped], dtype=np.int64)
            if not len(batch):
                continue
            loaded = source.load(batch, pool)
            faces, face_rows = [], []
            for r, item in zip(batch.tolist(), loaded):
                if isinstance(item, Skipped):
                    skipped[r] = item
                else:
                    faces.append(item)
                    face_rows.append(r)
            if not faces:
                continue
            keys = [crop_key(source.bench.root, f) for f in faces]
            found, vals = cache.get_many(keys)
            todo = np.flatnonzero(~found)
            if len(todo):
                new = compute([faces[i] for i in todo])
                cache.put_many([keys[i] for i in todo], new)
                vals[todo] = new
                computed += len(todo)
            for r, v in zip(face_rows, vals):
                values[position[r]] = v
    finally:
        cache.flush()
        source.flush()
    return values, computed


