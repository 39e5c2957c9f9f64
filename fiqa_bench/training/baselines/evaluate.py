"""How well quality scores agree with a set's Eq. 1 labels and degradation ladders: the numbers on every baseline's
card, and ``train-baseline evaluate`` for any registered method (each fed the input the runner would give it)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fiqa_bench.training.baselines.data import CROP_SIZE, LADDER_RANK, BaselineSet, Source


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
    return {
        "pairs": right / total if total else float("nan"),
        "photos": full / n_photos if n_photos else float("nan"),
        "n_photos": int(n_photos),
    }


def validation_scores(scores: np.ndarray, data: BaselineSet, val_mask: np.ndarray) -> dict:
    sub = data.subset(np.flatnonzero(val_mask))
    s = np.asarray(scores)[val_mask]
    labels = sub.data.labels
    return {
        "spearman_eq1_all": spearman(s, labels),
        "spearman_eq1_clean": spearman(s[sub.clean], labels[sub.clean]),
        "ladder": ladder_accuracy(s, sub),
        "n": int(val_mask.sum()),
    }


#: The input the set stores: what ``blur``, ``rqs``, ``faceqnet`` (and any method with this spec) score.
CROP_SPEC_TEXT = f"aligned {CROP_SIZE}x{CROP_SIZE} RGB"
#: Largest per-pixel difference allowed between a rebuilt face's aligned crop and the stored crop.
REBUILD_TOLERANCE = 2


def _crop_spec():
    from fiqa_bench.api.cards import InputSpec

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
    decoded, the row's degradation replayed on it (:func:`fiqa_bench.data.degradations.apply_record`), and the face's
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
        from fiqa_bench import registry

        assert data.data.sources is not None  # filled in by TrainingSet.__post_init__
        sources = np.unique(data.data.sources)
        missing = [s for s in sources.tolist() if not s or not Path(s).is_file()]
        if missing:
            return (
                f"{len(missing)} of the set's {sources.size} source photos are not there (e.g. {missing[0]!r}); "
                f"methods that do not take the stored {CROP_SPEC_TEXT} crops are scored on faces rebuilt from "
                f"the source photos"
            )
        if data.landmarks is None:
            name = str(data.meta.get("detector", "")).split("-")[0]
            if name not in registry.names("detector"):
                return (
                    f"the set stores no landmarks and its detector {data.meta.get('detector')!r} cannot be "
                    f"re-run; rebuild the set with `fiqa-bench train-baseline data`"
                )
        return None

    def _detect(self, image: np.ndarray, source: str):
        from fiqa_bench.errors import FiqaBenchError
        from fiqa_bench.faces import detect_face, make_detector

        if self._detector is None:
            self._detector = make_detector(str(self.data.meta.get("detector", "yunet")).split("-")[0])
        det = detect_face(self._detector, image, _source_pad(source, self.data.meta.get("sources") or []))
        if det is None:
            raise FiqaBenchError(
                f"{source}: no face found again in a photo of the set (built with detector "
                f"{self.data.meta.get('detector')!r}); rebuild the set with "
                f"`fiqa-bench train-baseline data`"
            )
        return det.landmarks, det.box

    def faces(self, rows: np.ndarray | Sequence[int]) -> list:
        """The checked faces of ``rows`` (rows of one photo share one decode and one detection)."""
        from fiqa_bench.data.degradations import apply_record
        from fiqa_bench.errors import FiqaBenchError
        from fiqa_bench.faces import Face, load_image, to_input

        rows = np.asarray(rows, np.int64)
        sources, degradations = self.data.data.sources, self.data.data.degradations
        assert sources is not None and degradations is not None  # filled in by TrainingSet.__post_init__
        out = []
        decoded: dict[str, tuple] = {}
        for r in rows.tolist():
            src = str(sources[r])
            if src not in decoded:
                image = load_image(src)
                if self.data.landmarks is not None and self.data.boxes is not None:  # both or neither
                    box = self.data.boxes[r]
                    where = (self.data.landmarks[r], None if not np.isfinite(box).all() else box)
                else:
                    where = self._detect(image, src)
                decoded = {src: (image, *where)}  # rows of a photo are consecutive: keep only the last photo
            image, landmarks, box = decoded[src]
            record = degradations[r]
            version = image if record is None else apply_record(image, record)
            out.append(Face(version, landmarks, box, src, detected=True))
        crops = to_input(out, _crop_spec())
        stored = np.asarray(self.data.data.images[rows])
        diff = np.abs(crops.astype(np.int16) - stored.astype(np.int16)).reshape(len(rows), -1).max(axis=1)
        bad = np.flatnonzero(diff > REBUILD_TOLERANCE)
        if bad.size:
            r = int(rows[bad[0]])
            how = (
                "stored landmarks"
                if self.data.landmarks is not None
                else f"landmarks detected again (set built with {self.data.meta.get('detector')!r})"
            )
            raise FiqaBenchError(
                f"row {r} ({sources[r]}, {self.data.level[r]}): the face rebuilt from the source photo with {how} "
                f"differs from the stored crop by up to {int(diff[bad[0]])} grey levels ({bad.size} of "
                f"{len(rows)} rows in this batch); the photo or the detector changed since the set was built"
            )
        self.checked += len(rows)
        return out


def evaluate(
    data: BaselineSet, methods: Mapping[str, Any], *, batch_size: int = 256, progress: bool = False
) -> dict[str, dict]:
    """Score ``data`` with each method and compare with its Eq. 1 labels.

    Each method is fed by :func:`input_route`: the stored embeddings (svm: they must come from the backbone its
    model was trained for, checked against the set's ``backbone_key``), the stored 112x112 RGB crops, or faces
    rebuilt from the source photos (:class:`FaceRebuilder`; e.g. jpeg, pose, combination, tinyfq's 64 px crops),
    which see what the runner would give them for these photos. Per method: Spearman with Eq. 1 over all rows and
    over undegraded photos only, :func:`ladder_accuracy`, the input used, the method's identity and seconds.
    """
    from tqdm.auto import tqdm

    from fiqa_bench.errors import FiqaBenchError
    from fiqa_bench.faces import to_input

    routes = {name: input_route(m) for name, m in methods.items()}
    scores: dict[str, list[np.ndarray]] = {name: [] for name in methods}
    seconds = dict.fromkeys(methods, 0.0)
    images = data.data.images
    n = len(data)
    for name, method in methods.items():
        t = time.perf_counter()
        if routes[name] == "embeddings":
            from fiqa_bench.models.svm_model import backbone_key

            method.identity()  # resolves the method's backbone (a spec string becomes the backbone)
            backbone = getattr(method, "backbone", None)
            if (
                backbone is not None
                and not isinstance(backbone, str)
                and backbone_key(backbone) != data.meta.get("backbone_key")
            ):
                raise FiqaBenchError(
                    f"{name}: the set's embeddings come from {data.meta.get('backbone_key')}, "
                    f"the method's backbone is {backbone_key(backbone)}"
                )
            scores[name].append(method.score_embeddings(data.embeddings))
        elif routes[name] == "crops":
            scores[name] += [method.score(np.asarray(images[i : i + batch_size])) for i in range(0, n, batch_size)]
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
    inputs = {
        "embeddings": "stored embeddings of the set's backbone",
        "crops": f"stored {CROP_SPEC_TEXT} crops",
        "faces": "faces rebuilt from the source photos (degradations replayed, checked against the crops)",
    }
    for name, method in methods.items():
        s = np.concatenate(scores[name]) if scores[name] else np.zeros(0, np.float32)
        s = np.asarray(s, np.float64).reshape(-1)
        if len(s) != n:
            raise FiqaBenchError(f"{name}: {len(s)} scores for {n} rows")
        out[name] = {
            "spearman_eq1_all": spearman(s, labels),
            "spearman_eq1_clean": spearman(s[clean], labels[clean]),
            "ladder": ladder_accuracy(s, data),
            "n": int(n),
            "finite": int(np.isfinite(s).sum()),
            "input": inputs[routes[name]],
            "identity": method.identity(),
            "seconds": round(seconds[name], 1),
        }
        if routes[name] == "embeddings":
            out[name]["backbone"] = data.meta.get("backbone")
        if routes[name] == "faces":
            out[name]["rebuild_seconds_shared"] = round(rebuild_seconds, 1)
    return out


def evaluation_methods(
    data: BaselineSet, names: str | Sequence[str] = "all", weights: Mapping[str, str | os.PathLike] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """(methods to :func:`evaluate` ``data`` with, {skipped name: why}).

    ``names``: registered method names or ``"all"`` (every registered method). ``weights``: {name: file} for
    methods that take one (``weights=`` or, for svm, ``model=``). A method built on an FR backbone gets the set's
    labelling backbone (``meta["backbone_spec"]``). A method whose weights cannot be loaded (e.g. tinyfq before
    ``weights/tinyfq.onnx`` is trained), or that needs rebuilt faces the set cannot give, is skipped with the reason;
    an unknown name is an error.
    """
    import inspect

    from fiqa_bench.errors import FiqaBenchError
    from fiqa_bench.registry import create, entries, load_class

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
