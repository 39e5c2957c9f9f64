"""Worker processes for the ``local`` executor: a large stage over shards of rows on this machine's cores.

Threads in one interpreter share its lock: the Python between the C calls of the image path (file checks, cache
keys, landmark checks, batching) serialises, and a 2-core machine ran the quality stage at 0.4 of decode-only
speed with half its CPU time idle. Worker processes each hold a :class:`~.shards.ShardWorker` (one model
session with one inference thread, one face source, the caches), rebuilt from the run's picklable recipe
(:class:`fiqa_bench.resolve.ConfigBuild`) as Ray actors are; the driver sends shards of whole batches and places each
shard's values by row, so values, counts and skips equal the in-process path's whatever order shards finish in.

Processes start from a fork server (``multiprocessing`` "forkserver": a clean single-threaded process that imported
fiqa-bench once), never by forking the driver, whose model sessions and thread pools must not be copied. Every
worker writes the cache shards it computes into the shared cache folder (named by time and process id; only their
writer merges them). A worker that dies (killed, out of memory) breaks the pool: the pool is started again and
the shards not yet returned are sent again, reusing what the lost workers had flushed to the cache (and counting
it as computed by this run: each shard's cache files carry its tag, see :meth:`.shards.ShardWorker.run`); after
``max_restarts`` such losses the run stops with one line.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from fiqa_bench.errors import FiqaBenchError
from fiqa_bench.executors.base import SourceReport, StageContext
from fiqa_bench.executors.shards import ShardWorker, reraise
from fiqa_bench.pipeline.stages import Skipped

log = logging.getLogger(__name__)

_WORKER: ShardWorker | None = None  # the worker of this process (in a worker process only)

# what the fork server imports once, so that each worker starts in milliseconds, not a second
PRELOAD = ["numpy", "cv2", "onnxruntime", "fiqa_bench.executors.processes", "fiqa_bench.pipeline.runner"]


class ProcessShardWorker(ShardWorker):
    RAY = False


def _init(build: Callable, ctx: StageContext, threads: int) -> None:
    global _WORKER
    _WORKER = ProcessShardWorker(build, ctx, threads)


def _ready() -> dict:
    assert _WORKER is not None  # set by _init, the pool's initializer
    return _WORKER.ready()


def _run(stage: str, epoch: int, rows: np.ndarray, items: list, start: int) -> dict:
    assert _WORKER is not None  # set by _init, the pool's initializer
    return _WORKER.run(stage, epoch, rows, items, start)


class ProcessPool:
    """``processes`` worker processes computing shards of a stage (see the module doc)."""

    def __init__(self, build: Callable, ctx: StageContext, processes: int, *, threads: int = 1, max_restarts: int = 3):
        self.build, self.ctx = build, ctx
        self.processes = int(processes)
        self.threads = int(threads)
        self.max_restarts = int(max_restarts)
        self.restarts = 0
        self.pool: ProcessPoolExecutor | None = None
        self.start_seconds = 0.0
        self.epoch = 0
        self.seen = SourceReport()
        self.usage: dict[int, dict] = {}  # worker pid -> its CPU seconds and peak memory at its last shard

    def start(self) -> float:
        """Start the processes and wait until each has built its worker; seconds it took (the first start also
        starts the fork server). A worker's failed build is raised here, as the driver would raise it."""
        t = time.perf_counter()
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        self.pool = ProcessPoolExecutor(
            self.processes, mp_context=context, initializer=_init, initargs=(self.build, self.ctx, self.threads)
        )
        # one ready() per process: the pool starts its processes on demand, so ask as many as it has
        states = [f.result() for f in [self.pool.submit(_ready) for _ in range(self.processes)]]
        for state in states:
            if state["error"] is not None:
                self.close()
                reraise(state["error"])
        self.start_seconds = time.perf_counter() - t
        log.info("local: %d worker processes started in %.2f s", self.processes, self.start_seconds)
        return self.start_seconds

    def stage(
        self, stage: str, rows: np.ndarray, skipped: dict[int, Skipped], width: int, shard_rows: int
    ) -> tuple[np.ndarray, int]:
        """(values by row, images computed now) of ``stage`` on ``rows``; skips found are added to ``skipped``.
        The first error in row order is raised (shards after it are not waited for)."""
        if self.pool is None:
            self.start()
        self.epoch += 1
        rows = np.asarray(rows, dtype=np.int64)
        values = np.full((len(rows), width), np.nan, dtype=np.float32)
        todo = list(range(0, len(rows), shard_rows))
        computed = 0
        errors: dict[int, tuple] = {}
        while todo:
            pending = {}
            assert self.pool is not None  # started above, or again by _restart after a broken round
            for start in todo:
                shard = rows[start : start + shard_rows]
                items = [(r, skipped[r].path, skipped[r].reason) for r in shard.tolist() if r in skipped]
                pending[self.pool.submit(_run, stage, self.epoch, shard, items, start)] = start
            todo = []
            broken = False
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    start = pending.pop(future)
                    try:
                        out = future.result()
                    except BrokenProcessPool:
                        broken = True
                        todo.append(start)
                        continue
                    if "error" in out:
                        errors[start] = out["error"]
                        continue
                    self.usage[out["pid"]] = out["usage"]
                    values[start : start + len(out["values"])] = out["values"]
                    computed += out["computed"]
                    for r, p, why in out["skipped"]:
                        skipped[int(r)] = Skipped(int(r), p, why)
                    self.seen.merge(out["report"])
                if errors:  # only shards before the first error can hold an earlier one
                    for future, start in list(pending.items()):
                        if start > min(errors) and future.cancel():
                            pending.pop(future)
            if errors:
                reraise(errors[min(errors)])
            if broken:
                self._restart()
                todo = sorted(todo)
        return values, computed

    def _restart(self) -> None:
        """A worker died: start the pool again (its shards are sent again by the caller), or give up."""
        self.restarts += 1
        self.shutdown(wait=False)
        if self.restarts > self.max_restarts:
            raise FiqaBenchError(
                f"a worker process died {self.restarts} times (killed, or out of memory?); "
                f"run again to resume from the cache, or use --workers 1"
            )
        log.warning(
            "local: a worker process died; restarting the pool (%d/%d) and retrying its shards",
            self.restarts,
            self.max_restarts,
        )
        self.start()

    def shutdown(self, wait: bool = True) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=wait, cancel_futures=True)
            self.pool = None

    def close(self) -> None:
        self.shutdown()


def default_processes(workers: int) -> int:
    """Worker processes of a large local stage: one per decode worker the run asked for, at most the CPUs."""
    return max(1, min(int(workers), os.cpu_count() or 1))
