"""``svm``: support vector regression of recognition-based quality from the run's own FR features.

Best-Rowden and Jain (2018), "Learning face image quality from human assessments" (IEEE TIFS), predict a face's
quality with an SVR (RBF kernel) on the deep features of the FR network itself. They train two variants: on
human pairwise judgements ("human" quality) and on normalised genuine comparison scores ("machine" quality).
This is the machine variant with one deviation, stated here and on the card: **the targets are the Eq. 1 labels
of Peng et al.** (cosine between a face's embedding and the centre of its identity's other photos, see
:mod:`fiqa_bench.training.labels`) instead of Best-Rowden and Jain's z-normalised genuine scores; both measure how
well a face matches its own identity under the same FR model, and Eq. 1 is the quality notion every learned
method here is trained on. The Peng et al. paper itself re-implemented this baseline (section 4.3).

Inference, per face:

1. the aligned crop the backbone wants (``to_input(faces, backbone.card.input)``), embedded by the run's backbone
   (in ``fiqa-bench run`` the runner embeds every image through its embedding cache and calls
   :meth:`SVMQuality.score_embeddings`, so the FR stage and later runs reuse those embeddings);
2. ``x = f / ||f||`` (L2-normalised embedding);
3. ``q(x) = sum_i a_i exp(-gamma ||s_i - x||^2) + b``: the RBF decision function, computed here with numpy from
   the stored support vectors ``s_i``, dual coefficients ``a_i``, intercept ``b`` and ``gamma`` (equal to
   scikit-learn's ``SVR.predict``; no pickle, no scikit-learn at inference).

The fitted model depends on the backbone (its features), so one ``.npz`` is stored per backbone:
``weights/svm-<backbone>.npz`` with its training card ``.json``. ``SVMQuality(backbone=b)`` picks the bundled file
whose recorded backbone key (:func:`backbone_key`: backbone name, weights sha256, input, embedding width) matches
``b``; ``model=PATH`` uses a given file (still checked against the backbone). The pixel normalisation and flip
test are not part of the key: they change embeddings by far less than the spread of qualities (MobileFaceNet's
(x - 127.5) / 128 against ArcFace's / 127.5 is a 0.4% input scale). Files are written by
:func:`fiqa_bench.training.baselines.train_baseline_svm` (``fiqa-bench train-baseline data`` then ``svm``; a
backbone without a model gets an error spelling out both commands, :func:`train_commands`).
"""

from __future__ import annotations

import copy
import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from fiqa_bench.api import QualityMethod
from fiqa_bench.api.cards import InputSpec, MethodCard, Weights
from fiqa_bench.errors import AdapterError
from fiqa_bench.models.svm_model import FORMAT, backbone_key, l2_rows, rbf_decision

PREFIX = "svm-"
ARRAYS = ("support_vectors", "dual_coef", "intercept", "gamma")


def bundled_dir() -> Path:
    from fiqa_bench.models.quality_net import bundled_weights_dir

    return bundled_weights_dir()


