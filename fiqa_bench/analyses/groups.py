"""Per-group metrics: a finished run's metrics on the comparisons of each group of images, with bootstrap intervals
over identities, and the largest gap between groups with its paired interval.

Where the labels come from (:func:`degradation_labels`, :func:`csv_labels`): the ``degradations.csv`` that
``fiqa-bench prepare --degrade`` writes (each degraded copy's kind and strength; every other image is ``none``), or
a CSV of the user's keyed by image path (demographics, capture condition, ...).

Which comparisons a group gets (:func:`pair_groups`): a template (or video) belongs to group ``g`` when **every
image the selection kept for it** is labelled ``g`` (top1: the one kept image), and a comparison belongs to ``g`` when
both of its templates do. The kept images are all a comparison's score and pair quality are computed from; the
template's other images never reach it, so labelling by them would credit a group with numbers another group's
images made. A comparison across two groups measures neither alone and belongs to none (counted). The degradation
groupings have a baseline, the undegraded images (``none``): a degraded template compared with an undegraded one
is in the degradation's group too (a degraded probe against a clean reference, the comparison a degradation
study asks about; within one kind alone a small benchmark has almost none), and ``none`` keeps the comparisons of
two undegraded templates. Each group's metrics are the run's declared metrics computed on its comparisons alone
(:func:`fiqa_bench.pipeline.evaluation.measure`): TPR@FPR at the FPR over the group's own impostor comparisons, EDC
with the threshold fixed from the group's own comparisons.

Intervals: one set of subject resamples (:func:`fiqa_bench.pipeline.uncertainty.subject_counts` over every subject
of the run, the run's bootstrap seed) is applied to every group, so two groups' replicates are paired resample by
resample. The gap of a headline column is the difference between its best and worst group (point values, in the
metric's direction); its interval is the percentile interval of that difference over the paired replicates.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fiqa_bench.errors import FiqaBenchError
from fiqa_bench.metrics.base import MetricOptions, PairData, get_metric
from fiqa_bench.results.groups_file import GROUPS_FORMAT, GROUPS_SUFFIX, GROUPS_VERSION

__all__ = [
    "DEGRADATION",
    "NONE",
    "Labels",
    "GroupResult",
    "csv_labels",
    "degradation_labels",
    "group_metrics",
    "groups_of_run",
    "pair_groups",
    "write_groups",
]

#: ``--by degradation``: the groupings derived from the benchmark's ``degradations.csv``.
DEGRADATION = "degradation"
#: The group of the images ``prepare --degrade`` left undegraded.
NONE = "none"
MEMBERSHIP = (
    "a template belongs to group g when every image the selection kept for it is in g; a comparison belongs to g "
    "when both of its templates do, or (with a baseline group: degradations' none) when one is in g and the other "
    "in the baseline"
)


@dataclass
class Labels:
    """One grouping: ``name`` (``degradation``, ``degradation_level`` or a CSV column), where it was read
    (``source``), and each image's group (one per row of the benchmark's face list; None: unlabelled)."""

    name: str
    source: str
    values: list[str | None]
    baseline: str | None = None  # a group whose templates may face every other group's (degradations: none)

    @property
    def unlabelled(self) -> int:
        return sum(v is None for v in self.values)


# ------------------------------------------------------------------------------------------ labels


def _path_index(paths: list[str]) -> dict[str, int]:
    """Each face-list path, and each of its tails after a ``/`` (``loose_crop/x.jpg`` also as ``x.jpg``, the name the
    face list gives), to its row; a tail two images share is kept out (ambiguous)."""
    index: dict[str, int] = {}
    ambiguous: set[str] = set()
    for row, path in enumerate(paths):
        parts = path.split("/")
        for i in range(len(parts)):
            key = "/".join(parts[i:])
            if i == 0:
                index[key] = row
            elif key in index and index[key] != row and key not in paths:
                ambiguous.add(key)
            else:
                index.setdefault(key, row)
    for key in ambiguous:
        index.pop(key, None)
    return index


def _read_csv(path: Path) -> list[list[str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FiqaBenchError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise FiqaBenchError(f"{path}:{line}: not UTF-8 text") from None
    except OSError as exc:
        raise FiqaBenchError(f"{path}: {exc.strerror or exc}") from None
    try:
        return list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        raise FiqaBenchError(f"{path}: not a CSV file ({exc})") from None


def _row_of(file: Path, line: int, name: str, index: dict[str, int], seen: dict[int, int]) -> int:
    """The face-list row a CSV line names (recorded in ``seen``); an image the benchmark lacks, or one listed
    twice, is refused with the file and line."""
    at = index.get(name)
    if at is None:
        raise FiqaBenchError(f"{file}:{line}: {name!r} is not an image of the benchmark")
    if at in seen:
        raise FiqaBenchError(f"{file}:{line}: {name} is listed twice (first on line {seen[at]})")
    seen[at] = line
    return at


def degradation_labels(bench_root: Path, paths: list[str]) -> list[Labels]:
    """The two degradation groupings of a benchmark prepared with ``--degrade``: ``degradation`` (each copy's kind:
    ``blur``, ``jpeg``...) and ``degradation_level`` (kind and strength: ``blur:strong``); images not listed in its
    ``degradations.csv`` are undegraded (``none``). ``paths``: the face list's image paths."""
    from fiqa_bench.data.prepare import DEGRADATIONS_FILE

    file = Path(bench_root) / DEGRADATIONS_FILE
    if not file.is_file():
        raise FiqaBenchError(
            f"{file}: no such file; --by {DEGRADATION} needs a benchmark made by `fiqa-bench prepare --degrade`"
        )
    rows = _read_csv(file)
    if not rows or [c.strip() for c in rows[0][:4]] != ["file", "source", "degradation", "level"]:
        raise FiqaBenchError(f"{file}:1: the header must begin file,source,degradation,level")
    index = _path_index(paths)
    kind: list[str | None] = [NONE] * len(paths)
    level: list[str | None] = [NONE] * len(paths)
    seen: dict[int, int] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) < 4 or not row[2].strip() or not row[3].strip():
            raise FiqaBenchError(f"{file}:{line}: expected file, source, degradation and level")
        at = _row_of(file, line, row[0].strip(), index, seen)
        kind[at] = row[2].strip()
        level[at] = f"{row[2].strip()}:{row[3].strip()}"
    src = DEGRADATIONS_FILE
    return [Labels(DEGRADATION, src, kind, NONE), Labels(f"{DEGRADATION}_level", src, level, NONE)]


