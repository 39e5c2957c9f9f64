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
import re
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fiqa_bench import __version__
from fiqa_bench.data.atomic import atomic_path, write_json
from fiqa_bench.errors import BadResultsFile, FiqaBenchError
from fiqa_bench.results.fields import ANY, DEFERRED, Flag, List, Map, Num, Obj, Text, describe, field_path

SCHEMA_VERSION = 2
RAW_SUFFIX = ".npz"
BOOT_PREFIX = "boot_"
#: Arrays every raw file holds (``fiqa_bench.pipeline.evaluation.evaluate`` writes them; ``rescore`` reads them).
RAW_ARRAYS = (
    "pair_a",
    "pair_b",
    "pair_scores",
    "pair_labels",
    "pair_folds",
    "pair_quality",
    "template_ids",
    "template_quality",
    "template_subject",
    "subjects",
    "kept_rows",
    "kept_group",
    "kept_quality",
    "kept_paths",
    "image_quality",
    "image_group",
)
#: Arrays a raw file holds only for some runs (written when given, never required by a reader): the sample labels of
#: imported comparisons, and the kept images' embeddings (``run --keep-embeddings``; ``export --format insightface``).
OPTIONAL_RAW_ARRAYS = ("template_labels", "kept_embeddings")


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The suite's git commit when run from a checkout (None for an installed wheel)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
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
    "numpy": ("numpy",),
    "scipy": ("scipy",),
    "pandas": ("pandas",),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
    "opencv": ("opencv-python-headless", "opencv-python", "opencv-contrib-python-headless", "opencv-contrib-python"),
    "torch": ("torch",),
    "dlib": ("dlib-bin", "dlib"),
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
    text = json.dumps(
        {str(k): str(v) for k, v in sorted(dict(options or {}).items())}, sort_keys=True, separators=(",", ":")
    )
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
    def from_json(cls, obj: Mapping[str, Any], source: str = "<results>") -> RunRecord:
        problems = validate(obj)
        if problems:
            raise BadResultsFile(
                source, problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
            )
        fields = {k: obj[k] for k in cls.__dataclass_fields__ if k in obj}
        return cls(**{"timings": {}, **fields})

    @property
    def stem(self) -> str:
        return results_stem(
            self.protocol["name"],
            self.method["name"],
            self.backbone["name"],
            self.config["selection"],
            self.config.get("k") if self.config["selection"] == "topk" else None,
            self.settings_digest,
        )

    @property
    def settings_digest(self) -> str:
        return settings_digest(self.settings)

    def metric(self, key: str) -> dict | None:
        value = self.metrics.get(key)
        return value if isinstance(value, dict) else None


# ------------------------------------------------------------------------------------------ the schema
# Every field a reader interprets, with its type and range (fiqa_bench.results.fields); fields not named here may
# be present
# (a newer writer's) and are never read, but must still be finite JSON. Metric values are checked by their
# declarations (Metric.check) and the metrics' options in ``config`` by theirs (MetricOption.spec, added in
# validate): no metric key or option is named here.

_NAME = Text(nonempty=True)
_TEXT = Text(null=True)
_COUNT = Num(0, integer=True)
_STRINGS = Map(Text(), noun="an object of strings (option -> value)", null=True)
_CARD = Obj({k: _TEXT for k in ("summary", "paper", "licence", "weights")}, null=True)
_SECTIONS = {
    "suite": Obj({"name": _TEXT, "version": _TEXT, "git_commit": _TEXT, "libraries": Map(Text())}),
    "method": Obj(
        {
            "name": _NAME,
            "version": _TEXT,
            "card_hash": _TEXT,
            "identity": _TEXT,
            "options": _STRINGS,
            "options_sha256": _STRINGS,
            "card": _CARD,
        },
        required=("name",),
    ),
    "backbone": Obj(
        {
            "name": _NAME,
            "spec": _TEXT,
            "version": _TEXT,
            "weights_sha256": _TEXT,
            "card_hash": _TEXT,
            "identity": _TEXT,
            "card": _CARD,
        },
        required=("name",),
    ),
    "protocol": Obj(
        {
            "name": _NAME,
            "version": _NAME,
            "metric": _NAME,
            "metrics": List(_NAME),
            "spec": _TEXT,
            "data": _TEXT,
            "faces_sha256": _TEXT,
            "pairs_sha256": _TEXT,
        },
        required=("name", "version", "metric"),
    ),
    "config": Obj(
        {
            "selection": _NAME,
            "k": Num(1, integer=True, null=True),
            "seed": Num(integer=True, null=True),
            "flip": Flag(),
            "detector": _TEXT,
            "on_bad_image": Text(),
            "on_no_face": Text(),
            "follow_symlinks": Flag(),
            "max_image_bytes": Num(1, integer=True),
            "bootstrap": _COUNT,
            "bootstrap_level": Num(0, 1, open_lo=True, open_hi=True),
            "bootstrap_seed": Num(integer=True),
            "protocol": _TEXT,
            "backbone": _TEXT,
            "method": _TEXT,
            "data": _TEXT,
            "backbone_options": Map(ANY),
            "method_options": Map(ANY),
        },
        required=("selection",),
    ),
    "settings": Obj({}),
    "counts": Obj(
        {
            **{
                k: _COUNT
                for k in (
                    "images",
                    "templates",
                    "pairs",
                    "pairs_scored",
                    "pairs_dropped",
                    "genuine",
                    "impostor",
                    "subjects",
                    "images_scored",
                    "images_scored_new",
                    "images_embedded_for_quality",
                    "images_embedded",
                    "images_embedded_new",
                    "fallback_landmarks",
                    "skipped",
                    "cache_shards_rejected",
                )
            },
            "skipped_reasons": Map(_COUNT),
            "landmarks_rejected": Map(_COUNT),
            "skipped_files": List(Text()),
        }
    ),
    "metrics": Obj({}, extra=DEFERRED),  # each value by its metric's declaration, in validate
}
_REQUIRED = tuple(_SECTIONS)
_OPTIONAL = {
    "timings": Obj({"bootstrap_reused": Flag()}, extra=Num(0)),  # seconds, and whether the bootstrap was reused
    "raw": Obj({"file": Text(), "sha256": Text(), "arrays": List(Text())}),
    "detector": _TEXT,
    "notes": List(Text()),
}
_RECORD = Obj({**_SECTIONS, **_OPTIONAL, "schema_version": ANY})


