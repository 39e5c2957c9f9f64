"""The labelled set the learned baselines train on: photos of the ``train`` identities, each with a degradation
ladder, as 112x112 aligned crops, raw embeddings and Eq. 1 labels (see :mod:`fiqa_bench.training.baselines`)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fiqa_bench.training.dataset import IMAGE_SUFFIXES, TrainingSet

LADDER = ("light", "medium", "strong")
#: Rank of each version of a photo in its ladder (higher = better).
LADDER_RANK = {None: 3, "light": 2, "medium": 1, "strong": 0}
CROP_SIZE = 112


@dataclass(frozen=True)
class Source:
    """A ``root/<identity>/<image>`` folder and which of its identities and photos to use.

    ``min_images``/``max_images``: identities with fewer/more photos are left out; ``per_identity``: at most this
    many photos per identity (drawn with the seed); ``pad``: padding before detection (0.25 for tight crops like
    LFW's 150x150).
    """

    root: Path
    min_images: int = 2
    max_images: int | None = None
    per_identity: int | None = None
    pad: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Source:
        """``PATH`` or ``PATH:key=value,...``, e.g. ``/data/lfw/lfw:max_images=3,pad=0.25``."""
        path, sep, opts = str(text).partition(":")
        kwargs: dict[str, Any] = {}
        for item in filter(None, opts.split(",")) if sep else []:
            key, eq, value = item.partition("=")
            if not eq or key not in ("min_images", "max_images", "per_identity", "pad"):
                raise ValueError(f"bad source option {item!r} in {text!r} (min_images, max_images, per_identity, pad)")
            try:
                kwargs[key] = float(value) if key == "pad" else int(value)
            except ValueError:
                raise ValueError(f"bad source option {item!r} in {text!r} ({key} takes a number)") from None
        return cls(Path(path), **kwargs)


def collect_photos(
    sources: Sequence[Source | str], part: str = "train", seed: int = 0
) -> tuple[list[Path], list[str], list[float]]:
    """(paths, identities, pads) of the photos of ``sources`` whose identity is in ``part``.

    Identities are tagged with the source's last two path parts (``celeba-wild/images/7201``), as ``fiqa-bench
    label`` does, so identities from different sources never merge.
    """
    from collections import defaultdict

    from fiqa_bench.data.splits import in_part

    paths: list[Path] = []
    identities: list[str] = []
    pads: list[float] = []
    for k, src in enumerate(sources):
        src = Source.parse(src) if isinstance(src, str) else src
        root = Path(src.root)
        if not root.is_dir():
            from fiqa_bench.errors import FiqaBenchError

            raise FiqaBenchError(f"{root}: not a folder of identity folders")
        tag = "/".join(root.resolve().parts[-2:])
        by_id: dict[str, list[Path]] = defaultdict(list)
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            by_id[folder.name] = sorted(
                p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
        for ident, files in by_id.items():
            if len(files) < src.min_images or (src.max_images is not None and len(files) > src.max_images):
                continue
            if not in_part(ident, part):
                continue
            if src.per_identity is not None and len(files) > src.per_identity:
                rng = np.random.default_rng([int(seed), k, len(paths)])
                files = [files[i] for i in sorted(rng.choice(len(files), src.per_identity, replace=False))]
            paths += files
            identities += [f"{tag}/{ident}"] * len(files)
            pads += [float(src.pad)] * len(files)
    return paths, identities, pads


def degradation_ladder(
    image: np.ndarray, rng: np.random.Generator, box=None, names: Sequence[str] | None = None
) -> list[tuple[np.ndarray, dict]]:
    """One degradation kind (uniform over ``names``) at the light, medium and strong level, same free parameters."""
    from fiqa_bench.data.degradations import DEGRADATIONS, apply_record

    names = list(DEGRADATIONS) if names is None else list(names)
    name = names[int(rng.integers(len(names)))]
    deg = DEGRADATIONS[name]
    free = deg.draw(rng, image.shape, box)
    out = []
    for level in LADDER:
        record = {"name": name, "level": level, "params": {**deg.levels[level], **free}}
        out.append((apply_record(image, record), record))
    return out


@dataclass
class BaselineSet:
    """A :class:`TrainingSet` of 112x112 RGB crops (Eq. 1 labels, identities, source photos, degradation
    records; None = the photo itself) plus the backbone's raw ``embeddings`` (N, D) of the same rows.

    ``landmarks`` (N, 5, 2) and ``boxes`` (N, 4, NaN = none), float32, in the source photo's pixels: where the face
    of each row was found (the same for the four versions of a photo). Sets built before they were stored have
    None; :func:`rebuild_faces` then detects again.
    """

    data: TrainingSet
    embeddings: np.ndarray
    landmarks: np.ndarray | None = None
    boxes: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.embeddings = np.asarray(self.embeddings, np.float32)
        if self.embeddings.ndim != 2 or len(self.embeddings) != len(self.data):
            raise ValueError(f"embeddings {self.embeddings.shape} do not match {len(self.data)} rows")
        if (self.landmarks is None) != (self.boxes is None):
            raise ValueError("landmarks and boxes come together (both or neither)")
        if self.landmarks is not None:
            self.landmarks = np.asarray(self.landmarks, np.float32)
            self.boxes = np.asarray(self.boxes, np.float32)
            if self.landmarks.shape != (len(self.data), 5, 2) or self.boxes.shape != (len(self.data), 4):
                raise ValueError(
                    f"landmarks {self.landmarks.shape} / boxes {self.boxes.shape} do not match {len(self.data)} rows"
                )

    def __len__(self) -> int:
        return len(self.data)

    @property
    def meta(self) -> dict:
        return self.data.meta

    @property
    def photo(self) -> np.ndarray:
        """Photo index of each row (rows of one photo share it)."""
        assert self.data.sources is not None  # filled in by TrainingSet.__post_init__
        return np.unique(self.data.sources, return_inverse=True)[1].reshape(-1)

    @property
    def level(self) -> np.ndarray:
        """``"clean"``, ``"light"``, ``"medium"`` or ``"strong"`` per row."""
        assert self.data.degradations is not None  # filled in by TrainingSet.__post_init__
        return np.array(["clean" if d is None else str(d.get("level")) for d in self.data.degradations])

    @property
    def clean(self) -> np.ndarray:
        assert self.data.degradations is not None  # filled in by TrainingSet.__post_init__
        return np.array([d is None for d in self.data.degradations], bool)

    def subset(self, index: np.ndarray) -> BaselineSet:
        index = np.asarray(index, np.int64)
        if self.landmarks is None or self.boxes is None:  # both or neither (__post_init__)
            return BaselineSet(self.data.subset(index), self.embeddings[index])
        return BaselineSet(self.data.subset(index), self.embeddings[index], self.landmarks[index], self.boxes[index])

    def save(self, folder: str | os.PathLike) -> Path:
        from fiqa_bench.data.atomic import atomic_path

        folder = self.data.save(folder)
        arrays = {"embeddings": self.embeddings}
        if self.landmarks is not None and self.boxes is not None:  # both or neither (__post_init__)
            arrays.update(landmarks=self.landmarks, boxes=self.boxes)
        for name, arr in arrays.items():
            with atomic_path(folder / f"{name}.npy", suffix=".npy") as tmp:
                with open(tmp, "wb") as fh:
                    np.save(fh, arr, allow_pickle=False)
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike, mmap: bool = True) -> BaselineSet:
        folder = Path(folder)
        faces = [
            np.load(folder / f"{k}.npy", allow_pickle=False) if (folder / f"{k}.npy").is_file() else None
            for k in ("landmarks", "boxes")
        ]
        return cls(TrainingSet.load(folder, mmap=mmap), np.load(folder / "embeddings.npy", allow_pickle=False), *faces)


def build_baseline_set(
    paths: Sequence[str | os.PathLike],
    identities: Sequence,
    *,
    backbone: Any,
    backbone_options: dict | None = None,
    detector: Any = "yunet",
    pads: float | Sequence[float] = 0.0,
    ladder: bool = True,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool = True,
) -> BaselineSet:
    """Photos + identities -> :class:`BaselineSet` (see :mod:`fiqa_bench.training.baselines`), through
    :func:`fiqa_bench.training.dataset.label_photos`; photos without a face are skipped (listed in
    ``meta["skipped"]``). ``ladder=False`` keeps the undegraded photos only."""
    from fiqa_bench.models.svm_model import backbone_key
    from fiqa_bench.training.dataset import identity_of, label_photos

    def versions(image: np.ndarray, rng: np.random.Generator, box: Any) -> list[tuple[np.ndarray, dict]]:
        return degradation_ladder(image, rng, box=box) if ladder else []

    rows = label_photos(
        paths,
        identities,
        backbone=backbone,
        backbone_options=backbone_options,
        detector=detector,
        size=CROP_SIZE,
        versions=versions,
        pads=pads,
        seed=seed,
        leave_one_out=True,
        on_no_face="skip",
        batch_size=batch_size,
        progress=progress,
    )
    meta = {
        "backbone": rows.backbone.identity(),
        "backbone_key": backbone_key(rows.backbone),
        "backbone_spec": backbone if isinstance(backbone, str) else None,
        "backbone_options": dict(backbone_options or {}),
        "detector": identity_of(rows.detector),
        "size": CROP_SIZE,
        "ladder": bool(ladder),
        "seed": int(seed),
        "photos": len(paths),
        "skipped": rows.skipped,
        "label_rule": "Eq. 1: cosine to the mean of the identity's L2-normalised undegraded embeddings, the photo "
        "and its degraded copies left out",
    }
    data = TrainingSet(rows.crops, rows.labels, rows.identities, rows.sources, rows.degradations, meta)
    return BaselineSet(data, rows.embeddings, rows.landmarks, rows.boxes)


def validation_mask(data: BaselineSet, val_fraction: float, seed: int) -> np.ndarray:
    """Rows of the held-out identities (the same split :func:`fiqa_bench.training.train.train` makes)."""
    from fiqa_bench.training.train import identity_split

    return identity_split(data.data.identities, val_fraction, seed)[0]


def card_base(
    data: BaselineSet, command: str, data_desc: str, seed: int, val_fraction: float, val_mask: np.ndarray
) -> dict:
    ids = data.data.identities
    return {
        "command": command,
        "data": data_desc,
        "seed": int(seed),
        "val_fraction": float(val_fraction),
        "backbone": data.meta.get("backbone"),
        "backbone_key": data.meta.get("backbone_key"),
        "backbone_spec": data.meta.get("backbone_spec"),
        "backbone_options": data.meta.get("backbone_options"),
        "rows": int(len(data)),
        "train_rows": int((~val_mask).sum()),
        "val_rows": int(val_mask.sum()),
        "train_identities": int(np.unique(ids[~val_mask]).size),
        "val_identities": sorted(np.unique(ids[val_mask]).tolist()),
        "label_rule": data.meta.get("label_rule"),
        "ladder": data.meta.get("ladder"),
    }


def describe_set(folder: str | os.PathLike, data: BaselineSet) -> str:
    """The ``data`` entry of a card: the set's folder and how it was built."""
    return f"{folder}: " + json.dumps({k: data.meta.get(k) for k in ("sources", "part", "seed", "ladder", "command")})


def make_baseline_set(
    out: str | os.PathLike,
    *,
    fr: str,
    fr_options: Mapping[str, str] | None = None,
    sources: Sequence[str],
    part: str = "train",
    ladder: bool = True,
    detector: str = "yunet",
    seed: int = 0,
    command: str = "",
    progress: bool = True,
) -> tuple[BaselineSet, Path]:
    """``train-baseline data``: :func:`collect_photos` + :func:`build_baseline_set`, saved to ``out``."""
    paths, ids, pads = collect_photos([Source.parse(s) for s in sources], part=part, seed=seed)
    data = build_baseline_set(
        paths,
        ids,
        backbone=fr,
        backbone_options=dict(fr_options or {}),
        detector=detector,
        pads=pads,
        ladder=ladder,
        seed=seed,
        progress=progress,
    )
    data.meta.update(sources=list(sources), part=part, command=command)
    return data, data.save(out)
