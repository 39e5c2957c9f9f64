"""The ``ray`` executor: the score and embed stages over shards of image rows on Ray actors (``--executor ray``).

Each actor holds ONE worker (:class:`~.base.StageWorker`: one model session, one face source, the caches). An
adapter object with an onnxruntime session does not pickle, so an actor builds its own from a picklable recipe
(:class:`fiqa_bench.resolve.ConfigBuild`: the run's registry names and options, the
protocol folder) and the :class:`~.base.StageContext` (dataset id, cache identities, face-source options, the
cache folder). The driver splits the rows into shards (whole batches, so every adapter call sees the batch it
sees locally), sends them to the actors, and places each shard's values by row: metrics and raw arrays equal
``local``'s whatever the order shards finish in.

Every worker writes the cache shards it computes into the shared cache folder (``FIQA_BENCH_CACHE``, which must
be on storage every node sees, like the data root and the model files). Shard files are named by time and
process id and only their writer merges or removes them, so concurrent writers never clobber each other.

Failures: an actor whose process dies (a node lost, a kill, out of memory) is restarted and its unfinished
shards are retried (``max_restarts`` / ``max_task_retries``); a retried shard reuses whatever its first attempt
flushed to the cache, and counts it as computed by this run (its cache files carry the shard's tag). An error of
ours on a worker (a bad image, an adapter that raised) is raised in the driver as the same error, with the same
one-line message.

Methods on the run's own FR features (``score_embeddings``, e.g. ``norm``) work: the embed stage runs on the
actors and the method scores the embeddings in the driver. Methods that need the run's backbone
(``card.needs_backbone``) work: each actor rebuilds the backbone and the method on it.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from fiqa_bench.errors import FiqaBenchError, MissingDependencyError
from fiqa_bench.executors.base import Executor, SourceReport, StageContext
from fiqa_bench.executors.shards import ShardWorker, reraise
from fiqa_bench.pipeline.stages import Skipped

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'fiqa-bench[ray]'"
SHARD_SIZE = 1024  # rows per Ray task (rounded up to whole batches)
IN_FLIGHT = 2  # tasks queued per actor, so an actor never waits for the driver between shards


def require_ray():
    """The ``ray`` module, or a one-line :class:`MissingDependencyError` with the install hint."""
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError(f"--executor ray needs Ray, which is not installed: {INSTALL_HINT}") from exc
    return ray


class RayShardWorker(ShardWorker):
    """The actor: a :class:`~.shards.ShardWorker` that names its Ray node."""

    def node(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()


class RayExecutor(Executor):
    """Shards of rows on Ray actors. ``build``: the picklable recipe of the adapters
    (:class:`fiqa_bench.resolve.ConfigBuild`); ``address``: an existing cluster (``ray start --head``), else a local
    Ray instance with ``num_cpus`` CPUs (default: this machine's) is started, and shut down at the end; ``actors``: how
    many (0: one per ``cpus_per_actor`` CPUs of the cluster); ``shard_order_seed``: send shards in a shuffled order
    (tests)."""

    name = "ray"

    @classmethod
    def from_run(cls, build, config) -> RayExecutor:
        return cls(build, address=config.ray_address, actors=config.ray_actors, progress=config.progress)

    def __init__(
        self,
        build: Callable,
        *,
        address: str | None = None,
        num_cpus: int | None = None,
        actors: int = 0,
        cpus_per_actor: float = 1,
        shard_size: int = SHARD_SIZE,
        shard_order_seed: int | None = None,
        max_retries: int = 3,
        progress: bool = False,
        limit_threads: bool = True,
    ):
        require_ray()
        if shard_size < 1:
            raise ValueError("shard_size must be >= 1")
        self.build = build
        self.address = address
        self.num_cpus = num_cpus
        self.n_actors = int(actors)
        self.cpus_per_actor = cpus_per_actor
        self.shard_size = int(shard_size)
        self.shard_order_seed = shard_order_seed
        self.max_retries = int(max_retries)
        self.limit_threads = bool(limit_threads)
        self.progress = progress
        self.started_ray = False
        self.actors: list = []
        self.pids: dict[int, set] = {}  # actor index -> process ids seen (more than one: restarted)
        self.nodes: set[str] = set()  # Ray node ids the actors started on
        self.restarts_logged = 0
        self.seen = SourceReport()
        self.widths: dict[str, int] = {}
        self.batch_size = 32
        self.epoch = 0  # stages run so far: workers reread the shared caches at each new one

    def describe(self) -> str:
        return f"ray, {len(self.actors)} actors, shards of at most {self.shard_rows()} images"

    def shard_rows(self, n: int | None = None) -> int:
        """Rows per shard: whole batches (an adapter sees the batches it sees locally), at most ``shard_size``,
        and small enough that a stage of ``n`` rows gives every actor about 4 shards (a short stage, such as the
        embeddings of the kept images, is not left to one actor)."""
        size = self.shard_size
        if n is not None and self.actors:
            size = min(size, -(-n // (4 * len(self.actors))))
        return max(1, -(-size // self.batch_size)) * self.batch_size

    def open(self, bench, backbone, method, ctx: StageContext) -> None:
        ray = require_ray()
        if not ray.is_initialized():
            # Ray's own notices (e.g. about its token authentication) would break the one-line error contract
            kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.ERROR}
            if self.address:
                ray.init(address=self.address, **kwargs)
            else:
                # address="local": a new instance, never a cluster that RAY_ADDRESS or an earlier `ray start` names
                ray.init(address="local", num_cpus=self.num_cpus or os.cpu_count() or 1, **kwargs)
            self.started_ray = True
        ctx = dataclasses.replace(ctx, faces_sha256=bench.fingerprint()["faces_sha256"], cwd=os.getcwd())
        self.batch_size = int(ctx.options.batch_size)
        self.widths = {"embed": int(backbone.card.embedding_dim), "quality": 1}
        resources = ray.cluster_resources()
        n = self.n_actors or max(1, int(resources.get("CPU", 1) // self.cpus_per_actor))
        gpus = {}
        if ctx.device == "cuda":  # one GPU per actor: as many actors as the cluster has GPUs, unless told
            if not resources.get("GPU"):
                raise FiqaBenchError(
                    "--device cuda with --executor ray: the Ray cluster has no GPU "
                    "(start its nodes with `ray start --num-gpus N`)"
                )
            gpus = {"num_gpus": 1}
            n = self.n_actors or int(resources["GPU"])
        actor_cls = ray.remote(
            num_cpus=self.cpus_per_actor, max_restarts=self.max_retries, max_task_retries=self.max_retries, **gpus
        )(RayShardWorker)
        threads = max(1, int(self.cpus_per_actor)) if self.limit_threads else None
        self.actors = [actor_cls.remote(self.build, ctx, threads) for _ in range(n)]
        for a, state in enumerate(self._get(ray, [actor.ready.remote() for actor in self.actors])):
            if state["error"] is not None:  # a bad option, a missing model file: the build's own error
                reraise(state["error"])
            self.pids[a] = {state["pid"]}
            self.nodes.add(state["node"])
        log.info(
            "ray: %d actors (%s CPU each) on %d node(s) of %s",
            n,
            self.cpus_per_actor,
            len(self.nodes),
            self.address or "a local Ray instance",
        )

    def stage(self, stage: str, rows: np.ndarray, skipped: dict[int, Skipped]) -> tuple[np.ndarray, int]:
        ray = require_ray()
        self.epoch += 1
        rows = np.asarray(rows, dtype=np.int64)
        values = np.full((len(rows), self.widths[stage]), np.nan, dtype=np.float32)
        size = self.shard_rows(len(rows))
        starts = list(range(0, len(rows), size))
        if self.shard_order_seed is not None:
            np.random.default_rng(self.shard_order_seed).shuffle(starts)
        queue = collections.deque(starts)
        pending: dict[Any, tuple[int, int]] = {}  # object ref -> (start, actor index)
        load = [0] * len(self.actors)
        computed = 0
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(starts), desc=stage, unit="shard", leave=False, dynamic_ncols=True)
        errors: dict[int, tuple] = {}  # shard start -> error: the first in row order is raised, as locally
        try:
            while queue or pending:
                while queue and min(load) < IN_FLIGHT:
                    a = int(np.argmin(load))
                    start = queue.popleft()
                    shard = rows[start : start + size]
                    items = [(r, skipped[r].path, skipped[r].reason) for r in shard.tolist() if r in skipped]
                    pending[self.actors[a].run.remote(stage, self.epoch, shard, items, start)] = (start, a)
                    load[a] += 1
                done, _ = ray.wait(list(pending), num_returns=1)
                start, a = pending.pop(done[0])
                load[a] -= 1
                out = self._get(ray, done[0])
                self.pids.setdefault(a, set()).add(out["pid"])
                if "error" in out:
                    errors[start] = out["error"]
                    # only shards before it can hold an earlier error: finish those, drop the rest
                    queue = collections.deque(x for x in queue if x < min(errors))
                    continue
                values[start : start + len(out["values"])] = out["values"]
                computed += out["computed"]
                for r, p, why in out["skipped"]:
                    skipped[int(r)] = Skipped(int(r), p, why)
                self.seen.merge(out["report"])
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        if self.restarts() > self.restarts_logged:
            log.warning("ray: %d actor restart(s) so far; the shards they held were retried", self.restarts())
            self.restarts_logged = self.restarts()
        if errors:
            reraise(errors[min(errors)])
        return values, computed

    def _get(self, ray, ref) -> dict:
        try:
            return ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            raise FiqaBenchError(
                f"a Ray worker was lost and not recovered after {self.max_retries} restart(s): "
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            ) from exc

    def restarts(self) -> int:
        """Actor processes replaced during the run (a worker killed and its shard retried)."""
        return sum(len(p) - 1 for p in self.pids.values())

    def report(self) -> SourceReport:
        return self.seen

    def close(self) -> None:
        ray = require_ray()
        for actor in self.actors:
            try:
                ray.kill(actor)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self.actors = []
        if self.started_ray:
            ray.shutdown()
            self.started_ray = False
