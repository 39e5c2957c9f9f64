"""Per-image stages: decode faces (with landmarks given or detected), and run an adapter over them in batches
through an on-disk cache (``per_image_stage``). The score and embed stages of the evaluation core are both this
one function with a different producer; an adapter's failure is reported with its name (``call_adapter``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fiqa_bench.data.cache import ArrayCache, image_key
from fiqa_bench.data.safepath import DEFAULT_MAX_IMAGE_BYTES, read_regular_stat, resolve
from fiqa_bench.errors import AdapterError, AdapterInterrupt, FiqaBenchError, ImageError, NoFaceError
from fiqa_bench.pipeline.benchmark import Benchmark


def call_adapter(who: str, fn: Callable, arg: Any, where: str = "") -> Any:
    """``fn(arg)``; whatever an adapter raises other than our own errors becomes an AdapterError naming it.

    That includes ``SystemExit`` (a plugin calling ``sys.exit()`` must not end the run without a word) and any
    other ``BaseException``; a ``KeyboardInterrupt`` stays an interruption (exit 130) but names the adapter."""
    try:
        return fn(arg)
    except FiqaBenchError:
        raise
    except AdapterInterrupt:
        raise
    except KeyboardInterrupt as exc:
        raise AdapterInterrupt(f"while {who} was running{where}") from exc
    except SystemExit as exc:
        raise AdapterError(f"{who} called sys.exit({exc.code!r}) (raised SystemExit){where}") from exc
    except BaseException as exc:  # noqa: BLE001 - Exception, GeneratorExit, a plugin's own BaseException
        raise AdapterError(f"{who} raised {type(exc).__name__}: {exc}{where}") from exc


def scores_run_embeddings(method: Any, backbone: Any) -> bool:
    """True for a method that scores the run's own FR embeddings (``score_embeddings``, built on the run's
    backbone): the runner then feeds it embeddings from its cache."""
    return callable(getattr(method, "score_embeddings", None)) and getattr(method, "backbone", None) is backbone


# ----------------------------------------------------------------------------------------------- faces
@dataclass
class Skipped:
    row: int
    path: str
    reason: str


LANDMARK_MARGIN = 0.25  # landmarks may lie this fraction of the image's width/height outside it (cut-off faces)
MIN_EYE_DISTANCE = 2.0  # pixels: closer eyes are a collapsed landmark set, not a face


def landmark_problem(
    landmarks: np.ndarray, shape: tuple, margin: float = LANDMARK_MARGIN, min_eye_distance: float = MIN_EYE_DISTANCE
) -> tuple[str, str] | None:
    """(category, detail) when five landmarks cannot describe a face in an image of ``shape``, else None.

    A landmark set is usable when all 10 numbers are finite, every point lies inside the image widened by
    ``margin`` x its size on each side, and the two eyes are at least ``min_eye_distance`` pixels apart. The
    category is fixed text (results count by it); the detail carries the numbers for the error message."""
    lm = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    if not np.isfinite(lm).all():
        return "landmarks not finite", f"landmarks {lm.reshape(-1).tolist()} are not all finite"
    h, w = int(shape[0]), int(shape[1])
    lo_x, hi_x, lo_y, hi_y = -margin * w, (1 + margin) * w, -margin * h, (1 + margin) * h
    out = (lm[:, 0] < lo_x) | (lm[:, 0] > hi_x) | (lm[:, 1] < lo_y) | (lm[:, 1] > hi_y)
    if out.any():
        i = int(np.flatnonzero(out)[0])
        return (
            "landmarks outside the image",
            f"landmark {i + 1} at ({lm[i, 0]:.6g}, {lm[i, 1]:.6g}) is outside the {w}x{h} image "
            f"(allowed: {margin:g} x its size beyond each border)",
        )
    eyes = float(np.hypot(*(lm[0] - lm[1])))
    if eyes < min_eye_distance:
        return (
            "landmarks collapsed",
            f"the eyes are {eyes:.3g} px apart (< {min_eye_distance:g} px): a degenerate landmark set",
        )
    return None


class FaceSource:
    """Decodes a benchmark's images and supplies landmarks: as the protocol gives them, else detected (cached).

    Every file is resolved inside the benchmark folder (:mod:`fiqa_bench.data.safepath`: no absolute names, no
    ``..``, no symbolic link leaving it unless ``follow_symlinks``, regular files of at most ``max_image_bytes``
    only). Landmarks, given or detected, must pass :func:`landmark_problem`; those that fail follow the policy
    for a face not found (``on_no_face``: error, counted skip, or counted centred fallback), and
    :attr:`landmark_rejections` counts them by category.
    """

    DET_WIDTH = 15  # box (4), landmarks (10), score (1); NaN row = no face found

    def __init__(
        self,
        bench: Benchmark,
        detector: str,
        on_bad_image: str,
        on_no_face: str,
        workers: int,
        *,
        follow_symlinks: bool = False,
        max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    ):
        self.bench = bench
        self.detector_name = detector
        self.on_bad_image = on_bad_image
        self.on_no_face = on_no_face
        self.workers = max(1, workers)
        self.follow_symlinks = bool(follow_symlinks)
        self.max_image_bytes = int(max_image_bytes)
        self.paths = bench.faces["path"].astype(str).to_numpy()
        self.given = bench.landmarks()
        self.given_none = np.isnan(self.given).all(axis=(1, 2))  # no landmarks given: detect them
        self.given_ok = np.isfinite(self.given).all(axis=(1, 2))
        self.real_root = os.path.realpath(bench.root)
        self._real_dirs: dict[str, str] = {}  # folder -> its resolved path (safepath.resolve)
        self.margin = max(LANDMARK_MARGIN, float(bench.detect_pad))  # detections on a padded image may leave it
        lm = self.given.astype(np.float64)
        with np.errstate(invalid="ignore"):  # the eye distance of landmark_problem, for every given set at once
            self._eyes_ok = np.hypot(lm[:, 0, 0] - lm[:, 1, 0], lm[:, 0, 1] - lm[:, 1, 1]) >= MIN_EYE_DISTANCE
        self._local = threading.local()
        self._det_cache: ArrayCache | None = None
        self._det_identity: str | None = None
        self._lock = threading.Lock()
        self.fallback_rows: set[int] = set()
        self.rejected_landmarks: dict[int, str] = {}  # row -> category of landmark_problem

    @property
    def landmark_rejections(self) -> dict[str, int]:
        """Images whose landmarks failed :func:`landmark_problem`, by category (each image counted once)."""
        counts: dict[str, int] = {}
        for category in self.rejected_landmarks.values():
            counts[category] = counts.get(category, 0) + 1
        return dict(sorted(counts.items()))

    # -- detection cache -------------------------------------------------------------------------
    def _detector(self):
        det = getattr(self._local, "detector", None)
        if det is None:
            from fiqa_bench.faces.detect import make_detector

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
    def _no_face(self, row: int, rel: str, full, image, category: str, detail: str, stat=None):
        """The ``on_no_face`` policy, for a face not found and for landmarks that fail the sanity checks."""
        from fiqa_bench.faces.pipeline import Face, fallback_landmarks

        if self.on_no_face == "center":
            with self._lock:
                self.fallback_rows.add(row)
            return Face(
                image=image,
                landmarks=fallback_landmarks(image.shape),
                box=None,
                path=rel,
                detected=False,
                fallback=True,
                stat=stat,
            )
        if self.on_no_face == "skip":
            return Skipped(row, rel, category)
        raise NoFaceError(full, f"{detail} (use --on-no-face skip or center to go on)")

    def _bad_landmarks(self, row: int, rel: str, full, image, problem: tuple[str, str], stat=None):
        category, detail = problem
        with self._lock:
            self.rejected_landmarks[row] = category
        return self._no_face(row, rel, full, image, f"bad landmarks: {category}", detail, stat)

    def _read(self, row: int):
        """(rel, full, image, (size, mtime_ns)) of a row, or a Skipped; errors are raised (the caller orders them)."""
        from fiqa_bench.faces.io import decode_image

        rel = self.paths[row]
        full = resolve(
            self.bench.root,
            rel,
            follow_symlinks=self.follow_symlinks,
            real_root=self.real_root,
            real_dirs=self._real_dirs,
        )  # UnsafePathError: never skipped
        try:
            data, st = read_regular_stat(full, self.max_image_bytes)
            image = decode_image(data, full)
        except ImageError as exc:
            if self.on_bad_image == "skip":
                return Skipped(row, rel, f"bad image: {exc.reason}")
            raise
        return rel, full, image, (st.st_size, st.st_mtime_ns)

    def _given_ok(self, rows: list[int], shapes: list[tuple]) -> np.ndarray:
        """Whether the given landmarks of ``rows`` pass :func:`landmark_problem` in images of ``shapes``, for all
        at once (the same float64 comparisons; a row found wrong gets its message from landmark_problem)."""
        idx = np.asarray(rows, dtype=np.int64)
        lm = self.given[idx].astype(np.float64)
        hw = np.asarray([(int(sh[0]), int(sh[1])) for sh in shapes], dtype=np.int64).reshape(-1, 2)
        h, w = hw[:, 0:1], hw[:, 1:2]
        m = self.margin
        with np.errstate(invalid="ignore"):
            out = (
                (lm[:, :, 0] < -m * w)
                | (lm[:, :, 0] > (1 + m) * w)
                | (lm[:, :, 1] < -m * h)
                | (lm[:, :, 1] > (1 + m) * h)
            ).any(axis=1)
        return self.given_ok[idx] & ~out & self._eyes_ok[idx]

    def _detected(self, row: int, rel: str, full, image, stat):
        """The face of a row without given landmarks: detected (through the detection cache)."""
        from fiqa_bench.faces.pipeline import Face

        cache = self._cache()
        key = image_key(self.bench.root, rel, stat=stat)
        hit = cache.get(key)
        if hit is None:
            from fiqa_bench.faces.detect import detect_face

            det = detect_face(self._detector(), image, pad=self.bench.detect_pad)
            if det is None:
                hit = np.full(self.DET_WIDTH, np.nan, np.float32)
            else:
                hit = np.concatenate([det.box, det.landmarks.reshape(-1), [det.score]]).astype(np.float32)
            with self._lock:
                cache.put_many([key], hit[None])
        if not np.isfinite(hit).all():
            return self._no_face(row, rel, full, image, "no face detected", "no face detected", stat)
        problem = landmark_problem(hit[4:14], image.shape, self.margin)
        if problem is not None:
            return self._bad_landmarks(row, rel, full, image, problem, stat)
        return Face(
            image=image,
            landmarks=hit[4:14].reshape(5, 2),
            box=hit[:4],
            path=rel,
            detected=True,
            fallback=False,
            stat=stat,
        )

    def _load_chunk(self, rows: list[int]) -> list:
        """Faces (or Skipped) of ``rows``, in order, in one worker call: read and decode each file (C code that
        releases the GIL), then check the given landmarks of the chunk at once. The first error in row order is
        raised, after the whole chunk was seen (as a per-image map would)."""
        from fiqa_bench.faces.pipeline import Face

        out: list = []
        for row in rows:
            try:
                out.append(self._read(row))
            except FiqaBenchError as exc:
                out.append(exc)
        given = [
            i for i, (row, item) in enumerate(zip(rows, out)) if isinstance(item, tuple) and not self.given_none[row]
        ]
        ok: np.ndarray | list[bool] = (
            self._given_ok([rows[i] for i in given], [out[i][2].shape for i in given]) if given else []
        )
        verdict = dict(zip(given, ok))
        result: list = []
        for i, (row, item) in enumerate(zip(rows, out)):
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, Skipped):
                result.append(item)
                continue
            rel, full, image, stat = item
            if i not in verdict:
                result.append(self._detected(row, rel, full, image, stat))
            else:
                problem = None if verdict[i] else landmark_problem(self.given[row], image.shape, self.margin)
                result.append(
                    self._bad_landmarks(row, rel, full, image, problem, stat)
                    if problem is not None
                    else Face(
                        image=image,
                        landmarks=self.given[row],
                        box=None,
                        path=rel,
                        detected=False,
                        fallback=False,
                        stat=stat,
                    )
                )
        return result

    def _load_one(self, row: int):
        return self._load_chunk([row])[0]

    def submit(self, rows: np.ndarray, pool: ThreadPoolExecutor, then: Callable[[list], Any] | None = None) -> list:
        """Start loading ``rows`` on ``pool``: a few chunks per worker (one task each, not one per image); the
        handle is for :meth:`collect`. ``then(items)``, when given, runs in the same task on each chunk's loaded
        items (e.g. aligning the crops: C code that releases the GIL, done beside the decoding rather than after
        it on the caller's thread); :meth:`collect_with` returns its results."""
        ids = [int(r) for r in np.asarray(rows).tolist()]
        if not ids:
            return []
        parts = min(len(ids), 2 * self.workers)
        step = -(-len(ids) // parts)
        task = self._load_chunk if then is None else (lambda chunk: self._load_then(chunk, then))
        return [pool.submit(task, ids[i : i + step]) for i in range(0, len(ids), step)]

    def _load_then(self, rows: list[int], then: Callable[[list], Any]) -> tuple[list, Any]:
        items = self._load_chunk(rows)
        return items, then(items)

    def collect(self, handle: list) -> list:
        """The loaded items of a :meth:`submit`, in row order (the first error in row order is raised)."""
        out: list = []
        for future in handle:
            out.extend(future.result())
        return out

    def collect_with(self, handle: list) -> tuple[list, list]:
        """(loaded items in row order, the ``then`` result of each chunk in order) of a :meth:`submit` with
        ``then``."""
        items: list = []
        extras: list = []
        for future in handle:
            loaded, extra = future.result()
            items.extend(loaded)
            extras.append(extra)
        return items, extras

    def load(self, rows: np.ndarray, pool: ThreadPoolExecutor) -> list:
        return self.collect(self.submit(rows, pool))

    def flush(self, consolidate: bool = False) -> None:
        if self._det_cache is not None:
            self._det_cache.consolidate() if consolidate else self._det_cache.flush()

    @property
    def rejected_shards(self) -> int:
        """Detection-cache shards that failed their checks (see :class:`ArrayCache`) and were recomputed."""
        return self._det_cache.rejected_shards if self._det_cache is not None else 0


def crop_key(root: Path, face) -> str:
    """Cache key of an image as an adapter sees it: file identity plus the landmarks/box used to crop it."""
    extra = np.round(np.asarray(face.landmarks, np.float64), 2).tobytes()
    if face.box is not None:
        extra += np.round(np.asarray(face.box, np.float64), 2).tobytes()
    return image_key(root, face.path, extra, stat=getattr(face, "stat", None))


def crop_keys(root: Path, faces: list) -> list[str]:
    """:func:`crop_key` of each face, the landmarks of the batch rounded in one call (the same bytes)."""
    if not faces:
        return []
    rounded = np.round(np.stack([np.asarray(f.landmarks, np.float64).reshape(5, 2) for f in faces]), 2)
    keys = []
    for face, lm in zip(faces, rounded):
        extra = lm.tobytes()
        if face.box is not None:
            extra += np.round(np.asarray(face.box, np.float64), 2).tobytes()
        keys.append(image_key(root, face.path, extra, stat=getattr(face, "stat", None)))
    return keys


# ----------------------------------------------------------------------------------------------- stages
def progress_bar(iterable, total: int, desc: str, enabled: bool, unit: str = "batch"):
    """A tqdm bar on stderr over ``iterable`` (cleared when done), or ``iterable`` itself when not ``enabled``."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True)


def batches(rows: np.ndarray, size: int) -> list[np.ndarray]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def _join(parts: list):
    """Concatenate prepared adapter inputs: arrays along the first axis, anything else as one list."""
    parts = [p for p in parts if p is not None and len(p)]
    if parts and all(isinstance(p, np.ndarray) for p in parts):
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
    return [x for p in parts for x in p]


def _take(inputs, index: np.ndarray):
    return inputs[index] if isinstance(inputs, np.ndarray) else [inputs[i] for i in index.tolist()]


def per_image_stage(
    name: str,
    rows: np.ndarray,
    source: FaceSource,
    cache: ArrayCache,
    width: int,
    compute: Callable,
    pool: ThreadPoolExecutor,
    skipped: dict[int, Skipped],
    batch_size: int = 32,
    progress: bool = False,
    prepare: Callable[[list], Any] | None = None,
) -> tuple[np.ndarray, int]:
    """Run ``compute`` on the faces of ``rows`` (cached); returns (values (len(rows), width), n computed).

    Rows already in ``skipped`` are not loaded; rows whose image is skipped now are added to it. Finished values
    reach the disk as the cache's flush policy says (at least every 256 images or 5 s), on an error or interruption
    at once, so a killed or interrupted run resumes from them. While ``compute`` runs on one batch, ``pool``
    decodes the next (:meth:`FaceSource.submit`): the image path and the model overlap, and an error of the batch
    ahead is raised only after the batch before it is computed and cached, as without the overlap.

    ``prepare(faces) -> inputs`` (an array or a list, one entry per face), when given, makes the adapter's input
    on the pool, in the task that decoded the faces, for the faces not yet cached, so that the caller's thread only
    runs the model; ``compute`` then receives ``(faces, inputs)`` instead of ``faces``. Values, the cache and the
    count of computed images are the same either way (a face found in the cache once its batch is reached, e.g. a
    repeated image computed by the batch before, is taken from it, not computed again)."""
    if prepare is None:  # the adapter's input is made by ``compute`` itself: the faces are its input
        prepare, by_faces = list, compute
        compute = lambda faces, inputs: by_faces(faces)  # noqa: E731
    values = np.full((len(rows), width), np.nan, dtype=np.float32)
    computed = 0
    position = {r: i for i, r in enumerate(rows.tolist())}
    chunks = batches(rows, batch_size)
    root = source.bench.root

    def lookup_and_prepare(items: list):
        """On the pool, after a chunk is loaded: its cache keys and hits, and the inputs of its misses."""
        faces = [item for item in items if not isinstance(item, Skipped)]
        keys = crop_keys(root, faces)
        found, vals = cache.get_many(keys)
        miss = np.flatnonzero(~found)
        return keys, found, vals, (prepare([faces[i] for i in miss.tolist()]) if len(miss) else None)

    def start(i: int):
        """Filter batch ``i``'s skipped rows and start loading it on the pool."""
        batch = np.asarray([r for r in chunks[i].tolist() if r not in skipped], dtype=np.int64)
        return batch, source.submit(batch, pool, lookup_and_prepare)

    ahead, handle = (start(0) if chunks else None), []
    try:
        for i in progress_bar(range(len(chunks)), len(chunks), name, progress):
            assert ahead is not None  # started for batch i before the loop or on the previous round
            batch, handle = ahead
            # the next batch decodes on the pool while this one is computed (the adapters release the GIL)
            ahead = start(i + 1) if i + 1 < len(chunks) else None
            if not len(batch):
                continue
            loaded, extras = source.collect_with(handle)
            faces, face_rows = [], []
            for r, item in zip(batch.tolist(), loaded):
                if isinstance(item, Skipped):
                    skipped[r] = item
                else:
                    faces.append(item)
                    face_rows.append(r)
            if not faces:
                continue
            keys = [k for e in extras for k in e[0]]
            vals = np.concatenate([e[2] for e in extras])
            inputs = _join([e[3] for e in extras])
            missed = np.flatnonzero(~np.concatenate([e[1] for e in extras]))  # the order of ``inputs``
            # looked up again: the batch before may have computed one of them since (a repeated image)
            again, now = cache.get_many([keys[i] for i in missed.tolist()])
            vals[missed[again]] = now[again]
            todo = missed[~again]
            if len(todo):
                new = compute([faces[i] for i in todo], _take(inputs, np.flatnonzero(~again)))
                cache.put_many([keys[i] for i in todo], new)
                vals[todo] = new
                computed += len(todo)
            values[[position[r] for r in face_rows]] = vals
    except BaseException:
        for future in handle + (ahead[1] if ahead is not None else []):  # loads no longer wanted
            future.cancel()
        cache.flush()  # keep what was finished (Ctrl-C, an adapter's error): the next run resumes from it
        source.flush()
        raise
    cache.consolidate()  # this run's shards become one file
    source.flush(consolidate=True)
    return values, computed
