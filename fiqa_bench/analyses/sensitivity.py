"""Degradation sensitivity: how often a quality method scores a degraded copy of a photo below the photo itself,
per degradation kind and strength, with bootstrap intervals over subjects.

A copy is **penalised** when the method ranks it strictly worse than its source photo: ``score(copy) <
score(source)`` for a method whose card says higher is better (``>`` otherwise). A tie is not a penalty. For each
(kind, strength) cell the share of penalised copies is given with a percentile interval from a bootstrap over
subjects (identities): a resample draws the S subjects with replacement (:func:`fiqa_bench.pipeline.uncertainty.
subject_counts`, the resamples of ``fiqa-bench run``), a subject drawn ``c`` times counts each of its copies ``c``
times, and the share of a resample is ``sum_s c_s * penalised_s / sum_s c_s * copies_s``. Every cell uses the same
resamples.

Two photo sets:

* a benchmark written by ``fiqa-bench prepare --degrade F`` (:func:`benchmark_copies`): its ``degradations.csv``
  lists each degraded copy with its source photo (``identity/photo`` under a source folder of the preparation).
  Copies are scored as a run scores them (the benchmark's landmarks, the method's quality cache of that benchmark);
  source photos are found under the source folders that ``benchmark.json`` records (or the ones given), their face
  detected with the preparation's detector and padding, landmarks rounded to the 2 decimals the benchmark's
  landmark file keeps, and aligned by the same code;
* the photos of a labelled set (``fiqa-bench train-baseline data SET``), degraded here for the kinds and strengths
  asked for (:mod:`fiqa_bench.training.baselines.sensitivity`).

Both give :class:`Copies`; :func:`sensitivity` computes the table, :func:`write_outputs` writes it (Markdown, JSON,
CSV, a per-copy CSV and a kind x strength heatmap).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fiqa_bench.data.degradations import DEGRADATIONS, LEVELS
from fiqa_bench.errors import FiqaBenchError, ImageError

RULE = "share of degraded copies the method ranks strictly below their source photo (a tie is not penalised)"
SOURCE_LANDMARK_DECIMALS = 2  # the benchmark's landmark file keeps 2 decimals (fiqa_bench.data.prepare)


# ----------------------------------------------------------------------------------------------- strengths
def strength_label(kind: str, level: str) -> str:
    """``strong (quality=10)``: the level and its fixed parameters (fiqa_bench.data.degradations)."""
    params = DEGRADATIONS[kind].levels.get(level, {})
    return f"{level} ({', '.join(f'{k}={v:g}' for k, v in params.items())})" if params else level


def parse_strength(text: str) -> tuple[str, str]:
    """``KIND:STRENGTH`` -> (kind, level). KIND is a name of :data:`fiqa_bench.data.degradations.DEGRADATIONS`
    (or a part of exactly one, e.g. ``noise``); STRENGTH a level (``light``, ``medium``, ``strong``) or the value of the
    level's first parameter (``jpeg:10`` is quality 10, the strong level)."""
    kind_text, sep, strength = str(text).partition(":")
    if not sep or not kind_text or not strength:
        raise FiqaBenchError(f"degradation {text!r}: expected KIND:STRENGTH, e.g. jpeg:strong or jpeg:10")
    if kind_text in DEGRADATIONS:
        kind = kind_text
    else:
        matches = [n for n in DEGRADATIONS if kind_text in n]
        if len(matches) != 1:
            known = ", ".join(DEGRADATIONS)
            which = f"matches {', '.join(matches)}" if matches else "is unknown"
            raise FiqaBenchError(f"degradation {text!r}: kind {kind_text!r} {which} (kinds: {known})")
        kind = matches[0]
    levels = DEGRADATIONS[kind].levels
    if strength in levels:
        return kind, strength
    for level, params in levels.items():
        first = next(iter(params.values()))
        try:
            if math.isclose(float(strength), float(first)):
                return kind, level
        except ValueError:
            break
    values = ", ".join(f"{lv} = {next(iter(p.values())):g}" for lv, p in levels.items())
    raise FiqaBenchError(f"degradation {text!r}: strength {strength!r} is not a level of {kind} ({values})")


