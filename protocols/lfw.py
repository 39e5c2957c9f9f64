"""LFW View 2: 6,000 image pairs in 10 folds, reported as 10-fold verification accuracy.

``pairs.txt`` (official View-2 file): a header ``folds pairs_per_class`` (``10 300``), then per fold
``pairs_per_class`` same-person lines ``name n1 n2`` followed by as many different-person lines
``name1 n1 name2 n2``; image ``n`` of ``name`` is ``<images>/<name>/<name>_<n:04d>.jpg`` (``images`` is ``lfw/``,
or ``lfw-deepfunneled/`` / ``lfw_funneled/`` as in the other official archives). Every image is its own group.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fiqa_bench.api import Protocol
from fiqa_bench.api.cards import ProtocolCard
from fiqa_bench.errors import FiqaBenchError, ProtocolFormatError
from fiqa_bench.pipeline.benchmark import Benchmark, empty_landmarks
from fiqa_bench.protocols._layout import reject_unknown
from fiqa_bench.protocols._metrics import KFOLD_METRICS

PAIRS_FILE = "pairs.txt"
IMAGE_DIRS = ("lfw", "lfw-deepfunneled", "lfw_funneled")


@dataclass(frozen=True)
class LFWPairs:
    """``pairs.txt`` parsed: the distinct images (sorted by name, number) and pairs as indices into them."""

    path: Path
    images: list[tuple[str, int]]  # (name, n), sorted
    first_line: list[int]  # 1-based line of pairs.txt that first references each image
    a: np.ndarray  # int64 index into images
    b: np.ndarray
    label: np.ndarray  # 1 same person, 0 different
    fold: np.ndarray  # 0..folds-1

    def image_path(self, i: int, images_dir: str = "lfw") -> str:
        name, n = self.images[i]
        return f"{images_dir}/{name}/{name}_{n:04d}.jpg"


def _number(path: Path, lineno: int, field: str, what: str) -> int:
    if not field.isascii() or not field.isdigit():
        raise ProtocolFormatError(path, lineno, f"{what} is not a number: {field!r}")
    value = int(field)
    if value < 1:
        raise ProtocolFormatError(path, lineno, f"{what} must be >= 1, got {value}")
    return value


def _name_problem(name: str) -> str | None:
    """A person's name becomes a folder and a file name: no separators, no '.'/'..', no NUL."""
    if name in (".", "..") or any(ch in name for ch in "/\\\x00"):
        return f"person name {name!r} is not a plain folder name (no '/', '\\', '.' or '..')"
    return None


