"""Training the paper's three learned baselines (section 4.1): SVM, RQS and FaceQnet.

All three learn from one labelled set, :class:`BaselineSet`, built by :func:`build_baseline_set` from identity
folders of photos (the ``train`` part of :mod:`fiqa_bench.splits` only):

* every photo is decoded and its face found (YuNet), then kept as **four versions**: the photo itself and a
  *degradation ladder*, one kind of degradation drawn per photo (:data:`fiqa_bench.degradations.DEGRADATIONS`,
  uniformly) applied at the light, medium and strong level with the same free parameters (angle, position,
  seed, sign), on the whole loose photo, drawn from ``numpy.random.default_rng([seed, i])`` for photo ``i``;
* each version gives the 112x112 ArcFace-aligned RGB crop (what ``rqs`` and ``faceqnet`` see), the raw embedding
  of the labelling backbone, and its Eq. 1 label (centres from the undegraded photos, the photo and its copies
  left out of their own centre; :func:`fiqa_bench.training.labels.quality_labels`).

Then (each function writes its weights and a JSON card beside them: command, data, seed, settings, validation):

* :func:`train_baseline_svm`: SVR (RBF) from L2-normalised embeddings to Eq. 1 labels (``methods/svm.py``);
* :func:`train_baseline_rqs`: two-stage linear RankSVM on hand-crafted features from ordered pairs
  (``methods/rqs.py``);
* :func:`train_baseline_faceqnet`: a CNN regressing FaceQnet labels (``methods/faceqnet.py``), needs torch.

**Validation**: the same identities are held out for all three (:func:`fiqa_bench.training.train.identity_split`,
``val_fraction`` of the train-part identities, ``seed``); the shipped models are fitted on the remaining
identities only, so the card's validation numbers describe the shipped model. :func:`evaluate` scores a set
(e.g. the ``eval`` part) with any registered methods and reports Spearman correlations with Eq. 1 labels and how
often the degradation ladders are ranked in order: svm on the stored embeddings, methods taking 112x112 RGB
aligned crops (blur, rqs, faceqnet) on the stored crops, every other input (jpeg, pose and combination take the
decoded photo and its landmarks, tinyfq 64 px crops) on faces rebuilt from the source photos
(:class:`FaceRebuilder`).

Command line: ``fiqa-bench train-baseline {data,svm,rqs,faceqnet,evaluate}`` (:mod:`fiqa_bench.cli`; ``python -m
fiqa_bench.training.baselines ...`` is an alias). Only ``faceqnet`` imports torch. Each training command records
itself on its card in this form. The shipped weights were made with these commands (their cards record the
earlier ``python -m fiqa_bench.training.baselines`` spelling of the same options), ``S`` being the shared folder
(``FIQA_SHARED``)::

    fiqa-bench train-baseline data /tmp/bl/train \
        --fr onnx:S/models/mobilefacenet/mobilefacenet.onnx --fr-option normalisation=mobilefacenet \
        --source S/data/celeba-wild/images:per_identity=15 --source S/data/lfw/lfw:max_images=3,pad=0.25 \
        --part train --seed 0
    fiqa-bench train-baseline svm /tmp/bl/train --out methods/weights/svm-mobilefacenet.npz --search
    fiqa-bench train-baseline rqs /tmp/bl/train --out methods/weights/rqs.npz \
        --features-cache /tmp/bl/train-rqs-features.npz
    fiqa-bench train-baseline faceqnet /tmp/bl/train --out /tmp/bl/run2/faceqnet.onnx \
        --checkpoints /tmp/bl/fq-ckpt2 --loss l1 --lr 0.01 --lr-step 6 --epochs 18
        # then copied with its card to methods/weights/faceqnet.onnx (sha256 7741c26d...)
    fiqa-bench train-baseline evaluate DATA [--methods all|NAME,...] [--svm PATH] [--rqs PATH] [--faceqnet PATH]
        [--tinyfq PATH] [--out results.json]

An SVM for another backbone (e.g. ``dlib``): the same ``data`` command with ``--fr dlib`` (to another folder),
then ``svm ... --out methods/weights/svm-dlib.npz --search``; ``SVMQuality`` finds it by the backbone's key.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .dataset import IMAGE_SUFFIXES, TrainingSet
from .labels import quality_labels

LADDER = ("light", "medium", "strong")
#: Rank of each version of a photo in its ladder (higher = better).
LADDER_RANK = {None: 3, "light": 2, "medium": 1, "strong": 0}
CROP_SIZE = 112


# ================================================================================================ data
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
    def parse(cls, text: str) -> "Source":
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


def collect_photos(sources: Sequence[Source | str], part: str = "train", seed: int = 0
                   ) -> tuple[list[Path], list[str], list[float]]:
    """(paths, identities, pads) of the photos of ``sources`` whose identity is in ``part``.

    Identities are tagged with the source's last two path parts (``celeba-wild/images/7201``), as ``fiqa-bench
    label`` does, so identities from different sources never merge.
    """
    from collections import defaultdict

    from ..splits import in_part

    paths: list[Path] = []
    identities: list[str] = []
    pads: list[float] = []
    for k, src in enumerate(sources):
        src = Source.parse(src) if isinstance(src, str) else src
        root = Path(src.root)
        if not root.is_dir():
            from ..errors import FiqaBenchError

            raise FiqaBenchError(f"{root}: not a folder of identity folders")
        tag = "/".join(root.resolve().parts[-2:])
        by_id: dict[str, list[Path]] = defaultdict(list)
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            by_id[folder.name] = sorted(p for p in folder.iterdir()
                                        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
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


def degradation_ladder(image: np.ndarray, rng: np.random.Generator, box=None,
                       names: Sequence[str] | None = None) -> list[tuple[np.ndarray, dict]]:
    """One degradation kind (uniform over ``names``) at the light, medium and strong level, same free parameters."""
    from ..degradations import DEGRADATIONS, apply_record

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
                raise ValueError(f"landmarks {self.landmarks.shape} / boxes {self.boxes.shape} do not match "
                                 f"{len(self.data)} rows")

    def __len__(self) -> int:
        return len(self.data)

    @property
    def meta(self) -> dict:
        return self.data.meta

    @property
    def photo(self) -> np.ndarray:
        """Photo index of each row (rows of one photo share it)."""
        return np.unique(self.data.sources, return_inverse=True)[1].reshape(-1)

    @property
    def level(self) -> np.ndarray:
        """``"clean"``, ``"light"``, ``"medium"`` or ``"strong"`` per row."""
        return np.array(["clean" if d is None else str(d.get("level")) for d in self.data.degradations])

    @property
    def clean(self) -> np.ndarray:
        return np.array([d is None for d in self.data.degradations], bool)

    def subset(self, index: np.ndarray) -> "BaselineSet":
        index = np.asarray(index, np.int64)
        if self.landmarks is None:
            return BaselineSet(self.data.subset(index), self.embeddings[index])
        return BaselineSet(self.data.subset(index), self.embeddings[index], self.landmarks[index], self.boxes[index])

    def save(self, folder: str | os.PathLike) -> Path:
        from ..atomic import atomic_path

        folder = self.data.save(folder)
        arrays = {"embeddings": self.embeddings}
        if self.landmarks is not None:
            arrays.update(landmarks=self.landmarks, boxes=self.boxes)
        for name, arr in arrays.items():
            with atomic_path(folder / f"{name}.npy", suffix=".npy") as tmp:
                with open(tmp, "wb") as fh:
                    np.save(fh, arr, allow_pickle=False)
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike, mmap: bool = True) -> "BaselineSet":
        folder = Path(folder)
        faces = [np.load(folder / f"{k}.npy", allow_pickle=False) if (folder / f"{k}.npy").is_file() else None
                 for k in ("landmarks", "boxes")]
        return cls(TrainingSet.load(folder, mmap=mmap), np.load(folder / "embeddings.npy", allow_pickle=False),
                   *faces)


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
    """Photos + identities -> :class:`BaselineSet` (see the module docstring); photos without a face are skipped
    (listed in ``meta["skipped"]``). ``ladder=False`` keeps the undegraded photos only."""
    from tqdm.auto import tqdm

    from ..cards import InputSpec
    from ..faces import Face, load_face, make_detector, to_input
    from ..registry import create

    if len(paths) != len(identities):
        raise ValueError(f"{len(paths)} paths but {len(identities)} identities")
    pads = [float(pads)] * len(paths) if np.isscalar(pads) else [float(p) for p in pads]
    if len(pads) != len(paths):
        raise ValueError(f"{len(pads)} pads for {len(paths)} paths")
    spec_text = backbone if isinstance(backbone, str) else None
    if isinstance(backbone, str):
        backbone = create("backbone", backbone, **(backbone_options or {}))
    if isinstance(detector, str):
        detector = make_detector(detector)
    crop_spec = InputSpec("aligned", CROP_SIZE, "RGB")
    fr_spec = backbone.card.input

    crops: list[np.ndarray] = []
    rows_id: list[str] = []
    rows_src: list[str] = []
    rows_group: list[int] = []
    rows_deg: list[dict | None] = []
    rows_lm: list[np.ndarray] = []
    rows_box: list[np.ndarray] = []
    embeddings: list[np.ndarray] = []
    pending: list[Face] = []
    skipped: list[str] = []

    def flush() -> None:
        if pending:
            embeddings.append(np.asarray(backbone.embed(to_input(pending, fr_spec)), np.float32))
            pending.clear()

    for i, (path, ident) in enumerate(tqdm(list(zip(paths, identities)), desc="faces", disable=not progress)):
        face = load_face(path, detector, pad=pads[i], on_no_face="skip")
        if face is None:
            skipped.append(str(path))
            continue
        versions: list[tuple[np.ndarray, dict | None]] = [(face.image, None)]
        if ladder:
            versions += degradation_ladder(face.image, np.random.default_rng([int(seed), i]), box=face.box)
        for image, record in versions:
            version = Face(image, face.landmarks, face.box, str(path), face.detected, face.fallback)
            crops.append(to_input([version], crop_spec)[0])
            pending.append(version)
            rows_id.append(str(ident))
            rows_src.append(str(path))
            rows_group.append(i)
            rows_deg.append(record)
            rows_lm.append(np.asarray(face.landmarks, np.float32).reshape(5, 2))
            rows_box.append(np.full(4, np.nan, np.float32) if face.box is None
                            else np.asarray(face.box, np.float32).reshape(4))
            if len(pending) >= batch_size:
                flush()
    flush()
    emb = np.concatenate(embeddings) if embeddings else np.zeros((0, int(backbone.card.embedding_dim)), np.float32)
    reference = np.array([d is None for d in rows_deg], bool)
    labels = quality_labels(emb, rows_id, True, groups=rows_group, reference=reference)
    images = np.stack(crops) if crops else np.zeros((0, CROP_SIZE, CROP_SIZE, 3), np.uint8)
    from ..methods.svm import backbone_key

    det_ident = getattr(detector, "identity", None)
    meta = {
        "backbone": backbone.identity(), "backbone_key": backbone_key(backbone), "backbone_spec": spec_text,
        "backbone_options": dict(backbone_options or {}),
        "detector": det_ident() if callable(det_ident) else type(detector).__name__,
        "size": CROP_SIZE, "ladder": bool(ladder), "seed": int(seed), "photos": len(paths), "skipped": skipped,
        "label_rule": "Eq. 1: cosine to the mean of the identity's L2-normalised undegraded embeddings, the photo "
                      "and its degraded copies left out",
    }
    data = TrainingSet(images, labels, np.array(rows_id), np.array(rows_src), rows_deg, meta)
    return BaselineSet(data, emb, np.array(rows_lm, np.float32).reshape(-1, 5, 2),
                       np.array(rows_box, np.float32).reshape(-1, 4))


def validation_mask(data: BaselineSet, val_fraction: float, seed: int) -> np.ndarray:
    """Rows of the held-out identities (the same split :func:`fiqa_bench.training.train.train` makes)."""
    from .train import identity_split

    return identity_split(data.data.identities, val_fraction, seed)[0]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman correlation over the rows where both are finite (NaN if fewer than 3 or constant)."""
    from scipy import stats

    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or a[ok].std() == 0 or b[ok].std() == 0:
        return float("nan")
    return float(stats.spearmanr(a[ok], b[ok])[0])


