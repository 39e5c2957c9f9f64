"""The evaluation core: objects in, a results record and its raw data out.

``evaluate(bench, backbone, method, options)`` composes five stages, each a plain function a test can call with
in-memory objects (no entry points, no files but the caches):

1. :func:`score` — the quality method scores every image (cached per method x dataset);
2. :func:`select` — the images kept per template/video (top1 = the paper; topk, weighted, all);
3. :func:`embed` — the FR backbone embeds the kept images only (quality is cheap, FR is expensive);
4. :func:`compare` — template features, pair scores and pair quality (what EDC discards by);
5. :func:`measure` — every declared metric of the protocol (:mod:`fiqa_bench.metrics`).

Name resolution, option parsing and file writing live outside (:mod:`fiqa_bench.pipeline.runner`, the CLI).
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fiqa_bench.api import check_scores
from fiqa_bench.executors import Executor, LocalExecutor, StageContext
from fiqa_bench.executors.base import cache_root_of_driver
from fiqa_bench.metrics.base import MetricOptions, PairData, get_metric
from fiqa_bench.metrics.edc import pair_quality as combine_pair_quality
from fiqa_bench.pipeline.benchmark import Benchmark
from fiqa_bench.pipeline.stages import Skipped, call_adapter, scores_run_embeddings

log = logging.getLogger(__name__)

SELECTIONS = ("top1", "topk", "weighted", "all")


@dataclass(frozen=True)
class EvalOptions:
    """Settings of one evaluation that are not the protocol, backbone or method themselves."""

    selection: str = "top1"
    k: int = 3
    detector: str = "yunet"
    on_bad_image: str = "error"
    on_no_face: str = "error"
    metric_options: MetricOptions = field(default_factory=MetricOptions)
    batch_size: int = 32
    workers: int = 2
    progress: bool = False
    follow_symlinks: bool = False
    max_image_bytes: int = 64 * 2**20
    bootstrap: Any = None  # fiqa_bench.pipeline.uncertainty.BootstrapOptions; None: no intervals
    reuse_bootstrap: bool = True  # replicates from the user cache's replicate store when its inputs are the same

    def __post_init__(self) -> None:
        if self.selection not in SELECTIONS:
            raise ValueError(f"unknown selection {self.selection!r}; choose from {', '.join(SELECTIONS)}")
        if self.k < 1:
            raise ValueError("k must be >= 1")


@dataclass
class Evaluation:
    """What :func:`evaluate` returns: the metrics and counts of the record, and the raw arrays for the ``.npz``."""

    metrics: dict[str, Any]
    counts: dict[str, Any]
    timings: dict[str, Any]
    pairs: PairData
    raw: dict[str, np.ndarray]
    detector: str | None
    method_ran: bool


# ------------------------------------------------------------------------------------------------ stages
def select(groups: np.ndarray, quality: np.ndarray, available: np.ndarray, selection: str, k: int = 3) -> np.ndarray:
    """Image rows kept per group, ascending by group then rank.

    ``top1``: the highest quality of each group; ``topk``: the ``k`` highest (all when fewer); ``weighted`` and
    ``all``: every available image. **Ties** go to the image listed first in the protocol (lowest row), so the
    choice never depends on sort stability. Rows not ``available`` (skipped, or unscored) are never kept.
    """
    if selection not in SELECTIONS:
        raise ValueError(f"unknown selection {selection!r}")
    rows = np.flatnonzero(available)
    if selection in ("all", "weighted"):
        return rows
    g = np.asarray(groups, dtype=np.int64)[rows]
    q = np.asarray(quality, dtype=np.float64)[rows]
    # lexsort: last key is primary -> by group, then quality descending, then row ascending
    order = np.lexsort((rows, -q, g))
    rows, g = rows[order], g[order]
    first_of_group = np.r_[True, g[1:] != g[:-1]]
    start = np.maximum.accumulate(np.where(first_of_group, np.arange(g.shape[0]), 0))
    rank = np.arange(g.shape[0]) - start
    take = 1 if selection == "top1" else int(k)
    return rows[rank < take]


def _l2(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


def template_features(
    groups: np.ndarray, media: np.ndarray, rows: np.ndarray, emb: np.ndarray, quality: np.ndarray | None, selection: str
) -> tuple[np.ndarray, np.ndarray]:
    """(sorted group ids, L2-normalised features) from the embeddings ``emb`` of the kept ``rows``.

    * ``top1``: the one kept image's embedding;
    * ``topk``: the mean of the kept images' L2-normalised embeddings;
    * ``weighted``: every image, weighted by its quality rank among all scored images, in (0, 1] — scale-free,
      so methods whose scores live on different ranges pool the same way, and every image keeps some weight;
    * ``all``: insightface's pooling, quality ignored: mean per media, sum across media, L2-normalise.
    """
    from fiqa_bench.pipeline.pairscore import pool_templates

    g = np.asarray(groups, dtype=np.int64)[rows]
    feats = _l2(emb)
    if selection == "all":
        return pool_templates(feats, g, np.asarray(media, dtype=np.int64)[rows], mode="all")
    weights = None
    if selection == "weighted":
        ranks = pd.Series(np.asarray(quality)[rows]).rank(method="average").to_numpy()
        weights = (ranks / len(ranks)).astype(np.float32)
    return pool_templates(feats, g, None, mode="mean", weights=weights)


def template_quality(
    groups: np.ndarray, rows: np.ndarray, quality: np.ndarray, selection: str, template_ids: np.ndarray
) -> np.ndarray:
    """The quality of each template as EDC sees it, from the images kept for it: top1 the kept image's quality,
    topk the mean of the kept images', weighted and all the best image's (float64, NaN without quality)."""
    g = np.asarray(groups, dtype=np.int64)[rows]
    q = np.asarray(quality, dtype=np.float64)[rows]
    frame = pd.DataFrame({"g": g, "q": q})
    per = frame.groupby("g")["q"].mean() if selection == "topk" else frame.groupby("g")["q"].max()
    return per.reindex(template_ids).to_numpy(np.float64)


def _pairs_present(gids: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairs whose two groups both have a feature (the others lost every image to a counted skip)."""
    if len(gids) and gids.min() >= 0 and gids.max() < 50_000_000:
        have = np.zeros(int(max(gids.max(), a.max(initial=0), b.max(initial=0))) + 1, dtype=bool)
        have[gids] = True
        ok = (a >= 0) & (b >= 0)
        return ok & have[np.where(ok, a, 0)] & have[np.where(ok, b, 0)]
    return np.isin(a, gids) & np.isin(b, gids)


