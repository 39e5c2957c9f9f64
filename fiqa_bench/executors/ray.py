"""The ``ray`` executor: the score and embed stages over shards of image rows on Ray actors (``--executor ray``).

Each actor holds ONE worker (:class:`~.base.StageWorker`: one model session, one face source, the caches). An
adapter object with an onnxruntime session does not pickle, so an actor builds its own from a picklable recipe
(:class:`ConfigBuild`: the run's :class:`~fiqa_bench.runner.RunConfig`, i.e. registry names and options, the
protocol folder) and the :class:`~.base.StageContext` (dataset id, cache identities, face-source options, the
cache folder). The driver splits the rows into shards (whole batches, so every adapter call sees the batch it
sees locally), sends them to the actors, and places each shard's values by row: metrics and raw arrays equal
``local``'s whatever the order shards finish in.

Every worker writes the cache shards it computes into the shared cache folder (``FIQA_BENCH_CACHE``, which must
be on storage every node sees, like the data root and the model files). Shard files are named by time and
process id and only their writer merges or removes them, so concurrent writers never clobber each other.

Failures: an actor whose process dies (a node lost, a kill, out of memory) is restarted and its unfinished
shards are retried (``max_restarts`` / ``max_task_retries``); a retried shard reuses whatever its first attempt
flushed to the cache. An error of ours on a worker (a bad image, an adapter that raised) is raised in the driver
as the same error, with the same one-line message.

Methods on the run's own FR features (``score_embeddings``, e.g. ``norm``) work: the embed stage runs on the
actors and the method scores the embeddings in the driver. Methods that need the run's backbone
(``card.needs_backbone``) work: each actor rebuilds the backbone and the method on it.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import pickle
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import FiqaBenchError, MissingDependencyError
from ..stages import Skipped
from .base import Executor, SourceReport, StageContext, StageWorker

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


@dataclasses.dataclass(frozen=True)
class ConfigBuild:
    """Picklable recipe of a run's adapters: rebuilds (benchmark, backbone, method) from a RunConfig through the
    registry, as the runner does (the method is built on the actor's own backbone)."""

    config: Any  # fiqa_bench.runner.RunConfig

    def __call__(self):
        from ..runner import build_backbone, build_method, open_protocol

        bench = open_protocol(self.config.protocol, self.config.data).load()
        backbone = build_backbone(self.config)
        return bench, backbone, build_method(self.config, backbone)


def _portable(exc: BaseException) -> tuple:
    """An error of ours as (class, args, attributes), rebuilt in the driver by :func:`_reraise` (its own
    constructor may take other arguments than its ``args``, so plain pickling could fail)."""
    state = dict(vars(exc))
    try:
        pickle.dumps(state)
    except Exception:  # noqa: BLE001 - attributes that do not pickle are dropped; the message stays
        state = {}
    return type(exc), exc.args, state, str(exc)


def _reraise(error: tuple):
    cls, args, state, message = error
    try:
        exc = cls.__new__(cls)
        BaseException.__init__(exc, *args)
        exc.__dict__.update(state)
        str(exc)
    except Exception:  # noqa: BLE001 - an error class we cannot rebuild: its message as a plain error
        exc = FiqaBenchError(message)
    raise exc


class ShardWorker:
    """The actor: builds its worker once (``build()`` then :class:`StageWorker`), then computes shards."""

    def __init__(self, build: Callable, ctx: StageContext, threads: int | None = None):
        self.pid = os.getpid()
        self.error = None
        self.ctx = ctx
        self.worker: StageWorker | None = None
        self.epoch = None
        self.unreported: set[str] = set()  # rejected cache shards (paths) not yet reported to the driver
        self.detection_reported = 0
        try:
            if ctx.cache_root:
                os.environ["FIQA_BENCH_CACHE"] = ctx.cache_root  # the driver's cache folder, on shared storage
            if ctx.cwd and os.path.isdir(ctx.cwd):  # relative protocol/model paths as the driver reads them
                os.chdir(ctx.cwd)
            if threads and "FIQA_BENCH_THREADS" not in os.environ:  # inference threads: the actor's CPUs
                os.environ["FIQA_BENCH_THREADS"] = str(threads)
            from .. import device

            device.set_device(ctx.device)
            self.bench, self.backbone, self.method = build()
            got = self.bench.fingerprint()["faces_sha256"]
            if ctx.faces_sha256 and got != ctx.faces_sha256:
                raise FiqaBenchError(f"Ray worker on {os.uname().nodename}: benchmark {self.bench.root} lists other "
                                     f"images than the driver's (faces sha256 {got[:16]}, driver "
                                     f"{ctx.faces_sha256[:16]}); the data root must be the same shared folder")
            self.worker = StageWorker(self.bench, self.backbone, self.method, ctx)  # the session is loaded here
            self._note_rejections()
        except FiqaBenchError as exc:  # the driver built the same adapters: what fails here is this node's
            node = os.uname().nodename
            self.error = _portable(exc if str(exc).startswith("Ray worker on") else
                                   FiqaBenchError(f"Ray worker on {node}: {exc} (is the path the same on every "
                                                  f"node, on shared storage?)"))
        except Exception as exc:  # noqa: BLE001 - e.g. a plugin not installed on this node: say so in one line
            self.error = _portable(FiqaBenchError(
                f"Ray worker on {os.uname().nodename} could not build the run's adapters: {type(exc).__name__}: "
                f"{exc} (every node needs the same environment: fiqa-bench, its extras and plugins)"))

    def _note_rejections(self) -> None:
        """The cache shards the worker's caches rejected on load, by path (the driver counts each once, however
        many workers read it before the first set it aside); one listed while another worker merged and removed
        it is not damage, and not counted."""
        for cache in (self.worker.ecache, self.worker.qcache):
            if cache is None:
                continue
            self.unreported |= {str(Path(cache.folder) / n) for n, why in cache.rejected_reasons.items()
                                if "FileNotFoundError" not in why}

    def _fresh_worker(self) -> None:
        """A new face source and caches read from the shared folder (what every worker wrote in the stages
        before: no row is computed twice); the adapters are kept."""
        self.worker.close()
        self.worker = StageWorker(self.bench, self.backbone, self.method, self.ctx)
        self.detection_reported = 0
        self._note_rejections()

    def ready(self) -> dict:
        """This process's id and node, and the error its build raised (if any)."""
        import ray

        return {"pid": self.pid, "node": ray.get_runtime_context().get_node_id(), "error": self.error}

    def run(self, stage: str, epoch: int, rows: np.ndarray, skipped_items: list) -> dict:
        """The values of ``stage`` on ``rows`` (shard), with the skips it found and what its source saw.
        ``epoch``: the driver's stage number; a new one rereads the shared caches first."""
        if self.error is not None:
            return {"error": self.error, "pid": self.pid}
        try:
            if epoch != self.epoch:
                self._fresh_worker()
                self.epoch = epoch
            skipped = {int(r): Skipped(int(r), p, why) for r, p, why in skipped_items}
            before = set(skipped)
            base, _, _ = self.worker.caches(stage)
            values, computed = self.worker.run(stage, rows, skipped, cache=base.view(), progress=False)
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
            return {"values": values, "computed": int(computed), "skipped": new, "report": report, "pid": self.pid}
        except FiqaBenchError as exc:
            return {"error": _portable(exc), "pid": self.pid}


class RayExecutor(Executor):
    """Shards of rows on Ray actors. ``build``: the picklable recipe of the adapters (:class:`ConfigBuild`);
    ``address``: an existing cluster (``ray start --head``), else a local Ray instance with ``num_cpus`` CPUs
    (default: this machine's) is started, and shut down at the end; ``actors``: how many (0: one per
    ``cpus_per_actor`` CPUs of the cluster); ``shard_order_seed``: send shards in a shuffled order (tests)."""

    name = "ray"

    def __init__(self, build: Callable, *, address: str | None = None, num_cpus: int | None = None,
                 actors: int = 0, cpus_per_actor: float = 1, shard_size: int = SHARD_SIZE,
                 shard_order_seed: int | None = None, max_retries: int = 3, progress: bool = False,
                 limit_threads: bool = True):
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
                raise FiqaBenchError("--device cuda with --executor ray: the Ray cluster has no GPU "
                                     "(start its nodes with `ray start --num-gpus N`)")
            gpus = {"num_gpus": 1}
            n = self.n_actors or int(resources["GPU"])
        actor_cls = ray.remote(num_cpus=self.cpus_per_actor, max_restarts=self.max_retries,
                               max_task_retries=self.max_retries, **gpus)(ShardWorker)
        threads = max(1, int(self.cpus_per_actor)) if self.limit_threads else None
        self.actors = [actor_cls.remote(self.build, ctx, threads) for _ in range(n)]
        for a, state in enumerate(self._get(ray, [actor.ready.remote() for actor in self.actors])):
            if state["error"] is not None:  # a bad option, a missing model file: the build's own error
                _reraise(state["error"])
            self.pids[a] = {state["pid"]}
            self.nodes.add(state["node"])
        log.info("ray: %d actors (%s CPU each) on %d node(s) of %s", n, self.cpus_per_actor, len(self.nodes),
                 self.address or "a local Ray instance")

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
                    shard = rows[start:start + size]
                    items = [(r, skipped[r].path, skipped[r].reason) for r in shard.tolist() if r in skipped]
                    pending[self.actors[a].run.remote(stage, self.epoch, shard, items)] = (start, a)
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
                values[start:start + len(out["values"])] = out["values"]
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
            _reraise(errors[min(errors)])
        return values, computed

    def _get(self, ray, ref) -> dict:
        try:
            return ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            raise FiqaBenchError(f"a Ray worker was lost and not recovered after {self.max_retries} restart(s): "
                                 f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc

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
