"""The tinyFQnet training set: aligned crops with Eq. 1 labels, built from photos through the face pipeline.

:func:`build_training_set` runs, for every photo (:func:`label_photos`, the loop the learned baselines'
set of :mod:`.baselines` is built by too): decode and detect (:func:`fiqa_bench.faces.load_face`), then
the photo itself plus ``degraded_copies`` seeded degraded versions of it
(:func:`fiqa_bench.data.degradations.apply_random`
on the whole loose photo, so blur/JPEG/noise act at the photo's own resolution, then aligned like any photo). Each
version gives two crops: one for the FR backbone (its card's input spec) and one for the network (aligned
``size`` x ``size`` RGB, exactly what :class:`fiqa_bench.methods.tinyfq.TinyFQ` receives at inference). Labels
are Eq. 1 (:func:`.labels.quality_labels`) with the centres built from the undegraded photos only and each photo
left out together with its copies. The degraded copies spread the labels towards low quality, which the clean
photos of a curated dataset rarely reach.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fiqa_bench.training.labels import quality_labels


@dataclass
class TrainingSet:
    """Rows: ``images`` uint8 (N, S, S, 3) RGB aligned crops, ``labels`` float32 (N,) Eq. 1 cosines (NaN: no
    centre), ``identities`` str (N,), ``sources`` str (N,) photo paths, ``degradations`` (N,) record or None,
    ``embeddings`` float32 (N, D) the labelling backbone's raw embeddings or None (kept so that labels can be
    recomputed without embedding again; labels averaged over backbones keep each backbone's side by side, their
    widths in ``meta["embedding_dims"]``: :func:`eq1_labels`)."""

    images: np.ndarray
    labels: np.ndarray
    identities: np.ndarray
    sources: np.ndarray | None = None
    degradations: list | None = None
    meta: dict = field(default_factory=dict)
    embeddings: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.images)
        self.labels = np.asarray(self.labels, dtype=np.float32).reshape(-1)
        self.identities = np.asarray(self.identities).astype(str).reshape(-1)
        if self.sources is None:
            self.sources = np.array([""] * n)
        self.sources = np.asarray(self.sources).astype(str).reshape(-1)
        if self.degradations is None:
            self.degradations = [None] * n
        images = self.images
        if images.ndim != 4 or images.shape[3] != 3 or images.shape[1] != images.shape[2] or images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (N, S, S, 3), got {images.dtype} {images.shape}")
        for name in ("labels", "identities", "sources"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} rows, images {n}")
        if len(self.degradations) != n:
            raise ValueError(f"degradations has {len(self.degradations)} rows, images {n}")
        if self.embeddings is not None and len(self.embeddings) != n:
            raise ValueError(f"embeddings has {len(self.embeddings)} rows, images {n}")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def size(self) -> int:
        return int(self.images.shape[1])

    def subset(self, index: np.ndarray) -> TrainingSet:
        """Rows ``index`` (repeats allowed, e.g. from :func:`.sampling.sample_indices`)."""
        index = np.asarray(index, dtype=np.int64)
        assert self.sources is not None and self.degradations is not None  # filled in by __post_init__
        return TrainingSet(
            np.asarray(self.images[index]),
            self.labels[index],
            self.identities[index],
            self.sources[index],
            [self.degradations[i] for i in index],
            dict(self.meta),
            None if self.embeddings is None else np.asarray(self.embeddings[index]),
        )

    def fingerprint(self) -> str:
        """sha256 over labels, identities and image shape: ties a checkpoint to its data."""
        h = hashlib.sha256()
        h.update(repr(tuple(self.images.shape)).encode())
        h.update(np.ascontiguousarray(self.labels).tobytes())
        h.update("\n".join(self.identities.tolist()).encode())
        return h.hexdigest()[:16]

    def save(self, folder: str | os.PathLike) -> Path:
        """``images.npy``, ``labels.npy``, ``identities.npy``, ``embeddings.npy`` (when kept) and ``meta.json``
        (sources, degradations, meta)."""
        from fiqa_bench.data.atomic import atomic_path, write_json

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays = [
            ("images", np.ascontiguousarray(self.images)),
            ("labels", self.labels),
            ("identities", self.identities),
        ]
        if self.embeddings is not None:
            arrays.append(("embeddings", np.ascontiguousarray(self.embeddings, dtype=np.float32)))
        for name, arr in arrays:
            with atomic_path(folder / f"{name}.npy", suffix=".npy") as tmp:
                with open(tmp, "wb") as fh:
                    np.save(fh, arr, allow_pickle=False)
        labels = self.labels.astype(np.float64)
        assert self.sources is not None  # filled in by __post_init__
        write_json(
            folder / "meta.json",
            {
                "rows": len(self),
                "size": self.size,
                "meta": self.meta,
                "sources": self.sources.tolist(),
                "degradations": self.degradations,
                "labelled": int(np.isfinite(labels).sum()),
            },
        )
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike, mmap: bool = True) -> TrainingSet:
        """Read :meth:`save`'s folder; ``mmap``: images stay on disk (memory-mapped, read-only)."""
        folder = Path(folder)
        info = json.loads((folder / "meta.json").read_text())
        images = np.load(folder / "images.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
        emb = folder / "embeddings.npy"
        return cls(
            images,
            np.load(folder / "labels.npy", allow_pickle=False),
            np.load(folder / "identities.npy", allow_pickle=False),
            np.array(info["sources"]),
            info["degradations"],
            info.get("meta", {}),
            np.load(emb, allow_pickle=False) if emb.is_file() else None,
        )


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".webp")


