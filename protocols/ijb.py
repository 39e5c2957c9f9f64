"""IJB-B / IJB-C 1:1 template verification in the insightface layout, and any folder written in that layout.

Layout (``<p>`` is the prefix, ``ijbb`` / ``ijbc`` for the real sets)::

    <root>/loose_crop/<image>                      face crops
    <root>/meta/<p>_face_tid_mid.txt               image_name template_id media_id        (one line per face)
    <root>/meta/<p>_template_pair_label.txt        template_id1 template_id2 label(0|1)
    <root>/meta/<p>_name_5pts_score.txt            image_name x1 y1 ... x5 y5 faceness    (optional)
    <root>/meta/<p>_tid_sid.txt                    template_id subject_id                 (optional)

Fields are separated by single spaces. Landmarks (ArcFace order, loose_crop pixels) and faceness scores are
used as given; without the 5pts file landmarks are NaN (detected later) and face_score is NaN. The IJB meta
files carry no identities: ``identity`` is ``""`` unless ``<p>_tid_sid.txt`` exists (``fiqa-bench prepare``
writes it), in which case it is the template's subject id as text, or the subject's name where the layout's
``benchmark.json`` has a ``subjects`` map (subject id -> name). Each template is a group, ``media`` is the
media id, pairs have fold -1, and the metric is TPR at FPR.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fiqa_bench.api import Protocol
from fiqa_bench.api.cards import ProtocolCard
from fiqa_bench.data import layout_files, safepath
from fiqa_bench.errors import FiqaBenchError, ProtocolFormatError
from fiqa_bench.pipeline.benchmark import LANDMARK_COLUMNS, Benchmark
from fiqa_bench.protocols._layout import declared_layout, need_root, read_layout_json, reject_unknown
from fiqa_bench.protocols._metrics import TEMPLATE_METRICS
from fiqa_bench.protocols._tables import (
    fail_at_row,
    first_duplicate_pair,
    first_true,
    first_unsafe_name,
    line_of_row,
    read_table,
)

IMAGES_DIR = layout_files.IJB_IMAGES_DIR
META_DIR = layout_files.IJB_META_DIR
FACES_SUFFIX = layout_files.IJB_FACES_SUFFIX
PAIRS_SUFFIX = layout_files.IJB_PAIRS_SUFFIX
LANDMARKS_SUFFIX = layout_files.IJB_LANDMARKS_SUFFIX
SUBJECTS_SUFFIX = layout_files.IJB_SUBJECTS_SUFFIX

_FACE_COLUMNS = [("image_name", "str"), ("template_id", "int"), ("media_id", "int")]
_PAIR_COLUMNS = [("template_id1", "int32"), ("template_id2", "int32"), ("label", "int32")]
_LANDMARK_FILE_COLUMNS = [
    ("image_name", "str"),
    *[(f"{axis}{i + 1}", "float") for i in range(5) for axis in ("x", "y")],
    ("faceness", "float"),
]
_SUBJECT_COLUMNS = [("template_id", "int"), ("subject_id", "int")]


def discover_prefix(root: Path) -> str:
    """The ``<p>`` of the only ``meta/<p>_face_tid_mid.txt`` in a layout folder."""
    meta = root / META_DIR
    found = sorted(p.name[: -len(FACES_SUFFIX)] for p in meta.glob(f"*{FACES_SUFFIX}")) if meta.is_dir() else []
    if not found:
        raise ProtocolFormatError(meta, None, f"no *{FACES_SUFFIX} here: not an IJB (insightface) layout")
    if len(found) > 1:
        raise FiqaBenchError(
            f"{meta}: several layouts ({', '.join(found)}); say which with a benchmark.json "
            f'{{"name": "{found[0]}", "layout": "ijb"}} at {root} or the option name=...'
        )
    return found[0]


def _image_exists(images_dir: Path, names: np.ndarray) -> np.ndarray:
    """Existence of each image, with one directory listing instead of one stat per image."""
    try:
        listed = set(os.listdir(images_dir))
    except OSError:  # missing or unreadable: every name is then checked (and reported) one by one
        listed = set()
    flat = np.fromiter((n in listed for n in names), dtype=bool, count=len(names))
    for i in np.flatnonzero(~flat):  # names with sub-folders are not in a flat listing: stat those
        flat[i] = os.path.exists(images_dir / names[i])
    return flat


def _membership(known: np.ndarray):
    """A vectorised ``values in known`` for sorted unique ids: a lookup table when ids are small integers
    (IJB's are), else binary search."""
    if known.size and known[0] >= 0 and known[-1] < 50_000_000:
        table = np.zeros(int(known[-1]) + 2, dtype=bool)
        table[known] = True
        top = table.size - 1  # always False: stands in for out-of-range ids

        def test(values: np.ndarray) -> np.ndarray:
            if values.size and values.min() >= 0 and values.max() < top:
                return table[values]  # every id in range (the usual file): one lookup, no temporaries
            return table[np.where((values >= 0) & (values < top), values, top)]

        return test

    def search(values: np.ndarray) -> np.ndarray:
        at = np.minimum(np.searchsorted(known, values), known.size - 1)
        return known[at] == values

    return search


def read_ijb_layout(
    root: Path,
    prefix: str,
    name: str,
    *,
    check_images: bool = True,
    detect_pad: float = 0.0,
    version: str = "1",
    subject_names: dict[str, str] | None = None,
    metric: str = "tpr_at_fpr",
    metrics: tuple[str, ...] = TEMPLATE_METRICS,
) -> Benchmark:
    """Read one layout folder into a :class:`Benchmark`; every malformed line raises ProtocolFormatError.

    ``subject_names`` maps subject ids (as text) to identity names (``subjects`` of a prepared benchmark.json);
    ``metric`` and ``metrics``: the protocol kind and the metrics reported (a reader's card gives its own).
    """
    meta = root / META_DIR
    faces_file = meta / f"{prefix}{FACES_SUFFIX}"
    pairs_file = meta / f"{prefix}{PAIRS_SUFFIX}"
    landmarks_file = meta / f"{prefix}{LANDMARKS_SUFFIX}"
    subjects_file = meta / f"{prefix}{SUBJECTS_SUFFIX}"
    sources = [faces_file, pairs_file]

    image_names, template_ids, media_ids = read_table(faces_file, _FACE_COLUMNS)
    n = len(image_names)
    bad = first_unsafe_name(image_names)
    if bad is not None:
        problem = safepath.name_problem(str(image_names[bad]))
        assert problem is not None  # first_unsafe_name gives the first row that name_problem rejects
        raise fail_at_row(faces_file, bad, problem)
    twice = first_true(pd.DataFrame({"n": image_names, "t": template_ids}).duplicated().to_numpy())
    if twice is not None:  # the image would count twice in its template (and be embedded twice)
        first = first_true((image_names == image_names[twice]) & (template_ids == template_ids[twice]))
        assert first is not None  # row `twice` itself matches
        raise fail_at_row(
            faces_file,
            twice,
            f"image {image_names[twice]} of template {template_ids[twice]} is "
            f"listed twice (first on line {line_of_row(faces_file, first)})",
        )

    landmarks = np.full((n, 10), np.nan, dtype=np.float32)
    face_score = np.full(n, np.nan, dtype=np.float32)
    if landmarks_file.is_file():
        sources.append(landmarks_file)
        lm_names, *lm_values = read_table(landmarks_file, _LANDMARK_FILE_COLUMNS)
        values = np.stack(lm_values, axis=1)
        if len(lm_names) == n and bool((lm_names == image_names).all()):
            rows = np.arange(n)  # the insightface files list the faces in the same order
        else:
            lm_index = pd.Index(lm_names)  # matched by name, so a name must not be ambiguous
            dup = first_true(lm_index.duplicated())
            if dup is not None:
                raise fail_at_row(landmarks_file, dup, f"image {lm_names[dup]} is listed twice")
            rows = lm_index.get_indexer(image_names)
            missing = first_true(rows < 0)
            if missing is not None:
                raise fail_at_row(
                    faces_file, missing, f"image {image_names[missing]} has no line in {landmarks_file.name}"
                )
        landmarks = values[rows, :10].astype(np.float32)
        face_score = values[rows, 10].astype(np.float32)

    identity = np.full(n, "", dtype=object)
    if subjects_file.is_file():
        sources.append(subjects_file)
        sid_templates, sid_subjects = read_table(subjects_file, _SUBJECT_COLUMNS)
        table = pd.DataFrame({"t": sid_templates, "s": sid_subjects})
        conflict = first_true(table.duplicated("t", keep="first") & ~table.duplicated(keep="first"))
        if conflict is not None:
            raise fail_at_row(subjects_file, conflict, f"template {sid_templates[conflict]} has two subjects")
        subject_of = table.drop_duplicates("t").set_index("t")["s"]
        pos = subject_of.index.get_indexer(template_ids)
        missing = first_true(pos < 0)
        if missing is not None:
            raise fail_at_row(
                faces_file, missing, f"template {template_ids[missing]} has no subject in {subjects_file.name}"
            )
        identity = subject_of.to_numpy()[pos].astype(str).astype(object)
        if subject_names:
            identity = pd.Series(identity).map(lambda sid: subject_names.get(sid, sid)).to_numpy(dtype=object)

    t1, t2, label = read_table(pairs_file, _PAIR_COLUMNS)
    bad = first_true((label != 0) & (label != 1))
    if bad is not None:
        raise fail_at_row(pairs_file, bad, f"label must be 0 or 1, got {label[bad]}")
    same = first_true(t1 == t2)
    if same is not None:
        raise fail_at_row(pairs_file, same, f"template {t1[same]} is paired with itself")
    repeated = first_duplicate_pair(t1, t2)
    if repeated is not None:  # a repeated pair counts twice: a duplicated genuine row inflates TPR
        row, earlier = repeated
        raise fail_at_row(
            pairs_file,
            row,
            f"templates {t1[row]} and {t2[row]} are already paired on line {line_of_row(pairs_file, earlier)}",
        )
    known = np.unique(template_ids)
    is_known = _membership(known)
    for column, values in ((1, t1), (2, t2)):
        bad = first_true(~is_known(values))
        if bad is not None:
            raise fail_at_row(pairs_file, bad, f"template {values[bad]} (field {column}) is not in {faces_file.name}")

    images_dir = root / IMAGES_DIR
    if check_images:
        exists = _image_exists(images_dir, image_names)
        bad = first_true(~exists)
        if bad is not None:
            raise fail_at_row(faces_file, bad, f"image {images_dir / image_names[bad]} does not exist")

    faces = pd.DataFrame(
        {
            "path": IMAGES_DIR + "/" + pd.Series(image_names, dtype=object),
            "identity": identity,
            "group": template_ids,
            "media": media_ids,
            "face_score": face_score,
            **{c: landmarks[:, i] for i, c in enumerate(LANDMARK_COLUMNS)},
        },
        copy=False,  # the columns as they are: no consolidation into 2-D blocks (a copy of every column)
    )
    pairs = pd.DataFrame(
        {
            "a": t1.astype(np.int64),
            "b": t2.astype(np.int64),
            "label": label.astype(np.int8),
            "fold": np.full(len(t1), -1, dtype=np.int8),
        },
        copy=False,  # IJB-C: 1-2 s of copying 15.7M rows into one block saved
    )
    genuine = int(pairs["label"].sum())
    return Benchmark(
        name=name,
        root=root,
        faces=faces,
        pairs=pairs,
        metric=metric,
        metrics=metrics,
        version=version,
        source_files=sources,
        detect_pad=detect_pad,
        notes=[
            f"{n} images, {known.size} templates, {len(pairs)} pairs ({genuine} genuine)",
            "landmarks and faceness from " + (landmarks_file.name if landmarks_file.is_file() else "detection"),
        ],
    )


_IJB_OPTIONS = ("check_images",)


class _OfficialIJB(Protocol):
    """IJB-B or IJB-C from insightface's ``IJB_release`` folder (``<root>/meta``, ``<root>/loose_crop``)."""

    prefix = ""

    def __init__(self, root: str | Path | None = None, **options: Any) -> None:
        super().__init__(root, **options)
        reject_unknown(self.card.name, options, _IJB_OPTIONS)
        self.check_images = bool(options.get("check_images", True))

    def data_root(self) -> Path:
        root = need_root(self.root, self.card.name)
        for candidate in (root, root / self.prefix.upper(), root / self.prefix):  # IJB_release/IJBB/...
            if (candidate / META_DIR / f"{self.prefix}{FACES_SUFFIX}").is_file():
                return candidate
        raise ProtocolFormatError(
            root / META_DIR / f"{self.prefix}{FACES_SUFFIX}",
            None,
            f"file not found (looked in {root} and {root / self.prefix.upper()})",
        )

    def load(self) -> Benchmark:
        return read_ijb_layout(
            self.data_root(),
            self.prefix,
            self.card.name,
            check_images=self.check_images,
            version=self.card.version,
            metric=self.card.metric,
            metrics=self.card.metrics,
        )


_IJB_DATA = (
    "gated (NIST licence): request IJB-B/IJB-C from NIST, then use insightface's IJB_release files "
    "(loose_crop/ + meta/*_face_tid_mid.txt, *_template_pair_label.txt, *_name_5pts_score.txt)"
)


class IJBB(_OfficialIJB):
    card = ProtocolCard(
        name="ijbb",
        version="1",
        summary="IJB-B 1:1 template verification: 227,630 images, 12,115 templates, 8.0M pairs; TPR at FPR",
        licence="NIST IJB licence agreement (research use)",
        paper="C. Whitelam et al.: IARPA Janus Benchmark-B Face Dataset, CVPR Workshops 2017",
        metric="tpr_at_fpr",
        metrics=TEMPLATE_METRICS,
        data=_IJB_DATA,
    )
    prefix = "ijbb"


class IJBC(_OfficialIJB):
    card = ProtocolCard(
        name="ijbc",
        version="1",
        summary="IJB-C 1:1 template verification: 469,375 images, 23,124 templates, 15.7M pairs; TPR at FPR",
        licence="NIST IJB licence agreement (research use)",
        paper="B. Maze et al.: IARPA Janus Benchmark-C: Face Dataset and Protocol, ICB 2018",
        metric="tpr_at_fpr",
        metrics=TEMPLATE_METRICS,
        data=_IJB_DATA,
    )
    prefix = "ijbc"


class IJBLayout(Protocol):
    """Any folder in the insightface IJB layout (e.g. written by ``fiqa-bench prepare --layout ijb``).

    The prefix (and the benchmark's name) is the option ``name`` if given, else ``name`` from the
    ``benchmark.json`` at the folder root, else that of the only ``meta/<name>_face_tid_mid.txt``.
    """

    argument = "PATH"
    card = ProtocolCard(
        name="ijb-layout",
        version="1",
        summary="template verification on any folder in the insightface IJB layout; TPR at FPR",
        licence="that of the images in the folder",
        metric="tpr_at_fpr",
        metrics=TEMPLATE_METRICS,
        data="your own folder: loose_crop/ + meta/<name>_face_tid_mid.txt + meta/<name>_template_pair_label.txt "
        "(+ optional <name>_name_5pts_score.txt, <name>_tid_sid.txt, benchmark.json)",
    )
    OPTIONS = ("check_images", "name")

    @classmethod
    def sniff(cls, root: Path) -> bool:
        """Whether ``root`` is in this layout: its ``benchmark.json`` says ``ijb``, or (none declared) it has a
        ``meta/<name>_face_tid_mid.txt``."""
        declared = declared_layout(root)
        if declared is not None:
            return declared == "ijb"
        meta = Path(root) / META_DIR
        return meta.is_dir() and any(meta.glob(f"*{FACES_SUFFIX}"))

    def __init__(self, path: str | Path, **options: Any) -> None:
        super().__init__(path, **options)
        reject_unknown(self.card.name, options, self.OPTIONS)
        self.check_images = bool(options.get("check_images", True))
        self.name: str | None = options.get("name")

    def load(self) -> Benchmark:
        root = self.root
        if root is None or not root.is_dir():
            raise FiqaBenchError(f"ijb-layout: {root} is not a folder")
        info = read_layout_json(root, "ijb")
        prefix = self.name or info.get("name") or discover_prefix(root)
        if not isinstance(prefix, str) or any(ch in prefix for ch in "/\\\x00") or prefix in (".", ".."):
            source = "the option name" if self.name else f"'name' in {root / 'benchmark.json'}"
            raise FiqaBenchError(f"{source} must be a plain file prefix (no '/', '\\' or '..'), got {prefix!r}")
        if not (root / META_DIR / f"{prefix}{FACES_SUFFIX}").is_file():
            raise ProtocolFormatError(root / META_DIR / f"{prefix}{FACES_SUFFIX}", None, "file not found")
        return read_ijb_layout(
            root,
            prefix,
            prefix,
            check_images=self.check_images,
            detect_pad=float(info.get("detect_pad", 0.0)),
            version=str(info.get("version", self.card.version)),
            subject_names={str(k): str(v) for k, v in (info.get("subjects") or {}).items()},
            metric=self.card.metric,
            metrics=self.card.metrics,
        )
