"""insightface's IJB layout of per-image arrays: row ``i`` belongs to line ``i + 1`` of the protocol's face list
(``meta/<name>_face_tid_mid.txt``), as insightface's IJB evaluation scripts keep their features.

* ``.npz``: ``img_feats`` (or ``embeddings``), (N, D) embeddings, and optionally ``quality`` (N,) (or
  ``faceness_scores``, what insightface's scripts weight by);
* ``.npy``: the (N, D) embeddings alone; the quality, a (N,) ``.npy``, is given with ``--quality``.

Embeddings are used as given (L2-normalised by the evaluation, as it does its own); every row must be finite.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from fiqa_bench.formats.base import ImageArrays, ImageFormat, bad_line

FEATURE_KEYS = ("img_feats", "embeddings")
QUALITY_KEYS = ("quality", "faceness_scores")


def _load(path: Path) -> np.ndarray | dict[str, np.ndarray]:
    try:
        blob = Path(path).read_bytes()
    except OSError as exc:
        raise bad_line(path, None, f"cannot read ({exc.strerror})") from None
    try:
        loaded = np.load(io.BytesIO(blob), allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return loaded
        with loaded as z:
            return {k: z[k] for k in z.files}
    except Exception as exc:  # noqa: BLE001 - any decoding problem is the file's
        raise bad_line(path, None, f"not a .npy/.npz array file ({type(exc).__name__}: {exc})") from None


def _pick(arrays: dict[str, np.ndarray], keys: tuple[str, ...], path: Path, required: bool) -> np.ndarray | None:
    found = [k for k in keys if k in arrays]
    if len(found) > 1:
        raise bad_line(path, None, f"holds both {found[0]} and {found[1]}: keep one")
    if not found:
        if required:
            raise bad_line(path, None, f"has no array {' or '.join(keys)} (it holds {', '.join(arrays) or 'none'})")
        return None
    return arrays[found[0]]


def _check_rows(values: np.ndarray, path: Path, n: int, faces_file: str, ndim: int, what: str) -> np.ndarray:
    if values.ndim != ndim or values.dtype.kind not in "fiu":
        shape = "(N, D)" if ndim == 2 else "(N,)"
        raise bad_line(
            path, None, f"{what} must be a {shape} array of numbers, got shape {values.shape} {values.dtype}"
        )
    if values.shape[0] != n:
        raise bad_line(
            path, None, f"{what} has {values.shape[0]} rows but {faces_file} lists {n} faces (one row per line)"
        )
    finite = np.isfinite(values) if ndim == 1 else np.isfinite(values).all(axis=1)
    bad = np.flatnonzero(~finite)
    if bad.size:
        row = int(bad[0])
        raise bad_line(path, row + 1, f"{what} row {row} (line {row + 1} of {faces_file}) is not finite")
    return values


class InsightFace(ImageFormat):
    name = "insightface"
    summary = "per-image embeddings (+ quality) in the order of meta/<name>_face_tid_mid.txt (.npz or .npy)"
    suffix = ".npz"

    def read(self, path: Path, n_faces: int, faces_file: str, quality: Path | None = None) -> ImageArrays:
        loaded = _load(path)
        sources = {"embeddings": str(path)}
        q = None
        if isinstance(loaded, dict):
            feats = _pick(loaded, FEATURE_KEYS, path, required=True)
            q = _pick(loaded, QUALITY_KEYS, path, required=False)
            if q is not None:
                sources["quality"] = str(path)
        else:
            feats = loaded
        assert feats is not None  # required=True
        if quality is not None:
            if q is not None:
                raise bad_line(quality, None, f"{path} already holds a quality array: give one of them")
            given = _load(quality)
            q = _pick(given, QUALITY_KEYS, quality, required=True) if isinstance(given, dict) else given
            sources["quality"] = str(quality)
        feats = _check_rows(feats, path, n_faces, faces_file, 2, "embeddings")
        if q is not None:
            q = _check_rows(q, Path(sources["quality"]), n_faces, faces_file, 1, "quality")
        return ImageArrays(
            embeddings=np.asarray(feats, dtype=np.float32),
            quality=None if q is None else np.asarray(q, dtype=np.float32),
            sources=sources,
        )

    def write(self, arrays: ImageArrays, path: Path) -> list[Path]:
        from fiqa_bench.data.atomic import atomic_path

        out = {"img_feats": np.asarray(arrays.embeddings, dtype=np.float32)}
        if arrays.quality is not None:
            out["quality"] = np.asarray(arrays.quality, dtype=np.float32)
        buf = io.BytesIO()
        np.savez(buf, **out)  # type: ignore[arg-type]
        with atomic_path(path) as tmp:
            tmp.write_bytes(buf.getvalue())
        return [path]


INSIGHTFACE = InsightFace()
