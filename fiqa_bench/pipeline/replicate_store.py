"""The replicate store: bootstrap replicates kept in the user cache, so a rerun on the same pairs does not resample
again.

The bootstrap (:mod:`fiqa_bench.pipeline.uncertainty`) is most of a cached rerun's time (B = 1000 resamples of 385
k pairs:
40-60 s on a loaded 2-core machine), yet its result is a pure function of what it reads. An entry is keyed by
:func:`replicate_key`, the sha256 of exactly those inputs:

* every array of the :class:`~fiqa_bench.metrics.base.PairData` (pair scores, labels, folds, pair quality and its
  integer levels, group ids, subject ids), with its dtype and shape;
* the metric values measured on the unresampled pairs (which metrics have replicates, and their columns);
* the metric settings (:class:`~fiqa_bench.metrics.base.MetricOptions`: FPR reading, pair quality, EDC starts,
  re-threshold FMR);
* B and the seed (the level is not an input: intervals are recomputed from the replicates, which takes
  milliseconds, so a run at another level reuses the same entry);
* the bootstrap code: :data:`STORE_FORMAT` and the sha256 of the source of ``fiqa_bench/pipeline/uncertainty.py`` and of
  every module of ``fiqa_bench/metrics/`` (any edit to them is a new key), plus the versions of Python, numpy,
  pandas, scipy and scikit-learn the replicates' arithmetic runs on.

An entry (``<cache>/bootstrap/<key>.npz``, written atomically, plain arrays, no pickles) holds the replicate
matrices and the sha256 of its own contents; it is used only when that checksum, its key and every matrix's
name, dtype and shape match, otherwise it is recomputed and replaced. A reused entry is therefore bit-identical to
recomputing (``tests/test_replicate_store.py`` compares them). ``fiqa-bench rescore`` never reads the store: it
exists to recompute a results file's numbers from its ``.npz`` alone, and an entry is a file in a user-writable
folder, not proof of a computation (see :func:`fiqa_bench.results.rescore.rescore`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fiqa_bench.metrics.base import MetricOptions, PairData
from fiqa_bench.pipeline.uncertainty import BootstrapOptions, intervals_from, replicates

log = logging.getLogger(__name__)

#: Bump when the entry layout or the meaning of a replicate changes in a way the source hash cannot see.
STORE_FORMAT = 1
FOLDER = "bootstrap"
_LIBRARIES = ("numpy", "pandas", "scipy", "scikit-learn")


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """sha256 of the bootstrap's code: :data:`STORE_FORMAT`, the source bytes of ``uncertainty.py`` and of every
    ``metrics/*.py`` (sorted by name), and the versions of Python and of the numeric libraries."""
    import platform
    from importlib import metadata

    package = Path(__file__).resolve().parents[1]
    h = hashlib.sha256(f"fiqa-bench replicate store {STORE_FORMAT}|python {platform.python_version()}|".encode())
    for name in _LIBRARIES:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "-"
        h.update(f"{name} {version}|".encode())
    for path in [package / "pipeline" / "uncertainty.py", *sorted((package / "metrics").glob("*.py"))]:
        h.update(f"{path.relative_to(package).as_posix()}|".encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def _update_array(h, name: str, value) -> None:
    if value is None:
        h.update(f"{name}:none|".encode())
        return
    arr = np.ascontiguousarray(value)
    h.update(f"{name}:{arr.dtype.str}:{arr.shape}|".encode())
    h.update(arr.tobytes())


def replicate_key(
    data: PairData, metrics: dict, options: MetricOptions, boot: BootstrapOptions, code: str | None = None
) -> str:
    """sha256 (hex) of every input the replicates depend on (see the module docstring); ``code``: the bootstrap
    code's version, default :func:`code_version`."""
    h = hashlib.sha256(f"code {code if code is not None else code_version()}|".encode())
    for f in dataclasses.fields(PairData):
        _update_array(h, f.name, getattr(data, f.name))
    h.update(json.dumps(metrics, sort_keys=True, default=str).encode())
    h.update(json.dumps(options.as_dict(), sort_keys=True).encode())
    h.update(f"|B {int(boot.B)}|seed {int(boot.seed)}".encode())
    return h.hexdigest()


def _checksum(key: str, reps: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256(f"{STORE_FORMAT}|{key}|".encode())
    for name in sorted(reps):
        _update_array(h, name, np.asarray(reps[name], dtype="<f8"))
    return h.hexdigest()


class ReplicateStore:
    """``<root>/<key>.npz`` files of bootstrap replicates (``root``: default ``<user cache>/bootstrap``)."""

    def __init__(self, root: str | Path | None = None):
        if root is None:
            from fiqa_bench.data.paths import cache_dir

            root = cache_dir() / FOLDER
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.npz"

    def load(self, key: str, expected: dict[str, tuple[int, int]]) -> dict[str, np.ndarray] | None:
        """The replicates stored under ``key`` when the entry is whole (its checksum, key, and exactly the
        ``expected`` {metric key: (B, columns)} as float64); None otherwise (missing, damaged or other)."""
        path = self.path(key)
        try:
            blob = path.read_bytes()
        except OSError:
            return None
        try:
            with np.load(io.BytesIO(blob), allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except Exception as exc:  # noqa: BLE001 - a damaged entry is recomputed, whatever broke it
            log.warning("bootstrap store: %s unreadable (%s: %s); recomputing", path, type(exc).__name__, exc)
            return None
        meta = arrays.pop("__meta__", None)
        try:
            info = json.loads(str(meta[()])) if meta is not None else {}
        except (ValueError, TypeError):
            info = {}
        reps = {k[len("boot_") :]: v for k, v in arrays.items() if k.startswith("boot_")}
        if (
            info.get("format") != STORE_FORMAT
            or info.get("key") != key
            or len(reps) != len(arrays)
            or {k: tuple(v.shape) for k, v in reps.items()} != {k: tuple(s) for k, s in expected.items()}
            or any(v.dtype != np.float64 for v in reps.values())
            or info.get("sha256") != _checksum(key, reps)
        ):
            log.warning("bootstrap store: %s does not match its key or checksum; recomputing", path)
            return None
        return reps

    def save(self, key: str, reps: dict[str, np.ndarray]) -> bool:
        """Write the entry atomically; False (with a warning) when the cache cannot be written."""
        from fiqa_bench.data.atomic import atomic_path
        from fiqa_bench.errors import FiqaBenchError

        reps = {k: np.asarray(v, dtype=np.float64) for k, v in reps.items()}
        meta = json.dumps({"format": STORE_FORMAT, "key": key, "sha256": _checksum(key, reps)})
        buf = io.BytesIO()
        # mypy matches the **dict against savez's allow_pickle: bool keyword; its keys are only array names
        np.savez(buf, __meta__=np.array(meta), **{f"boot_{k}": v for k, v in sorted(reps.items())})  # type: ignore[arg-type]
        try:
            with atomic_path(self.path(key)) as tmp:
                tmp.write_bytes(buf.getvalue())
        except (OSError, FiqaBenchError) as exc:
            log.warning(
                "bootstrap store: cannot write %s (%s); the next run computes the replicates again", self.path(key), exc
            )
            return False
        return True


@dataclass
class BootstrapResult:
    """What :func:`bootstrap_reusing` returns: the metrics with intervals, the replicate matrices, whether they
    came from the store, the wall time of the whole step and the entry's key."""

    metrics: dict
    replicates: dict[str, np.ndarray]
    reused: bool
    seconds: float
    key: str | None


def expected_shapes(metrics: dict, boot: BootstrapOptions) -> dict[str, tuple[int, int]]:
    """{metric key: (B, columns)} of the replicates :func:`fiqa_bench.pipeline.uncertainty.replicates` gives."""
    from fiqa_bench.metrics.base import get_metric

    return {
        k: (int(boot.B), len(get_metric(k).columns(v)))
        for k, v in metrics.items()
        if isinstance(v, dict) and "unavailable" not in v
    }


def bootstrap_reusing(
    data: PairData,
    metrics: dict,
    options: MetricOptions,
    boot: BootstrapOptions,
    *,
    store: ReplicateStore | None = None,
    progress: bool = False,
) -> BootstrapResult:
    """:func:`fiqa_bench.pipeline.uncertainty.bootstrap` with the replicate store: the stored replicates when the entry
    for these exact inputs is whole, else computed (with a progress bar when ``progress``) and stored. ``store``
    None: the user cache's."""
    t = time.perf_counter()
    if boot.B <= 0:
        return BootstrapResult(metrics, {}, False, time.perf_counter() - t, None)
    store = store if store is not None else ReplicateStore()
    key = replicate_key(data, metrics, options, boot)
    reps = store.load(key, expected_shapes(metrics, boot))
    reused = reps is not None
    if reps is None:
        reps = replicates(data, metrics, options, boot, progress=progress)
        store.save(key, reps)
    return BootstrapResult(intervals_from(metrics, reps, boot), reps, reused, time.perf_counter() - t, key)