def ladder_accuracy(scores: np.ndarray, data: BaselineSet) -> dict[str, float]:
    """How a score orders each photo's ladder (clean > light > medium > strong).

    ``pairs``: fraction of the 6 ordered pairs per photo scored in the right order (ties count half);
    ``photos``: fraction of photos whose 4 versions are all in the right order.
    """
    scores = np.asarray(scores, np.float64)
    rank = np.array([LADDER_RANK[None if lv == "clean" else lv] for lv in data.level])
    photo = data.photo
    right = total = full = n_photos = 0.0
    order = np.lexsort((-rank, photo))
    bounds = np.flatnonzero(np.diff(photo[order])) + 1
    for rows in np.split(order, bounds):
        if len(rows) != 4 or sorted(rank[rows].tolist()) != [0, 1, 2, 3]:
            continue
        s = scores[rows]  # best version first
        diffs = s[:, None] - s[None, :]
        upper = np.triu_indices(4, 1)
        d = diffs[upper]
        right += float((d > 0).sum() + 0.5 * (d == 0).sum())
        total += len(d)
        full += float((d > 0).all())
        n_photos += 1
    return {"pairs": right / total if total else float("nan"),
            "photos": full / n_photos if n_photos else float("nan"), "n_photos": int(n_photos)}


def _card_base(data: BaselineSet, command: str, data_desc: str, seed: int, val_fraction: float,
               val_mask: np.ndarray) -> dict:
    ids = data.data.identities
    return {
        "command": command, "data": data_desc, "seed": int(seed), "val_fraction": float(val_fraction),
        "backbone": data.meta.get("backbone"), "backbone_key": data.meta.get("backbone_key"),
        "backbone_spec": data.meta.get("backbone_spec"), "backbone_options": data.meta.get("backbone_options"),
        "rows": int(len(data)), "train_rows": int((~val_mask).sum()), "val_rows": int(val_mask.sum()),
        "train_identities": int(np.unique(ids[~val_mask]).size),
        "val_identities": sorted(np.unique(ids[val_mask]).tolist()),
        "label_rule": data.meta.get("label_rule"), "ladder": data.meta.get("ladder"),
    }


