"""The ``local`` executor: every stage on this machine. The default; what runs always did.

A stage of fewer than ``min_process_rows`` rows (or any stage, without a recipe to rebuild the adapters from)
runs in this process through one :class:`StageWorker` (its face source's threads decode and align; the adapters
run in the calling thread). A larger stage, when the run was built from a :class:`~fiqa_bench.config.RunConfig`
and asked for more than one worker, runs on worker processes (:mod:`.processes`: no interpreter lock shared by
the image path, one inference thread each), started at its first large stage and kept for the next. Both give
the same values, counts and skips; only the speed differs (starting the processes costs about a second, which a
stage of ``min_process_rows`` images repays).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable

import numpy as np

from fiqa_bench.executors.base import Executor, SourceReport, StageContext, StageWorker
from fiqa_bench.pipeline.stages import Skipped

log = logging.getLogger(__name__)

MIN_PROCESS_ROWS = 8192  # below this, starting the worker processes costs more than it saves (2 cores)


class LocalExecutor(Executor):
    """``build``: the picklable recipe of the run's adapters (:class:`fiqa_bench.resolve.ConfigBuild`), which worker
    processes need; None: every stage in this process. ``processes``: worker processes for a large stage (0: one
    per decode worker of the run, at most the CPUs; 1: none). ``min_process_rows``: the smallest stage sent to
    them."""

    name = "local"

    @classmethod
    def from_run(cls, build, config) -> LocalExecutor:
        if getattr(config, "ray_address", None) is not None:
            from fiqa_bench.errors import OptionError

            raise OptionError("--ray-address needs --executor ray")
        return cls(build)

    def __init__(
        self, build: Callable | None = None, *, processes: int = 0, min_process_rows: int = MIN_PROCESS_ROWS
    ) -> None:
        self.build = build
        self.processes = int(processes)
        self.min_process_rows = int(min_process_rows)
        self.worker: StageWorker | None = None
        self.pool = None
        self.ctx: StageContext | None = None
        self.widths: dict[str, int] = {}
        self.restarts = 0  # worker processes lost (killed, out of memory) and replaced during the run
        self.used_processes = 0  # worker processes started (0: every stage ran in this process)
        self.stale = False  # the workers wrote values this process's caches have not read
        self.carried = 0
        self.no_processes: str | None = None  # why the worker processes could not start (then: none)
        self.usage: dict[int, dict] = {}

    def open(self, bench, backbone, method, ctx: StageContext) -> None:
        self.worker = StageWorker(bench, backbone, method, ctx)
        self.ctx = dataclasses.replace(ctx, cwd=os.getcwd())
        self.widths = {"embed": int(backbone.card.embedding_dim), "quality": 1}

    def process_count(self) -> int:
        from fiqa_bench.executors.processes import default_processes

        if self.build is None or self.ctx is None:
            return 1
        return self.processes if self.processes > 0 else default_processes(self.ctx.options.workers)

    def uses_processes(self, n_rows: int) -> bool:
        """Whether a stage of ``n_rows`` rows runs on worker processes."""
        return self.process_count() > 1 and n_rows >= self.min_process_rows

    def stage(self, stage: str, rows: np.ndarray, skipped: dict[int, Skipped]) -> tuple[np.ndarray, int]:
        assert self.worker is not None and self.ctx is not None, "open() first"
        pool = self._pool() if self.uses_processes(len(rows)) else None
        if pool is None:
            if self.stale:
                self._reread_caches()
            return self.worker.run(stage, rows, skipped)
        batch = int(self.ctx.options.batch_size)
        # whole batches (an adapter sees the batches it sees in one process), about 8 shards per process
        shard = max(1, -(-len(rows) // (8 * pool.processes * batch))) * batch
        values, computed = pool.stage(stage, rows, skipped, self.widths[stage], min(shard, 64 * batch))
        self.stale = True  # this process's caches miss what the workers wrote: reread before a stage here
        return values, computed

    def _pool(self):
        """The worker processes (started at the first large stage), or None when they cannot build the run's
        adapters although this process could (e.g. a method registered at run time, not through an entry
        point): the stage then runs here, with a warning, rather than not at all."""
        from fiqa_bench.errors import FiqaBenchError
        from fiqa_bench.executors.processes import ProcessPool

        if self.pool is None and not self.no_processes:
            assert self.worker is not None and self.ctx is not None, "open() first"
            options = dataclasses.replace(self.ctx.options, workers=1, progress=False)  # one loader per process
            # the workers check that they read the same image list (the sha256 is computed here, once)
            ctx = dataclasses.replace(
                self.ctx, options=options, faces_sha256=self.worker.bench.fingerprint()["faces_sha256"]
            )
            pool = ProcessPool(self.build, ctx, self.process_count())
            try:
                pool.start()
            except FiqaBenchError as exc:
                self.no_processes = str(exc)
                log.warning("local: the worker processes could not start (%s); running in this process", exc)
                return None
            self.pool = pool
            self.used_processes = pool.processes
        return self.pool

    def _reread_caches(self) -> None:
        """After the processes wrote a stage's values: this process's worker reads the caches again (a later
        small stage finds them), keeping its adapters and its face source's findings."""
        self.stale = False
        old = self.worker
        assert old is not None, "open() first"
        report = old.report()
        self.worker = StageWorker(old.bench, old.backbone, old.method, old.ctx)
        self.worker.source.fallback_rows |= report.fallback_rows
        self.worker.source.rejected_landmarks.update(report.rejected_landmarks)
        self.carried += int(report.rejected_shards)  # the old worker's rejected cache shards stay counted
        old.close()

    def report(self) -> SourceReport:
        assert self.worker is not None, "open() first"
        seen = self.worker.report()
        seen.rejected_shards += self.carried
        if self.pool is not None:
            seen.merge(self.pool.seen)
        return seen

    def describe(self) -> str:
        if self.used_processes:
            return f"local, {self.used_processes} worker processes for stages of >= {self.min_process_rows} images"
        return "local"

    def worker_usage(self) -> dict:
        """Worker processes used: their count, CPU seconds in all and the largest peak memory (MiB) of one."""
        usage = list(self.usage.values())
        return {
            "processes": self.used_processes,
            "cpu_s": round(sum(u["cpu_s"] for u in usage), 2),
            "peak_rss_mib": round(max((u["peak_rss_mib"] for u in usage), default=0.0), 1),
        }

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()
        if self.pool is not None:
            self.restarts = self.pool.restarts
            self.usage = dict(self.pool.usage)
            self.pool.close()
            self.pool = None