def images_by_identity_folder(root: str | os.PathLike, min_images: int = 2) -> tuple[list[Path], list[str]]:
    """(paths, identities) of a ``root/<identity>/<image>`` tree (e.g. ``celeba-wild/images``), sorted, keeping
    identities with at least ``min_images`` images (Eq. 1 needs two to define a leave-one-out centre)."""
    root = Path(root)
    if not root.is_dir():
        from fiqa_bench.errors import FiqaBenchError

        raise FiqaBenchError(f"{root}: not a folder of identity folders")
    paths: list[Path] = []
    identities: list[str] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if len(files) >= int(min_images):
            paths.extend(files)
            identities.extend([folder.name] * len(files))
    return paths, identities


@dataclass
class LabelledPhotos:
    """What :func:`label_photos` gives both labelled-set builders: per row (one version of one photo) the aligned
    crop, identity, source photo, photo index (``groups``), degradation record (None = the photo itself), the
    photo's landmarks (5, 2) and box (4, NaN = none), the backbone's raw embedding, and the Eq. 1 label (centres
    from the undegraded rows, each photo left out together with its versions when ``leave_one_out``)."""

    crops: np.ndarray
    identities: np.ndarray
    sources: np.ndarray
    groups: np.ndarray
    degradations: list
    landmarks: np.ndarray
    boxes: np.ndarray
    embeddings: np.ndarray
    labels: np.ndarray
    skipped: list[str]
    backbone: Any
    detector: Any


