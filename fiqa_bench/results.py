"""The results file: the contract that reports, ``rescore``, ``compare`` and leaderboards are built from.

One JSON per run — (protocol, method with its options, backbone, selection and every other setting that changes
the numbers) — with its raw data beside it: ``<stem>.json`` and ``<stem>.npz``. The file name carries the settings:
``<protocol>__<method>__<backbone>__<selection>[-k<K>]__<8 hex>.json``, the hex being :func:`settings_digest` of the
normalised settings, so two runs that could differ in a number never share a file. :class:`RunRecord` is the one
schema (``SCHEMA_VERSION``) every reader uses; :func:`validate` is its only checker.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import math
import re
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import __version__
from .atomic import atomic_path, write_json
from .errors import FiqaBenchError

SCHEMA_VERSION = 2
RAW_SUFFIX = ".npz"
BOOT_PREFIX = "boot_"
#: Arrays every raw file holds (``fiqa_bench.evaluation.evaluate`` writes them; ``rescore`` reads them).
RAW_ARRAYS = ("pair_a", "pair_b", "pair_scores", "pair_labels", "pair_folds", "pair_quality", "template_ids",
              "template_quality", "template_subject", "subjects", "kept_rows", "kept_group", "kept_quality",
              "kept_paths", "image_quality", "image_group")


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The suite's git commit when run from a checkout (None for an installed wheel)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = out.stdout.strip()
    if out.returncode != 0 or not re.fullmatch(r"[0-9a-f]{40}", commit):
        return None
    dirty = subprocess.run(
        ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
    ).stdout.strip()
    return commit + ("-dirty" if dirty else "")


#: Distributions whose arithmetic a run's numbers depend on (decoding, detection, inference, metrics), by the name
#: a results file records them under; the first installed of each entry's distributions is recorded.
LIBRARIES = {
    "numpy": ("numpy",), "scipy": ("scipy",), "pandas": ("pandas",), "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
    "opencv": ("opencv-python-headless", "opencv-python", "opencv-contrib-python-headless", "opencv-contrib-python"),
    "torch": ("torch",), "dlib": ("dlib-bin", "dlib"),
}


@functools.lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    """Python, the machine type and the versions of :data:`LIBRARIES` installed here (read from the installed
    distributions' metadata, nothing imported): a rerun elsewhere that differs in a number can be traced to, e.g.,
    another OpenCV whose face detector moves a landmark in the third decimal."""
    import platform
    from importlib import metadata

    out = {"python": platform.python_version(), "machine": platform.machine()}
    for name, dists in LIBRARIES.items():
        for dist in dists:
            try:
                out[name] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    return out


def suite_info() -> dict[str, Any]:
    return {"name": "fiqa-bench", "version": __version__, "git_commit": git_commit(), "libraries": library_versions()}


def options_digest(options: Mapping[str, Any] | None) -> str:
    """A short stable hash of constructor options as given (sorted ``key=value`` text): 8 hex digits."""
    text = json.dumps({str(k): str(v) for k, v in sorted(dict(options or {}).items())}, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def settings_digest(settings: Mapping[str, Any]) -> str:
    """8 hex digits of the normalised settings (canonical JSON): the last part of a results file name."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _clean(s: str) -> str:
    s = Path(s).name if ("/" in s or "\\" in s) else s
    return re.sub(r"[^A-Za-z0-9._-]+", "-", s).strip("-") or "x"


def results_stem(protocol: str, method: str, backbone: str, selection: str, k: int | None, digest: str) -> str:
    """``<protocol>__<method>__<backbone>__<selection>[-k<K>]__<digest>``: readable, and unique per settings."""
    sel = _clean(selection) + (f"-k{int(k)}" if k is not None else "")
    return f"{_clean(protocol)}__{_clean(method)}__{_clean(backbone)}__{sel}__{digest}"


@dataclass
class RunRecord:
    """One run, as its results file holds it. ``metrics`` maps declared metric keys to their values;
    ``settings`` is what the file name's digest covers; ``raw`` names the ``.npz`` and its sha256."""

    suite: dict
    method: dict
    backbone: dict
    protocol: dict
    config: dict
    settings: dict
    counts: dict
    timings: dict
    metrics: dict
    raw: dict = field(default_factory=dict)
    detector: str | None = None
    notes: list = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict:
        d = asdict(self)
        return {"schema_version": d.pop("schema_version"), **d}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], source: str = "<results>") -> "RunRecord":
        problems = validate(obj)
        if problems:
            raise FiqaBenchError(f"{source}: not a valid results file: {problems[0]}"
                                 + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
        fields = {k: obj[k] for k in cls.__dataclass_fields__ if k in obj}
        return cls(**fields)

    @property
    def stem(self) -> str:
        return results_stem(self.protocol["name"], self.method["name"], self.backbone["name"],
                            self.config["selection"], self.config.get("k") if self.config["selection"] == "topk"
                            else None, self.settings_digest)

    @property
    def settings_digest(self) -> str:
        return settings_digest(self.settings)

    def metric(self, key: str) -> dict | None:
        value = self.metrics.get(key)
        return value if isinstance(value, dict) else None


def _is_fraction(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and 0 <= x <= 1


def validate(obj: Any) -> list[str]:
    """Problems with a results record as JSON (empty list when valid)."""
    if not isinstance(obj, Mapping):
        return ["not a JSON object"]
    problems = []
    if obj.get("schema_version") != SCHEMA_VERSION:
        problems.append(f"schema_version {obj.get('schema_version')!r} is not {SCHEMA_VERSION} (this fiqa-bench "
                        f"reads version {SCHEMA_VERSION}; rerun, or `fiqa-bench rescore` cannot help an old file)")
        return problems
    for key in ("suite", "method", "backbone", "protocol", "config", "settings", "counts", "metrics"):
        if not isinstance(obj.get(key), Mapping):
            problems.append(f"missing object {key!r}")
    if problems:
        return problems
    for dotted in ("method.name", "backbone.name", "protocol.name", "protocol.version", "protocol.metric",
                   "config.selection"):
        a, b = dotted.split(".")
        if obj[a].get(b) in (None, ""):
            problems.append(f"lacks {dotted}")
    for key in ("options", "options_sha256"):
        value = obj["method"].get(key)
        if value is not None and not (isinstance(value, Mapping)
                                      and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())):
            problems.append(f"method.{key} must be an object of strings (option -> value)")
    metrics = obj["metrics"]
    if not metrics:
        problems.append("metrics is empty")
    for key, value in metrics.items():
        if not isinstance(value, Mapping):
            problems.append(f"metrics.{key} must be an object")
    tpr = metrics.get("tpr_at_fpr")
    if isinstance(tpr, Mapping) and "values" in tpr:
        for k, v in (tpr.get("values") or {}).items():
            try:
                ok_key = float(k) > 0
            except ValueError:
                ok_key = False
            if not ok_key:
                problems.append(f"metrics.tpr_at_fpr key {k!r} is not an FPR like '1e-3'")
            if v is not None and not _is_fraction(v):
                problems.append(f"metrics.tpr_at_fpr[{k!r}] = {v!r} is not a fraction in [0, 1] or null")
    acc = metrics.get("accuracy")
    if isinstance(acc, Mapping) and "mean" in acc:
        for k in ("mean", "std"):
            if acc.get(k) is not None and not _is_fraction(acc.get(k)):
                problems.append(f"metrics.accuracy.{k} = {acc.get(k)!r} is not a fraction in [0, 1] or null")
    return problems


def raw_path(results_path: str | Path) -> Path:
    return Path(results_path).with_suffix(RAW_SUFFIX)


def _plain(values) -> np.ndarray:
    """An array that loads without pickles: text as fixed-width unicode, never object dtype."""
    arr = np.asarray(values)
    if arr.dtype == object:
        arr = arr.astype(str)
    return arr


def write_raw(path: Path, arrays: Mapping[str, np.ndarray]) -> str:
    """Write the raw arrays (``np.savez_compressed``, no pickles) atomically; returns the file's sha256. Compressed:
    pair ids, labels and folds deflate ~100x, so a 133 k-pair run is 0.7 MB instead of 5.2 (committed reports/)."""
    missing = [k for k in RAW_ARRAYS if k not in arrays]
    if missing:
        raise ValueError(f"raw data lacks {missing}")
    buf = io.BytesIO()
    extra = sorted(k for k in arrays if k.startswith(BOOT_PREFIX))  # bootstrap replicates, one (B, columns) each
    np.savez_compressed(buf, **{k: _plain(arrays[k]) for k in (*RAW_ARRAYS, *extra)})
    blob = buf.getvalue()
    with atomic_path(path) as tmp:
        tmp.write_bytes(blob)
    return hashlib.sha256(blob).hexdigest()


def read_raw(results_path: str | Path, record: RunRecord | None = None) -> dict[str, np.ndarray]:
    """The ``.npz`` beside a results file, checked against the sha256 the record gives."""
    path = raw_path(results_path)
    if not path.is_file():
        raise FiqaBenchError(f"{path}: no raw data beside {Path(results_path).name}")
    blob = path.read_bytes()
    if record is not None and record.raw.get("sha256") and hashlib.sha256(blob).hexdigest() != record.raw["sha256"]:
        raise FiqaBenchError(f"{path}: sha256 differs from the one its results file records (changed after the run)")
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as exc:  # noqa: BLE001 - any decoding problem is the file's
        raise FiqaBenchError(f"{path}: not readable as raw data ({type(exc).__name__}: {exc})") from exc


def write_results(out_dir: Path, record: RunRecord, raw: Mapping[str, np.ndarray]) -> Path:
    """Write ``<stem>.npz`` then ``<stem>.json`` (atomically; the JSON records the raw file's sha256)."""
    out_dir = Path(out_dir)
    path = out_dir / (record.stem + ".json")
    sha = write_raw(raw_path(path), raw)
    record.raw = {"file": raw_path(path).name, "sha256": sha,
                  "arrays": list(RAW_ARRAYS) + sorted(k for k in raw if k.startswith(BOOT_PREFIX))}
    problems = validate(record.to_json())
    if problems:
        raise FiqaBenchError(f"internal error: the results record is invalid: {problems}")
    write_json(path, record.to_json())
    return path


def load_record(path: str | Path) -> RunRecord:
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FiqaBenchError(f"{path}: not readable as a results file ({exc})") from exc
    return RunRecord.from_json(obj, str(path))