def csv_labels(file: Path, paths: list[str], column: str | None = None, *, skip_missing: bool = False) -> list[Labels]:
    """Groupings from a user's CSV: a header row, an ``image`` column (the image's path relative to the benchmark
    root, or as the face list names it) and one or more group columns (``column``: only that one). Every image of the
    benchmark must be listed unless ``skip_missing`` (then the unlisted ones are in no group, and counted); a row
    naming an image the benchmark lacks, a duplicate, a short row or an empty group is refused with its line."""
    file = Path(file)
    rows = _read_csv(file)
    if not rows:
        raise FiqaBenchError(f"{file}:1: empty; expected a header row with an image column and group columns")
    header = [c.strip() for c in rows[0]]
    if "image" not in header:
        raise FiqaBenchError(f"{file}:1: no 'image' column in the header ({', '.join(header)})")
    if len(set(header)) != len(header) or "" in header:
        raise FiqaBenchError(f"{file}:1: column names must be non-empty and distinct ({', '.join(header)})")
    key = header.index("image")
    names = [c for c in header if c != "image"]
    if column is not None:
        if column not in names:
            raise FiqaBenchError(f"{file}:1: no group column {column!r} (columns: {', '.join(names) or 'none'})")
        names = [column]
    if not names:
        raise FiqaBenchError(f"{file}:1: no group column besides 'image'")
    index = _path_index(paths)
    cols = [header.index(n) for n in names]
    values: list[list[str | None]] = [[None] * len(paths) for _ in names]
    seen: dict[int, int] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise FiqaBenchError(f"{file}:{line}: {len(row)} fields, the header has {len(header)}")
        at = _row_of(file, line, row[key].strip(), index, seen)
        for j, c in enumerate(cols):
            v = row[c].strip()
            if not v:
                raise FiqaBenchError(f"{file}:{line}: empty value in column {header[c]!r}")
            values[j][at] = v
    missing = [i for i in range(len(paths)) if i not in seen]
    if missing and not skip_missing:
        raise FiqaBenchError(
            f"{file}: {len(missing)} of {len(paths)} images of the benchmark are not listed (first: "
            f"{paths[missing[0]]}); list them, or pass --missing skip to leave them out of every group"
        )
    return [Labels(n, file.name, v) for n, v in zip(names, values)]