def _validation(scores: np.ndarray, data: BaselineSet, val_mask: np.ndarray) -> dict:
    sub = data.subset(np.flatnonzero(val_mask))
    s = np.asarray(scores)[val_mask]
    labels = sub.data.labels
    return {"spearman_eq1_all": spearman(s, labels), "spearman_eq1_clean": spearman(s[sub.clean], labels[sub.clean]),
            "ladder": ladder_accuracy(s, sub), "n": int(val_mask.sum())}


# ================================================================================================ SVM
def train_svm(embeddings: np.ndarray, labels: np.ndarray, *, C: float = 1.0, gamma: float = 1.0,
              epsilon: float = 0.05, max_rows: int = 2500, seed: int = 0) -> dict:
    """SVR (RBF) from L2-normalised embeddings to labels: the model as arrays (see :mod:`fiqa_bench.methods.svm`).

    Rows with a NaN label are dropped; at most ``max_rows`` rows (drawn with ``seed``) are used, since kernel SVR
    training grows quadratically with rows. ``gamma`` acts on unit vectors (``||a - b||^2 = 2 - 2 cos``), so
    gamma = 1 makes the kernel of two unrelated faces (cos ~ 0) e^-2 and of two photos of one person (cos ~ 0.6)
    about e^-0.8.
    """
    from sklearn.svm import SVR

    from ..methods.svm import l2_rows

    x = l2_rows(np.asarray(embeddings))
    y = np.asarray(labels, np.float64).reshape(-1)
    rows = np.flatnonzero(np.isfinite(y) & np.isfinite(x).all(1))
    if rows.size < 2:
        from ..errors import FiqaBenchError

        raise FiqaBenchError("train_svm: fewer than 2 rows with a finite label")
    if rows.size > int(max_rows):
        rows = np.sort(np.random.default_rng(int(seed)).choice(rows, int(max_rows), replace=False))
    svr = SVR(kernel="rbf", C=float(C), gamma=float(gamma), epsilon=float(epsilon))
    svr.fit(x[rows], y[rows])
    return {"support_vectors": svr.support_vectors_.astype(np.float64), "dual_coef": svr.dual_coef_.reshape(-1),
            "intercept": float(svr.intercept_[0]), "gamma": float(gamma), "sklearn": svr, "rows": rows,
            "settings": {"C": float(C), "gamma": float(gamma), "epsilon": float(epsilon), "max_rows": int(max_rows),
                         "fitted_rows": int(rows.size), "seed": int(seed)}}


