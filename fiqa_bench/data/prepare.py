"""Turn a folder of identity sub-folders of photos into a benchmark in the IJB (insightface) and/or YTF layout.

The paper keeps the best image per IJB template / YTF video. Without IJB or YTF images, any folder
``SRC/<identity>/<photo>`` becomes templates ("videos") of several photos each, with a verification protocol,
5-point landmarks from a face detector, and (optionally) seeded degradations that make templates of mixed
quality. Everything is deterministic: the same inputs and seed give byte-identical files. The conventions
are written to ``OUT/README.md`` (:func:`readme_text`) and returned by :func:`prepare_benchmark`.
"""

from __future__ import annotations

import builtins
import csv
import io
import json
import numbers
import os
import re
import sys
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fiqa_bench import __version__ as FIQA_BENCH_VERSION
from fiqa_bench.data import atomic

# The file names of the layouts (the readers read and sniff the same constants).
from fiqa_bench.data.layout_files import (
    IJB_FACES_SUFFIX as FACES_SUFFIX,
)
from fiqa_bench.data.layout_files import (
    IJB_IMAGES_DIR as IMAGES_DIR,
)
from fiqa_bench.data.layout_files import (
    IJB_LANDMARKS_SUFFIX as LANDMARKS_SUFFIX,
)
from fiqa_bench.data.layout_files import (
    IJB_META_DIR as META_DIR,
)
from fiqa_bench.data.layout_files import (
    IJB_PAIRS_SUFFIX as PAIRS_SUFFIX,
)
from fiqa_bench.data.layout_files import (
    IJB_SUBJECTS_SUFFIX as SUBJECTS_SUFFIX,
)
from fiqa_bench.data.layout_files import (
    LAYOUT_FILE,
    YTF_FRAME_DIRS,
    YTF_LANDMARKS_SUFFIX,
    YTF_SPLITS_CANDIDATES,
)
from fiqa_bench.errors import FiqaBenchError, ImageError

SPLITS_FILE, FRAMES_DIR = YTF_SPLITS_CANDIDATES[0], YTF_FRAME_DIRS[0]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".tif", ".tiff", ".webp")
LAYOUTS = ("ijb", "ytf", "both")
YTF_FOLDS = 10
DEGRADED_SUFFIX = "_deg"
DEGRADED_JPEG_QUALITY = 95
REPORT_FILE = "prepare_report.json"
DEGRADATIONS_FILE = "degradations.csv"
_WRITE_THREADS = 8  # image copies are bound by fsync latency, not CPU: 8 threads write ~7x faster than 1
FALLBACK_SCORE = 0.0  # faceness written for a degraded image whose face the detector no longer finds

# Each random decision draws from its own generator, seeded by (seed, stage, identity...), so that the split of
# one identity does not depend on which other identities exist or on the order the code visits them.
_STAGE_SPLIT, _STAGE_DEGRADE, _STAGE_IMPOSTORS, _STAGE_FOLDS = 1, 2, 3, 4
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class _Photo:
    identity: str  # folder name as found
    rel: str  # path relative to SRC, posix
    path: Path
    pad: float = 0.0  # padding before detection (the photo's source; 0.25 for tight crops like LFW's)


@dataclass(frozen=True)
class Source:
    """One source folder ``root/<identity>/<photo>`` and the padding its photos get before face detection.

    Tight crops (LFW's 150 px, whose face touches the border) need ``pad`` (0.25, as ``label`` and
    ``train-baseline data`` use for LFW; :func:`fiqa_bench.faces.detect.detect_face`); loose crops need none.
    Several sources make one benchmark (e.g. celeba-wild and LFW eval identities), so there are enough templates
    to rank methods; identity folder names must then be distinct across the sources.
    """

    root: Path
    pad: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Source:
        """``PATH`` or ``PATH:pad=F`` (the syntax of ``train-baseline data`` sources)."""
        path, sep, opts = str(text).partition(":")
        pad = 0.0
        for item in filter(None, opts.split(",")) if sep else []:
            key, eq, value = item.partition("=")
            if key != "pad" or not eq:
                raise FiqaBenchError(f"source {text!r}: unknown option {item!r} (PATH or PATH:pad=F)")
            try:
                pad = float(value)
            except ValueError:
                raise FiqaBenchError(f"source {text!r}: pad takes a number, got {value!r}") from None
        return cls(Path(path), pad)

    @classmethod
    def of(cls, src: str | os.PathLike | Source) -> Source:
        """A :class:`Source` as given, or a folder path with no padding (a path is never parsed for options)."""
        return src if isinstance(src, Source) else cls(Path(src))


@dataclass
class _Image:
    """One image of the benchmark."""

    photo: _Photo
    subject_id: int
    template_id: int
    video: int  # template index within the identity (YTF video number)
    name: str  # flat file name in loose_crop/: <identity>_<file>
    frame: str = ""  # YTF frame path under frame_images_DB/: <identity>/<video>/<file>
    data: bytes | None = None  # bytes to write; None: copy the source file
    landmarks: np.ndarray | None = None  # (5, 2)
    score: float = 0.0
    degradation: dict | None = None
    landmarks_from: str = "detected"  # or "clean-source" (degraded image, detector lost the face)
    media_id: int = 0


@dataclass
class _Detected:
    box: np.ndarray
    landmarks: np.ndarray
    score: float


@dataclass
class _Scan:
    identities: list[str] = field(default_factory=list)
    photos: dict[str, list[_Photo]] = field(default_factory=dict)
    ignored: list[dict] = field(default_factory=list)