def parse_strengths(texts: Sequence[str]) -> list[tuple[str, str]]:
    """Several ``KIND:STRENGTH`` (:func:`parse_strength`), in order, each once; ``all`` is every kind at every level,
    ``KIND:all`` every level of one kind."""
    out: list[tuple[str, str]] = []
    for text in texts:
        kind, _, strength = str(text).partition(":")
        if text == "all":
            pairs = [(k, lv) for k in DEGRADATIONS for lv in LEVELS]
        elif strength == "all":
            k = parse_strength(f"{kind}:{LEVELS[0]}")[0]
            pairs = [(k, lv) for lv in LEVELS]
        else:
            pairs = [parse_strength(text)]
        out += [p for p in pairs if p not in out]
    return out


# ----------------------------------------------------------------------------------------------- the table
@dataclass
class Copies:
    """One row per degraded copy: its kind and level, its subject, the method's score of the copy and of its
    source photo (NaN: not scored, e.g. skipped), and where both come from (for the per-copy file)."""

    kind: Any  # (N,) str, given as any sequence
    level: Any  # (N,) str
    subject: Any  # (N,) str
    copy_score: Any  # (N,) float64, NaN: not scored
    source_score: Any  # (N,) float64
    copy_name: list[str] = field(default_factory=list)
    source_name: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.kind = np.asarray(self.kind).astype(str).reshape(-1)
        self.level = np.asarray(self.level).astype(str).reshape(-1)
        self.subject = np.asarray(self.subject).astype(str).reshape(-1)
        self.copy_score = np.asarray(self.copy_score, np.float64).reshape(-1)
        self.source_score = np.asarray(self.source_score, np.float64).reshape(-1)
        n = len(self.kind)
        if not (len(self.level) == len(self.subject) == len(self.copy_score) == len(self.source_score) == n):
            raise ValueError("copies: kind, level, subject and both scores must have one entry per copy")
        self.copy_name = list(self.copy_name) or [""] * n
        self.source_name = list(self.source_name) or [""] * n

    def __len__(self) -> int:
        return len(self.kind)

    def penalised(self, higher_is_better: bool = True) -> np.ndarray:
        """Whether each copy is ranked strictly below its source (False where a score is missing)."""
        with np.errstate(invalid="ignore"):
            return self.copy_score < self.source_score if higher_is_better else self.copy_score > self.source_score


def _cells(copies: Copies) -> list[tuple[str, str]]:
    """The (kind, level) cells present, in the table order of fiqa_bench.data.degradations."""
    present = set(zip(copies.kind.tolist(), copies.level.tolist()))
    order = [(k, lv) for k in DEGRADATIONS for lv in LEVELS]
    unknown = sorted(present - set(order))
    if unknown:
        raise FiqaBenchError(f"unknown degradation kind/level {unknown[0][0]}/{unknown[0][1]}")
    return [c for c in order if c in present]


def sensitivity(copies: Copies, *, higher_is_better: bool = True, boot: Any = None) -> dict[str, Any]:
    """The table: one entry per (kind, level) cell (and ``all`` copies) with ``copies``, ``penalised``, ``ties``,
    ``share`` (penalised / copies), ``mean_drop`` (mean of source - copy score, in the method's better direction)
    and ``interval`` ([low, high] at ``boot.level``, None without a bootstrap). Copies with a missing score are
    left out of every cell and counted in ``unscored``."""
    from fiqa_bench.pipeline.uncertainty import percentile_interval, subject_counts

    scored = np.isfinite(copies.copy_score) & np.isfinite(copies.source_score)
    pen = copies.penalised(higher_is_better) & scored
    tie = (copies.copy_score == copies.source_score) & scored
    sign = 1.0 if higher_is_better else -1.0
    drop = sign * (copies.source_score - copies.copy_score)
    subjects, sidx = np.unique(copies.subject, return_inverse=True)
    counts = None
    if boot is not None and boot.B > 0 and len(subjects):
        counts = subject_counts(len(subjects), boot.B, boot.seed).astype(np.float64)

    def cell(mask: np.ndarray) -> dict[str, Any]:
        m = mask & scored
        n = int(m.sum())
        out: dict[str, Any] = {
            "copies": n,
            "penalised": int(pen[m].sum()),
            "ties": int(tie[m].sum()),
            "share": float(pen[m].mean()) if n else None,
            "mean_drop": float(drop[m].mean()) if n else None,
            "subjects": int(len(np.unique(sidx[m]))),
            "interval": None,
        }
        if counts is not None and n:
            n_s = np.bincount(sidx[m], minlength=len(subjects)).astype(np.float64)
            p_s = np.bincount(sidx[m], weights=pen[m].astype(np.float64), minlength=len(subjects))
            den = counts @ n_s
            with np.errstate(invalid="ignore", divide="ignore"):
                reps = np.where(den > 0, (counts @ p_s) / np.where(den > 0, den, 1.0), np.nan)
            out["interval"] = percentile_interval(reps, boot.level)
        return out

    rows = []
    for kind, level in _cells(copies):
        c = cell((copies.kind == kind) & (copies.level == level))
        rows.append({"kind": kind, "level": level, "strength": strength_label(kind, level), **c})
    return {
        "rule": RULE,
        "higher_is_better": bool(higher_is_better),
        "copies": len(copies),
        "unscored": int((~scored).sum()),
        "subjects": int(len(subjects)),
        "bootstrap": None if counts is None else {**boot.describe(), "weights": "each copy of subject s: c_s"},
        "cells": rows,
        "all": cell(np.ones(len(copies), bool)),
    }