def compare(
    bench: Benchmark,
    rows: np.ndarray,
    emb: np.ndarray,
    quality: np.ndarray | None,
    selection: str,
    pair_quality_mode: str = "min",
) -> tuple[PairData, dict[str, np.ndarray], int]:
    """Template features of the kept rows, then scores and pair quality of every listed pair whose two sides
    have a feature. Returns (pair data, per-template arrays for the raw file, pairs dropped)."""
    from fiqa_bench.pipeline.pairscore import pair_scores

    faces = bench.faces
    groups = faces["group"].to_numpy(np.int64)
    gids, gfeats = template_features(groups, faces["media"].to_numpy(np.int64), rows, emb, quality, selection)
    pairs = bench.pairs
    a = pairs["a"].to_numpy(np.int64)
    b = pairs["b"].to_numpy(np.int64)
    present = _pairs_present(gids, a, b)
    a, b = a[present], b[present]
    scores = pair_scores(gids, gfeats, a, b)
    if quality is not None:
        tq = template_quality(groups, rows, quality, selection, gids)
    else:
        tq = np.full(gids.shape[0], np.nan)
    subject_codes, subject_names = pd.factorize(faces["identity"].astype(str))
    first_row = pd.Series(np.arange(len(groups))).groupby(groups).first()
    t_subject = subject_codes[first_row.reindex(gids).to_numpy(np.int64)].astype(np.int64)
    pos_a = template_rows(gids, a)
    pos_b = template_rows(gids, b)
    codes = None
    if quality is not None:
        pq = combine_pair_quality(tq[pos_a], tq[pos_b], pair_quality_mode)
        if pair_quality_mode == "min" and np.isfinite(tq).all():
            # the rank of the min is the min of the ranks: integer levels without sorting the pairs
            _, rank = np.unique(tq, return_inverse=True)
            rank = rank.reshape(-1)
            codes = np.minimum(rank[pos_a], rank[pos_b])
    else:
        pq = np.full(a.shape[0], np.nan)
    data = PairData(
        scores=np.asarray(scores, dtype=np.float32),
        labels=pairs["label"].to_numpy(np.int8)[present],
        folds=pairs["fold"].to_numpy(np.int64)[present],
        quality=pq,
        a=a,
        b=b,
        subject_a=t_subject[pos_a],
        subject_b=t_subject[pos_b],
        quality_codes=codes,
    )
    templates = {
        "template_ids": gids,
        "template_quality": tq,
        "template_subject": t_subject,
        "subjects": np.asarray(subject_names, dtype=str),
    }
    return data, templates, int((~present).sum())


