"""YouTube Faces (YTF): 5,000 video pairs in 10 splits, reported as 10-fold verification accuracy.

Each video is a group of frames. The pairs come from whichever of these the data folder holds (first found):

* ``splits.txt``: rows ``split, pair#, video1, video2, same`` (comma + space, CRLF, no header; split 1..10);
* ``meta_data/meta_and_splits.mat`` or ``meta_and_splits.mat`` (official): ``Splits`` (pairs x 3 x splits,
  rows [video1, video2, same], 1-based video indices) and the video names in ``video_names`` or ``mat_names``;
* ``Youtube_splits.mat`` (``m``, same content as ``Splits``) with ``Youtube_names.txt`` beside it (bob.db.youtube).

Video names are ``<person>/<n>``; names from a .mat file are normalised to that form (backslashes become
slashes, the last path part loses its extension and keeps its trailing number, so an assumed
``AJ_Cook/aligned_video_0.mat`` reads as ``AJ_Cook/0``). Frames are the images in
``frame_images_DB/<person>/<n>/`` (else ``aligned_images_DB/``), in natural order (``0.9.jpg`` before
``0.10.jpg``). When ``frame_images_DB/<person>.labeled_faces.txt`` exists its boxes are attached as the
extra columns ``box_x, box_y, box_w, box_h`` (top-left corner and size, pixels); the YTF README gives its rows as
``filename,[ignore],x,y,width,height,[ignore],[ignore]`` with (x, y) the box centre and filenames like
``Richard_Gere\\3\\3.618.jpg``. Landmarks are detected later (NaN here), except in a folder written by
``fiqa-bench prepare``, whose ``meta/<name>_name_5pts_score.txt`` (frame path under the frame folder, 10
landmark numbers, faceness) gives them for every frame.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fiqa_bench.api import Protocol
from fiqa_bench.api.cards import ProtocolCard
from fiqa_bench.data import layout_files
from fiqa_bench.errors import FiqaBenchError, ProtocolFormatError
from fiqa_bench.pipeline.benchmark import LANDMARK_COLUMNS, Benchmark, empty_landmarks
from fiqa_bench.protocols._layout import declared_layout, need_root, read_layout_json, reject_unknown
from fiqa_bench.protocols._metrics import KFOLD_METRICS
from fiqa_bench.protocols._tables import fail_at_row, first_true, open_meta, read_table, text_lines

SPLITS_CANDIDATES = layout_files.YTF_SPLITS_CANDIDATES
NAMES_FILE = "Youtube_names.txt"
FRAME_DIRS = layout_files.YTF_FRAME_DIRS
#: What ``fiqa-bench prepare --layout ytf`` writes (and :meth:`YTFLayout.sniff` recognises).
SPLITS_FILE, FRAMES_DIR = SPLITS_CANDIDATES[0], FRAME_DIRS[0]
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".tif", ".tiff", ".webp")
LANDMARKS_SUFFIX = layout_files.YTF_LANDMARKS_SUFFIX
BOX_COLUMNS = ["box_x", "box_y", "box_w", "box_h"]
PAIR_TABLE_COLUMNS = ["fold", "pair", "video1", "video2", "label"]
YTF_SPLITS = 10  # split numbers 1..10 (official splits, bob.db.youtube, and prepared layouts alike)

_VIDEO = re.compile(r"[^/\\\s]+/[^/\\\s]+")
_DIGITS = re.compile(r"[0-9]+", re.ASCII)


def _int_field(path: Path, lineno: int, field: str, what: str, low: int) -> int:
    if not _DIGITS.fullmatch(field):
        raise ProtocolFormatError(path, lineno, f"{what} is not a number: {field!r}")
    value = int(field)
    if value < low:
        raise ProtocolFormatError(path, lineno, f"{what} must be >= {low}, got {value}")
    return value


def read_splits_text(path: str | Path) -> pd.DataFrame:
    """``splits.txt`` -> columns fold (0-based), pair, video1, video2, label, line (1-based source line)."""
    path = Path(path)
    if not path.is_file():
        raise ProtocolFormatError(path, None, "file not found")
    rows: list[tuple[int, int, str, str, int, int]] = []
    seen: dict[tuple[int, int], int] = {}
    for lineno, line in text_lines(path):
        fields = [f.strip() for f in line.split(",")]
        if not rows and fields[0].lower() == "split":
            continue  # tolerate a header line
        if len(fields) != 5:
            raise ProtocolFormatError(
                path, lineno, f"expected 5 fields 'split, pair, video1, video2, same', found {len(fields)}"
            )
        split = _int_field(path, lineno, fields[0], "split", 1)
        if split > YTF_SPLITS:  # an eleventh fold would be averaged into the 10-fold accuracy
            raise ProtocolFormatError(path, lineno, f"split must be 1..{YTF_SPLITS}, got {split}")
        pair = _int_field(path, lineno, fields[1], "pair number", 1)
        for video in fields[2:4]:
            problem = _video_problem(video)
            if problem:
                raise ProtocolFormatError(path, lineno, problem)
        label = _int_field(path, lineno, fields[4], "same", 0)
        if label not in (0, 1):
            raise ProtocolFormatError(path, lineno, f"same must be 0 or 1, got {label}")
        if (split, pair) in seen:
            raise ProtocolFormatError(
                path, lineno, f"split {split} pair {pair} already given on line {seen[split, pair]}"
            )
        seen[split, pair] = lineno
        rows.append((split - 1, pair, fields[2], fields[3], label, lineno))
    if not rows:
        raise ProtocolFormatError(path, None, "file has no pairs")
    _check_pairs(path, rows, lambda r: (r[5], f"split {r[0] + 1} pair {r[1]}"))
    return _pair_table(rows)


def _video_problem(video: str) -> str | None:
    """Why a video name cannot be used (None when it can): '<person>/<video>', neither part '.' or '..'."""
    if not _VIDEO.fullmatch(video):
        return f"video name must be '<person>/<video>', got {video!r}"
    if any(part in (".", "..") for part in video.split("/")):
        return f"video name {video!r} has a '.' or '..' part: names must stay inside the frame folder"
    return None


def _check_pairs(path: Path, rows: list[tuple], where) -> None:
    """No video paired with itself, no pair of videos listed twice (in either order): each would add a genuine
    or impostor comparison the protocol does not have. ``where(row)`` -> (line or 0, description)."""
    seen: dict[tuple[str, str], tuple] = {}
    for r in rows:
        v1, v2 = r[2], r[3]
        line, what = where(r)
        if v1 == v2:
            raise ProtocolFormatError(path, line or None, f"{what}: video {v1} is paired with itself")
        key = (v1, v2) if v1 <= v2 else (v2, v1)
        if key in seen:
            first_line, first_what = where(seen[key])
            at = f"line {first_line}" if first_line else first_what
            raise ProtocolFormatError(path, line or None, f"{what}: videos {v1} and {v2} are already paired ({at})")
        seen[key] = r


def _pair_table(rows: list[tuple]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=[*PAIR_TABLE_COLUMNS, "line"])
    table = table.astype({"fold": np.int8, "pair": np.int64, "label": np.int8, "line": np.int64})
    return table.sort_values(["fold", "pair"], kind="stable").reset_index(drop=True)


def normalise_video_name(raw: str) -> str:
    """``AJ_Cook/0``, ``AJ_Cook\\0`` or ``.../AJ_Cook/aligned_video_0.mat`` -> ``AJ_Cook/0``."""
    parts = [p for p in raw.strip().replace("\\", "/").split("/") if p]
    if len(parts) < 2:
        return raw.strip()
    stem = parts[-1].rsplit(".", 1)[0] if "." in parts[-1] else parts[-1]
    number = re.search(r"[0-9]+$", stem)
    return f"{parts[-2]}/{number.group(0) if number else stem}"


def _mat_strings(value: Any) -> list[str]:
    """A MATLAB cell array of strings (or a char matrix) as a flat list of Python strings."""
    arr = np.asarray(value)
    if arr.dtype.kind == "U":
        return [str(s).strip() for s in arr.ravel()]
    out = []
    for item in arr.ravel(order="F"):
        inner = np.asarray(item).ravel()
        out.append(str(inner[0]).strip() if inner.size else "")
    return out


def read_names_file(path: Path) -> list[str]:
    if not path.is_file():
        raise ProtocolFormatError(path, None, "file not found (video names for the .mat splits)")
    names = []
    with open_meta(path) as fh:
        try:
            text = fh.read().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolFormatError(path, None, f"not UTF-8 text: {exc}") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        name = line.strip()
        problem = _video_problem(name)
        if problem:
            raise ProtocolFormatError(path, lineno, problem)
        names.append(name)
    if not names:
        raise ProtocolFormatError(path, None, "file has no video names")
    return names


def read_splits_mat(path: str | Path) -> pd.DataFrame:
    """``meta_and_splits.mat`` / ``Youtube_splits.mat`` -> the same table as :func:`read_splits_text` (line 0)."""
    import scipy.io

    path = Path(path)
    if not path.is_file():
        raise ProtocolFormatError(path, None, "file not found")
    try:
        mat = scipy.io.loadmat(path)
    except (ValueError, NotImplementedError, OSError, TypeError) as exc:
        raise ProtocolFormatError(path, None, f"cannot read this MATLAB file: {exc}") from None
    key = next((k for k in ("Splits", "m") if k in mat), None)
    if key is None:
        found = ", ".join(k for k in mat if not k.startswith("__"))
        raise ProtocolFormatError(path, None, f"no 'Splits' (or 'm') variable; found: {found}")
    splits = np.asarray(mat[key])
    if splits.ndim != 3 or splits.shape[1] != 3:
        raise ProtocolFormatError(path, None, f"'{key}' must be pairs x 3 x splits, got shape {splits.shape}")
    if not np.issubdtype(splits.dtype, np.number) or not np.array_equal(splits, np.round(splits)):
        raise ProtocolFormatError(path, None, f"'{key}' must hold whole numbers")
    splits = splits.astype(np.int64)
    if splits.shape[2] > YTF_SPLITS:
        raise ProtocolFormatError(path, None, f"'{key}' has {splits.shape[2]} splits; YTF has {YTF_SPLITS}")
    names_key = next((k for k in ("video_names", "mat_names") if k in mat), None)
    if names_key is not None:
        raw = _mat_strings(mat[names_key])
        names = [normalise_video_name(s) for s in raw]
        for i, name in enumerate(names):
            if not _VIDEO.fullmatch(name):
                raise ProtocolFormatError(path, None, f"{names_key}[{i + 1}] is not a video name: {raw[i]!r}")
    else:
        names = [normalise_video_name(s) for s in read_names_file(path.with_name(NAMES_FILE))]
    rows = []
    for fold in range(splits.shape[2]):
        for i in range(splits.shape[0]):
            v1, v2, label = (int(x) for x in splits[i, :, fold])
            where = f"{key}[{i + 1}, :, {fold + 1}] (split {fold + 1} pair {i + 1})"
            for v in (v1, v2):
                if not 1 <= v <= len(names):
                    raise ProtocolFormatError(path, None, f"{where}: video index {v} is not in 1..{len(names)}")
            if label not in (0, 1):
                raise ProtocolFormatError(path, None, f"{where}: same must be 0 or 1, got {label}")
            rows.append((fold, i + 1, names[v1 - 1], names[v2 - 1], label, 0))
    for name in names:
        problem = _video_problem(name)
        if problem:
            raise ProtocolFormatError(path, None, problem)
    _check_pairs(path, rows, lambda r: (0, f"{key}[{r[1]}, :, {r[0] + 1}] (split {r[0] + 1} pair {r[1]})"))
    return _pair_table(rows)


def read_splits(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    return read_splits_mat(path) if path.suffix.lower() == ".mat" else read_splits_text(path)


def find_splits(root: Path) -> Path:
    for name in SPLITS_CANDIDATES:
        if (root / name).is_file():
            return root / name
    raise FiqaBenchError(f"{root}: no YTF splits file (looked for {', '.join(SPLITS_CANDIDATES)})")


def read_labeled_faces(path: Path) -> dict[str, tuple[float, float, float, float]]:
    """``<person>.labeled_faces.txt`` -> {``person/video/frame.jpg``: (left, top, width, height)}."""
    boxes = {}
    for lineno, line in text_lines(path):
        fields = line.split(",")
        if len(fields) < 6:
            raise ProtocolFormatError(
                path, lineno, f"expected 'filename,?,x,y,width,height,...' (>= 6 fields), found {len(fields)}"
            )
        try:
            x, y, w, h = (float(f) for f in fields[2:6])
        except ValueError:
            raise ProtocolFormatError(path, lineno, f"x, y, width, height must be numbers: {fields[2:6]}") from None
        boxes[fields[0].strip().replace("\\", "/")] = (x - w / 2, y - h / 2, w, h)
    return boxes


def find_landmarks_file(root: Path, name: str | None) -> Path | None:
    """``meta/<name>_name_5pts_score.txt`` of a prepared layout (the only one when no name is known)."""
    meta = root / "meta"
    if name and (any(ch in name for ch in "/\\\x00") or name in (".", "..")):
        raise FiqaBenchError(
            f"'name' in {root / 'benchmark.json'} must be a plain file prefix (no '/', '\\' or '..'), got {name!r}"
        )
    if name and (meta / f"{name}{LANDMARKS_SUFFIX}").is_file():
        return meta / f"{name}{LANDMARKS_SUFFIX}"
    found = sorted(meta.glob(f"*{LANDMARKS_SUFFIX}")) if meta.is_dir() else []
    if len(found) > 1:
        raise FiqaBenchError(
            f"{meta}: several landmark files ({', '.join(p.name for p in found)}); "
            f"say which with the 'name' of a benchmark.json at {root}"
        )
    return found[0] if found else None


_LANDMARK_FILE_COLUMNS = [
    ("frame", "str"),
    *[(f"{axis}{i + 1}", "float") for i in range(5) for axis in ("x", "y")],
    ("faceness", "float"),
]


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"([0-9]+)", name)]


def _list_frames(folder: Path) -> list[str]:
    try:
        with os.scandir(folder) as it:
            names = [e.name for e in it if e.name.lower().endswith(IMAGE_EXTENSIONS) and e.is_file()]
    except OSError as exc:
        raise FiqaBenchError(f"{folder}: cannot list the video's frames: {exc.strerror or exc}") from None
    return sorted(names, key=_natural_key)


def _spread(n: int, k: int | None) -> np.ndarray:
    """At most ``k`` evenly spaced indices of ``range(n)`` (all when ``k`` is None)."""
    if k is None or n <= k:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, k).round().astype(np.int64))


class YTF(Protocol):
    """YouTube Faces, 10 splits of 250 same + 250 different video pairs; each video a group."""

    card = ProtocolCard(
        name="ytf",
        version="1",
        summary="YouTube Faces: 5,000 video pairs (10 splits x 250 same + 250 different), 10-fold accuracy",
        licence="research use (YouTube videos; YTF terms of use)",
        paper="L. Wolf, T. Hassner, I. Maoz: Face Recognition in Unconstrained Videos with Matched "
        "Background Similarity, CVPR 2011",
        metric="kfold_accuracy",
        metrics=KFOLD_METRICS,
        data="gated: request YouTubeFaces.tar.gz from www.cs.tau.ac.il/~wolf/ytfaces (frame_images_DB/ + "
        "meta_data/meta_and_splits.mat); a splits.txt beside frame_images_DB/ also works",
    )
    OPTIONS = ("splits", "frames_dir", "max_frames")

    def __init__(self, root: str | Path | None = None, **options: Any) -> None:
        super().__init__(root, **options)
        reject_unknown(self.card.name, options, self.OPTIONS)
        self.splits: Path | None = Path(options["splits"]) if options.get("splits") else None
        self.frames_dir: str | None = options.get("frames_dir")
        max_frames = options.get("max_frames")
        if max_frames is not None and int(max_frames) < 1:
            raise FiqaBenchError(f"{self.card.name}: max_frames must be >= 1, got {max_frames}")
        self.max_frames = int(max_frames) if max_frames is not None else None

    def benchmark_name(self) -> str:
        return self.card.name

    def layout_name(self) -> str | None:
        """The ``name`` of a prepared layout (prefix of its meta files); None for the official YTF."""
        return None

    def data_root(self) -> Path:
        return need_root(self.root, self.card.name)

    def splits_file(self) -> Path:
        return self.splits if self.splits is not None else find_splits(self.data_root())

    def load_pairs(self) -> pd.DataFrame:
        """The pair list alone (no frames needed): fold (0-based), pair, video1, video2, label."""
        return read_splits(self.splits_file())[PAIR_TABLE_COLUMNS]

    def _frames_dir(self, root: Path) -> str:
        if self.frames_dir:
            if not (root / self.frames_dir).is_dir():
                raise FiqaBenchError(f"{root / self.frames_dir} does not exist")
            return self.frames_dir
        for name in FRAME_DIRS:
            if (root / name).is_dir():
                return name
        raise FiqaBenchError(f"{root}: no frame folder ({' or '.join(FRAME_DIRS)})")

    def load(self) -> Benchmark:
        root = self.data_root()
        splits_path = self.splits_file()
        table = read_splits(splits_path)
        frames_dir = self._frames_dir(root)
        videos = sorted(set(table["video1"]) | set(table["video2"]))
        group_of = {v: g for g, v in enumerate(videos)}

        first_ref: dict[str, tuple[int, int, int]] = {}  # video -> (line, split, pair) that first names it
        for fold, pair, v1, v2, line in table[["fold", "pair", "video1", "video2", "line"]].itertuples(index=False):
            first_ref.setdefault(v1, (line, fold + 1, pair))
            first_ref.setdefault(v2, (line, fold + 1, pair))

        paths: list[str] = []
        identities: list[str] = []
        groups: list[np.ndarray] = []
        for g, video in enumerate(videos):
            folder = root / frames_dir / video
            line, split, pair = first_ref[video]
            if not folder.is_dir():
                raise ProtocolFormatError(
                    splits_path, line or None, f"split {split} pair {pair}: video folder {folder} does not exist"
                )
            frames = _list_frames(folder)
            if not frames:
                raise ProtocolFormatError(
                    splits_path, line or None, f"split {split} pair {pair}: video folder {folder} has no frames"
                )
            keep = _spread(len(frames), self.max_frames)
            paths.extend(f"{frames_dir}/{video}/{frames[i]}" for i in keep)
            identities.extend([video.split("/")[0]] * keep.size)
            groups.append(np.full(keep.size, g, dtype=np.int64))

        n = len(paths)
        boxes = np.full((n, 4), np.nan, dtype=np.float32)
        box_sources = []
        if frames_dir == "frame_images_DB":
            row_of = {p[len(frames_dir) + 1 :]: i for i, p in enumerate(paths)}
            for person in sorted({v.split("/")[0] for v in videos}):
                labelled = root / frames_dir / f"{person}.labeled_faces.txt"
                if not labelled.is_file():
                    continue
                box_sources.append(labelled)
                for key, box in read_labeled_faces(labelled).items():
                    i = row_of.get(key)
                    if i is not None:
                        boxes[i] = box

        landmarks = empty_landmarks(n)
        face_score = np.full(n, np.nan, dtype=np.float32)
        landmarks_file = find_landmarks_file(root, self.layout_name())
        if landmarks_file is not None:
            frame_names, *values = read_table(landmarks_file, _LANDMARK_FILE_COLUMNS)
            table_of = pd.Index(frame_names)
            dup = first_true(table_of.duplicated())
            if dup is not None:
                raise fail_at_row(landmarks_file, dup, f"frame {frame_names[dup]} is listed twice")
            keys = [p[len(frames_dir) + 1 :] for p in paths]
            rows = table_of.get_indexer(keys)
            missing = np.flatnonzero(rows < 0)
            if missing.size:
                raise ProtocolFormatError(landmarks_file, None, f"no line for frame {keys[missing[0]]}")
            values = np.stack(values, axis=1)[rows].astype(np.float32)
            landmarks = {c: values[:, i] for i, c in enumerate(LANDMARK_COLUMNS)}
            face_score = values[:, 10]
            box_sources.append(landmarks_file)

        group = np.concatenate(groups) if groups else np.zeros(0, dtype=np.int64)
        faces = pd.DataFrame(
            {
                "path": paths,
                "identity": identities,
                "group": group,
                "media": group.copy(),
                "face_score": face_score,
                **landmarks,
                **{c: boxes[:, i] for i, c in enumerate(BOX_COLUMNS)},
            }
        )
        pairs = pd.DataFrame(
            {
                "a": table["video1"].map(group_of).to_numpy(np.int64),
                "b": table["video2"].map(group_of).to_numpy(np.int64),
                "label": table["label"].to_numpy(np.int8),
                "fold": table["fold"].to_numpy(np.int8),
            }
        )
        with_box = int(np.isfinite(boxes[:, 0]).sum())
        return self.benchmark(
            faces,
            pairs,
            root=root,
            name=self.benchmark_name(),
            source_files=[splits_path, *box_sources],
            detect_pad=self.detect_pad(),
            notes=[
                f"{len(videos)} videos, {n} frames from {frames_dir}/"
                + (f" (at most {self.max_frames} per video)" if self.max_frames else "")
                + f", {len(pairs)} pairs in {table['fold'].nunique()} folds from {splits_path.name}",
                f"{with_box} frames with a labeled_faces box; landmarks from "
                + (landmarks_file.name if landmarks_file is not None else "detection"),
            ],
        )

    def detect_pad(self) -> float:
        return 0.0


class YTFLayout(YTF):
    """A folder written by ``fiqa-bench prepare --layout ytf``: ``frame_images_DB/<person>/<video>/*.jpg``
    plus ``splits.txt`` in the YTF format, and possibly a ``benchmark.json`` (``name``, ``layout: "ytf"``)."""

    argument = "PATH"
    card = ProtocolCard(
        name="ytf-layout",
        version="1",
        summary="video-pair verification on any folder in the YTF layout (frame folders + splits.txt); k-fold accuracy",
        licence="that of the videos in the folder",
        metric="kfold_accuracy",
        metrics=KFOLD_METRICS,
        data="your own folder: frame_images_DB/<person>/<video>/*.jpg + splits.txt (+ optional benchmark.json)",
    )

    @classmethod
    def sniff(cls, root: Path) -> bool:
        """Whether ``root`` is in this layout: its ``benchmark.json`` says ``ytf``, or (none declared) it has a
        ``splits.txt``."""
        declared = declared_layout(root)
        if declared is not None:
            return declared == "ytf"
        return (Path(root) / SPLITS_FILE).is_file()

    def __init__(self, path: str | Path, **options: Any) -> None:
        super().__init__(path, **options)

    def data_root(self) -> Path:
        if self.root is None or not self.root.is_dir():
            raise FiqaBenchError(f"ytf-layout: {self.root} is not a folder")
        return self.root

    def load(self) -> Benchmark:
        self._info()  # a wrong benchmark.json fails before any folder is listed
        return super().load()

    def _info(self) -> dict[str, Any]:
        return read_layout_json(self.data_root(), "ytf")

    def benchmark_name(self) -> str:
        return self._info().get("name") or self.data_root().resolve().name

    def layout_name(self) -> str | None:
        return self._info().get("name")

    def detect_pad(self) -> float:
        return float(self._info().get("detect_pad", 0.0))