# ----------------------------------------------------------------------------------------------- writers
def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def _interval_text(iv: list[float] | None) -> str:
    return "" if iv is None else f"[{100 * iv[0]:.1f}, {100 * iv[1]:.1f}]"


def markdown(table: dict[str, Any], title: str, lines: Sequence[str] = ()) -> str:
    from fiqa_bench.writers.markdown import md_cell

    level = table["bootstrap"]["level"] if table["bootstrap"] else None
    head = f"penalised % [{level:.0%} interval]" if level else "penalised %"
    out = [
        f"# {md_cell(title)}",
        "",
        *([*lines, ""] if lines else []),
        f"| kind | strength | copies | {head} | ties | mean drop |",
    ]
    out.append("|---|---|---:|---:|---:|---:|")
    for r in [*table["cells"], {"kind": "all", "strength": "", **table["all"]}]:
        share = f"{_pct(r['share'])} {_interval_text(r['interval'])}".strip()
        drop = "-" if r["mean_drop"] is None else f"{r['mean_drop']:.4f}"
        out.append(
            f"| {md_cell(r['kind'])} | {md_cell(r['strength'])} | {r['copies']} | {share} | {r['ties']} | {drop} |"
        )
    return "\n".join(out) + "\n"


CSV_COLUMNS = ("kind", "level", "strength", "copies", "penalised", "ties", "share", "low", "high", "mean_drop")


def cells_csv(table: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in table["cells"]:
        iv = r["interval"] or ["", ""]
        w.writerow(
            [
                r["kind"],
                r["level"],
                r["strength"],
                r["copies"],
                r["penalised"],
                r["ties"],
                "" if r["share"] is None else repr(r["share"]),
                *(repr(v) if v != "" else "" for v in iv),
                "" if r["mean_drop"] is None else repr(r["mean_drop"]),
            ]
        )
    return buf.getvalue()


COPY_COLUMNS = ("copy", "source", "subject", "kind", "level", "copy_score", "source_score", "penalised")


def copies_csv(copies: Copies, higher_is_better: bool = True) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COPY_COLUMNS)
    pen = copies.penalised(higher_is_better)
    for i in range(len(copies)):
        w.writerow(
            [
                copies.copy_name[i],
                copies.source_name[i],
                copies.subject[i],
                copies.kind[i],
                copies.level[i],
                repr(float(copies.copy_score[i])),
                repr(float(copies.source_score[i])),
                int(pen[i]),
            ]
        )
    return buf.getvalue()