# ------------------------------------------------------------------------------------------ membership


def pair_groups(
    labels: list[str | None],
    kept_rows: np.ndarray,
    kept_group: np.ndarray,
    pair_a: np.ndarray,
    pair_b: np.ndarray,
    baseline: str | None = None,
) -> tuple[list[str | None], dict[str, int], dict[str, int]]:
    """Each comparison's group (None: across groups, or an unlabelled kept image), counts of the templates and
    comparisons in no group, and the templates of each group. ``kept_rows``/``kept_group``: the face-list rows the
    selection kept and their templates (the run's ``.npz``). ``baseline`` (degradations: ``none``): a comparison of
    a template of group ``g`` with one of the baseline is ``g``'s too (a degraded copy against a clean photo)."""
    by_template: dict[int, set] = {}
    for row, template in zip(kept_rows.tolist(), kept_group.tolist()):
        by_template.setdefault(int(template), set()).add(labels[int(row)])
    of_template = {t: next(iter(s)) if len(s) == 1 else None for t, s in by_template.items()}
    mixed = sum(1 for s in by_template.values() if len(s) > 1)
    unlabelled = sum(1 for s in by_template.values() if len(s) == 1 and None in s)
    out: list[str | None] = []
    for a, b in zip(pair_a.tolist(), pair_b.tolist()):
        ga, gb = of_template.get(int(a)), of_template.get(int(b))
        if baseline is not None and ga is not None and gb is not None and baseline in (ga, gb):
            out.append(gb if ga == baseline else ga)  # baseline with baseline stays the baseline's
        else:
            out.append(ga if ga is not None and ga == gb else None)
    counts = {
        "templates_mixed": mixed,
        "templates_unlabelled": unlabelled,
        "pairs_in_no_group": sum(g is None for g in out),
    }
    templates: dict[str, int] = {}
    for g in of_template.values():
        if g is not None:
            templates[g] = templates.get(g, 0) + 1
    return out, counts, templates


def _subset(data: PairData, mask: np.ndarray) -> PairData:
    def take(x):
        return None if x is None else x[mask]

    return PairData(
        scores=data.scores[mask],
        labels=data.labels[mask],
        folds=data.folds[mask],
        quality=data.quality[mask],
        a=take(data.a),
        b=take(data.b),
        subject_a=take(data.subject_a),
        subject_b=take(data.subject_b),
    )


# ------------------------------------------------------------------------------------------ metrics


@dataclass
class GroupResult:
    """One group: its name, sizes and metrics (with intervals), and its bootstrap replicates by metric key."""

    name: str
    sizes: dict[str, int]
    metrics: dict[str, Any]
    replicates: dict[str, np.ndarray] = field(default_factory=dict)

    def as_json(self) -> dict:
        return {"name": self.name, **self.sizes, "metrics": self.metrics}


def _sort_key(name: str) -> tuple:
    return (name != NONE, name)