def _record_spec() -> Obj:
    """The record's spec, with ``config`` holding each registered metric's options by their declarations."""
    from fiqa_bench.metrics.base import declared_options

    config = _SECTIONS["config"]
    options = {name: option.spec() for name, option in declared_options().items() if name not in config.fields}
    return Obj({**_RECORD.fields, "config": Obj({**config.fields, **options}, required=config.required)})


def validate(obj: Any) -> list[str]:
    """Problems with a results record as JSON, each one line naming its field (empty list when valid): the schema
    version, every section and field a reader interprets (type and range), and each metric by its declaration."""
    from fiqa_bench.metrics.base import get_metric

    if not isinstance(obj, Mapping):
        return [f"not a valid results file: the top level must be an object, not {describe(obj)}"]
    if obj.get("schema_version") != SCHEMA_VERSION:
        return [
            f"schema_version {obj.get('schema_version')!r} is not {SCHEMA_VERSION} (this fiqa-bench reads "
            f"version {SCHEMA_VERSION}; rerun, or `fiqa-bench rescore` cannot help an old file)"
        ]
    missing = [key for key in _REQUIRED if key not in obj]
    if missing:
        return [f"not a valid results file: missing object {key!r}" for key in missing]
    problems: list[str] = []
    _record_spec().check(dict(obj), "", problems)
    if problems:
        return problems
    metrics, listed = obj["metrics"], obj["protocol"].get("metrics")
    if not metrics:
        return ["metrics is empty (expected at least one metric)"]
    for i, key in enumerate(listed or list(metrics)):  # what every reader shows: the listed keys, else all
        try:
            get_metric(key)
        except KeyError:
            where = field_path("protocol.metrics", i) if listed else field_path("metrics", key)
            problems.append(f"{where} = {key!r} is not a declared metric (no fiqa_bench.metrics.{key})")
    for key, value in metrics.items():
        try:
            metric = get_metric(key)
        except KeyError:  # a value no protocol lists: never read, only its shape is checked
            Obj({}).check(value, field_path("metrics", key), problems)
            continue
        problems += metric.check(value, field_path("metrics", key))
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
    # mypy matches the **dict against savez_compressed's allow_pickle: bool keyword; its keys are only array names
    optional = [k for k in OPTIONAL_RAW_ARRAYS if k in arrays]
    names = (*RAW_ARRAYS, *optional, *extra)
    np.savez_compressed(buf, **{k: _plain(arrays[k]) for k in names})  # type: ignore[arg-type]
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
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:  # noqa: BLE001 - any decoding problem is the file's
        raise FiqaBenchError(f"{path}: not readable as raw data ({type(exc).__name__}: {exc})") from exc
    missing = [k for k in RAW_ARRAYS if k not in arrays]
    flat = [k for k, v in arrays.items() if k.startswith(BOOT_PREFIX) and v.ndim != 2]
    if missing or flat:  # readers index these: a file without them is no raw data of a run
        raise FiqaBenchError(
            f"{path}: "
            + (f"lacks the arrays {missing}" if missing else f"{flat[0]} is not a 2-d array (replicates x columns)")
        )
    return arrays


def write_results(out_dir: Path, record: RunRecord, raw: Mapping[str, np.ndarray]) -> Path:
    """Write ``<stem>.npz`` then ``<stem>.json`` (atomically; the JSON records the raw file's sha256)."""
    out_dir = Path(out_dir)
    path = out_dir / (record.stem + ".json")
    sha = write_raw(raw_path(path), raw)
    record.raw = {
        "file": raw_path(path).name,
        "sha256": sha,
        "arrays": list(RAW_ARRAYS)
        + [k for k in OPTIONAL_RAW_ARRAYS if k in raw]
        + sorted(k for k in raw if k.startswith(BOOT_PREFIX)),
    }
    problems = validate(record.to_json())
    if problems:
        raise FiqaBenchError(f"internal error: the results record is invalid: {problems}")
    write_json(path, record.to_json())
    return path


def read_results_json(path: str | Path) -> Any:
    """The parsed JSON of a results file (:class:`BadResultsFile` when it is not readable as JSON): the one place a
    results file is read, for :func:`load_record` and :mod:`fiqa_bench.results.store`."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadResultsFile(path, f"not readable as JSON ({exc})") from exc


def load_record(path: str | Path) -> RunRecord:
    """The validated record of one results file (:class:`BadResultsFile` naming the file and the field)."""
    return RunRecord.from_json(read_results_json(path), str(path))
