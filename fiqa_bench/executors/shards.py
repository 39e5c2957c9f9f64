"""What a worker process of a sharded executor holds and does, shared by the ``ray`` executor's actors and the
``local`` executor's worker processes (:mod:`.processes`).

A worker rebuilds the run's adapters from a picklable recipe (e.g. :class:`fiqa_bench.resolve.ConfigBuild`: the
run's registry names and options, the protocol folder; the executors only call it), holds ONE
:class:`~.base.StageWorker` (one model session, one face source, the caches) and computes shards of rows
(:meth:`ShardWorker.run`); errors of ours travel back as (class, args, attributes) and are raised again in the
driver with the same one-line message (:func:`portable_error`, :func:`reraise`).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fiqa_bench.errors import FiqaBenchError
from fiqa_bench.executors.base import StageContext, StageWorker
from fiqa_bench.pipeline.stages import Skipped


def portable_error(exc: BaseException) -> tuple:
    """An error of ours as (class, args, attributes), rebuilt in the driver by :func:`_reraise` (its own
    constructor may take other arguments than its ``args``, so plain pickling could fail)."""
    state = dict(vars(exc))
    try:
        pickle.dumps(state)
    except Exception:  # noqa: BLE001 - attributes that do not pickle are dropped; the message stays
        state = {}
    return type(exc), exc.args, state, str(exc)


def reraise(error: tuple):
    cls, args, state, message = error
    try:
        exc = cls.__new__(cls)
        BaseException.__init__(exc, *args)
        exc.__dict__.update(state)
        str(exc)
    except Exception:  # noqa: BLE001 - an error class we cannot rebuild: its message as a plain error
        exc = FiqaBenchError(message)
    raise exc


def process_usage() -> dict:
    """This process's CPU seconds so far and its peak resident memory (MiB): a worker's cost, which the driver
    cannot read itself (the workers are not its children)."""
    import resource

    t = os.times()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"cpu_s": t.user + t.system, "peak_rss_mib": rss}


class ShardWorker:
    """A Ray actor or a worker process: builds its worker once (``build()`` then :class:`StageWorker`), then
    computes shards. ``RAY``: how its errors name it (a Ray node, or a local process)."""

    RAY = True

    def __init__(self, build: Callable, ctx: StageContext, threads: int | None = None):
        self.pid = os.getpid()
        self.error = None
        self.ctx = ctx
        self.worker: StageWorker | None = None
        self.epoch: int | None = None
        self.unreported: set[str] = set()  # rejected cache shards (paths) not yet reported to the driver
        self.detection_reported = 0
        try:
            if ctx.cache_root:
                os.environ["FIQA_BENCH_CACHE"] = ctx.cache_root  # the driver's cache folder, on shared storage
            if ctx.cwd and os.path.isdir(ctx.cwd):  # relative protocol/model paths as the driver reads them
                os.chdir(ctx.cwd)
            if threads and "FIQA_BENCH_THREADS" not in os.environ:  # inference threads: the actor's CPUs
                os.environ["FIQA_BENCH_THREADS"] = str(threads)
            from fiqa_bench import device

            device.set_device(ctx.device)
            self.bench, self.backbone, self.method = build()
            got = self.bench.fingerprint()["faces_sha256"]
            if ctx.faces_sha256 and got != ctx.faces_sha256:
                raise FiqaBenchError(
                    f"{self.who()}: benchmark {self.bench.root} lists other "
                    f"images than the driver's (faces sha256 {got[:16]}, driver "
                    f"{ctx.faces_sha256[:16]}); the data root must be the same shared folder"
                )
            self.worker = StageWorker(self.bench, self.backbone, self.method, ctx)  # the session is loaded here
            self._note_rejections()
        except FiqaBenchError as exc:  # the driver built the same adapters: what fails here is this node's
            hint = " (is the path the same on every node, on shared storage?)" if self.RAY else ""
            self.error = portable_error(
                exc if str(exc).startswith(self.who()) else FiqaBenchError(f"{self.who()}: {exc}{hint}")
            )
        except Exception as exc:  # noqa: BLE001 - e.g. a plugin not installed on this node: say so in one line
            hint = (
                " (every node needs the same environment: fiqa-bench, its extras and plugins)"
                if self.RAY
                else " (an adapter registered in the driver only, not through an entry point?)"
            )
            self.error = portable_error(
                FiqaBenchError(f"{self.who()} could not build the run's adapters: {type(exc).__name__}: {exc}{hint}")
            )

    def _note_rejections(self) -> None:
        """The cache shards the worker's caches rejected on load, by path (the driver counts each once, however
        many workers read it before the first set it aside); one listed while another worker merged and removed
        it is not damage, and not counted."""
        assert self.worker is not None  # called once the worker is built
        for cache in (self.worker.ecache, self.worker.qcache):
            if cache is None:
                continue
            self.unreported |= {
                str(Path(cache.folder) / n)
                for n, why in cache.rejected_reasons.items()
                if "FileNotFoundError" not in why
            }

    def _fresh_worker(self, epoch: int) -> None:
        """A new face source and caches read from the shared folder (what every worker wrote in the stages
        before: no row is computed twice); the adapters are kept. The caches keep the keys of the units of work
        of this run's stage ``epoch`` that are already on disk (a shard sent again after its worker died finds
        what its lost attempt flushed; see :meth:`run`)."""
        assert self.worker is not None  # built in __init__ (run() returns first when the build failed)
        self.worker.close()
        self.worker = StageWorker(self.bench, self.backbone, self.method, self.ctx, track_run=self._tag(epoch))
        self.detection_reported = 0
        self._note_rejections()

    def ready(self) -> dict:
        """This process's id and node, and the error its build raised (if any)."""
        return {"pid": self.pid, "node": self.node(), "error": self.error}

    def node(self) -> str:
        return os.uname().nodename

    def who(self) -> str:
        """How errors of this worker's own making name it (one line: which machine, which process)."""
        return f"Ray worker on {os.uname().nodename}" if self.RAY else f"worker process {self.pid}"

    def _tag(self, epoch: int, start: int | None = None) -> str | None:
        """``RUN/EPOCH`` (a stage of this run: what the caches track) or ``RUN/EPOCH/START`` (one shard of it: what
        its cache files carry); None without a run id."""
        if not self.ctx.run_id:
            return None
        return f"{self.ctx.run_id}/{epoch}" + ("" if start is None else f"/{start}")

    def run(self, stage: str, epoch: int, rows: np.ndarray, skipped_items: list, start: int) -> dict:
        """The values of ``stage`` on ``rows`` (shard), with the skips it found and what its source saw.
        ``epoch``: the driver's stage number; a new one rereads the shared caches first. ``start``: the shard's
        first position in the stage's rows, which names the unit of work in the cache (run/epoch/start): an
        attempt sent again after a worker died counts the values its lost attempt flushed as computed now, as
        they were computed by this run (the count then equals the in-process run's)."""
        if self.error is not None:
            return {"error": self.error, "pid": self.pid}
        try:
            if epoch != self.epoch:
                self._fresh_worker(epoch)
                self.epoch = epoch
            assert self.worker is not None  # built in __init__ (self.error is None)
            skipped = {int(r): Skipped(int(r), p, why) for r, p, why in skipped_items}
            before = set(skipped)
            base = self.worker.caches(stage)[0]
            view = base.view(self._tag(epoch, start))
            values, computed = self.worker.run(stage, rows, skipped, cache=view, progress=False)
            computed += len(view.reused)
            # the face source's detection cache merges the shards it wrote at the end of every shard: forget the
            # merged ones (they stay on disk), so the next shard's merge is its own, not the actor's whole history
            detections = getattr(self.worker.source, "_det_cache", None)
            if detections is not None:
                detections.forget_written()
            report = self.worker.report(rows)
            # quality/embedding shards counted by name, once per actor; the detection cache's by its own count
            detection = int(getattr(self.worker.source, "rejected_shards", 0) or 0)
            report.rejected_shards = detection - self.detection_reported
            report.rejected_shard_files = set(self.unreported)
            self.unreported, self.detection_reported = set(), detection
            new = [(s.row, s.path, s.reason) for r, s in skipped.items() if r not in before]
            return {
                "values": values,
                "computed": int(computed),
                "skipped": new,
                "report": report,
                "pid": self.pid,
                "usage": process_usage(),
            }
        except FiqaBenchError as exc:
            return {"error": portable_error(exc), "pid": self.pid}