def save_svm(model: Mapping[str, Any], path: str | os.PathLike, *, backbone_key: str, backbone_identity: str = "",
             card: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` (from :func:`train_svm`) as ``.npz`` (support vectors float32) and ``card`` as ``.json``."""
    from ..atomic import atomic_path, write_json
    from ..download import file_sha256
    from ..methods.svm import FORMAT
    from .export import json_safe

    path = Path(path)
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, support_vectors=np.asarray(model["support_vectors"], np.float32),
                     dual_coef=np.asarray(model["dual_coef"], np.float64),
                     intercept=np.float64(model["intercept"]), gamma=np.float64(model["gamma"]),
                     backbone_key=np.array(str(backbone_key)), backbone_identity=np.array(str(backbone_identity)),
                     format=np.array(FORMAT))
    if card is not None:
        write_json(path.with_suffix(".json"), {**json_safe(dict(card)), "file": path.name,
                                               "sha256": file_sha256(path), "bytes": path.stat().st_size})
    return path


#: The hyper-parameter grid of ``train_baseline_svm(search=True)``.
SVM_GRID = {"C": (0.3, 1.0, 3.0), "gamma": (0.5, 1.0, 2.0)}


def train_baseline_svm(data: BaselineSet, out: str | os.PathLike, *, C: float = 0.3, gamma: float = 1.0,
                       epsilon: float = 0.05, max_rows: int = 2500, val_fraction: float = 0.2, seed: int = 0,
                       search: bool = False, command: str = "", data_desc: str = "") -> dict:
    """Fit the SVM baseline on the non-held-out identities of ``data`` and write ``out`` (.npz) + card (.json).

    ``search``: first pick C and gamma from :data:`SVM_GRID` by validation Spearman with the Eq. 1 labels (the
    grid's results go on the card). Returns the card.
    """
    from ..methods.svm import l2_rows, rbf_decision

    t0 = time.perf_counter()
    val = validation_mask(data, val_fraction, seed)
    train_idx = np.flatnonzero(~val)
    labels = np.asarray(data.data.labels, np.float64)
    grid = []
    if search:
        for c in SVM_GRID["C"]:
            for g in SVM_GRID["gamma"]:
                m = train_svm(data.embeddings[train_idx], labels[train_idx], C=c, gamma=g, epsilon=epsilon,
                              max_rows=max_rows, seed=seed)
                pred = m["sklearn"].predict(l2_rows(data.embeddings[val]))
                grid.append({"C": c, "gamma": g, "val_spearman_eq1": spearman(pred, labels[val])})
        best = max(grid, key=lambda r: -np.inf if not np.isfinite(r["val_spearman_eq1"]) else r["val_spearman_eq1"])
        C, gamma = best["C"], best["gamma"]
    model = train_svm(data.embeddings[train_idx], labels[train_idx], C=C, gamma=gamma, epsilon=epsilon,
                      max_rows=max_rows, seed=seed)
    scores = rbf_decision(l2_rows(data.embeddings), model["support_vectors"], model["dual_coef"],
                          model["intercept"], model["gamma"])
    card = {"method": "svm", **_card_base(data, command, data_desc, seed, val_fraction, val),
            "settings": model["settings"], "support_vectors": int(len(model["dual_coef"])),
            "target": "Eq. 1 label (cosine to the identity centre), raw", "features": "L2-normalised embeddings",
            "grid": grid, "validation": _validation(scores, data, val), "seconds": round(time.perf_counter() - t0, 1)}
    save_svm(model, out, backbone_key=str(data.meta.get("backbone_key")),
             backbone_identity=str(data.meta.get("backbone")), card=card)
    return card


# ================================================================================================ RQS
def ladder_pairs(data: BaselineSet) -> np.ndarray:
    """(better row, worse row) for every ordered pair of versions of one photo: (P, 2) int64."""
    rank = np.array([LADDER_RANK[None if lv == "clean" else lv] for lv in data.level])
    photo = data.photo
    out = []
    for p in np.unique(photo):
        rows = np.flatnonzero(photo == p)
        for a in rows:
            for b in rows:
                if rank[a] > rank[b]:
                    out.append((a, b))
    return np.array(out, np.int64).reshape(-1, 2)


def label_pairs(data: BaselineSet, margin: float = 0.1, per_identity: int = 30, seed: int = 0) -> np.ndarray:
    """(better, worse) rows of the same identity and different photos whose Eq. 1 labels differ by > ``margin``,
    at most ``per_identity`` pairs per identity (drawn with ``seed``): (P, 2) int64."""
    labels = np.asarray(data.data.labels, np.float64)
    ids = data.data.identities
    photo = data.photo
    rng = np.random.default_rng([int(seed), 31])
    out = []
    for ident in np.unique(ids):
        rows = np.flatnonzero((ids == ident) & np.isfinite(labels))
        if rows.size < 2:
            continue
        a, b = np.meshgrid(rows, rows, indexing="ij")
        a, b = a.ravel(), b.ravel()
        keep = (photo[a] != photo[b]) & (labels[a] - labels[b] > margin)
        a, b = a[keep], b[keep]
        if a.size > per_identity:
            pick = np.sort(rng.choice(a.size, per_identity, replace=False))
            a, b = a[pick], b[pick]
        out += list(zip(a.tolist(), b.tolist()))
    return np.array(out, np.int64).reshape(-1, 2)


def rank_svm(x: np.ndarray, pairs: np.ndarray, C: float, seed: int = 0) -> np.ndarray:
    """Linear RankSVM: ``w`` minimising ``|w|^2 / 2 + C sum max(0, 1 - w . (x_better - x_worse))^2``.

    The pairwise squared hinge (the L2-loss RankSVM of Chapelle and Keerthi 2010, solved in the primal) rather
    than the plain hinge: its solver converges in seconds on tens of thousands of 1000-d pairs, where the plain
    hinge's dual solver did not converge in 20,000 iterations. Solved as a linear SVM without intercept on
    difference vectors, each pair entered once with a random sign (scikit-learn ``LinearSVC``, liblinear).
    """
    from sklearn.svm import LinearSVC

    x = np.asarray(x, np.float64)
    diff = x[pairs[:, 0]] - x[pairs[:, 1]]
    sign = np.where(np.random.default_rng([int(seed), 53]).random(len(pairs)) < 0.5, 1.0, -1.0)
    if (sign > 0).all() or (sign < 0).all():
        sign[0] = -sign[0]
    svc = LinearSVC(C=float(C), loss="squared_hinge", penalty="l2", fit_intercept=False, dual=False, tol=1e-5,
                    max_iter=1000)
    svc.fit(diff * sign[:, None], sign)
    return svc.coef_.reshape(-1).astype(np.float64)


def pair_accuracy(scores: np.ndarray, pairs: np.ndarray) -> float:
    s = np.asarray(scores, np.float64)
    d = s[pairs[:, 0]] - s[pairs[:, 1]]
    return float(((d > 0) + 0.5 * (d == 0)).mean()) if len(d) else float("nan")


def _standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(0)
    scale = x.std(0)
    scale = np.where(scale > 1e-6 * max(float(scale.max()), 1e-12), scale, 1.0)
    return mean, scale


def fit_rqs(feats: Mapping[str, np.ndarray], pairs: np.ndarray, identities: np.ndarray, *, C: float = 0.01,
            C2: float = 1.0, seed: int = 0) -> dict:
    """Two-stage RQS on ``feats`` (group -> (N, D)) and ordered ``pairs`` (rows into the same N).

    Stage 1 per group: standardise, RankSVM (``C``). Stage 2: RankSVM (``C2``) on the four stage-1 scores divided
    by their spread, fitted on out-of-fold stage-1 scores (identities split into two folds; a pair's rows share
    an identity, so no pair crosses folds). Returns the model arrays of :mod:`fiqa_bench.methods.rqs`.
    """
    groups = tuple(feats)
    rng = np.random.default_rng([int(seed), 71])
    unique = np.unique(identities)
    fold_of = dict(zip(unique.tolist(), (rng.permutation(unique.size) % 2).tolist()))
    fold = np.array([fold_of[i] for i in identities])
    pair_fold = fold[pairs[:, 0]]
    n = len(identities)
    model: dict[str, Any] = {"groups": np.array(groups)}
    oof = np.zeros((n, len(groups)))
    for j, g in enumerate(groups):
        x = np.asarray(feats[g], np.float64)
        mean, scale = _standardiser(x)
        z = (x - mean) / scale
        model[f"{g}_mean"], model[f"{g}_scale"] = mean, scale
        model[f"{g}_w"] = rank_svm(z, pairs, C, seed)
        for k in (0, 1):  # out-of-fold scores: fit on the other fold's pairs, score this fold's rows
            w = rank_svm(z, pairs[pair_fold != k], C, seed)
            oof[fold == k, j] = z[fold == k] @ w
    spread = oof.std(0)
    spread = np.where(spread > 0, spread, 1.0)
    alpha = rank_svm(oof / spread, pairs, C2, seed)
    model["alpha"] = alpha / spread  # applied to the raw stage-1 scores
    model["stage2_raw_alpha"] = alpha
    model["stage1_spread"] = spread
    return model


RQS_GRID = (0.001, 0.01, 0.1)


def train_baseline_rqs(data: BaselineSet, out: str | os.PathLike, *, C: float | None = None, C2: float = 1.0,
                       margin: float = 0.1, per_identity: int = 30, val_fraction: float = 0.2, seed: int = 0,
                       features_cache: str | os.PathLike | None = None, command: str = "", data_desc: str = ""
                       ) -> dict:
    """Fit RQS on the non-held-out identities of ``data`` (ladder pairs + Eq. 1 pairs) and write ``out`` (.npz)
    + card (.json). ``C=None``: pick the stage-1 C from :data:`RQS_GRID` by validation pair accuracy.
    ``features_cache``: a ``.npz`` where the hand-crafted features of ``data`` are kept between runs."""
    from ..atomic import atomic_path, write_json
    from ..download import file_sha256
    from ..methods.rqs import FORMAT, linear_score
    from .export import json_safe
    from .handcrafted import DIMS, GROUPS, features

    t0 = time.perf_counter()
    feats = None
    cached = False
    if features_cache is not None and Path(features_cache).is_file():
        with np.load(features_cache, allow_pickle=False) as z:
            if int(z["rows"]) == len(data) and str(z["fingerprint"]) == data.data.fingerprint():
                feats = {g: np.asarray(z[g]) for g in GROUPS}
                cached = True
    if feats is None:
        feats = features(np.asarray(data.data.images))
        if features_cache is not None:
            with atomic_path(features_cache, suffix=".npz") as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(fh, rows=len(data), fingerprint=np.array(data.data.fingerprint()), **feats)
    t_feat = time.perf_counter() - t0
    val = validation_mask(data, val_fraction, seed)
    ladder = ladder_pairs(data)
    all_pairs = np.concatenate([ladder, label_pairs(data, margin, per_identity, seed)])
    n_ladder = len(ladder)
    is_val = val[all_pairs[:, 0]]
    assert (is_val == val[all_pairs[:, 1]]).all()
    train_rows = np.flatnonzero(~val)
    remap = np.full(len(data), -1, np.int64)
    remap[train_rows] = np.arange(train_rows.size)
    train_pairs = remap[all_pairs[~is_val]]
    val_pairs = all_pairs[is_val]
    train_feats = {g: feats[g][train_rows] for g in GROUPS}
    ids = data.data.identities[train_rows]
    grid = []
    if C is None:
        for c in RQS_GRID:
            m = fit_rqs(train_feats, train_pairs, ids, C=c, C2=C2, seed=seed)
            s = linear_score(feats, m)
            grid.append({"C": c, "val_pair_accuracy": pair_accuracy(s, val_pairs),
                         "val_spearman_eq1": spearman(s[val], data.data.labels[val])})
        C = max(grid, key=lambda r: r["val_pair_accuracy"])["C"]
    model = fit_rqs(train_feats, train_pairs, ids, C=C, C2=C2, seed=seed)
    scores = linear_score(feats, model)
    per_group = {}
    for g in GROUPS:  # each stage-1 score alone, for the card
        z = (feats[g].astype(np.float64) - model[f"{g}_mean"]) / model[f"{g}_scale"]
        sg = z @ model[f"{g}_w"]
        per_group[g] = {"dim": DIMS[g], "val_pair_accuracy": pair_accuracy(sg, val_pairs),
                        "val_spearman_eq1": spearman(sg[val], data.data.labels[val])}
    card = {"method": "rqs", **_card_base(data, command, data_desc, seed, val_fraction, val),
            "settings": {"C": float(C), "C2": float(C2), "margin": float(margin), "per_identity": int(per_identity)},
            "pairs": {"train": int(len(train_pairs)), "val": int(len(val_pairs)), "ladder_total": int(n_ladder),
                      "label_total": int(len(all_pairs) - n_ladder)},
            "stage2_alpha_on_standardised_scores": model["stage2_raw_alpha"].tolist(), "grid": grid,
            "per_group": per_group, "features": {g: DIMS[g] for g in GROUPS},
            "validation": {**_validation(scores, data, val), "pair_accuracy": pair_accuracy(scores, val_pairs)},
            "seconds": round(time.perf_counter() - t0, 1), "feature_seconds": round(t_feat, 1),
            "features_from_cache": cached}
    out = Path(out)
    arrays = {k: (np.asarray(v, np.float32) if k.endswith(("_mean", "_scale", "_w")) else v)
              for k, v in model.items() if k not in ("stage2_raw_alpha", "stage1_spread")}
    with atomic_path(out, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, format=np.array(FORMAT), **arrays)
    write_json(out.with_suffix(".json"), {**json_safe(card), "file": out.name, "sha256": file_sha256(out),
                                          "bytes": out.stat().st_size})
    return card


# ================================================================================================ FaceQnet
def faceqnet_labels(embeddings: np.ndarray, identities: Sequence, eq1_labels: np.ndarray, clean: np.ndarray,
                    groups: Sequence | None = None) -> tuple[np.ndarray, np.ndarray]:
    """FaceQnet targets and the reference row of each row.

    Reference of an identity: its clean row with the highest Eq. 1 label (first on ties); label
    ``1 - ||f/|f| - r/|r| || / 2``. NaN (not trained on) for the reference row itself, for the other rows of its
    ``groups`` entry (the reference photo's own degraded copies: comparing a photo with itself would label them
    near-perfect whatever the degradation), and for identities without a clean row with a finite Eq. 1 label.
    Returns (labels float32 (N,), reference row (N,) int64, -1 where none).
    """
    from .labels import l2_normalise

    f = l2_normalise(embeddings)
    ids = np.asarray(identities).astype(str)
    eq1 = np.asarray(eq1_labels, np.float64)
    clean = np.asarray(clean, bool)
    ref_of = np.full(len(ids), -1, np.int64)
    for ident in np.unique(ids):
        rows = np.flatnonzero(ids == ident)
        cand = rows[clean[rows] & np.isfinite(eq1[rows])]
        if cand.size:
            ref_of[rows] = cand[int(np.argmax(eq1[cand]))]
    out = np.full(len(ids), np.nan)
    group = np.arange(len(ids)) if groups is None else np.unique(np.asarray(groups).astype(str),
                                                                 return_inverse=True)[1].reshape(-1)
    ok = (ref_of >= 0) & np.isfinite(f).all(1)
    ok[ok] &= group[ok] != group[ref_of[ok]]
    ok[ok] &= np.isfinite(f[ref_of[ok]]).all(1)
    out[ok] = 1.0 - np.linalg.norm(f[ok] - f[ref_of[ok]], axis=1) / 2.0
    return out.astype(np.float32), ref_of


def train_baseline_faceqnet(data: BaselineSet, out: str | os.PathLike, *, net: str = "mbv2-t4-w0.35-112",
                            epochs: int = 18, lr: float = 0.01, lr_step: int = 6, batch_size: int = 64,
                            weight_decay: float = 1e-4, loss: str = "l1", hflip: bool = True,
                            val_fraction: float = 0.2, seed: int = 0, threads: int = 1,
                            checkpoint_dir: str | os.PathLike | None = None, progress: bool = True,
                            command: str = "", data_desc: str = "") -> dict:
    """Train FaceQnet (our small-network version) on ``data`` and write ``out`` (.onnx) + card (.json); needs torch.

    Training is :func:`fiqa_bench.training.train.train` (SGD, momentum 0.9, step schedule, exact resume from
    ``checkpoint_dir``) on the FaceQnet labels, no balanced sampling (FaceQnet has none), same validation
    identities as the other baselines. Defaults, chosen on CPU trials (the network is trained from scratch, not
    fine-tuned as FaceQnet's pre-trained ResNet-50 was): L1 loss (Eq. 2 read literally, as tinyFQnet) and
    lr 0.01 divided by 10 every 6 epochs, 18 epochs, batch 64, mirror augmentation. With lr 0.05 (MSE or L1)
    or 0.02 (L1) the training loss stayed at or above a constant predictor's until the rate was lowered.
    Returns the card.
    """
    from . import require_torch
    from .export import save_trained
    from .train import predict, train, training_card

    torch = require_torch()
    torch.set_num_threads(int(threads))
    t0 = time.perf_counter()
    targets, ref = faceqnet_labels(data.embeddings, data.data.identities, data.data.labels, data.clean,
                                   groups=data.photo)
    ts = TrainingSet(data.data.images, targets, data.data.identities, data.data.sources, data.data.degradations,
                     dict(data.meta))
    result = train(ts, net=net, epochs=epochs, lr=lr, lr_step=lr_step, batch_size=batch_size,
                   weight_decay=weight_decay, loss=loss, seed=seed, val_fraction=val_fraction, sampling=None,
                   hflip=hflip, checkpoint_dir=checkpoint_dir, progress=progress)
    val = validation_mask(data, val_fraction, seed)
    scores = np.full(len(data), np.nan)
    scores[val] = predict(result["model"], np.asarray(data.data.images)[val], batch_size=256)
    n_refs = int(np.unique(ref[ref >= 0]).size)
    card = {"method": "faceqnet", **training_card(result, command=command, data=data_desc,
                                                  backbone=str(data.meta.get("backbone"))),
            **{k: v for k, v in _card_base(data, command, data_desc, seed, val_fraction, val).items()
               if k not in ("command", "data", "seed", "backbone")},
            "reference_rule": "per identity, the undegraded photo with the highest Eq. 1 label (proxy for the "
                              "original's ICAO-compliance software)",
            "target": "1 - ||f/|f| - r/|r|||_2 / 2, r the reference photo's embedding; the reference photo and "
                      "its own degraded copies are not trained on",
            "references": n_refs,
            "validation_faceqnet_labels": result["val"],
            "validation": _validation(scores, data, val), "seconds": round(time.perf_counter() - t0, 1)}
    card.pop("val_identities", None)
    save_trained(result, out, card)
    return card


# ================================================================================================ evaluation
#: The input the set stores: what ``blur``, ``rqs``, ``faceqnet`` (and any method with this spec) score.
CROP_SPEC_TEXT = f"aligned {CROP_SIZE}x{CROP_SIZE} RGB"
#: Largest per-pixel difference allowed between a rebuilt face's aligned crop and the stored crop.
REBUILD_TOLERANCE = 2


def _crop_spec():
    from ..cards import InputSpec

    return InputSpec("aligned", CROP_SIZE, "RGB")


def input_route(method: Any) -> str:
    """How :func:`evaluate` feeds ``method``: ``"embeddings"`` (a ``score_embeddings`` method, e.g. svm: the set's
    stored embeddings), ``"crops"`` (input 112x112 RGB aligned: the stored crops, exactly what the runner gives)
    or ``"faces"`` (anything else, e.g. ``face`` input or 64 px crops: faces rebuilt by :class:`FaceRebuilder`)."""
    if hasattr(method, "score_embeddings"):
        return "embeddings"
    return "crops" if method.card.input == _crop_spec() else "faces"


def _source_pad(path: str, sources: Sequence[str]) -> float:
    """The ``pad`` of the ``--source`` (``meta["sources"]``) whose folder holds ``path``; 0 if none does."""
    p = Path(path)
    for text in sources:
        src = Source.parse(text)
        for a, b in ((p, Path(src.root)), (p.resolve(), Path(src.root).resolve())):
            try:
                a.relative_to(b)
            except ValueError:
                continue
            return float(src.pad)
    return 0.0


class FaceRebuilder:
    """The :class:`fiqa_bench.faces.Face` of a set's rows as :func:`build_baseline_set` made them: the source photo
    decoded, the row's degradation replayed on it (:func:`fiqa_bench.degradations.apply_record`), and the face's
    landmarks and box, stored in the set or, for sets built before they were stored, detected again (detector
    named by ``meta["detector"]``, pad of the row's ``--source``).

    Each rebuilt face is checked: its 112x112 RGB aligned crop must equal the stored crop (within
    :data:`REBUILD_TOLERANCE` grey levels), else :class:`FiqaBenchError` naming the row's photo (the photo changed,
    or the detector now finds other landmarks).
    """

    def __init__(self, data: BaselineSet) -> None:
        self.data = data
        self._detector = None
        self.checked = 0

    @staticmethod
    def unavailable(data: BaselineSet) -> str | None:
        """Why faces cannot be rebuilt for ``data`` (None: they can)."""
        from ..faces.detect import DETECTORS

        sources = np.unique(data.data.sources)
        missing = [s for s in sources.tolist() if not s or not Path(s).is_file()]
        if missing:
            return (f"{len(missing)} of the set's {sources.size} source photos are not there (e.g. {missing[0]!r}); "
                    f"methods that do not take the stored {CROP_SPEC_TEXT} crops are scored on faces rebuilt from "
                    f"the source photos")
        if data.landmarks is None:
            name = str(data.meta.get("detector", "")).split("-")[0]
            if name not in DETECTORS:
                return (f"the set stores no landmarks and its detector {data.meta.get('detector')!r} cannot be "
                        f"re-run; rebuild the set with `fiqa-bench train-baseline data`")
        return None

    def _detect(self, image: np.ndarray, source: str):
        from ..errors import FiqaBenchError
        from ..faces import detect_face, make_detector

        if self._detector is None:
            self._detector = make_detector(str(self.data.meta.get("detector", "yunet")).split("-")[0])
        det = detect_face(self._detector, image, _source_pad(source, self.data.meta.get("sources") or []))
        if det is None:
            raise FiqaBenchError(f"{source}: no face found again in a photo of the set (built with detector "
                                 f"{self.data.meta.get('detector')!r}); rebuild the set with "
                                 f"`fiqa-bench train-baseline data`")
        return det.landmarks, det.box

    def faces(self, rows: Sequence[int]) -> list:
        """The checked faces of ``rows`` (rows of one photo share one decode and one detection)."""
        from ..errors import FiqaBenchError
        from ..faces import Face, load_image, to_input
        from ..degradations import apply_record

        rows = np.asarray(rows, np.int64)
        sources = self.data.data.sources
        out = []
        decoded: dict[str, tuple] = {}
        for r in rows.tolist():
            src = str(sources[r])
            if src not in decoded:
                image = load_image(src)
                if self.data.landmarks is not None:
                    box = self.data.boxes[r]
                    where = (self.data.landmarks[r], None if not np.isfinite(box).all() else box)
                else:
                    where = self._detect(image, src)
                decoded = {src: (image, *where)}  # rows of a photo are consecutive: keep only the last photo
            image, landmarks, box = decoded[src]
            record = self.data.data.degradations[r]
            version = image if record is None else apply_record(image, record)
            out.append(Face(version, landmarks, box, src, detected=True))
        crops = to_input(out, _crop_spec())
        stored = np.asarray(self.data.data.images[rows])
        diff = np.abs(crops.astype(np.int16) - stored.astype(np.int16)).reshape(len(rows), -1).max(axis=1)
        bad = np.flatnonzero(diff > REBUILD_TOLERANCE)
        if bad.size:
            r = int(rows[bad[0]])
            how = "stored landmarks" if self.data.landmarks is not None else \
                f"landmarks detected again (set built with {self.data.meta.get('detector')!r})"
            raise FiqaBenchError(
                f"row {r} ({sources[r]}, {self.data.level[r]}): the face rebuilt from the source photo with {how} "
                f"differs from the stored crop by up to {int(diff[bad[0]])} grey levels ({bad.size} of "
                f"{len(rows)} rows in this batch); the photo or the detector changed since the set was built")
        self.checked += len(rows)
        return out


def evaluate(data: BaselineSet, methods: Mapping[str, Any], *, batch_size: int = 256,
             progress: bool = False) -> dict[str, dict]:
    """Score ``data`` with each method and compare with its Eq. 1 labels.

    Each method is fed by :func:`input_route`: the stored embeddings (svm: they must come from the backbone its
    model was trained for, checked against the set's ``backbone_key``), the stored 112x112 RGB crops, or faces
    rebuilt from the source photos (:class:`FaceRebuilder`; e.g. jpeg, pose, combination, tinyfq's 64 px crops),
    which see what the runner would give them for these photos. Per method: Spearman with Eq. 1 over all rows and
    over undegraded photos only, :func:`ladder_accuracy`, the input used, the method's identity and seconds.
    """
    from tqdm.auto import tqdm

    from ..errors import FiqaBenchError
    from ..faces import to_input

    routes = {name: input_route(m) for name, m in methods.items()}
    scores: dict[str, list[np.ndarray]] = {name: [] for name in methods}
    seconds = dict.fromkeys(methods, 0.0)
    images = data.data.images
    n = len(data)
    for name, method in methods.items():
        t = time.perf_counter()
        if routes[name] == "embeddings":
            from ..methods.svm import backbone_key

            method.identity()  # resolves the method's backbone (a spec string becomes the backbone)
            backbone = getattr(method, "backbone", None)
            if backbone is not None and not isinstance(backbone, str) \
                    and backbone_key(backbone) != data.meta.get("backbone_key"):
                raise FiqaBenchError(f"{name}: the set's embeddings come from {data.meta.get('backbone_key')}, "
                                     f"the method's backbone is {backbone_key(backbone)}")
            scores[name].append(method.score_embeddings(data.embeddings))
        elif routes[name] == "crops":
            scores[name] += [method.score(np.asarray(images[i:i + batch_size])) for i in range(0, n, batch_size)]
        seconds[name] += time.perf_counter() - t
    face_methods = [name for name, r in routes.items() if r == "faces"]
    rebuild_seconds = 0.0
    if face_methods:
        why = FaceRebuilder.unavailable(data)
        if why:
            raise FiqaBenchError(f"{', '.join(face_methods)}: cannot be scored: {why}")
        rebuilder = FaceRebuilder(data)
        for i in tqdm(range(0, n, batch_size), desc="faces", disable=not progress):
            t = time.perf_counter()
            faces = rebuilder.faces(np.arange(i, min(i + batch_size, n)))
            rebuild_seconds += time.perf_counter() - t
            for name in face_methods:
                t = time.perf_counter()
                scores[name].append(methods[name].score(to_input(faces, methods[name].card.input)))
                seconds[name] += time.perf_counter() - t
    out = {}
    clean = data.clean
    labels = data.data.labels
    inputs = {"embeddings": "stored embeddings of the set's backbone",
              "crops": f"stored {CROP_SPEC_TEXT} crops",
              "faces": "faces rebuilt from the source photos (degradations replayed, checked against the crops)"}
    for name, method in methods.items():
        s = np.concatenate(scores[name]) if scores[name] else np.zeros(0, np.float32)
        s = np.asarray(s, np.float64).reshape(-1)
        if len(s) != n:
            raise FiqaBenchError(f"{name}: {len(s)} scores for {n} rows")
        out[name] = {"spearman_eq1_all": spearman(s, labels),
                     "spearman_eq1_clean": spearman(s[clean], labels[clean]),
                     "ladder": ladder_accuracy(s, data), "n": int(n), "finite": int(np.isfinite(s).sum()),
                     "input": inputs[routes[name]], "identity": method.identity(),
                     "seconds": round(seconds[name], 1)}
        if routes[name] == "embeddings":
            out[name]["backbone"] = data.meta.get("backbone")
        if routes[name] == "faces":
            out[name]["rebuild_seconds_shared"] = round(rebuild_seconds, 1)
    return out


def evaluation_methods(data: BaselineSet, names: str | Sequence[str] = "all",
                       weights: Mapping[str, str | os.PathLike] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """(methods to :func:`evaluate` ``data`` with, {skipped name: why}).

    ``names``: registered method names or ``"all"`` (every registered method). ``weights``: {name: file} for
    methods that take one (``weights=`` or, for svm, ``model=``). A method built on an FR backbone gets the set's
    labelling backbone (``meta["backbone_spec"]``). A method whose weights cannot be loaded (e.g. tinyfq before
    ``weights/tinyfq.onnx`` is trained), or that needs rebuilt faces the set cannot give, is skipped with the reason;
    an unknown name is an error.
    """
    import inspect

    from ..errors import FiqaBenchError
    from ..registry import create, entries, load_class

    if isinstance(names, str):
        names = list(entries("method")) if names == "all" else [m.strip() for m in names.split(",") if m.strip()]
    weights = dict(weights or {})
    unknown = sorted(set(weights) - set(names))
    if unknown:
        raise FiqaBenchError(f"weights given for {', '.join(unknown)}, which are not among the methods evaluated")
    methods: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    backbone = None
    faces_why = None
    for name in names:
        cls = load_class("method", name)
        kwargs: dict[str, Any] = {}
        if name in weights:
            params = inspect.signature(cls).parameters
            key = "weights" if "weights" in params else "model" if "model" in params else None
            if key is None:
                raise FiqaBenchError(f"{name} takes no weights file")
            kwargs[key] = weights[name]
        if getattr(cls.card, "needs_backbone", False):
            spec = data.meta.get("backbone_spec")
            if not spec:
                skipped[name] = "needs the FR backbone, but the set does not record one (meta backbone_spec)"
                continue
            if backbone is None:
                backbone = create("backbone", spec, **dict(data.meta.get("backbone_options") or {}))
            kwargs["backbone"] = backbone
        try:
            method = create("method", name, **kwargs)
            method.identity()  # loads the weights: a missing or wrong file is reported here
        except FiqaBenchError as exc:
            skipped[name] = str(exc)
            continue
        if input_route(method) == "faces":
            if faces_why is None:
                faces_why = FaceRebuilder.unavailable(data) or ""
            if faces_why:
                skipped[name] = f"takes {method.card.input.describe()}, not the stored crops: {faces_why}"
                continue
        methods[name] = method
    return methods, skipped


# ================================================================================================ command line
def describe_set(folder: str | os.PathLike, data: BaselineSet) -> str:
    """The ``data`` entry of a card: the set's folder and how it was built."""
    return f"{folder}: " + json.dumps({k: data.meta.get(k) for k in ("sources", "part", "seed", "ladder", "command")})


def make_baseline_set(out: str | os.PathLike, *, fr: str, fr_options: Mapping[str, str] | None = None,
                      sources: Sequence[str], part: str = "train", ladder: bool = True, detector: str = "yunet",
                      seed: int = 0, command: str = "", progress: bool = True) -> tuple[BaselineSet, Path]:
    """``train-baseline data``: :func:`collect_photos` + :func:`build_baseline_set`, saved to ``out``."""
    paths, ids, pads = collect_photos([Source.parse(s) for s in sources], part=part, seed=seed)
    data = build_baseline_set(paths, ids, backbone=fr, backbone_options=dict(fr_options or {}), detector=detector,
                              pads=pads, ladder=ladder, seed=seed, progress=progress)
    data.meta.update(sources=list(sources), part=part, command=command)
    return data, data.save(out)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fiqa_bench.training.baselines ...``: an alias of ``fiqa-bench train-baseline ...`` (the options
    are defined once, in :mod:`fiqa_bench.cli`)."""
    from ..cli import train_baseline

    try:
        train_baseline.main(args=None if argv is None else list(argv), prog_name="fiqa-bench train-baseline")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