def group_metrics(
    data: PairData,
    groups: list[str | None],
    keys: list[str],
    options: MetricOptions,
    boot: Any = None,
    *,
    images: Mapping[str, int] | None = None,
    templates: Mapping[str, int] | None = None,
) -> list[GroupResult]:
    """Every declared metric of ``keys`` on each group's comparisons (``groups``: one name or None per pair of
    ``data``), with bootstrap intervals over subjects (``boot``:
    :class:`fiqa_bench.pipeline.uncertainty.BootstrapOptions`;
    None or B = 0: none), all groups resampled with the same subject counts."""
    from fiqa_bench.pipeline.uncertainty import intervals_from, replicates, subject_counts

    names = sorted({g for g in groups if g is not None}, key=_sort_key)
    arr = np.array([g if g is not None else "" for g in groups], dtype=object)
    counts = None
    if boot is not None and boot.B > 0 and data.subject_a is not None and data.subject_b is not None:
        n_subjects = int(max(data.subject_a.max(initial=-1), data.subject_b.max(initial=-1))) + 1
        counts = subject_counts(n_subjects, boot.B, boot.seed)
    out = []
    for name in names:
        mask = arr == name
        sub = _subset(data, mask)
        metrics = {key: _measure(key, sub, options) for key in keys}
        reps: dict[str, np.ndarray] = {}
        if counts is not None:
            reps = replicates(sub, metrics, options, boot, counts=counts)
            metrics = intervals_from(metrics, reps, boot)
        subjects = np.unique(np.r_[sub.subject_a, sub.subject_b]) if sub.subject_a is not None else np.zeros(0)
        sizes = {
            "images": int((images or {}).get(name, 0)),
            "templates": int((templates or {}).get(name, 0)),
            "pairs": int(mask.sum()),
            "genuine": sub.n_genuine,
            "impostor": sub.n_impostor,
            "subjects": int(subjects.size),
        }
        out.append(GroupResult(name, sizes, metrics, reps))
    return out


def _measure(key: str, data: PairData, options: MetricOptions) -> dict:
    """A metric on one group's comparisons; one the group cannot give (a k-fold accuracy whose group lies in one
    fold) is unavailable with the metric's own reason, as in a run."""
    try:
        return get_metric(key).measure(data, options)
    except ValueError as exc:
        return {"unavailable": f"not computable on this group's comparisons: {exc}"}


def gaps(results: list[GroupResult], keys: list[str], level: float = 0.95) -> list[dict]:
    """The largest gap between groups of every headline column: the best group minus the worst (in the metric's
    direction, so ``value`` >= 0 is how much better the best group is), and the percentile interval of that difference
    over the paired replicates; ``significant`` when the interval excludes 0 (None without intervals)."""
    from fiqa_bench.pipeline.uncertainty import percentile_interval

    out = []
    for key in keys:
        metric = get_metric(key)
        shorts: list[str] = []
        for r in results:
            for short, _ in metric.columns(r.metrics.get(key) or {}) if _usable(r.metrics.get(key)) else []:
                if short not in shorts:
                    shorts.append(short)
        for short in shorts:
            points = {}
            for r in results:
                value = r.metrics.get(key)
                if isinstance(value, dict) and _usable(value):
                    v = dict(metric.columns(value)).get(short)
                    if v is not None and math.isfinite(float(v)):
                        points[r.name] = float(v)
            if len(points) < 2:
                continue
            sign = 1.0 if metric.higher_is_better else -1.0
            high = max(points, key=lambda n: (sign * points[n], n))
            low = min(points, key=lambda n: (sign * points[n], n))
            gap: dict[str, Any] = {
                "metric": key,
                "short": short,
                "title": f"{metric.label}{metric.joiner}{short}",
                "high": high,
                "low": low,
                "value": abs(points[high] - points[low]),
                "interval": None,
                "significant": None,
                "valid_replicates": 0,
            }
            by_name = {r.name: r for r in results}
            rh, rl = by_name[high].replicates.get(key), by_name[low].replicates.get(key)
            if rh is not None and rl is not None:
                jh = [s for s, _ in metric.columns(by_name[high].metrics[key])].index(short)
                jl = [s for s, _ in metric.columns(by_name[low].metrics[key])].index(short)
                diff = sign * (rh[:, jh] - rl[:, jl]) + 0.0  # + 0.0: no -0.0 in the file
                gap["valid_replicates"] = int(np.isfinite(diff).sum())
                iv = percentile_interval(diff, level)
                if iv is not None:
                    gap["interval"] = iv
                    gap["significant"] = bool(iv[0] > 0 or iv[1] < 0)
            out.append(gap)
    return out


