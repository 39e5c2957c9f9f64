"""The executor seam: how the per-image stages (score, embed) of one evaluation are run over image rows.

:func:`fiqa_bench.pipeline.evaluation.evaluate` asks its executor for the values of a stage on some rows; the executor
decides where they are computed. Every executor computes a row with the same code (:class:`StageWorker`, which
calls :func:`fiqa_bench.pipeline.stages.per_image_stage` with a :class:`~fiqa_bench.pipeline.stages.FaceSource`)
and the same
caches, so the values of a row never depend on the executor; the driver places them by row, so metrics do not
depend on the order shards finish in.

* ``local`` (:mod:`.local`): one worker in this process over all rows at once (the default; what runs always did).
* ``ray`` (:mod:`.ray`): Ray actors, each holding one worker (one model session), over shards of rows.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fiqa_bench.api import check_embeddings, check_scores
from fiqa_bench.data.cache import ArrayCache
from fiqa_bench.pipeline.stages import FaceSource, Skipped, call_adapter, per_image_stage

STAGES = ("quality", "embed")


@dataclass(frozen=True)
class StageContext:
    """What a worker needs besides the adapters and the benchmark (picklable: it travels to Ray actors).

    ``cache_root``: the cache folder (``FIQA_BENCH_CACHE``) the driver uses, which every worker must write to;
    ``device``: where onnxruntime models run (a device other than the CPU keys the caches apart, since its
    floating-point results may differ in the last bits)."""

    options: Any  # fiqa_bench.pipeline.evaluation.EvalOptions
    dataset_id: str
    method_cache_identity: str | None = None
    backbone_name: str = "backbone"
    method_name: str = "method"
    device: str = "cpu"
    cache_root: str | None = None
    faces_sha256: str | None = None  # the driver's benchmark, which a remote worker's must equal
    cwd: str | None = None  # the driver's working folder: relative paths of the run mean the same on a worker
    run_id: str | None = None  # this evaluation's tag: a shard sent again counts what its lost attempt computed


@dataclass
class SourceReport:
    """What the face source and caches saw, merged over workers: rows aligned on a centred fallback, rows whose
    landmarks were rejected (row -> category), cache shards rejected, the detector's identity (None: none ran)."""

    fallback_rows: set = field(default_factory=set)
    rejected_landmarks: dict = field(default_factory=dict)
    rejected_shards: int = 0
    detector: str | None = None
    rejected_shard_files: set = field(default_factory=set)  # by path: several workers may reject the same one

    def merge(self, other: SourceReport) -> None:
        self.fallback_rows |= set(other.fallback_rows)
        self.rejected_landmarks.update(other.rejected_landmarks)
        self.rejected_shards += int(other.rejected_shards)
        self.rejected_shard_files |= set(other.rejected_shard_files)
        self.detector = self.detector or other.detector

    def shards_rejected(self) -> int:
        """Cache shards that failed their checks: counted, plus those known by path (each once)."""
        return int(self.rejected_shards) + len(self.rejected_shard_files)

    def landmark_rejections(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for category in self.rejected_landmarks.values():
            counts[category] = counts.get(category, 0) + 1
        return dict(sorted(counts.items()))


def producer_identity(identity: str, device: str) -> str:
    """The cache identity of a model's values on ``device``: unchanged on the CPU (existing caches stay valid),
    suffixed elsewhere so GPU and CPU values never share a cache folder."""
    return identity if device == "cpu" else f"{identity}|device={device}"


BACKGROUND_NICE = 10  # how much lower the decoding threads of the embed stage run than the model's threads


def background_thread() -> None:
    """Thread-pool initializer: this thread runs at a lower priority (Linux: per-thread niceness), so that it
    takes the cores the model's own threads leave idle instead of stalling them. Used for the embed stage, where
    the FR model keeps every core busy and decoding the next batch is a few percent of the work: at equal
    priority a decoding thread preempts one of onnxruntime's threads and the others wait for it at the next
    barrier. Elsewhere (or where the system refuses) nothing changes."""
    import sys
    import threading

    if sys.platform.startswith("linux"):
        try:
            os.setpriority(
                os.PRIO_PROCESS,
                threading.get_native_id(),
                os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) + BACKGROUND_NICE,
            )
        except (OSError, AttributeError):
            pass