def template_rows(template_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Row of each id in the sorted ``template_ids`` (a lookup table where the ids are small, as IJB's are)."""
    from fiqa_bench.pipeline.pairscore import _rows_of

    if ids.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    return _rows_of(template_ids, None, ids, "pair ids")


def measure(data: PairData, keys, options: MetricOptions) -> dict[str, Any]:
    """Every declared metric of ``keys`` on ``data``: ``{key: value}`` (a value may say it is unavailable)."""
    return {key: get_metric(key).measure(data, options) for key in keys}


# ------------------------------------------------------------------------------------------------ run
def score(
    method: Any, who: str, n: int, executor: Executor, skipped: dict[int, Skipped], embed_all=None
) -> tuple[np.ndarray, dict]:
    """Quality of every image (NaN where skipped), computed by ``executor``'s quality stage. ``embed_all``: for a
    method on the run's own FR features (``score_embeddings``), a function returning every image's embedding
    (the executor's embed stage); the method then scores them here, in the driver."""
    counts = {"images_scored_new": 0, "images_embedded_for_quality": 0}
    if embed_all is not None:
        emb_all, new = embed_all()
        counts["images_scored_new"] = new
        quality = np.full(n, np.nan, dtype=np.float32)
        ok = np.flatnonzero(np.isfinite(emb_all).all(axis=1))
        counts["images_embedded_for_quality"] = int(ok.size)
        if ok.size:
            out = call_adapter(who, method.score_embeddings, emb_all[ok])
            quality[ok] = check_scores(out, ok.size, who)
        return quality, counts
    values, new = executor.stage("quality", np.arange(n), skipped)
    counts["images_scored_new"] = new
    return values[:, 0], counts


def evaluate(
    bench: Benchmark,
    backbone: Any,
    method: Any | None,
    options: EvalOptions,
    *,
    backbone_name: str = "backbone",
    method_name: str = "method",
    method_cache_identity: str | None = None,
    dataset_id: str | None = None,
    executor: Executor | None = None,
    device: str = "cpu",
) -> Evaluation:
    """Run one evaluation of ``method`` (None: no quality method) with ``backbone`` on ``bench``.

    The method scores every image whenever it is given (single-image protocols too: EDC needs the quality of
    every comparison); selection needs it when templates have several images. Caches are keyed by the producers'
    identities (``method_cache_identity`` overrides the method's, e.g. to include its options) and the dataset.
    ``executor`` runs the score and embed stages (:mod:`fiqa_bench.executors`; default: local, in this process);
    ``device`` is where onnxruntime models run (it keys the caches when not ``cpu``)."""
    t0 = time.perf_counter()
    timings: dict[str, Any] = {}  # seconds per step, and whether the bootstrap replicates were reused
    faces = bench.faces
    n = len(faces)
    groups = faces["group"].to_numpy(np.int64)
    if dataset_id is None:
        dataset_id = bench.dataset_id()
    executor = executor if executor is not None else LocalExecutor()
    ctx = StageContext(
        options=options,
        dataset_id=dataset_id,
        method_cache_identity=method_cache_identity,
        backbone_name=backbone_name,
        method_name=method_name,
        device=device,
        cache_root=cache_root_of_driver(),
        run_id=uuid.uuid4().hex,
    )
    skipped: dict[int, Skipped] = {}
    who_b = f"backbone {backbone_name!r}"
    quality = None
    boot_raw: dict[str, np.ndarray] = {}
    counts_q = {"images_scored_new": 0, "images_embedded_for_quality": 0}

    try:
        executor.open(bench, backbone, method, ctx)  # inside: a failed start (a worker's build) is closed too
        if method is not None:
            who = f"quality method {method_name!r}"
            log.info("score: %s on %d images (%s)", who, n, executor.describe())
            t = time.perf_counter()
            embed_all = (
                (lambda: executor.stage("embed", np.arange(n), skipped))
                if scores_run_embeddings(method, backbone)
                else None
            )
            quality, counts_q = score(method, who, n, executor, skipped, embed_all)
            timings["quality_s"] = time.perf_counter() - t

        available = np.ones(n, dtype=bool)
        available[list(skipped)] = False
        if quality is not None:
            available &= np.isfinite(quality)
        kept = select(
            groups,
            np.nan_to_num(quality, nan=-np.inf) if quality is not None else np.zeros(n),
            available,
            options.selection,
            options.k,
        )
        log.info("select: %s kept %d of %d images (%d skipped)", options.selection, len(kept), n, len(skipped))
        t = time.perf_counter()
        emb, n_embedded_new = executor.stage("embed", kept, skipped)
        timings["embed_s"] = time.perf_counter() - t
        log.info(
            "embed: %s embedded %d images (%d new) in %.1f s", who_b, len(kept), n_embedded_new, timings["embed_s"]
        )
        seen = executor.report()
    finally:
        executor.close()

    ok = np.isfinite(emb).all(axis=1)
    rows_ok, emb = kept[ok], emb[ok]
    t = time.perf_counter()
    data, templates, dropped = compare(
        bench, rows_ok, emb, quality, options.selection, options.metric_options.pair_quality
    )
    timings["pair_scores_s"] = time.perf_counter() - t
    t = time.perf_counter()
    log.info(
        "compare: %d pairs scored (%d genuine, %d impostor), %d dropped",
        data.scores.shape[0],
        data.n_genuine,
        data.n_impostor,
        dropped,
    )
    metrics = measure(data, bench.metrics, options.metric_options)
    timings["metrics_s"] = time.perf_counter() - t
    log.info("measure: %s in %.2f s", ", ".join(bench.metrics), timings["metrics_s"])
    if options.bootstrap is not None and options.bootstrap.B > 0 and data.scores.shape[0]:
        t = time.perf_counter()
        if options.reuse_bootstrap:
            from fiqa_bench.pipeline.replicate_store import bootstrap_reusing

            done = bootstrap_reusing(
                data, metrics, options.metric_options, options.bootstrap, progress=options.progress
            )
            metrics, reps, reused = done.metrics, done.replicates, done.reused
        else:
            from fiqa_bench.pipeline.uncertainty import bootstrap

            metrics, reps = bootstrap(
                data, metrics, options.metric_options, options.bootstrap, progress=options.progress
            )
            reused = False
        boot_raw = {f"boot_{k}": v for k, v in reps.items()}
        timings["bootstrap_s"] = time.perf_counter() - t
        timings["bootstrap_reused"] = reused
        log.info(
            "bootstrap: B=%d over %d subjects in %.1f s (%s)",
            options.bootstrap.B,
            int(np.unique(np.r_[data.subject_a, data.subject_b]).size),
            timings["bootstrap_s"],
            "replicates reused from the cache" if reused else "computed",
        )

    reasons: dict[str, int] = {}
    for s in skipped.values():
        reasons[s.reason] = reasons.get(s.reason, 0) + 1
    counts = {
        "images": n,
        "templates": int(len(np.unique(groups))),
        "pairs": int(len(bench.pairs)),
        "pairs_scored": int(data.scores.shape[0]),
        "pairs_dropped": dropped,
        "genuine": data.n_genuine,
        "impostor": data.n_impostor,
        "subjects": int(np.unique(np.r_[data.subject_a, data.subject_b]).size) if data.scores.shape[0] else 0,
        "images_scored": int(np.isfinite(quality).sum()) if quality is not None else 0,
        **counts_q,
        "images_embedded": int(len(rows_ok)),
        "images_embedded_new": int(n_embedded_new),
        "fallback_landmarks": len(seen.fallback_rows),
        "skipped": len(skipped),
        "skipped_reasons": reasons,
        "skipped_files": [s.path for s in sorted(skipped.values(), key=lambda s: s.row)][:100],
    }
    counts["landmarks_rejected"] = seen.landmark_rejections()
    counts["cache_shards_rejected"] = seen.shards_rejected()
    image_quality = quality.astype(np.float32) if quality is not None else np.full(n, np.nan, np.float32)
    raw = {
        "pair_a": data.a,
        "pair_b": data.b,
        "pair_scores": data.scores,
        "pair_labels": data.labels,
        "pair_folds": data.folds,
        "pair_quality": data.quality,
        **templates,
        "kept_rows": rows_ok.astype(np.int64),
        "kept_group": groups[rows_ok],
        "kept_quality": image_quality[rows_ok],
        "kept_paths": faces["path"].astype(str).to_numpy()[rows_ok],
        "image_quality": image_quality,
        "image_group": groups,
        "kept_embeddings": emb,  # written only where asked for (run --keep-embeddings)
        **boot_raw,
    }
    timings["evaluate_s"] = time.perf_counter() - t0
    return Evaluation(
        metrics=metrics,
        counts=counts,
        timings=timings,
        pairs=data,
        raw=raw,
        detector=seen.detector,
        method_ran=quality is not None,
    )


def pairdata_from_raw(raw) -> PairData:
    """The :class:`PairData` a results file's ``.npz`` holds (what ``rescore`` and the bootstrap read)."""
    t_ids = raw["template_ids"]
    t_subject = raw["template_subject"]
    a, b = raw["pair_a"], raw["pair_b"]
    pos_a, pos_b = template_rows(t_ids, a), template_rows(t_ids, b)
    return PairData(
        scores=raw["pair_scores"],
        labels=raw["pair_labels"],
        folds=raw["pair_folds"],
        quality=raw["pair_quality"],
        a=a,
        b=b,
        subject_a=t_subject[pos_a],
        subject_b=t_subject[pos_b],
    )