def _rng(seed: int, stage: int, *keys: str | int) -> np.random.Generator:
    words = [int(seed), stage]
    words += [zlib.crc32(k.encode("utf-8")) if isinstance(k, str) else int(k) for k in keys]
    return np.random.default_rng(words)


def safe_name(text: str) -> str:
    """File-name part without whitespace or separators (the IJB/YTF text files are space/comma separated)."""
    return _SAFE.sub("_", text)


def _scan(src: Path, out: Path, pad: float = 0.0) -> _Scan:
    scan = _Scan()
    out_resolved = out.resolve()
    for entry in sorted(src.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            scan.ignored.append({"path": entry.name, "reason": "file at the top level (photos go in identity folders)"})
            continue
        if entry.resolve() == out_resolved or entry.resolve() in out_resolved.parents:
            continue  # the output folder itself (OUT inside SRC): never an identity, not reported (reruns identical)
        photos = []
        for f in sorted(entry.iterdir(), key=lambda p: p.name):
            rel = f"{entry.name}/{f.name}"
            if f.name.startswith("."):
                continue
            if f.is_dir():
                scan.ignored.append(
                    {"path": rel, "reason": "sub-folder (only files directly in identity folders are read)"}
                )
            elif f.suffix.lower() in IMAGE_EXTENSIONS:
                photos.append(_Photo(entry.name, rel, f, pad))
            else:
                scan.ignored.append({"path": rel, "reason": f"not an image extension ({', '.join(IMAGE_EXTENSIONS)})"})
        scan.identities.append(entry.name)
        scan.photos[entry.name] = photos
    return scan


def _check_out(out: Path, src: Path) -> bool:
    """OUT must be new, empty, or an earlier prepare output (then True: stale images get removed)."""
    if src.resolve() == out.resolve() or out.resolve() in src.resolve().parents:
        raise FiqaBenchError(f"output folder {out} must not be the source folder {src} or contain it")
    if not out.exists():
        return False
    if not out.is_dir():
        raise FiqaBenchError(f"output {out} exists and is not a folder")
    if not any(out.iterdir()):
        return False
    if (out / REPORT_FILE).is_file() or (out / LAYOUT_FILE).is_file():
        return True
    raise FiqaBenchError(
        f"output folder {out} is not empty and holds no {REPORT_FILE}: not an earlier prepare output; "
        "choose a new or empty folder"
    )


def _scan_all(sources: Sequence[Source], out: Path) -> _Scan:
    """The scans of several sources as one, identities sorted by name; a name found in two sources is refused
    (its templates would merge two people, or the pairs between them would be counted as impostors)."""
    if len(sources) == 1:
        return _scan(sources[0].root, out, sources[0].pad)
    scan = _Scan()
    origin: dict[str, Path] = {}
    for source in sources:
        one = _scan(source.root, out, source.pad)
        for ident in one.identities:
            if ident in origin:
                raise FiqaBenchError(
                    f"identity folder {ident!r} is in two sources, {origin[ident]} and {source.root}: "
                    "identities must be distinct across sources"
                )
            origin[ident] = source.root
            scan.photos[ident] = one.photos[ident]
        scan.ignored += [{**r, "path": f"{source.root}/{r['path']}"} for r in one.ignored]
    scan.identities = sorted(origin)
    return scan


def _first_duplicate(values: Sequence[str]) -> str | None:
    seen: set[str] = set()
    for v in values:
        if v in seen:
            return v
        seen.add(v)
    return None


def _detect(detector, image: np.ndarray, pad: float = 0.0) -> _Detected | None:
    from fiqa_bench.faces.detect import detect_face

    det = detect_face(detector, image, pad=pad)
    if det is None:
        return None
    return _Detected(np.asarray(det.box, np.float64), np.asarray(det.landmarks, np.float64), float(det.score))


def _progress(iterable, total: int, desc: str, enabled: bool):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, file=sys.stderr, unit="img", leave=False)


def _encode_jpeg(image: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, DEGRADED_JPEG_QUALITY])
    if not ok:  # pragma: no cover
        raise FiqaBenchError("JPEG encoding of a degraded image failed")
    return buf.tobytes()


def _decode(data: bytes) -> np.ndarray:
    import cv2

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:  # pragma: no cover - the bytes are a JPEG this module just encoded
        raise FiqaBenchError("JPEG decoding of a degraded image failed")
    return image


def _fmt(v: float, digits: int) -> str:
    return f"{round(float(v), digits) + 0.0:.{digits}f}"  # + 0.0 turns -0.0 into 0.0


def _landmark_line(name: str, img: _Image) -> str:
    values = " ".join(_fmt(v, 2) for v in np.asarray(img.landmarks, np.float64).reshape(10))
    return f"{name} {values} {_fmt(img.score, 4)}\n"