class StageWorker:
    """One process's means to compute a stage on rows: the adapters, a face source, the caches, a thread pool.

    The local executor holds one built from the driver's objects; each Ray actor builds its own from a spec."""

    def __init__(self, bench, backbone, method, ctx: StageContext, track_run: str | None = None):
        """``track_run``: the caches keep the keys of this tag's units of work (see :class:`ArrayCache`); a worker
        of a sharded executor passes its stage's tag."""
        self.bench, self.backbone, self.method, self.ctx = bench, backbone, method, ctx
        options = ctx.options
        self.options = options
        self.source = FaceSource(
            bench,
            options.detector,
            options.on_bad_image,
            options.on_no_face,
            options.workers,
            follow_symlinks=options.follow_symlinks,
            max_image_bytes=options.max_image_bytes,
        )
        self.pool = ThreadPoolExecutor(max_workers=max(1, options.workers))
        self.embed_pool: ThreadPoolExecutor | None = None  # the embed stage's, at a lower priority (created once)
        self.who_b = f"backbone {ctx.backbone_name!r}"
        self.who_m = f"quality method {ctx.method_name!r}"
        self.ecache = ArrayCache.for_producer(
            "embeddings",
            producer_identity(backbone.identity(), ctx.device),
            ctx.dataset_id,
            backbone.card.embedding_dim,
            track_run=track_run,
        )
        self.qcache = None
        if method is not None:
            ident = producer_identity(ctx.method_cache_identity or method.identity(), ctx.device)
            self.qcache = ArrayCache.for_producer("quality", ident, ctx.dataset_id, 1, track_run=track_run)

    # -- the two producers ------------------------------------------------------------------------
    # The adapter's input (``to_input``: the aligned crops) is made on the face source's pool beside the decoding
    # (per_image_stage's ``prepare``), so the calling thread runs the models only.
    def _embed_input(self, batch_faces: list):
        from fiqa_bench.faces.pipeline import to_input

        return to_input(batch_faces, self.backbone.card.input)

    def _score_input(self, batch_faces: list):
        from fiqa_bench.faces.pipeline import to_input

        return to_input(batch_faces, self.method.card.input)

    def _embed_fn(self, batch_faces: list, inputs) -> np.ndarray:
        out = call_adapter(
            self.who_b, self.backbone.embed, inputs, f" (first image of the batch: {batch_faces[0].path})"
        )
        return check_embeddings(out, len(batch_faces), self.backbone.card.embedding_dim, self.who_b)

    def _score_fn(self, batch_faces: list, inputs) -> np.ndarray:
        out = call_adapter(self.who_m, self.method.score, inputs, f" (first image of the batch: {batch_faces[0].path})")
        return check_scores(out, len(batch_faces), self.who_m)[:, None]

    def caches(self, stage: str) -> tuple[ArrayCache, int, Any, Any]:
        """(cache, width, compute function, its input preparation) of ``stage``."""
        if stage == "embed":
            return self.ecache, self.backbone.card.embedding_dim, self._embed_fn, self._embed_input
        if stage == "quality":
            if self.qcache is None:
                raise ValueError("the quality stage needs a quality method")
            return self.qcache, 1, self._score_fn, self._score_input
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")

    def run(
        self,
        stage: str,
        rows: np.ndarray,
        skipped: dict[int, Skipped],
        cache: ArrayCache | None = None,
        progress: bool | None = None,
    ) -> tuple[np.ndarray, int]:
        """(values (len(rows), width), images computed now) of ``stage`` on ``rows``; ``skipped`` as in
        :func:`~fiqa_bench.pipeline.stages.per_image_stage` (read and extended)."""
        own, width, compute, prepare = self.caches(stage)
        pool = self.pool
        if stage == "embed":
            if self.embed_pool is None:
                self.embed_pool = ThreadPoolExecutor(
                    max_workers=max(1, self.options.workers), initializer=background_thread
                )
            pool = self.embed_pool
        cache = own if cache is None else cache  # not ``cache or own``: an empty cache's view is falsy (len 0)
        return per_image_stage(
            stage,
            np.asarray(rows, dtype=np.int64),
            self.source,
            cache,
            width,
            compute,
            pool,
            skipped,
            self.options.batch_size,
            self.options.progress if progress is None else progress,
            prepare=prepare,
        )

    def report(self, rows: np.ndarray | None = None) -> SourceReport:
        """The face source's findings (restricted to ``rows`` when given) and the caches' rejected shards."""
        fallback = set(getattr(self.source, "fallback_rows", set()))
        rejected = dict(getattr(self.source, "rejected_landmarks", {}) or {})
        if rows is not None:
            wanted = set(np.asarray(rows).tolist())
            fallback &= wanted
            rejected = {r: c for r, c in rejected.items() if r in wanted}
        shards = [getattr(c, "rejected_shards", 0) for c in (self.ecache, self.qcache) if c is not None]
        shards.append(getattr(self.source, "rejected_shards", 0))
        return SourceReport(
            fallback_rows=fallback,
            rejected_landmarks=rejected,
            rejected_shards=int(sum(int(x) for x in shards if isinstance(x, int))),
            detector=self.source.detector_identity(),
        )

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        if self.embed_pool is not None:
            self.embed_pool.shutdown(wait=True)


class Executor(ABC):
    """Runs the per-image stages of one evaluation. :meth:`open` is given the driver's objects and context
    before the first stage, :meth:`close` is called once at the end (also after an error)."""

    name: str = ""

    @classmethod
    def from_run(cls, build, config) -> Executor:
        """The executor for a run: ``build`` is the picklable recipe workers rebuild the run's adapters from,
        ``config`` the run's configuration (its executor settings, e.g. ``ray_address``, are read by name). Called
        through the registry (entry-point group ``fiqa_bench.executors``), so an executor from another package is
        chosen with ``--executor NAME`` like the built-ins."""
        return cls(build)  # type: ignore[call-arg]  # an executor keeping this default takes the recipe alone

    @abstractmethod
    def open(self, bench, backbone, method, ctx: StageContext) -> None: ...

    @abstractmethod
    def stage(self, stage: str, rows: np.ndarray, skipped: dict[int, Skipped]) -> tuple[np.ndarray, int]:
        """(values (len(rows), width), images computed now); rows skipped now are added to ``skipped``."""

    @abstractmethod
    def report(self) -> SourceReport: ...

    def describe(self) -> str:
        return self.name

    # B027: an optional hook, not an abstract method: an executor that holds no workers or cluster has nothing to close
    def close(self) -> None:  # noqa: B027
        pass


def cache_root_of_driver() -> str:
    from fiqa_bench.data.paths import cache_dir

    return os.path.abspath(str(cache_dir()))