def label_photos(
    paths: Sequence[str | os.PathLike],
    identities: Sequence,
    *,
    backbone: Any,
    backbone_options: dict | None = None,
    detector: Any = "yunet",
    size: int,
    versions: Callable[[np.ndarray, np.random.Generator, Any], list[tuple[np.ndarray, dict]]],
    pads: float | Sequence[float] = 0.0,
    seed: int = 0,
    leave_one_out: bool = True,
    on_no_face: str = "skip",
    batch_size: int = 64,
    progress: bool = True,
) -> LabelledPhotos:
    """The one loop both labelled sets are built by: for photo ``i``, decode and detect
    (:func:`fiqa_bench.faces.load_face`, pad ``pads[i]``), keep the photo plus ``versions(image, rng, box)``
    (its degraded versions, ``rng = numpy.random.default_rng([seed, i])``, so a photo's versions do not depend on
    the others), align each to a ``size`` x ``size`` RGB crop and embed it with ``backbone`` (a registered name,
    created with ``backbone_options``, or an object), then label every row with Eq. 1. Photos without a face are
    skipped (``on_no_face="skip"``, listed in ``skipped``) or raise (``"error"``).

    ``backbone`` may also be a list of several (names or objects; ``backbone_options`` is then not allowed): each
    embeds every row (its own input crop), the label is the mean of their Eq. 1 labels (:func:`eq1_labels`), the
    embeddings are theirs side by side and ``backbone`` of the result is the list."""
    from tqdm.auto import tqdm

    from fiqa_bench.api.cards import InputSpec
    from fiqa_bench.faces import Face, load_face, make_detector, to_input
    from fiqa_bench.registry import create

    if len(paths) != len(identities):
        raise ValueError(f"{len(paths)} paths but {len(identities)} identities")
    # numpy's TypeGuard on isscalar narrows to its own scalar union: neither branch is seen to hold a float
    pads = [float(pads)] * len(paths) if np.isscalar(pads) else [float(p) for p in pads]  # type: ignore[arg-type, union-attr]
    if len(pads) != len(paths):
        raise ValueError(f"{len(pads)} pads for {len(paths)} paths")
    several = isinstance(backbone, (list, tuple))
    backbones = list(backbone) if several else [backbone]
    if not backbones:
        raise ValueError("no backbone to label with")
    if several and backbone_options:
        raise ValueError("backbone_options applies to one backbone; give several as configured objects")
    backbones = [create("backbone", b, **(backbone_options or {})) if isinstance(b, str) else b for b in backbones]
    if isinstance(detector, str):
        detector = make_detector(detector)
    crop_spec = InputSpec("aligned", int(size), "RGB")

    crops: list[np.ndarray] = []
    rows_id: list[str] = []
    rows_src: list[str] = []
    rows_group: list[int] = []
    rows_deg: list[dict | None] = []
    rows_lm: list[np.ndarray] = []
    rows_box: list[np.ndarray] = []
    embeddings: list[list[np.ndarray]] = [[] for _ in backbones]  # per backbone, per batch
    pending: list[Face] = []
    skipped: list[str] = []

    def flush() -> None:
        if pending:
            for b, out in zip(backbones, embeddings):
                out.append(np.asarray(b.embed(to_input(pending, b.card.input)), dtype=np.float32))
            pending.clear()

    for i, (path, ident) in enumerate(tqdm(list(zip(paths, identities)), desc="faces", disable=not progress)):
        face = load_face(path, detector, pad=pads[i], on_no_face=on_no_face)
        if face is None:
            skipped.append(str(path))
            continue
        kept: list[tuple[np.ndarray, dict | None]] = [(face.image, None)]
        kept += versions(face.image, np.random.default_rng([int(seed), i]), face.box)
        for image, record in kept:
            version = Face(image, face.landmarks, face.box, str(path), face.detected, face.fallback)
            crops.append(to_input([version], crop_spec)[0])
            pending.append(version)
            rows_id.append(str(ident))
            rows_src.append(str(path))
            rows_group.append(i)
            rows_deg.append(record)
            rows_lm.append(np.asarray(face.landmarks, np.float32).reshape(5, 2))
            rows_box.append(
                np.full(4, np.nan, np.float32) if face.box is None else np.asarray(face.box, np.float32).reshape(4)
            )
            if len(pending) >= batch_size:
                flush()
    flush()
    blocks = []
    for b, out in zip(backbones, embeddings):
        dim = getattr(getattr(b, "card", None), "embedding_dim", None) or 1
        blocks.append(np.concatenate(out) if out else np.zeros((0, int(dim)), np.float32))
    reference = np.array([d is None for d in rows_deg], bool)
    emb = np.concatenate(blocks, axis=1) if several else blocks[0]
    labels = eq1_labels(
        emb, rows_id, [e.shape[1] for e in blocks], leave_one_out=leave_one_out, groups=rows_group, reference=reference
    )
    images = np.stack(crops) if crops else np.zeros((0, int(size), int(size), 3), np.uint8)
    landmarks = np.array(rows_lm, np.float32).reshape(-1, 5, 2)
    boxes = np.array(rows_box, np.float32).reshape(-1, 4)
    return LabelledPhotos(
        images,
        np.array(rows_id),
        np.array(rows_src),
        np.array(rows_group, np.int64),
        rows_deg,
        landmarks,
        boxes,
        emb,
        labels,
        skipped,
        backbones if several else backbones[0],
        detector,
    )