def _usable(value: Any) -> bool:
    return isinstance(value, dict) and "unavailable" not in value


# ------------------------------------------------------------------------------------------ a run


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "groups"


def groups_of_run(
    results: str | Path,
    by: str,
    *,
    bench: str | None = None,
    bootstrap: int | None = None,
    skip_missing: bool = False,
) -> dict:
    """The groups file's content for one results file (its ``.npz`` and its benchmark's files): ``by`` is
    ``degradation`` or ``FILE.csv[:COLUMN]``; ``bench`` the benchmark folder (default: the protocol the run recorded);
    ``bootstrap`` the resamples (default: the run's own B, else 1000)."""
    import json

    from fiqa_bench.pipeline.evaluation import pairdata_from_raw
    from fiqa_bench.pipeline.uncertainty import DEFAULT_B, BootstrapOptions
    from fiqa_bench.resolve import open_protocol
    from fiqa_bench.results.rescore import metric_options
    from fiqa_bench.results.store import load_file

    results = Path(results)
    run = load_file(results)
    if run is None:
        raise FiqaBenchError(f"{results}: not a fiqa-bench results file")
    record = run.record
    raw = run.raw
    spec = bench if bench is not None else str(record.config.get("protocol") or record.protocol.get("spec") or "")
    if not spec:
        raise FiqaBenchError(f"{results}: the run names no benchmark; give it with --bench")
    benchmark = open_protocol(spec, None if bench is not None else record.config.get("data")).load()
    if benchmark.fingerprint()["faces_sha256"] != record.protocol.get("faces_sha256"):
        raise FiqaBenchError(
            f"{spec}: its face list is not the one {results.name} was evaluated on (faces_sha256 differs); "
            "give the run's benchmark with --bench"
        )
    paths = benchmark.faces["path"].astype(str).tolist()
    kept_rows = np.asarray(raw["kept_rows"], dtype=np.int64)
    if kept_rows.size and (kept_rows.min() < 0 or kept_rows.max() >= len(paths)):
        raise FiqaBenchError(f"{results}: kept_rows of its .npz fall outside the benchmark's face list")
    if by == DEGRADATION:
        groupings = degradation_labels(benchmark.root, paths)
        by_label = by
    else:
        file, _, column = by.rpartition(":") if ":" in by and not Path(by).is_file() else (by, "", "")
        groupings = csv_labels(Path(file), paths, column or None, skip_missing=skip_missing)
        by_label = Path(file).name + (f":{column}" if column else "")
    data = pairdata_from_raw(raw)
    keys = list(record.protocol.get("metrics") or record.metrics)
    options = metric_options(record.config)
    B = int(record.config.get("bootstrap") or DEFAULT_B) if bootstrap is None else int(bootstrap)
    boot = (
        BootstrapOptions(
            B=B,
            level=float(record.config.get("bootstrap_level", 0.95)),
            seed=int(record.config.get("bootstrap_seed", 0)),
        )
        if B > 0
        else None
    )
    kept_group = np.asarray(raw["kept_group"], dtype=np.int64)
    out_groupings = []
    for labels in groupings:
        pg, counts, templates = pair_groups(
            labels.values, kept_rows, kept_group, raw["pair_a"], raw["pair_b"], labels.baseline
        )
        images: dict[str, int] = {}
        for v in labels.values:
            if v is not None:
                images[v] = images.get(v, 0) + 1
        results_g = group_metrics(data, pg, keys, options, boot, images=images, templates=templates)
        out_groupings.append(
            {
                "name": labels.name,
                "source": labels.source,
                "baseline": labels.baseline,
                "counts": {"images_unlabelled": labels.unlabelled, **counts},
                "groups": [r.as_json() for r in results_g],
                "gaps": gaps(results_g, keys, boot.level if boot is not None else 0.95),
            }
        )
    from fiqa_bench.results.store import method_label

    obj = {
        "format": GROUPS_FORMAT,
        "version": GROUPS_VERSION,
        "results": {"file": results.name, "sha256": hashlib.sha256(results.read_bytes()).hexdigest()},
        "method": method_label(record),
        "by": by_label,
        "membership": MEMBERSHIP,
        "bootstrap": boot.describe() if boot is not None else None,
        "groupings": out_groupings,
    }
    return json.loads(json.dumps(obj, allow_nan=False))


