"""The evaluation runner: protocol -> quality -> selection -> embeddings -> pair scores -> metrics -> results.

Quality is cheap and FR is expensive (the paper's argument), so for ``top1``/``topk`` selection only the
selected images are embedded. Every per-image result (detections, quality scores, embeddings) goes through an
on-disk cache written in atomic shards: rerunning is served from the caches and an interrupted run resumes.
Library code only; the CLI is a thin layer over :func:`run`.
"""

from __future__ import annotations

import inspect
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from . import registry
from .api import check_embeddings, check_scores
from .benchmark import Benchmark
from .cache import ArrayCache
from .errors import FiqaBenchError, OptionError
from .stages import FaceSource, Skipped, call_adapter as _call_adapter, per_image_stage, scores_run_embeddings
from .results import SCHEMA_VERSION, options_digest, suite_info, write_results

log = logging.getLogger(__name__)

SELECTIONS = ("top1", "topk", "weighted", "all")
FPR_TARGETS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one run. The CLI is built from these fields."""

    protocol: str
    backbone: str
    backbone_options: tuple = ()  # (key, value) pairs for the backbone constructor
    method: str | None = None
    method_options: tuple = ()  # (key, value) pairs for the method constructor; values are strings
    data: str | None = None
    selection: str = "top1"
    k: int = 3
    seed: int = 0
    flip: bool = False
    detector: str = "yunet"
    on_bad_image: str = "error"  # "error" | "skip"
    on_no_face: str = "error"  # "error" | "skip" | "center"
    fpr_mode: str = "conservative"  # "conservative" | "nearest"
    batch_size: int = 32
    workers: int = 2
    out: str = "results"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.selection not in SELECTIONS:
            raise FiqaBenchError(f"unknown selection {self.selection!r}; choose from {', '.join(SELECTIONS)}")
        if self.on_bad_image not in ("error", "skip"):
            raise FiqaBenchError("on_bad_image must be 'error' or 'skip'")
        if self.on_no_face not in ("error", "skip", "center"):
            raise FiqaBenchError("on_no_face must be 'error', 'skip' or 'center'")
        if self.k < 1:
            raise FiqaBenchError("k must be >= 1")
        items = self.method_options.items() if isinstance(self.method_options, dict) else self.method_options
        options = tuple(sorted((str(k), str(v)) for k, v in items))
        keys = [k for k, _ in options]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise OptionError(f"method option {', '.join(map(repr, twice))} given more than once")
        if any(not k or "=" in k for k in keys):
            raise OptionError(f"method option names must be non-empty and contain no '=': {keys}")
        if options and self.method is None:
            raise OptionError("method options (--method-option) need a quality method (--method)")
        object.__setattr__(self, "method_options", options)


# ----------------------------------------------------------------------------------------------- protocol
def open_protocol(spec: str, data: str | None = None):
    """A protocol instance from a registered name (``lfw``, ``ijbc``, ``ijb-layout:PATH``) or a folder written by
    ``fiqa-bench prepare`` (its ``benchmark.json`` says which layout)."""
    path = Path(spec).expanduser()
    if path.is_dir():
        layout = None
        meta = path / "benchmark.json"
        if meta.is_file():
            layout = json.loads(meta.read_text()).get("layout")
        elif list((path / "meta").glob("*_face_tid_mid.txt")):
            layout = "ijb"
        elif (path / "splits.txt").is_file():
            layout = "ytf"
        if layout not in ("ijb", "ytf"):
            raise FiqaBenchError(f"{path}: not a benchmark folder (no benchmark.json, IJB meta/ or YTF splits.txt)")
        return registry.create("protocol", f"{layout}-layout:{path}")
    name, arg = registry.split_spec(spec)
    cls = registry.load_class("protocol", name)
    if getattr(cls, "argument", None):
        return registry.create("protocol", spec)
    return registry.create("protocol", spec, root=data)


def _accepts(cls_or_fn: Callable, name: str) -> bool:
    try:
        params = inspect.signature(cls_or_fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _keyword_names(cls_or_fn: Callable) -> list[str]:
    """The keyword parameters a constructor takes (``**kwargs`` not listed)."""
    try:
        params = inspect.signature(cls_or_fn).parameters
    except (TypeError, ValueError):
        return []
    return [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def check_method_options(name: str, options: dict[str, str], reserved: dict[str, str] | None = None) -> None:
    """Raise :class:`OptionError` naming the method and the option when its constructor does not take it.

    ``reserved``: options the runner sets itself (``seed`` from ``--seed``, the run's ``backbone``), with the
    reason; they cannot be given as method options.
    """
    import difflib

    cls = registry.load_class("method", name)
    takes = [n for n in _keyword_names(cls) if n not in (reserved or {})]
    for key in options:
        if reserved and key in reserved:
            raise OptionError(f"method {name!r}: option {key!r} cannot be given with --method-option "
                              f"({reserved[key]})")
        if not _accepts(cls, key):
            close = difflib.get_close_matches(key, takes, n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            listed = ", ".join(takes) if takes else "none"
            raise OptionError(f"method {name!r} has no option {key!r}.{hint} Its options: {listed}")


def option_files_sha256(options: dict[str, str]) -> dict[str, str]:
    """sha256 of every option value that names an existing file (weights, models), keyed by option."""
    from .download import file_sha256

    out = {}
    for key, value in sorted(options.items()):
        path = Path(value).expanduser()
        try:
            is_file = path.is_file()
        except (OSError, ValueError):
            is_file = False
        if is_file:
            out[key] = file_sha256(path)
    return out


def _reserved_options(mcls) -> dict[str, str]:
    reserved = {}
    if _accepts(mcls, "seed"):
        reserved["seed"] = "set it with --seed"
    if getattr(mcls.card, "needs_backbone", False):
        reserved["backbone"] = "the run's FR backbone (--fr) is passed"
    return reserved


def _select(bench: Benchmark, quality: np.ndarray, available: np.ndarray, selection: str, k: int) -> np.ndarray:
    """Rows chosen per group. Ties are broken by the row order of the protocol's image list (deterministic)."""
    df = pd.DataFrame({"group": bench.faces["group"].to_numpy(np.int64), "q": quality,
                       "row": np.arange(len(quality))})
    df = df[available]
    if selection in ("all", "weighted"):
        return df["row"].to_numpy()
    df = df.sort_values(["group", "q", "row"], ascending=[True, False, True], kind="mergesort")
    take = 1 if selection == "top1" else k
    return df.groupby("group", sort=False).head(take)["row"].to_numpy()


def _l2(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


def _group_features(bench: Benchmark, rows: np.ndarray, emb: np.ndarray, quality: np.ndarray | None,
                    selection: str) -> tuple[np.ndarray, np.ndarray]:
    """(sorted group ids, L2-normalised features) from the embeddings of the kept ``rows``.

    * ``top1``: the one kept image's embedding;
    * ``topk``: the mean of the kept images' L2-normalised embeddings;
    * ``weighted``: every image, weighted by its quality rank among all scored images, in (0, 1] — scale-free,
      so methods whose scores live on different ranges pool the same way, and every image keeps some weight;
    * ``all``: insightface's pooling, quality ignored: mean per media, sum across media, L2-normalise.
    """
    from .pairscore import pool_templates

    groups = bench.faces["group"].to_numpy(np.int64)[rows]
    media = bench.faces["media"].to_numpy(np.int64)[rows]
    feats = _l2(emb.astype(np.float32))
    if selection == "all":
        return pool_templates(feats, groups, media, mode="all")
    weights = None
    if selection == "weighted":
        ranks = pd.Series(quality[rows]).rank(method="average").to_numpy()
        weights = (ranks / len(ranks)).astype(np.float32)
    return pool_templates(feats, groups, None, mode="mean", weights=weights)


def _pairs_present(gids: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairs whose two groups both have a feature (the others lost every image to a counted skip)."""
    if len(gids) and gids.min() >= 0 and gids.max() < 50_000_000:
        have = np.zeros(int(max(gids.max(), a.max(initial=0), b.max(initial=0))) + 1, dtype=bool)
        have[gids] = True
        ok = (a >= 0) & (b >= 0)
        return ok & have[np.where(ok, a, 0)] & have[np.where(ok, b, 0)]
    return np.isin(a, gids) & np.isin(b, gids)


# ----------------------------------------------------------------------------------------------- run
def run(cfg: RunConfig) -> tuple[Path, dict[str, Any]]:
    """Run one evaluation and write its results file; returns (path, record)."""
    from . import metrics as M
    from .pairscore import pair_scores

    t0 = time.perf_counter()
    timings: dict[str, float] = {}

    # fail fast on a mistyped name, before any data is read
    registry.load_class("backbone", cfg.backbone)
    method_options = dict(cfg.method_options)
    if cfg.method is not None:
        mcls = registry.load_class("method", cfg.method)
        check_method_options(cfg.method, method_options, _reserved_options(mcls))
    protocol = open_protocol(cfg.protocol, cfg.data)
    bench: Benchmark = protocol.load()
    timings["load_protocol_s"] = time.perf_counter() - t0
    faces = bench.faces
    n = len(faces)
    groups = faces["group"].to_numpy(np.int64)
    max_group = int(pd.Series(groups).value_counts().max()) if n else 0
    needs_quality = cfg.selection in ("top1", "topk", "weighted") and max_group > 1
    if needs_quality and cfg.method is None:
        raise FiqaBenchError(
            f"protocol {bench.name!r} has templates of several images: choose a quality method with --method "
            f"(or --selection all to pool every image)"
        )

    backbone_kwargs: dict[str, Any] = dict(cfg.backbone_options)
    if cfg.flip:
        backbone_kwargs["flip"] = True
    try:
        backbone = registry.create("backbone", cfg.backbone, **backbone_kwargs)
    except FiqaBenchError:
        raise
    except (TypeError, ValueError) as exc:
        if not cfg.backbone_options:
            raise
        given = ", ".join(f"{k}={v}" for k, v in cfg.backbone_options)
        raise OptionError(f"backbone {cfg.backbone!r} rejected its options ({given}): "
                          f"{type(exc).__name__}: {exc}") from exc
    method = None
    if needs_quality:
        mcls = registry.load_class("method", cfg.method)
        kwargs: dict[str, Any] = {}
        if _accepts(mcls, "seed"):
            kwargs["seed"] = cfg.seed
        if getattr(mcls.card, "needs_backbone", False):
            kwargs["backbone"] = backbone
        if method_options:
            try:
                method = registry.create("method", cfg.method, **kwargs, **method_options)
            except FiqaBenchError:
                raise
            except (TypeError, ValueError) as exc:
                given = ", ".join(f"{k}={v}" for k, v in method_options.items())
                raise OptionError(f"method {cfg.method!r} rejected its options ({given}): "
                                  f"{type(exc).__name__}: {exc}") from exc
        else:
            method = registry.create("method", cfg.method, **kwargs)

    source = FaceSource(bench, cfg.detector, cfg.on_bad_image, cfg.on_no_face, cfg.workers)
    skipped: dict[int, Skipped] = {}
    dataset_id = f"{bench.name}-{bench.fingerprint()['faces_sha256'][:16]}"
    quality = np.zeros(n, dtype=np.float32)
    n_scored = n_scored_new = 0
    n_embedded_for_quality = 0  # images embedded to score them (a method on the run's FR features: svm)
    options_sha256: dict[str, str] = {}
    from .faces.pipeline import to_input

    with ThreadPoolExecutor(max_workers=max(1, cfg.workers)) as pool:
        who_b = f"backbone {cfg.backbone!r}"
        ecache = ArrayCache.for_producer("embeddings", backbone.identity(), dataset_id, backbone.card.embedding_dim)

        def embed(batch_faces: list) -> np.ndarray:
            out = _call_adapter(who_b, backbone.embed, to_input(batch_faces, backbone.card.input),
                                f" (first image of the batch: {batch_faces[0].path})")
            return check_embeddings(out, len(batch_faces), backbone.card.embedding_dim, who_b)

        if method is not None:
            who = f"quality method {cfg.method!r}"
            q_identity = method.identity()
            if method_options:
                # the method's identity may not reflect its options (a plugin's): key the cache on them too, with
                # a file's content (sha256) standing for its path, so two weights files never share scores
                options_sha256 = option_files_sha256(method_options)
                keyed = {k: f"sha256:{options_sha256[k]}" if k in options_sha256 else f"value:{v}"
                         for k, v in method_options.items()}
                q_identity += f"|options-{options_digest(keyed)}"
            qcache = ArrayCache.for_producer("quality", q_identity, dataset_id, 1)

            def score(batch_faces: list) -> np.ndarray:
                out = _call_adapter(who, method.score, to_input(batch_faces, method.card.input),
                                    f" (first image of the batch: {batch_faces[0].path})")
                return check_scores(out, len(batch_faces), who)[:, None]

            t = time.perf_counter()
            if scores_run_embeddings(method, backbone):
                # A method on the run's own FR features (svm): embed every image through the run's embedding cache
                # (shared with the FR stage and with other runs) and score the embeddings, instead of letting the
                # method embed every image again inside score().
                emb_all, n_scored_new = per_image_stage("embed", np.arange(n), source, ecache, backbone.card.embedding_dim,
                                                        embed, pool, skipped, cfg.batch_size, cfg.progress)
                quality = np.full(n, np.nan, dtype=np.float32)
                rows = np.flatnonzero(np.isfinite(emb_all).all(axis=1))
                n_embedded_for_quality = int(rows.size)
                if rows.size:
                    out = _call_adapter(who, method.score_embeddings, emb_all[rows])
                    quality[rows] = check_scores(out, rows.size, who)
            else:
                values, n_scored_new = per_image_stage("quality", np.arange(n), source, qcache, 1, score, pool, skipped,
                                                        cfg.batch_size, cfg.progress)
                quality = values[:, 0]
            n_scored = int(np.isfinite(quality).sum())
            timings["quality_s"] = time.perf_counter() - t

        available = np.ones(n, dtype=bool)
        available[list(skipped)] = False
        if method is not None:
            available &= np.isfinite(quality)
        selected = _select(bench, np.nan_to_num(quality, nan=-np.inf), available, cfg.selection, cfg.k)

        t = time.perf_counter()
        emb, n_embedded_new = per_image_stage("embed", selected, source, ecache, backbone.card.embedding_dim,
                                              embed, pool, skipped, cfg.batch_size, cfg.progress)
        timings["embed_s"] = time.perf_counter() - t

    ok = np.isfinite(emb).all(axis=1)
    rows_ok, emb = selected[ok], emb[ok]
    t = time.perf_counter()
    gids, gfeats = _group_features(bench, rows_ok, emb, quality, cfg.selection)
    pairs = bench.pairs
    a = pairs["a"].to_numpy(np.int64)
    b = pairs["b"].to_numpy(np.int64)
    labels = pairs["label"].to_numpy(np.int8)
    present = _pairs_present(gids, a, b)
    dropped_pairs = int((~present).sum())
    scores = pair_scores(gids, gfeats, a[present], b[present])
    labels_p = labels[present]
    timings["pair_scores_s"] = time.perf_counter() - t

    metrics: dict[str, Any] = {}
    if bench.metric == "tpr_at_fpr":
        n_neg = int((labels_p == 0).sum())
        targets = [f for f in FPR_TARGETS if f >= 1e-5 or f * n_neg >= 1]
        detail = M.tpr_at_fpr_detailed(scores, labels_p, targets, mode=cfg.fpr_mode)
        metrics["tpr_at_fpr"] = {k: v["tpr"] for k, v in detail.items()}
        metrics["tpr_at_fpr_detail"] = detail
        metrics["fpr_reading"] = cfg.fpr_mode
    else:
        folds = pairs["fold"].to_numpy(np.int64)[present]
        acc = M.kfold_accuracy(scores, labels_p, folds)
        metrics["accuracy"] = {"mean": acc["mean"], "std": acc["std"], "folds": acc["folds"]}
        metrics["thresholds"] = acc.get("thresholds")

    reasons: dict[str, int] = {}
    for s in skipped.values():
        reasons[s.reason] = reasons.get(s.reason, 0) + 1
    fp = bench.fingerprint()
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "suite": suite_info(),
        "method": (
            {"name": cfg.method, "version": method.card.version, "card_hash": method.card.card_hash(),
             "identity": method.identity(), "options": method_options, "options_sha256": options_sha256}
            if method is not None
            else {"name": "none", "version": None, "card_hash": None, "identity": None, "options": {},
                  "options_sha256": {}}
        ),
        "backbone": {
            "name": cfg.backbone if not cfg.backbone.startswith("onnx:") else f"onnx:{Path(cfg.backbone[5:]).name}",
            "spec": cfg.backbone,
            "version": backbone.card.version,
            "weights_sha256": getattr(backbone.card.weights, "sha256", None) if backbone.card.weights else None,
            "card_hash": backbone.card.card_hash(),
            "identity": backbone.identity(),
        },
        "protocol": {
            "name": bench.name,
            "version": bench.version,
            "metric": bench.metric,
            "root": str(bench.root),
            **fp,
        },
        "config": {k: v for k, v in asdict(cfg).items() if k not in ("out", "progress", "workers", "batch_size")},
        "detector": source.detector_identity(),
        "counts": {
            "images": n,
            "templates": int(len(np.unique(groups))),
            "pairs": int(len(pairs)),
            "pairs_scored": int(present.sum()),
            "pairs_dropped": dropped_pairs,
            "genuine": int((labels_p == 1).sum()),
            "impostor": int((labels_p == 0).sum()),
            "images_scored": n_scored,
            "images_scored_new": int(n_scored_new),
            "images_embedded_for_quality": n_embedded_for_quality,
            "images_embedded": int(len(rows_ok)),
            "images_embedded_new": int(n_embedded_new),
            "fallback_landmarks": len(source.fallback_rows),
            "skipped": len(skipped),
            "skipped_reasons": reasons,
            "skipped_files": [s.path for s in sorted(skipped.values(), key=lambda s: s.row)][:100],
        },
        "timings": {k: round(v, 3) for k, v in {**timings, "total_s": time.perf_counter() - t0}.items()},
        "metrics": metrics,
        "notes": list(bench.notes),
    }
    path = write_results(Path(cfg.out), record)
    return path, record