def eq1_labels(
    embeddings: np.ndarray,
    identities: Sequence,
    dims: Sequence[int] | None = None,
    *,
    leave_one_out: bool = True,
    groups: Sequence | None = None,
    reference: np.ndarray | None = None,
) -> np.ndarray:
    """Eq. 1 labels of rows whose embeddings are one backbone's, or several backbones' side by side (column
    blocks of widths ``dims``): then each backbone's Eq. 1 (its own normalisation and centres), and their mean
    (in float64, stored as float32). The mean of cosines, not the cosine of joined features: each backbone's
    agreement with its own identity centre counts the same, whatever its width."""
    dims = [int(embeddings.shape[1])] if dims is None else [int(d) for d in dims]
    if sum(dims) != embeddings.shape[1]:
        raise ValueError(f"embedding widths {dims} do not add up to the {embeddings.shape[1]} columns")
    if len(dims) == 1:
        return quality_labels(embeddings, identities, leave_one_out, groups=groups, reference=reference)
    edges = np.cumsum([0] + dims)
    each = [
        quality_labels(embeddings[:, a:b], identities, leave_one_out, groups=groups, reference=reference)
        for a, b in zip(edges[:-1], edges[1:])
    ]
    return np.mean(np.stack(each).astype(np.float64), axis=0).astype(np.float32)


def identity_of(obj: Any) -> str:
    """``obj.identity()`` when it has one (backbones, detectors), else its class name: what a set's meta records."""
    ident = getattr(obj, "identity", None)
    return ident() if callable(ident) else type(obj).__name__


def build_training_set(
    paths: Sequence[str | os.PathLike],
    identities: Sequence,
    *,
    backbone: Any = "mbf",
    backbone_options: dict | None = None,
    detector: Any = "yunet",
    size: int = 64,
    degraded_copies: int = 1,
    seed: int = 0,
    leave_one_out: bool = True,
    pad: float = 0.0,
    on_no_face: str = "skip",
    batch_size: int = 64,
    progress: bool = True,
) -> TrainingSet:
    """Photos + identities -> :class:`TrainingSet` with Eq. 1 labels from ``backbone`` (:func:`label_photos`).

    ``backbone``: a registered name (``fiqa_bench.registry.create("backbone", name, **backbone_options)``) or a
    backbone object, or a list of several: the labels are then the mean of their Eq. 1 labels (``meta`` lists
    them in ``backbones`` with their ``embedding_dims``); ``detector``: ``"yunet"``/``"scrfd"`` or a detector object.
    Photos without a face are skipped (``on_no_face="skip"``, listed in ``meta["skipped"]``) or raise (``"error"``).
    Each photo gets ``degraded_copies`` seeded degraded versions (:func:`fiqa_bench.data.degradations.apply_random`).
    """
    from fiqa_bench.data.degradations import apply_random

    def copies(image: np.ndarray, rng: np.random.Generator, box: Any) -> list[tuple[np.ndarray, dict]]:
        return [apply_random(image, rng, box=box) for _ in range(int(degraded_copies))]

    rows = label_photos(
        paths,
        identities,
        backbone=backbone,
        backbone_options=backbone_options,
        detector=detector,
        size=size,
        versions=copies,
        pads=pad,
        seed=seed,
        leave_one_out=leave_one_out,
        on_no_face=on_no_face,
        batch_size=batch_size,
        progress=progress,
    )
    several = isinstance(rows.backbone, list)
    used = rows.backbone if several else [rows.backbone]
    rule = "Eq. 1: cosine to the mean of the identity's L2-normalised undegraded embeddings, " + (
        "the photo and its copies left out" if leave_one_out else "nothing left out"
    )
    meta = {
        "backbone": " + ".join(identity_of(b) for b in used),
        "detector": identity_of(rows.detector),
        "size": int(size),
        "degraded_copies": int(degraded_copies),
        "seed": int(seed),
        "leave_one_out": bool(leave_one_out),
        "photos": len(paths),
        "skipped": rows.skipped,
        "label_rule": rule if not several else f"the mean over {len(used)} backbones of their own {rule}",
    }
    if several:
        meta["backbones"] = [identity_of(b) for b in used]
        meta["embedding_dims"] = [int(b.card.embedding_dim) for b in used]
    return TrainingSet(rows.crops, rows.labels, rows.identities, rows.sources, rows.degradations, meta, rows.embeddings)