def _degradations_csv(rows: list[tuple[str, _Image]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["file", "source", "degradation", "level", "params", "landmarks"])
    for file, img in rows:
        d = img.degradation
        assert d is not None  # only degraded images are listed
        w.writerow(
            [
                file,
                img.photo.rel,
                d["name"],
                d["level"],
                json.dumps(d["params"], sort_keys=True, separators=(",", ":")),
                img.landmarks_from,
            ]
        )
    return buf.getvalue()


def _json(obj: Any) -> str:
    return json.dumps(obj, indent=2, allow_nan=False) + "\n"


def _impostor_pairs(tids: np.ndarray, sids: np.ndarray) -> np.ndarray:
    a, b = np.triu_indices(len(tids), 1)
    keep = sids[a] != sids[b]
    return np.stack([tids[a[keep]], tids[b[keep]]], axis=1)


def _ytf_folds(subjects: list[str], videos: int, seed: int) -> tuple[list[list[tuple[str, str, int]]], str]:
    """10 folds of (video1, video2, same) with as many different as same pairs in each fold.

    Identity-disjoint when there are at least 2 identities per fold (each identity's same pairs and the
    different pairs among its fold's identities stay in one fold); else pairs are dealt round-robin.
    """

    def same_pairs(ids):
        return [(f"{s}/{i}", f"{s}/{j}", 1) for s in ids for i in range(videos) for j in range(i + 1, videos)]

    def diff_pairs(ids):
        return [
            (f"{s}/{i}", f"{t}/{j}", 0)
            for a, s in enumerate(ids)
            for t in ids[a + 1 :]
            for i in range(videos)
            for j in range(videos)
        ]

    rng = _rng(seed, _STAGE_FOLDS)
    order = [subjects[i] for i in rng.permutation(len(subjects))]
    if len(subjects) >= 2 * YTF_FOLDS:
        folds = []
        for chunk in np.array_split(np.array(order, dtype=object), YTF_FOLDS):
            ids = sorted(chunk.tolist(), key=subjects.index)
            same = same_pairs(ids)
            diff = diff_pairs(ids)
            pick = sorted(rng.choice(len(diff), size=len(same), replace=False).tolist())
            folds.append(same + [diff[k] for k in pick])
        return folds, "identity-disjoint"
    same = same_pairs(subjects)
    diff = diff_pairs(subjects)
    if len(same) < YTF_FOLDS:
        raise FiqaBenchError(
            f"the YTF layout needs at least {YTF_FOLDS} same-identity video pairs for {YTF_FOLDS} folds, "
            f"got {len(same)}: use more identities or templates_per_identity"
        )
    pick = sorted(rng.choice(len(diff), size=min(len(same), len(diff)), replace=False).tolist())
    diff = [diff[k] for k in pick]
    same = [same[k] for k in rng.permutation(len(same))]
    diff = [diff[k] for k in rng.permutation(len(diff))]
    folds = [same[f::YTF_FOLDS] + diff[f::YTF_FOLDS] for f in range(YTF_FOLDS)]
    return folds, "pair-level (fewer than 20 identities: folds share identities)"


def _splits_text(folds: list[list[tuple[str, str, int]]]) -> str:
    lines = [
        f"{f + 1}, {k + 1}, {v1}, {v2}, {same}" for f, fold in enumerate(folds) for k, (v1, v2, same) in enumerate(fold)
    ]
    return "\r\n".join(lines)  # the official file: CRLF line ends, no newline after the last line


def _template_pairs(images: list[_Image], impostor_pairs: str | int, seed: int):
    """Template ids and subjects; genuine pairs (same subject) and impostor pairs ('all' or a seeded sample)."""
    tids = np.array([img.template_id for img in images])
    sids = np.array([img.subject_id for img in images])
    template_ids, first = np.unique(tids, return_index=True)
    template_sids = sids[first]
    pairs = [
        (a, b)
        for s in np.unique(template_sids)
        for i, a in enumerate(template_ids[template_sids == s])
        for b in template_ids[template_sids == s][i + 1 :]
    ]
    genuine = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    impostors = _impostor_pairs(template_ids, template_sids)
    possible = len(impostors)
    if impostor_pairs != "all":
        assert isinstance(impostor_pairs, int)  # PrepareOptions.checked: "all" or a positive int
        if impostor_pairs > possible:
            raise FiqaBenchError(
                f"impostor_pairs={impostor_pairs} but only {possible} cross-identity template pairs exist"
            )
        pick = np.sort(_rng(seed, _STAGE_IMPOSTORS).choice(possible, size=impostor_pairs, replace=False))
        impostors = impostors[pick]
    return template_ids, template_sids, genuine, impostors, possible


def _build_images(
    used: list[str],
    scan: _Scan,
    found: dict[str, _Detected],
    safe_ids: dict[str, str],
    *,
    T: int,
    seed: int,
    degrade_fraction: float,
) -> list[_Image]:
    """Split each used identity's photos into T templates and degrade a seeded share of each template."""
    from fiqa_bench.data import degradations
    from fiqa_bench.faces.io import load_image

    images: list[_Image] = []
    names_seen: dict[str, str] = {}

    def claim(file_name: str, rel: str) -> str:
        if file_name in names_seen:
            raise FiqaBenchError(f"{rel} and {names_seen[file_name]} both become {file_name!r}; rename one")
        names_seen[file_name] = rel
        return file_name

    tid = 0
    for sid, ident in enumerate(used, start=1):
        photos = [p for p in scan.photos[ident] if p.rel in found]
        perm = _rng(seed, _STAGE_SPLIT, ident).permutation(len(photos))
        for video, chunk in enumerate(np.array_split(perm, T)):
            tid += 1
            members = [photos[i] for i in sorted(chunk.tolist())]
            n_deg = min(len(members) - 1, int(np.floor(degrade_fraction * len(members) + 0.5)))
            rng = _rng(seed, _STAGE_DEGRADE, ident, video)
            degrade = set(rng.choice(len(members), size=n_deg, replace=False).tolist()) if n_deg else set()
            for k, photo in enumerate(members):
                stem, ext = os.path.splitext(photo.path.name)
                clean = found[photo.rel]
                img = _Image(photo, sid, tid, video, "", landmarks=clean.landmarks, score=clean.score)
                if k in degrade:
                    degraded, record = degradations.apply_random(load_image(photo.path), rng, box=clean.box.tolist())
                    img.data = _encode_jpeg(degraded)
                    img.degradation = record
                    file = f"{safe_name(stem)}{DEGRADED_SUFFIX}.jpg"
                else:
                    file = f"{safe_name(stem)}{ext.lower()}"
                img.name = claim(f"{safe_ids[ident]}_{file}", photo.rel)
                img.frame = f"{safe_ids[ident]}/{video}/{file}"
                images.append(img)
    for mid, img in enumerate(images, start=1):
        img.media_id = mid
    return images


def _write_if_changed(target: Path, data: bytes) -> None:
    """Atomic write, skipped when the file already holds exactly these bytes: re-preparing a benchmark leaves its
    unchanged files (and their mtimes) alone, so the per-image caches keyed by path, size and mtime stay valid."""
    try:
        if target.stat().st_size == len(data) and target.read_bytes() == data:
            return
    except OSError:
        pass
    atomic.write_bytes(target, data)


class _Writer:
    """Writes files atomically under OUT and remembers them (to remove stale images of an earlier run)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.written: set[Path] = set()

    def text(self, rel: str, text: str) -> None:
        self.bytes(rel, text.encode("utf-8"))

    def bytes(self, rel: str, data: bytes) -> None:
        target = self.out / rel
        _write_if_changed(target, data)
        self.written.add(target)

    def files(self, items: list[tuple[str, builtins.bytes | Path]]) -> None:
        """Many files at once: (relative path, bytes or a source file to copy). Threads overlap the fsyncs."""
        from concurrent.futures import ThreadPoolExecutor

        def one(item: tuple[str, bytes | Path]) -> None:
            rel, data = item
            _write_if_changed(self.out / rel, data if isinstance(data, bytes) else data.read_bytes())

        with ThreadPoolExecutor(max_workers=_WRITE_THREADS) as pool:
            list(pool.map(one, items))
        self.written.update(self.out / rel for rel, _ in items)

    def remove_stale(self, folder: str) -> list[str]:
        base = self.out / folder
        removed: list[str] = []
        if not base.is_dir():
            return removed
        for p in sorted(base.rglob("*")):
            if p.is_file() and p not in self.written:
                p.unlink()
                removed.append(p.relative_to(self.out).as_posix())
        for d in sorted((p for p in base.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            if not any(d.iterdir()):
                d.rmdir()
        return removed


@dataclass(frozen=True)
class PrepareOptions:
    """The settings of one ``prepare`` (see :func:`prepare_benchmark`), checked by :meth:`checked`."""

    name: str
    seed: int = 0
    layout: str = "ijb"
    templates_per_identity: int = 2
    min_images: int = 4
    impostor_pairs: str | int = "all"
    degrade_fraction: float = 0.0
    detector: str = "yunet"
    part: str = "all"

    @classmethod
    def checked(cls, **kw: Any) -> PrepareOptions:
        """The options normalised (``"41"`` impostor pairs -> 41), or a :class:`FiqaBenchError` naming the bad one."""
        o = cls(**kw)
        name, impostor_pairs = o.name, o.impostor_pairs
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            raise FiqaBenchError(
                f"benchmark name {name!r}: use letters, digits, '_', '-', '.' (it prefixes file names)"
            )
        if o.layout not in LAYOUTS:
            raise FiqaBenchError(f"layout {o.layout!r}: choose one of {', '.join(LAYOUTS)}")
        T = o.templates_per_identity
        if int(T) != T or T < 2:
            raise FiqaBenchError(f"templates_per_identity must be an integer >= 2 (genuine pairs need two), got {T}")
        if int(o.min_images) != o.min_images or o.min_images < 1:
            raise FiqaBenchError(f"min_images must be a positive integer, got {o.min_images}")
        if not 0.0 <= float(o.degrade_fraction) < 1.0:
            raise FiqaBenchError(f"degrade_fraction must be in [0, 1), got {o.degrade_fraction}")
        if isinstance(impostor_pairs, str) and impostor_pairs.strip().isdigit():
            impostor_pairs = int(impostor_pairs)
        if (
            isinstance(impostor_pairs, numbers.Integral)
            and not isinstance(impostor_pairs, bool)
            and impostor_pairs >= 1
        ):
            impostor_pairs = int(impostor_pairs)
        elif impostor_pairs != "all":
            raise FiqaBenchError(f"impostor_pairs must be 'all' or a positive integer, got {impostor_pairs!r}")
        if int(o.seed) != o.seed or o.seed < 0:
            raise FiqaBenchError(f"seed must be a non-negative integer, got {o.seed}")
        if o.part not in ("train", "eval", "all"):
            raise FiqaBenchError(f"part must be 'train', 'eval' or 'all', got {o.part!r}")
        return cls(
            name,
            int(o.seed),
            o.layout,
            int(T),
            int(o.min_images),
            impostor_pairs,
            float(o.degrade_fraction),
            o.detector,
            o.part,
        )


@dataclass
class _Selection:
    """What :func:`scan_sources` found: the identities used (enough photos with a face) and why others were not."""

    scan: _Scan
    used: list[str]
    found: dict[str, _Detected]
    safe_ids: dict[str, str]
    excluded: list[dict]
    no_face: list[dict]
    skipped_small: int
    skipped_part: int
    too_few_faces: int


@dataclass
class _Plan:
    """What :func:`split_templates` decided: every image with its template, the pairs and (YTF) folds, counts."""

    images: list[_Image]
    degraded: list[_Image]
    template_ids: np.ndarray
    template_sids: np.ndarray
    pairs: np.ndarray
    folds: list
    ytf_mode: str | None
    counts: dict
    options: dict


def scan_sources(
    src: Path | Source | Sequence[Path | Source], out: Path, opts: PrepareOptions, det, progress: bool
) -> _Selection:
    """Step 1, scan: the identities and photos of ``src`` (one folder or several :class:`Source`), those of the
    kept split part with enough photos, a face detected on each of their photos (with its source's padding), and
    the identities with ``2 x templates_per_identity`` faces."""
    from fiqa_bench.data.splits import identity_part, in_part
    from fiqa_bench.faces.io import load_image

    T = opts.templates_per_identity
    sources = [Source.of(src)] if isinstance(src, (str, os.PathLike, Source)) else [Source.of(s) for s in src]
    scan = _scan_all(sources, out)
    excluded: list[dict] = []
    candidates = []
    for ident in scan.identities:
        n = len(scan.photos[ident])
        if not in_part(ident, opts.part):
            excluded.append(
                {
                    "identity": ident,
                    "photos": n,
                    "photos_with_face": None,
                    "reason": f"identity in the {identity_part(ident)} part of the split (kept: {opts.part})",
                }
            )
        elif n < opts.min_images:
            excluded.append(
                {
                    "identity": ident,
                    "photos": n,
                    "photos_with_face": None,
                    "reason": f"{n} photo(s) < min_images={opts.min_images}",
                }
            )
        else:
            candidates.append(ident)
    skipped_small = sum(len(scan.photos[e["identity"]]) for e in excluded if "min_images" in e["reason"])
    skipped_part = sum(len(scan.photos[e["identity"]]) for e in excluded if "part of the split" in e["reason"])
    safe_ids = {ident: safe_name(ident) for ident in scan.identities}
    clash = _first_duplicate([safe_ids[i] for i in candidates])
    if clash is not None:
        a, b = [i for i in candidates if safe_ids[i] == clash][:2]
        raise FiqaBenchError(f"identity folders {a!r} and {b!r} both become {clash!r} in file names; rename one")

    # detection on every photo of the candidate identities (in sorted order)
    todo = [p for ident in candidates for p in scan.photos[ident]]
    found: dict[str, _Detected] = {}
    no_face: list[dict] = []
    for photo in _progress(todo, len(todo), "detect", progress):
        try:
            image = load_image(photo.path)
        except ImageError as exc:
            no_face.append({"source": photo.rel, "reason": f"unreadable: {exc.reason}"})
            continue
        d = _detect(det, image, photo.pad)
        if d is None:
            no_face.append({"source": photo.rel, "reason": "no face detected"})
        else:
            found[photo.rel] = d

    # identities with enough faces
    need = 2 * T
    used: list[str] = []
    too_few_faces = 0
    for ident in candidates:
        with_face = [p for p in scan.photos[ident] if p.rel in found]
        if len(with_face) < need:
            excluded.append(
                {
                    "identity": ident,
                    "photos": len(scan.photos[ident]),
                    "photos_with_face": len(with_face),
                    "reason": f"{len(with_face)} photo(s) with a face < {need} ({T} templates of >= 2)",
                }
            )
            too_few_faces += len(with_face)
        else:
            used.append(ident)
    excluded.sort(key=lambda e: scan.identities.index(e["identity"]))
    if len(used) < 2:
        raise FiqaBenchError(
            f"{', '.join(str(s.root) for s in sources)}: only {len(used)} identity(ies) have >= {need} photos with a "
            "detectable face; "
            "impostor pairs need at least 2 (see the excluded identities in the summary)"
        )
    return _Selection(scan, used, found, safe_ids, excluded, no_face, skipped_small, skipped_part, too_few_faces)


def split_templates(sel: _Selection, opts: PrepareOptions, det, progress: bool) -> _Plan:
    """Step 2, split: each used identity's photos into templates (seeded degradations, detected again as written),
    the genuine and impostor template pairs, and (YTF) the identity-disjoint folds; nothing is written yet, so a
    refusal comes before any file."""
    T, seed = opts.templates_per_identity, opts.seed
    images = _build_images(
        sel.used, sel.scan, sel.found, sel.safe_ids, T=T, seed=seed, degrade_fraction=opts.degrade_fraction
    )

    # detection on the degraded images as written
    degraded = [img for img in images if img.degradation is not None]
    for img in _progress(degraded, len(degraded), "detect degraded", progress):
        d = _detect(det, _decode(img.data), img.photo.pad)
        if d is None:
            img.landmarks_from, img.score = "clean-source", FALLBACK_SCORE
        else:
            img.landmarks, img.score = d.landmarks, d.score

    template_ids, template_sids, genuine, impostors, possible = _template_pairs(images, opts.impostor_pairs, seed)
    pairs = np.concatenate(
        [np.c_[genuine, np.ones(len(genuine), np.int64)], np.c_[impostors, np.zeros(len(impostors), np.int64)]]
    )
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
    with_ytf = opts.layout in ("ytf", "both")
    folds, ytf_mode = _ytf_folds([sel.safe_ids[s] for s in sel.used], T, seed) if with_ytf else ([], None)

    scan, no_face = sel.scan, sel.no_face
    counts = {
        "identities_found": len(scan.identities),
        "identities_used": len(sel.used),
        "identities_excluded": len(sel.excluded),
        "photos_found": sum(len(v) for v in scan.photos.values()),
        "photos_in_small_identities": sel.skipped_small,
        "photos_in_other_split_part": sel.skipped_part,
        "photos_no_face": sum(1 for r in no_face if r["reason"] == "no face detected"),
        "photos_unreadable": sum(1 for r in no_face if r["reason"] != "no face detected"),
        "photos_with_face_in_excluded_identities": sel.too_few_faces,
        "images": len(images),
        "templates": len(template_ids),
        "genuine_pairs": int(len(genuine)),
        "impostor_pairs": int(len(impostors)),
        "impostor_pairs_possible": int(possible),
        "degraded_images": len(degraded),
        "degraded_landmarks_from_clean_source": sum(1 for i in degraded if i.landmarks_from != "detected"),
        "ignored_files": len(scan.ignored),
    }
    options = {
        "templates_per_identity": T,
        "min_images": opts.min_images,
        "part": opts.part,
        "impostor_pairs": opts.impostor_pairs,
        "degrade_fraction": opts.degrade_fraction,
        "detector": opts.detector,
        "detector_identity": det.identity(),
        "degraded_format": f"JPEG quality {DEGRADED_JPEG_QUALITY}",
    }
    return _Plan(images, degraded, template_ids, template_sids, pairs, folds, ytf_mode, counts, options)


def write_layouts(
    plan: _Plan, sel: _Selection, out: Path, opts: PrepareOptions, source: str | list[str], rerun: bool
) -> tuple[list[str], list[str], dict, str]:
    """Step 3, write: the IJB and/or YTF layout (file names from the readers, :mod:`.ijb` and :mod:`.ytf`), the
    report and the README; on a re-run, images left from the previous run are removed. Returns (files written,
    stale files removed, final counts, README text)."""
    name, seed, layout = opts.name, opts.seed, opts.layout
    images, degraded, counts, options = plan.images, plan.degraded, plan.counts, plan.options
    ytf_root = {"ijb": None, "ytf": "", "both": "ytf/"}[layout]
    w = _Writer(out)
    files: list[str] = []

    # IJB layout
    subjects = {str(sid): ident for sid, ident in enumerate(sel.used, start=1)}
    if layout in ("ijb", "both"):
        w.files([(f"{IMAGES_DIR}/{i.name}", i.data if i.data is not None else i.photo.path) for i in images])
        meta = {
            f"{META_DIR}/{name}{FACES_SUFFIX}": "".join(f"{i.name} {i.template_id} {i.media_id}\n" for i in images),
            f"{META_DIR}/{name}{PAIRS_SUFFIX}": "".join(f"{a} {b} {l}\n" for a, b, l in plan.pairs.tolist()),
            f"{META_DIR}/{name}{LANDMARKS_SUFFIX}": "".join(_landmark_line(i.name, i) for i in images),
            f"{META_DIR}/{name}{SUBJECTS_SUFFIX}": "".join(
                f"{t} {s}\n" for t, s in zip(plan.template_ids.tolist(), plan.template_sids.tolist())
            ),
            DEGRADATIONS_FILE: _degradations_csv([(i.name, i) for i in degraded]),
        }
        for rel, text in meta.items():
            w.text(rel, text)
        w.text(
            LAYOUT_FILE,
            _json(
                {
                    "name": name,
                    "layout": "ijb",
                    "source": source,
                    "seed": seed,
                    "counts": counts,
                    "options": options,
                    "fiqa_bench_version": FIQA_BENCH_VERSION,
                    "subjects": subjects,
                }
            ),
        )
        files += [f"{IMAGES_DIR}/", *meta, LAYOUT_FILE]

    # YTF layout ("videos" = templates)
    if ytf_root is not None:
        w.files([(f"{ytf_root}{FRAMES_DIR}/{i.frame}", i.data if i.data is not None else i.photo.path) for i in images])
        ytf_counts = {
            **counts,
            "videos": len(plan.template_ids),
            "ytf_pairs": sum(len(f) for f in plan.folds),
            "ytf_same_pairs": sum(p[2] for f in plan.folds for p in f),
        }
        meta = {
            f"{ytf_root}{SPLITS_FILE}": _splits_text(plan.folds),
            f"{ytf_root}{META_DIR}/{name}{YTF_LANDMARKS_SUFFIX}": "".join(_landmark_line(i.frame, i) for i in images),
            f"{ytf_root}{DEGRADATIONS_FILE}": _degradations_csv([(i.frame, i) for i in degraded]),
        }
        for rel, text in meta.items():
            w.text(rel, text)
        w.text(
            f"{ytf_root}{LAYOUT_FILE}",
            _json(
                {
                    "name": name,
                    "layout": "ytf",
                    "source": source,
                    "seed": seed,
                    "counts": ytf_counts,
                    "options": {**options, "folds": YTF_FOLDS, "fold_assignment": plan.ytf_mode},
                    "fiqa_bench_version": FIQA_BENCH_VERSION,
                }
            ),
        )
        files += [f"{ytf_root}{FRAMES_DIR}/", *meta, f"{ytf_root}{LAYOUT_FILE}"]
        counts = ytf_counts

    # report + README
    report = {
        "counts": counts,
        "excluded_identities": sel.excluded,
        "photos_without_face": sel.no_face,
        "degraded_landmarks_from_clean_source": [i.name for i in degraded if i.landmarks_from != "detected"],
        "ignored_files": sel.scan.ignored,
    }
    w.text(REPORT_FILE, _json(report))
    readme = readme_text(name=name, layout=layout, seed=seed, counts=counts, options=options, ytf_mode=plan.ytf_mode)
    w.text("README.md", readme)
    files += [REPORT_FILE, "README.md"]

    removed: list[str] = []
    if rerun:
        folders = ([IMAGES_DIR] if layout in ("ijb", "both") else []) + (
            [f"{ytf_root}{FRAMES_DIR}"] if ytf_root is not None else []
        )
        for folder in folders:
            removed += w.remove_stale(folder)
    return files, removed, counts, readme


def prepare_benchmark(
    src: str | os.PathLike | Source | Sequence[str | os.PathLike | Source],
    out: str | os.PathLike,
    *,
    name: str,
    seed: int = 0,
    layout: str = "ijb",
    templates_per_identity: int = 2,
    min_images: int = 4,
    impostor_pairs: str | int = "all",
    degrade_fraction: float = 0.0,
    detector: str = "yunet",
    part: str = "all",
    progress: bool = True,
) -> dict:
    """Build a benchmark from ``src/<identity>/<photo>`` into ``out``; return a summary (counts, files, README).

    ``layout``: ``ijb`` (insightface layout at ``out``), ``ytf`` (YTF layout at ``out``) or ``both`` (IJB at
    ``out``, YTF at ``out/ytf``). ``impostor_pairs``: ``"all"`` cross-identity template pairs, or a count drawn
    without replacement. ``degrade_fraction``: share of each template's photos replaced by a degraded copy
    (at least one photo per template stays clean). ``part``: keep only the identities of that part of
    :mod:`fiqa_bench.data.splits` (``eval`` for benchmarks on which learned methods are compared). See
    :func:`readme_text` for every convention. Three steps: :func:`scan_sources`, :func:`split_templates`,
    :func:`write_layouts`. ``src`` may be a list of folders or :class:`Source` (each with its detection padding):
    their identities (distinct names) make one benchmark.
    """
    started = time.perf_counter()
    sources = [Source.of(src)] if isinstance(src, (str, os.PathLike, Source)) else [Source.of(s) for s in src]
    if not sources:
        raise FiqaBenchError("no source folder given")
    out = Path(out)
    opts = PrepareOptions.checked(
        name=name,
        seed=seed,
        layout=layout,
        templates_per_identity=templates_per_identity,
        min_images=min_images,
        impostor_pairs=impostor_pairs,
        degrade_fraction=degrade_fraction,
        detector=detector,
        part=part,
    )
    for s in sources:
        if not s.root.is_dir():
            raise FiqaBenchError(f"source folder {s.root} does not exist or is not a folder")
        if not 0.0 <= s.pad <= 2.0:
            raise FiqaBenchError(f"source {s.root}: pad must be in [0, 2], got {s.pad}")
    roots = [s.root.resolve() for s in sources]
    if len(set(roots)) < len(roots):
        raise FiqaBenchError(f"a source folder is given twice: {', '.join(map(str, roots))}")
    rerun = any([_check_out(out, s.root) for s in sources])

    from fiqa_bench.faces.detect import make_detector

    det = make_detector(opts.detector)
    selection = scan_sources(sources, out, opts, det, progress)
    plan = split_templates(selection, opts, det, progress)
    source: str | list[str] = str(roots[0]) if len(sources) == 1 else [str(r) for r in roots]
    if len(sources) > 1 or sources[0].pad:
        plan.options["detect_pad"] = [s.pad for s in sources]  # per source, in the order of ``source``
    files, removed, counts, readme = write_layouts(plan, selection, out, opts, source, rerun)
    return {
        "name": opts.name,
        "layout": opts.layout,
        "out": str(out),
        "source": source,
        "seed": opts.seed,
        "counts": counts,
        "options": plan.options,
        "excluded_identities": selection.excluded,
        "photos_without_face": selection.no_face,
        "ignored_files": selection.scan.ignored,
        "files": files,
        "removed_stale_files": removed,
        "ytf_folds": plan.ytf_mode,
        "seconds": round(time.perf_counter() - started, 2),
        "readme": readme,
    }


def readme_text(*, name: str, layout: str, seed: int, counts: dict, options: dict, ytf_mode: str | None) -> str:
    """The conventions of a prepared benchmark, in words (written to ``OUT/README.md``)."""
    from fiqa_bench.data import degradations

    c = counts
    T = options["templates_per_identity"]
    lines = [
        f"# {name}: a benchmark prepared by `fiqa-bench prepare` (fiqa-bench {FIQA_BENCH_VERSION})",
        "",
        f"Layout: {layout}; seed {seed}; same source, options and seed give byte-identical files.",
        "",
        "## Selection",
        f"- Identities are the sub-folders of the source, sorted by name; photos are the image files in them "
        f"({', '.join(IMAGE_EXTENSIONS)}), sorted by name. Other files are listed in `{REPORT_FILE}`; names "
        "starting with '.' are skipped. In file names, characters other than letters, digits, '.', '_' and '-' "
        "become '_'.",
        f"- Identities with fewer than {options['min_images']} photos are excluded before detection; after "
        f"detection, identities with fewer than {2 * T} photos with a face ({T} templates of >= 2 images) are "
        f"excluded. Each exclusion and each photo without a face is listed with its reason in `{REPORT_FILE}`.",
        f"- Face detection: {options['detector']} ({options['detector_identity']}) on each whole photo; the face "
        "kept is the one maximising score x sqrt(area) x centrality (fiqa_bench.faces.detect.select_face).",
        *(
            [
                f"- Sources (`source` in benchmark.json, identity names distinct across them) and the padding of each "
                f"before detection (a black border of pad x the photo's longer side, for tight crops; landmarks are in "
                f"the photo's own pixels): {', '.join(str(p) for p in options['detect_pad'])}."
            ]
            if "detect_pad" in options
            else []
        ),
        f"- Counts: {c['identities_found']} identities found, {c['identities_used']} used, "
        f"{c['identities_excluded']} excluded; {c['photos_found']} photos, {c['photos_no_face']} without a face, "
        f"{c['photos_unreadable']} unreadable, {c['photos_in_small_identities']} in identities below min_images, "
        f"{c['photos_with_face_in_excluded_identities']} with a face in identities excluded after detection; "
        f"{c['images']} images in {c['templates']} templates.",
        "",
        "## Templates, media and pairs",
        f"- Each identity's photos with a face are shuffled with a generator seeded by (seed, identity name) and "
        f"cut into {T} templates of near-equal size (numpy.array_split), each listed in photo-name order.",
        "- Subject ids are 1, 2, ... in identity order (the identity folder of each subject id is `subjects` in "
        "benchmark.json); template ids are 1, 2, ... in (subject, template) order; every image is its own media "
        "(media id 1, 2, ... in file-list order): there are no video frames to group.",
        f"- Genuine pairs: every pair of templates of the same identity ({c['genuine_pairs']}). Impostor pairs: "
        + (
            "every pair of templates of different identities"
            if options["impostor_pairs"] == "all"
            else f"{options['impostor_pairs']} drawn without replacement (generator seeded by the seed) from the "
            f"{c['impostor_pairs_possible']} pairs of templates of different identities"
        )
        + f" ({c['impostor_pairs']}). Pairs are listed with t1 < t2, sorted by (t1, t2).",
        "",
        "## Degradations",
    ]
    if options["degrade_fraction"] > 0:
        lines += [
            f"- In each template, floor({options['degrade_fraction']} x size + 0.5) photos (at most size - 1: at least "
            "one photo per template stays clean), chosen with a generator seeded by (seed, identity, template), are "
            "replaced by a degraded copy: one degradation from fiqa_bench.data.degradations.apply_random (uniform over "
            f"{len(degradations.DEGRADATIONS)} kinds and 3 levels; occlusions cover the face box of the clean photo).",
            f"- Degraded images are stored as JPEG quality {DEGRADED_JPEG_QUALITY} named "
            f"`<identity>_<stem>{DEGRADED_SUFFIX}.jpg`; "
            f"`{DEGRADATIONS_FILE}` lists file, source photo, degradation, level, parameters (JSON) and where the "
            f"landmarks come from. {c['degraded_images']} images are degraded.",
            "- Landmarks of a degraded image are detected on the image as written; if the detector finds no face "
            "there, the landmarks of the clean source photo are used (the degradation does not move the face) and "
            f"its faceness score is written as {FALLBACK_SCORE:.4f} "
            f"({c['degraded_landmarks_from_clean_source']} images).",
            "",
            "Strength levels:",
            "",
            "| degradation | light | medium | strong |",
            "|---|---|---|---|",
            *[
                f"| {n} | "
                + " | ".join(", ".join(f"{k}={v}" for k, v in d.levels[lv].items()) for lv in degradations.LEVELS)
                + " |"
                for n, d in degradations.DEGRADATIONS.items()
            ],
        ]
    else:
        lines += [
            f"- None: every image is a byte-identical copy of its source photo (`{DEGRADATIONS_FILE}` has only its "
            "header)."
        ]
    if layout in ("ijb", "both"):
        lines += [
            "",
            "## IJB layout (insightface)" + (" at the root" if layout == "both" else ""),
            "- `loose_crop/<identity>_<photo stem><ext>`: the images (copies of the source photos unless degraded).",
            f"- `meta/{name}_face_tid_mid.txt`: `image template_id media_id`.",
            f"- `meta/{name}_template_pair_label.txt`: `template_id1 template_id2 label` (1 genuine, 0 impostor).",
            f"- `meta/{name}_name_5pts_score.txt`: `image x1 y1 ... x5 y5 faceness`; landmarks in image pixels with 2 "
            "decimals (image-left eye, image-right eye, nose, image-left mouth corner, image-right mouth corner), "
            "faceness (detector score) with 4 decimals.",
            f"- `meta/{name}_tid_sid.txt`: `template_id subject_id` (an extension: the IJB release has no such file).",
            "- `benchmark.json`: name, layout, source, seed, counts, options, fiqa_bench_version, subjects.",
        ]
    if layout in ("ytf", "both"):
        root = "ytf/" if layout == "both" else ""
        lines += [
            "",
            "## YTF layout" + (" under `ytf/`" if layout == "both" else ""),
            f'- `{root}frame_images_DB/<identity>/<video>/<photo>`: each template is a "video" numbered 0..{T - 1}; '
            "its photos are the frames (same files as in the IJB layout).",
            f"- `{root}splits.txt`: the official format, `split, pair#, video1, video2, same` with CRLF line ends and "
            f"no final newline; {YTF_FOLDS} splits, each with as many same (1) as different (0) pairs, same pairs "
            f"first. Fold assignment here: {ytf_mode}. With >= {2 * YTF_FOLDS} identities the folds are "
            "identity-disjoint: "
            f"identities are shuffled (seeded) and cut into {YTF_FOLDS} groups; a fold holds every same pair of its "
            "identities and as many different pairs drawn (seeded) among its own identities. With fewer, all same "
            "pairs and as many different pairs drawn from all identities are shuffled and dealt round-robin.",
            f"- `{root}meta/{name}_name_5pts_score.txt` (an extension: YTF ships bounding boxes, not landmarks): "
            "`<identity>/<video>/<photo> x1 y1 ... x5 y5 faceness`, same format as the IJB file.",
            f'- `{root}benchmark.json` (layout "ytf") and `{root}{DEGRADATIONS_FILE}` (frame paths).',
        ]
    return "\n".join(lines) + "\n"