def groups_stem(results: Path, by: str) -> str:
    """``<results stem>__<grouping>``: the name of a run's groups file and figures without the suffix."""
    return f"{Path(results).stem}__{_slug(by)}"


def write_groups(obj: dict, out_dir: Path, stem: str) -> list[Path]:
    """Write the groups file and one figure per grouping (PNG and SVG) into ``out_dir``; returns the paths."""
    import json

    from fiqa_bench.data import atomic

    out_dir = Path(out_dir)
    atomic.check_writable(out_dir, "groups output folder (--out)")
    target = out_dir / f"{stem}{GROUPS_SUFFIX}"
    atomic.write_text(target, json.dumps(obj, indent=2, allow_nan=False) + "\n")
    written = [target]
    for grouping in obj["groupings"]:
        written += draw_groups(grouping, obj["method"], out_dir, f"{stem}__{_slug(grouping['name'])}")
    return written


def draw_groups(grouping: dict, title: str, folder: Path, stem: str) -> list[Path]:
    """Per-group bars with their intervals: one panel per headline column that some group has a number for."""
    from fiqa_bench.writers.plots import _figure, _save

    columns: list[tuple[str, str]] = []
    for g in grouping["groups"]:
        for key, value in g["metrics"].items():
            if _usable(value):
                for short, v in get_metric(key).columns(value):
                    if v is not None and (key, short) not in columns:
                        columns.append((key, short))
    groups = [g["name"] for g in grouping["groups"]]
    n = max(1, len(columns))
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig = _figure(4.2 * ncols, 0.6 + 2.8 * nrows + 0.12 * max(len(g) for g in groups or [""]))
    for i, (key, short) in enumerate(columns):
        metric = get_metric(key)
        ax = fig.add_subplot(nrows, ncols, i + 1)
        heights, lows, highs, missing = [], [], [], []
        for g in grouping["groups"]:
            value = g["metrics"].get(key)
            v = dict(metric.columns(value)).get(short) if _usable(value) else None
            iv = (value.get("intervals") or {}).get(short) if _usable(value) else None
            h = metric.scale * float(v) if v is not None else 0.0
            missing.append(v is None)
            heights.append(h)
            lows.append(h - metric.scale * iv[0] if v is not None and iv else 0.0)
            highs.append(metric.scale * iv[1] - h if v is not None and iv else 0.0)
        x = np.arange(len(groups))
        ax.bar(x, heights, color="#4c72b0", yerr=np.array([np.maximum(lows, 0), np.maximum(highs, 0)]), capsize=3)
        for xi in x[np.array(missing, dtype=bool)]:  # no number: said, not drawn as a zero
            ax.text(xi, 0, "n/a", ha="center", va="bottom", fontsize=7, color="#8c8c8c")
        ax.set_xticks(x)
        ax.set_xticklabels(groups, rotation=60, ha="right", fontsize=7)
        unit = f" ({metric.unit})" if metric.unit else ""
        ax.set_title(
            f"{metric.label}{metric.joiner}{short}{unit} {'↑' if metric.higher_is_better else '↓'}", fontsize=9
        )
        ax.tick_params(axis="y", labelsize=7)
    fig.suptitle(f"{title} by {grouping['name']} (bars: 95% bootstrap intervals over subjects)", fontsize=9)
    fig.tight_layout()
    return _save(fig, Path(folder), stem)