def heatmap(table: dict[str, Any], folder: Path, stem: str, title: str) -> list[Path]:
    """Kind x strength, the penalised share in each cell (its interval below it); empty cells grey."""
    from fiqa_bench.writers.plots import _figure, _save

    kinds = [k for k in DEGRADATIONS if any(r["kind"] == k for r in table["cells"])]
    grid = np.full((len(kinds), len(LEVELS)), np.nan)
    text: dict[tuple[int, int], str] = {}
    for r in table["cells"]:
        i, j = kinds.index(r["kind"]), LEVELS.index(r["level"])
        if r["share"] is not None:
            grid[i, j] = r["share"]
            iv = r["interval"]
            text[i, j] = f"{100 * r['share']:.1f}%" + (f"\n[{100 * iv[0]:.0f}, {100 * iv[1]:.0f}]" if iv else "")
    fig = _figure(5.6, 0.9 + 0.55 * max(1, len(kinds)))
    ax = fig.add_subplot(1, 1, 1)
    from matplotlib import colormaps

    cmap = colormaps["viridis"].with_extremes(bad="#dddddd")
    img = ax.imshow(np.ma.masked_invalid(grid), vmin=0.0, vmax=1.0, cmap=cmap, aspect="auto")
    for (i, j), t in text.items():
        ax.text(j, i, t, ha="center", va="center", fontsize=8, color="white" if grid[i, j] < 0.6 else "black")
    ax.set_xticks(range(len(LEVELS)))
    ax.set_xticklabels(LEVELS)
    ax.set_yticks(range(len(kinds)))
    ax.set_yticklabels(kinds)
    ax.set_xlabel("strength")
    ax.set_title(title, fontsize=9)
    fig.colorbar(img, ax=ax, label="penalised share")
    return _save(fig, folder, stem)


def write_outputs(
    out: str | Path, table: dict[str, Any], copies: Copies, record: dict[str, Any], title: str, lines: Sequence[str]
) -> list[Path]:
    """``sensitivity.json`` (``record`` + the table), ``sensitivity.md``, ``sensitivity.csv`` (one row per cell),
    ``copies.csv`` (one row per copy with both scores) and ``sensitivity.png`` / ``.svg`` (the heatmap)."""
    from fiqa_bench.data.atomic import write_json, write_text

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    hib = bool(table["higher_is_better"])
    write_json(folder / "sensitivity.json", {**record, "table": table})
    write_text(folder / "sensitivity.md", markdown(table, title, lines))
    write_text(folder / "sensitivity.csv", cells_csv(table))
    write_text(folder / "copies.csv", copies_csv(copies, hib))
    written = [folder / n for n in ("sensitivity.json", "sensitivity.md", "sensitivity.csv", "copies.csv")]
    return written + heatmap(table, folder, "sensitivity", title)


# ----------------------------------------------------------------------------------------------- benchmark
@dataclass(frozen=True)
class CopyRow:
    """A line of a benchmark's ``degradations.csv``."""

    line: int
    file: str
    source: str  # identity/photo under a source folder of the preparation
    kind: str
    level: str
    params: dict


def read_degradations(root: Path) -> list[CopyRow]:
    """The degraded copies listed in ``root/degradations.csv``; a malformed line is one error naming it."""
    from fiqa_bench.data.prepare import DEGRADATIONS_FILE

    path = Path(root) / DEGRADATIONS_FILE
    if not path.is_file():
        raise FiqaBenchError(f"{path}: not found (a benchmark prepared with --degrade lists its copies there)")
    rows: list[CopyRow] = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        want = ["file", "source", "degradation", "level", "params"]
        if header is None or header[: len(want)] != want:
            raise FiqaBenchError(f"{path}:1: header must start with {','.join(want)}, got {header}")
        for number, cells in enumerate(reader, start=2):
            if not cells:
                continue
            if len(cells) < len(want):
                raise FiqaBenchError(f"{path}:{number}: {len(cells)} fields, expected {len(header)}")
            file, source, kind, level, params = cells[:5]
            if kind not in DEGRADATIONS or level not in DEGRADATIONS[kind].levels:
                raise FiqaBenchError(f"{path}:{number}: unknown degradation {kind!r} / level {level!r}")
            if not file or not source or source.startswith("/") or ".." in Path(source).parts:
                raise FiqaBenchError(
                    f"{path}:{number}: file and source must be relative names, got {file!r}, {source!r}"
                )
            try:
                p = json.loads(params)
            except ValueError:
                raise FiqaBenchError(f"{path}:{number}: params is not JSON: {params!r}") from None
            rows.append(CopyRow(number, file, source, kind, level, p))
    if not rows:
        raise FiqaBenchError(f"{path}: lists no degraded copy (prepare the benchmark with --degrade F, F > 0)")
    return rows


@dataclass(frozen=True)
class SourceRoot:
    """A folder the source photos are looked for in, the detection padding of its photos, and where it came from."""

    root: Path
    pad: float
    origin: str  # "benchmark.json" or "--source-root"