def load_model(path: str | os.PathLike) -> dict:
    """Read an SVR ``.npz`` (no pickle): arrays of :data:`ARRAYS` plus ``backbone_key``, ``backbone_identity``
    and ``format`` strings. Raises :class:`AdapterError` naming the file when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise AdapterError(f"svm: model file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            model = {k: np.asarray(z[k]) for k in z.files}
    except Exception as exc:  # noqa: BLE001 - any failure: not a model file
        raise AdapterError(f"svm: {path} is not a readable .npz model ({type(exc).__name__}: {exc})") from exc
    missing = [k for k in (*ARRAYS, "backbone_key", "format") if k not in model]
    if missing or str(model.get("format", "")) != FORMAT:
        raise AdapterError(
            f"svm: {path} is not a {FORMAT} model (missing {missing or 'nothing'}, "
            f"format {str(model.get('format', '?'))!r})"
        )
    sv, coef = model["support_vectors"], model["dual_coef"].reshape(-1)
    if sv.ndim != 2 or sv.shape[0] != coef.shape[0] or not np.isfinite(sv).all() or not np.isfinite(coef).all():
        raise AdapterError(
            f"svm: {path}: support vectors {sv.shape} and dual coefficients {coef.shape} disagree or are not finite"
        )
    return {
        **model,
        "dual_coef": coef,
        "intercept": float(model["intercept"]),
        "gamma": float(model["gamma"]),
        "backbone_key": str(model["backbone_key"]),
        "format": str(model["format"]),
        "backbone_identity": str(model.get("backbone_identity", "")),
    }


def find_bundled(key: str) -> Path | None:
    """The bundled ``svm-*.npz`` trained on the backbone with this :func:`backbone_key`, or None."""
    folder = bundled_dir()
    for path in sorted(folder.glob(PREFIX + "*.npz")) if folder.is_dir() else []:
        try:
            with np.load(path, allow_pickle=False) as z:
                if "backbone_key" in z.files and str(z["backbone_key"]) == key:
                    return path
        except Exception:  # noqa: BLE001 - an unreadable file is not a match
            continue
    return None


def backbone_spec(backbone: Any, spec: str | None = None, options: dict | None = None) -> tuple[str, dict]:
    """(``--fr`` spec, ``--fr-option`` dict) that recreate ``backbone``: ``spec`` when known, else the registered name
    (the card's) plus, for a backbone taking a path (``onnx:PATH``), its model file; an ONNX backbone's explicit
    normalisation becomes an option."""
    options = dict(options or {})
    if spec is None:
        spec = backbone.card.name
        if getattr(backbone, "argument", None):
            where = getattr(backbone, "model_path", None)
            try:
                arg = where() if callable(where) else getattr(backbone, "path", None)
            except Exception:  # noqa: BLE001 - an unresolvable path: name the placeholder
                arg = None
            spec = f"{spec}:{arg if arg is not None else backbone.argument}"
        norm = getattr(backbone, "_normalisation", None)
        if norm is not None and "normalisation" not in options:
            options["normalisation"] = norm
    return str(spec), options


def model_name(spec: str) -> str:
    """``svm-<name>.npz`` name of a backbone spec: the registered name, or an ONNX model file's stem."""
    from fiqa_bench.registry import split_spec

    name, arg = split_spec(spec)
    return Path(arg).stem if arg else name


def train_commands(spec: str, options: dict | None = None, folder: str | os.PathLike | None = None) -> list[str]:
    """The two ``fiqa-bench train-baseline`` commands that make the bundled SVM for backbone ``spec``: the labelled
    set from the same photos as the shipped MobileFaceNet model (``$FIQA_SHARED`` = the development data), then the
    SVR written into the bundled folder (``folder``, default :func:`bundled_dir`)."""
    import shlex

    name = model_name(spec)
    data = f"svm-data-{name}"
    out = Path(folder if folder is not None else bundled_dir()) / f"{PREFIX}{name}.npz"
    fr = " ".join(
        [f"--fr {shlex.quote(spec)}"]
        + [f"--fr-option {shlex.quote(f'{k}={v}')}" for k, v in sorted((options or {}).items())]
    )
    return [
        f"fiqa-bench train-baseline data {data} {fr} "
        f"--source $FIQA_SHARED/data/celeba-wild/images:per_identity=15 "
        f"--source $FIQA_SHARED/data/lfw/lfw:max_images=3,pad=0.25 --part train --seed 0",
        f"fiqa-bench train-baseline svm {data} --out {shlex.quote(str(out))} --search",
    ]


class SVMQuality(QualityMethod):
    """SVR (RBF) on the L2-normalised embedding of the run's FR backbone; higher = better."""

    OPTION_HELP = {"model": "an svm .npz model for the run's backbone (default: the bundled one for it)"}

    card = MethodCard(
        name="svm",
        version="1",
        summary=(
            "Best-Rowden & Jain 2018 'machine' quality: RBF support vector regression on the run's own FR "
            "features (L2-normalised); targets are Eq. 1 labels; one model per backbone (weights/svm-*.npz)"
        ),
        licence=(
            "code MIT; the bundled models also carry the terms of their training data (CelebA, LFW) and "
            "of the backbone whose features they read, named in weights/svm-*.json"
        ),
        paper=(
            "L. Best-Rowden and A. K. Jain, 'Learning face image quality from human assessments', IEEE "
            "Transactions on Information Forensics and Security 13(12), 2018"
        ),
        input=InputSpec("face"),
        higher_is_better=True,
        score_range="unbounded (about the range of Eq. 1 cosines, -1..1)",
        weights=Weights(
            filename="svm-<backbone>.npz",
            bundled=True,
            note="bundled per backbone in fiqa_bench/methods/weights/ (svm-mobilefacenet.npz, ...), chosen by the "
            "backbone's name + weights sha256; or model=PATH from `fiqa-bench train-baseline svm`",
        ),
        needs_backbone=True,
    )

    def __init__(
        self, backbone: Any = None, model: str | os.PathLike | None = None, backbone_options: dict | None = None
    ) -> None:
        self.backbone = backbone
        self.backbone_options = dict(backbone_options or {})
        self.model = Path(model).expanduser() if model is not None else None
        self._model: dict | None = None
        self._path: Path | None = None
        self._sha256: str | None = None

    # -- loading ---------------------------------------------------------------------------------------------------
    def _backbone(self):
        if self.backbone is None:
            raise AdapterError("svm needs the run's FR backbone: SVMQuality(backbone=...) (the runner passes it)")
        if isinstance(self.backbone, str):
            from fiqa_bench.registry import create

            self.backbone = create("backbone", self.backbone, **self.backbone_options)
        return self.backbone

    def _load(self) -> dict:
        if self._model is not None:
            return self._model
        backbone = self._backbone()
        key = backbone_key(backbone)
        path = self.model if self.model is not None else find_bundled(key)
        if path is None:
            spec, options = backbone_spec(
                backbone, self.backbone if isinstance(self.backbone, str) else None, self.backbone_options
            )
            raise AdapterError(
                f"svm: no bundled model for backbone {spec!r} (key {key}). Make one with\n"
                + "\n".join(f"  {c}" for c in train_commands(spec, options))
                + "\n(the second writes it into the bundled folder, where SVMQuality finds it by the backbone's key; "
                "or write it elsewhere and pass model=PATH)"
            )
        model = load_model(path)
        if model["backbone_key"] != key:
            raise AdapterError(
                f"svm: {path} was trained on another backbone ({model['backbone_key']}), not on this run's ({key})"
            )
        if model["support_vectors"].shape[1] != int(backbone.card.embedding_dim):
            raise AdapterError(
                f"svm: {path} expects {model['support_vectors'].shape[1]}-d features, the backbone "
                f"gives {backbone.card.embedding_dim}-d"
            )
        h = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        self._path, self._sha256, self._model = Path(path), h, model
        return model

    def model_path(self) -> Path:
        self._load()
        assert self._path is not None  # set by _load
        return self._path

    def identity(self) -> str:
        """Card + model sha256 + backbone identity: scores from another model or backbone never share a cache."""
        self._load()
        assert self._sha256 is not None  # set by _load
        return f"{super().identity()}-sha256-{self._sha256[:16]}-on-{self._backbone().identity()}"

    # -- scoring ---------------------------------------------------------------------------------------------------
    def score_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        """Quality of raw backbone embeddings (N, D): the SVR on their L2-normalised rows."""
        m = self._load()
        e = np.asarray(embeddings)
        if e.ndim != 2 or e.shape[1] != m["support_vectors"].shape[1]:
            raise AdapterError(f"svm: expected embeddings (N, {m['support_vectors'].shape[1]}), got {e.shape}")
        if len(e) == 0:
            return np.zeros(0, np.float32)
        q = rbf_decision(l2_rows(e), m["support_vectors"], m["dual_coef"], m["intercept"], m["gamma"])
        return q.astype(np.float32)

    def score(self, images: Any) -> np.ndarray:
        from fiqa_bench.faces.pipeline import to_input

        faces = list(images)
        if not faces:
            return np.zeros(0, np.float32)
        backbone = self._backbone()
        self._load()
        embeddings = np.asarray(backbone.embed(to_input(faces, backbone.card.input)), np.float32)
        return self.score_embeddings(embeddings)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        backbone = state.get("backbone")
        if backbone is not None and not isinstance(backbone, str) and getattr(backbone, "_session", None) is not None:
            # an onnxruntime session does not pickle: send a copy without it (the backbone reloads lazily)
            backbone = copy.copy(backbone)
            backbone._session = None
            state["backbone"] = backbone
        return state