def parse_pairs(path: str | Path) -> LFWPairs:
    """Parse an LFW View-2 ``pairs.txt``; every malformed line raises :class:`ProtocolFormatError`."""
    path = Path(path)
    if not path.is_file():
        raise ProtocolFormatError(path, None, "file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolFormatError(path, None, f"not UTF-8 text: {exc}") from None
    except OSError as exc:
        raise ProtocolFormatError(path, None, f"cannot read: {exc.strerror or exc}") from None
    lines = [(i, line.split()) for i, line in enumerate(text.splitlines(), 1)]
    lines = [(i, f) for i, f in lines if f]
    if not lines:
        raise ProtocolFormatError(path, 1, "file is empty")
    head_no, head = lines[0]
    if len(head) != 2:
        raise ProtocolFormatError(path, head_no, f"expected header 'folds pairs_per_class', got {' '.join(head)!r}")
    folds = _number(path, head_no, head[0], "number of folds")
    per_class = _number(path, head_no, head[1], "pairs per class")
    body = lines[1:]
    expected = folds * 2 * per_class
    if len(body) != expected:
        raise ProtocolFormatError(
            path,
            head_no,
            f"header says {folds} folds x 2 x {per_class} = {expected} pairs, but the file has {len(body)} pair lines",
        )
    refs: list[tuple[tuple[str, int], tuple[str, int], int, int, int]] = []
    for k, (lineno, f) in enumerate(body):
        fold, within = divmod(k, 2 * per_class)
        same = within < per_class
        if same:
            if len(f) != 3:
                raise ProtocolFormatError(
                    path, lineno, f"fold {fold + 1} same-person line must be 'name n1 n2', got {len(f)} fields"
                )
            n1 = _number(path, lineno, f[1], "image number")
            n2 = _number(path, lineno, f[2], "image number")
            refs.append(((f[0], n1), (f[0], n2), 1, fold, lineno))
        else:
            if len(f) != 4:
                raise ProtocolFormatError(
                    path,
                    lineno,
                    f"fold {fold + 1} different-person line must be 'name1 n1 name2 n2', got {len(f)} fields",
                )
            n1 = _number(path, lineno, f[1], "image number")
            n2 = _number(path, lineno, f[3], "image number")
            refs.append(((f[0], n1), (f[2], n2), 0, fold, lineno))
    seen: dict[tuple, int] = {}
    for x, y, _, _, lineno in refs:
        for name, _n in (x, y):
            problem = _name_problem(name)
            if problem:
                raise ProtocolFormatError(path, lineno, problem)
        if x == y:  # "name 3 3": an image compared with itself, a certain genuine match
            raise ProtocolFormatError(path, lineno, f"image {x[0]} {x[1]} is paired with itself")
        key = (x, y) if x <= y else (y, x)
        if key in seen:
            raise ProtocolFormatError(
                path, lineno, f"images {x[0]} {x[1]} and {y[0]} {y[1]} are already paired on line {seen[key]}"
            )
        seen[key] = lineno
    first: dict[tuple[str, int], int] = {}
    for x, y, _, _, lineno in refs:
        first.setdefault(x, lineno)
        first.setdefault(y, lineno)
    images = sorted(first)
    index = {img: i for i, img in enumerate(images)}
    return LFWPairs(
        path=path,
        images=images,
        first_line=[first[img] for img in images],
        a=np.array([index[r[0]] for r in refs], dtype=np.int64),
        b=np.array([index[r[1]] for r in refs], dtype=np.int64),
        label=np.array([r[2] for r in refs], dtype=np.int8),
        fold=np.array([r[3] for r in refs], dtype=np.int8),
    )


def find_images_dir(root: Path) -> str:
    for name in IMAGE_DIRS:
        if (root / name).is_dir():
            return name
    raise FiqaBenchError(f"{root}: no image folder ({' or '.join(IMAGE_DIRS)}) beside {PAIRS_FILE}")


def check_images_exist(root: Path, parsed: LFWPairs, images_dir: str) -> None:
    """A missing image is named together with the pairs.txt line that asks for it."""
    for i in range(len(parsed.images)):
        rel = parsed.image_path(i, images_dir)
        if not os.path.exists(root / rel):
            raise ProtocolFormatError(parsed.path, parsed.first_line[i], f"image {root / rel} does not exist")


def resolve_root(root: Path | None) -> Path:
    """``root``, else the development data's LFW (``$FIQA_SHARED/data/lfw``) when present, else the downloaded copy."""
    if root is None:
        from fiqa_bench.data.datasets import lfw_root
        from fiqa_bench.data.paths import shared_dir

        shared = shared_dir()
        root = (
            shared / "data" / "lfw"
            if shared is not None and (shared / "data" / "lfw" / PAIRS_FILE).is_file()
            else Path(lfw_root(None))
        )
    if not (root / PAIRS_FILE).is_file():
        raise FiqaBenchError(f"{root}: no {PAIRS_FILE} (expected LFW View-2 pairs.txt beside the lfw/ image folder)")
    return root


class LFW(Protocol):
    """LFW View 2 (``pairs.txt``): each image its own group, 10-fold accuracy."""

    card = ProtocolCard(
        name="lfw",
        version="1",
        summary="LFW View 2: 6,000 image pairs (10 folds x 300 same + 300 different), 10-fold verification accuracy",
        licence="research use; news photographs, no image licence stated",
        paper="G. B. Huang, M. Ramesh, T. Berg, E. Learned-Miller: Labeled Faces in the Wild, UMass TR 07-49, 2007",
        metric="kfold_accuracy",
        metrics=KFOLD_METRICS,
        data="pairs.txt + lfw/<Name>/<Name>_NNNN.jpg as in the official lfw.tgz (vis-www.cs.umass.edu/lfw); "
        "found by fiqa_bench.data.datasets.lfw_root when no root is given",
    )
    # Tight crops: the face touches the border. On 593 of the 150x150 images SCRFD-500M finds 21 faces unpadded,
    # 415 with pad 0.1 and all 593 with 0.25 (YuNet finds all at any pad), so 0.25 is the smallest safe pad.
    DETECT_PAD = 0.25
    OPTIONS = ("images_dir", "check_images")

    def __init__(self, root: str | Path | None = None, **options: Any) -> None:
        super().__init__(root, **options)
        reject_unknown(self.card.name, options, self.OPTIONS)
        self.images_dir: str | None = options.get("images_dir")
        self.check_images = bool(options.get("check_images", True))

    def parse(self) -> tuple[Path, LFWPairs, str]:
        """(root, parsed pairs.txt, image folder name), with every referenced image checked to exist."""
        root = resolve_root(self.root)
        parsed = parse_pairs(root / PAIRS_FILE)
        images_dir = self.images_dir or find_images_dir(root)
        if self.check_images:
            check_images_exist(root, parsed, images_dir)
        return root, parsed, images_dir

    def load(self) -> Benchmark:
        root, parsed, images_dir = self.parse()
        n = len(parsed.images)
        group = np.arange(n, dtype=np.int64)
        faces = pd.DataFrame(
            {
                "path": [parsed.image_path(i, images_dir) for i in range(n)],
                "identity": [name for name, _ in parsed.images],
                "group": group,
                "media": group.copy(),
                "face_score": np.full(n, np.nan, dtype=np.float32),
                **empty_landmarks(n),
            }
        )
        pairs = pd.DataFrame({"a": parsed.a, "b": parsed.b, "label": parsed.label, "fold": parsed.fold})
        folds = int(parsed.fold.max()) + 1
        return self.benchmark(
            faces,
            pairs,
            root=root,
            source_files=[parsed.path],
            detect_pad=self.DETECT_PAD,
            notes=[f"{n} images, {len(pairs)} pairs in {folds} folds, images from {images_dir}/"],
        )