def recorded_roots(root: Path) -> list[SourceRoot]:
    """The source folders ``benchmark.json`` records (as prepared), with their detection padding."""
    info_path = Path(root) / "benchmark.json"
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FiqaBenchError(f"{info_path}: cannot read the benchmark's record ({exc})") from None
    source = info.get("source")
    roots = [source] if isinstance(source, str) else list(source or [])
    pads = (info.get("options") or {}).get("detect_pad") or [0.0] * len(roots)
    if not roots or not all(isinstance(r, str) for r in roots) or len(pads) != len(roots):
        raise FiqaBenchError(f"{info_path}: 'source' names no source folder; give them with --source-root")
    return [SourceRoot(Path(r), float(p), "benchmark.json") for r, p in zip(roots, pads)]


def benchmark_record(root: Path) -> dict[str, Any]:
    info = json.loads((Path(root) / "benchmark.json").read_text(encoding="utf-8"))
    return {"detector": (info.get("options") or {}).get("detector", "yunet"), "name": info.get("name")}


def find_sources(rows: Sequence[CopyRow], roots: Sequence[SourceRoot]) -> dict[str, tuple[SourceRoot, Path] | None]:
    """Each source photo's folder: the first of ``roots`` holding ``root/identity/photo`` (None: in none)."""
    found: dict[str, tuple[SourceRoot, Path] | None] = {}
    for row in rows:
        if row.source in found:
            continue
        found[row.source] = next(((r, r.root / row.source) for r in roots if (r.root / row.source).is_file()), None)
    return found


@dataclass
class SourceFaces:
    """The source photos as faces (landmarks detected as the preparation detected them), and those that failed."""

    faces: dict[str, Any]  # source -> fiqa_bench.faces.Face
    failed: dict[str, str]  # source -> reason


def source_faces(
    located: dict[str, tuple[SourceRoot, Path] | None], detector_name: str, progress: bool = False
) -> SourceFaces:
    from fiqa_bench.faces.detect import detect_face, make_detector
    from fiqa_bench.faces.io import load_image
    from fiqa_bench.faces.pipeline import Face
    from fiqa_bench.pipeline.stages import progress_bar

    det = make_detector(detector_name)
    faces: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for source, where in progress_bar(located.items(), len(located), "detect sources", progress, unit="img"):
        if where is None:
            failed[source] = "not found"
            continue
        root, path = where
        try:
            image = load_image(path)
        except ImageError as exc:
            failed[source] = f"unreadable: {exc.reason}"
            continue
        d = detect_face(det, image, pad=root.pad)
        if d is None:
            failed[source] = "no face detected"
            continue
        lm = np.round(np.asarray(d.landmarks, np.float64), SOURCE_LANDMARK_DECIMALS)
        faces[source] = Face(image=image, landmarks=lm, box=None, path=source)
    return SourceFaces(faces, failed)


def score_faces(method: Any, faces: Sequence[Any], who: str, batch_size: int = 256) -> np.ndarray:
    """The method's scores of ``faces`` (aligned as its card asks), in batches."""
    from fiqa_bench.api import check_scores
    from fiqa_bench.faces.pipeline import to_input
    from fiqa_bench.pipeline.stages import call_adapter

    out = np.empty(len(faces), np.float64)
    spec = method.card.input
    for s in range(0, len(faces), batch_size):
        chunk = list(faces[s : s + batch_size])
        first = f" (first image of the batch: {chunk[0].path})"
        values = call_adapter(who, method.score, to_input(chunk, spec), first)
        out[s : s + len(chunk)] = check_scores(values, len(chunk), who)
    return out


def score_copies(
    bench: Any,
    method: Any,
    rows: np.ndarray,
    *,
    quality_identity: str,
    who: str,
    batch_size: int = 32,
    workers: int = 2,
    on_bad_image: str = "error",
    progress: bool = False,
) -> tuple[np.ndarray, int]:
    """The method's scores of benchmark ``rows`` through the quality cache a run of ``fiqa-bench run`` fills
    (same producer identity and dataset id): (scores, images computed now)."""
    from concurrent.futures import ThreadPoolExecutor

    from fiqa_bench.api import check_scores
    from fiqa_bench.data.cache import ArrayCache
    from fiqa_bench.faces.pipeline import to_input
    from fiqa_bench.pipeline.stages import FaceSource, Skipped, call_adapter, per_image_stage

    source = FaceSource(bench, "yunet", on_bad_image, "error", workers)
    cache = ArrayCache.for_producer("quality", quality_identity, bench.dataset_id(), 1)

    def compute(faces: list, inputs: Any) -> np.ndarray:
        out = call_adapter(who, method.score, inputs, f" (first image of the batch: {faces[0].path})")
        return check_scores(out, len(faces), who)[:, None]

    skipped: dict[int, Skipped] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        values, new = per_image_stage(
            "score copies",
            np.asarray(rows, np.int64),
            source,
            cache,
            1,
            compute,
            pool,
            skipped,
            batch_size,
            progress,
            prepare=lambda faces: to_input(faces, method.card.input),
        )
    return values[:, 0].astype(np.float64), new


def benchmark_copies(
    bench: Any,
    method: Any,
    *,
    quality_identity: str,
    who: str,
    roots: Sequence[SourceRoot] | None = None,
    skip_missing: bool = False,
    batch_size: int = 32,
    workers: int = 2,
    progress: bool = False,
    on_line: Callable[[str], None] | None = None,
) -> tuple[Copies, dict[str, Any]]:
    """The degraded copies of a prepared benchmark with both scores, and what was found (``sources``: the source
    folders searched and how each was given, ``skipped``: sources that could not be scored, with the reason)."""
    root = Path(bench.root)
    rows = read_degradations(root)
    search = list(roots) if roots else recorded_roots(root)
    detector = benchmark_record(root)["detector"]
    located = find_sources(rows, search)
    faces = source_faces(located, detector, progress)
    if faces.failed and not skip_missing:
        names = sorted(faces.failed)
        shown = ", ".join(f"{n} ({faces.failed[n]})" for n in names[:5]) + (" ..." if len(names) > 5 else "")
        folders = ", ".join(str(r.root) for r in search)
        raise FiqaBenchError(
            f"{root / 'degradations.csv'}: {len(names)} source photo(s) cannot be scored under {folders}: {shown} "
            "(give the source folders with --source-root, or --skip-missing-sources to count them as skipped)"
        )
    for name in sorted(faces.failed):
        if on_line is not None:
            on_line(f"skipped source {name}: {faces.failed[name]}")

    paths = bench.faces["path"].astype(str).tolist()
    index = {p.rsplit("/", 1)[-1] if p.startswith("loose_crop/") else p: i for i, p in enumerate(paths)}
    index.update({p.split("/", 1)[1]: i for i, p in enumerate(paths) if p.startswith("frame_images_DB/")})
    kept = [r for r in rows if r.source in faces.faces]
    missing = [r for r in kept if r.file not in index]
    if missing:
        r = missing[0]
        raise FiqaBenchError(f"{root / 'degradations.csv'}:{r.line}: copy {r.file} is not an image of the benchmark")
    bench_rows = np.asarray([index[r.file] for r in kept], np.int64)
    copy_scores, new = score_copies(
        bench,
        method,
        bench_rows,
        quality_identity=quality_identity,
        who=who,
        batch_size=batch_size,
        workers=workers,
        progress=progress,
    )
    order = sorted({r.source for r in kept})
    src_scores = dict(zip(order, score_faces(method, [faces.faces[s] for s in order], who)))
    identity = bench.faces["identity"].astype(str).to_numpy()
    copies = Copies(
        kind=[r.kind for r in kept],
        level=[r.level for r in kept],
        subject=identity[bench_rows],
        copy_score=copy_scores,
        source_score=[src_scores[r.source] for r in kept],
        copy_name=[paths[i] for i in bench_rows.tolist()],
        source_name=[str(located[r.source][1]) for r in kept],  # type: ignore[index]  # kept: located
    )
    found = {
        "copies_listed": len(rows),
        "source_photos": len(located),
        "source_folders": [{"folder": str(r.root), "pad": r.pad, "given_by": r.origin} for r in search],
        "source_lookup": "identity/photo of degradations.csv under the first folder holding it",
        "source_landmarks": f"detected with the preparation's detector ({detector}) and padding, rounded to "
        f"{SOURCE_LANDMARK_DECIMALS} decimals as the benchmark's landmark file",
        "copy_landmarks": "the benchmark's landmark file",
        "skipped_sources": dict(sorted(faces.failed.items())),
        "skipped_copies": len(rows) - len(kept),
        "copies_scored_new": int(new),
    }
    return copies, found
