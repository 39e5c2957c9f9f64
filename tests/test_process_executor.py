"""The ``local`` executor's worker processes (a large stage over shards of rows in processes started from a fork
server): on real faces, the metrics, counts and every raw array equal the in-process path's; a worker killed
mid-run (a real SIGKILL) is replaced and its shards sent again; errors of a worker are the driver's one-line
errors, the first in row order; small stages, and runs without a recipe, stay in the driver's process."""

from __future__ import annotations

import os

import numpy as np
import pytest

from _executors import KillingBuild, assert_same
from _executors import evaluate_with as _evaluate
from _executors import run_config as _cfg
from fiqa_bench.config import RunConfig
from fiqa_bench.executors import LocalExecutor
from fiqa_bench.pipeline.evaluation import evaluate
from fiqa_bench.pipeline.runner import make_executor
from fiqa_bench.resolve import ConfigBuild

pytestmark = pytest.mark.shared


def processes(cfg: RunConfig, build=None, **kw) -> LocalExecutor:
    """A local executor that sends every stage (min_process_rows=1) to 2 worker processes."""
    return LocalExecutor(build or ConfigBuild(cfg), processes=2, min_process_rows=1, **kw)


@pytest.mark.parametrize("method", ["tinyfq", "norm"])  # norm: the embed stage on all rows, then the kept ones
def test_worker_processes_equal_the_in_process_path(small_bench, mbf, tmp_path, monkeypatch, method):
    cfg = _cfg(small_bench, mbf, method, tmp_path)
    monkeypatch.setenv("FIQA_BENCH_CACHE", str(tmp_path / "cache-threads"))
    threads = _evaluate(cfg, LocalExecutor())
    monkeypatch.setenv("FIQA_BENCH_CACHE", str(tmp_path / "cache-processes"))  # cold: the workers compute all
    executor = processes(cfg)
    remote = _evaluate(cfg, executor)
    assert threads.counts["images"] == 48
    assert_same(threads, remote)
    assert executor.pool is None  # closed at the end of the evaluation
    # the workers wrote the cache into the driver's folder: an in-process run now computes nothing
    again = _evaluate(cfg, LocalExecutor())
    assert again.counts["images_scored_new"] == 0 and again.counts["images_embedded_new"] == 0
    assert again.metrics == threads.metrics


def test_small_stages_and_runs_without_a_recipe_stay_in_process(small_bench, mbf, tmp_path, isolated_cache):
    cfg = _cfg(small_bench, mbf, "blur", tmp_path)
    assert isinstance(make_executor(cfg), LocalExecutor) and make_executor(cfg).build is not None
    default = LocalExecutor(ConfigBuild(cfg))
    bench, backbone, method = ConfigBuild(cfg)()
    evaluate(bench, backbone, method, cfg.eval_options(), executor=default)
    assert not default.uses_processes(48) and default.uses_processes(8192)  # 2 workers: 2 processes from 8,192
    assert not LocalExecutor().uses_processes(10**6)  # adapters given as objects: nothing to rebuild them from
    one = _cfg(small_bench, mbf, "blur", tmp_path, workers=1)
    single = LocalExecutor(ConfigBuild(one))
    b1, bb1, m1 = ConfigBuild(one)()
    evaluate(b1, bb1, m1, one.eval_options(), executor=single)
    assert not single.uses_processes(10**6)  # --workers 1: no worker processes


def test_a_killed_worker_process_is_replaced_and_its_shards_sent_again(small_bench, mbf, tmp_path, monkeypatch):
    cfg = _cfg(small_bench, mbf, "blur", tmp_path)
    monkeypatch.setenv("FIQA_BENCH_CACHE", str(tmp_path / "cache-threads"))
    threads = _evaluate(cfg, LocalExecutor())
    monkeypatch.setenv("FIQA_BENCH_CACHE", str(tmp_path / "cache-processes"))
    marker = tmp_path / "kill-me"
    marker.write_text(str(os.getpid()))  # the driver itself never kills itself
    executor = processes(cfg, KillingBuild(cfg, str(marker)))
    remote = _evaluate(cfg, executor)  # the driver's own adapters (ConfigBuild): the kill happens in a worker only
    assert not marker.exists()  # a worker saw it and killed itself
    assert executor.restarts == 1  # the pool was started again once
    assert_same(threads, remote)


def test_errors_in_a_worker_are_the_drivers_one_line_errors(small_bench, mbf, tmp_path, monkeypatch):
    import shutil

    from fiqa_bench.errors import FiqaBenchError, ImageError

    bench = tmp_path / "bench"
    shutil.copytree(small_bench, bench)
    files = sorted(bench.rglob("*.jpg"))
    files[5].write_bytes(b"not a jpeg")
    files[40].write_bytes(b"not a jpeg either")
    monkeypatch.setenv("FIQA_BENCH_CACHE", str(tmp_path / "cache"))
    cfg = _cfg(bench, mbf, "blur", tmp_path)
    with pytest.raises(ImageError) as in_process:
        _evaluate(cfg, LocalExecutor())
    with pytest.raises(ImageError) as in_worker:
        _evaluate(cfg, processes(cfg))
    assert str(in_worker.value) == str(in_process.value)  # the first in row order, the same line
    assert files[5].name in str(in_worker.value)
    # skipped instead: the same counted skips
    cfg = _cfg(bench, mbf, "blur", tmp_path, on_bad_image="skip")
    monkeypatch.setenv("FIQA_BENCH_CACHE", str(tmp_path / "cache-threads"))
    threads = _evaluate(cfg, LocalExecutor())
    monkeypatch.setenv("FIQA_BENCH_CACHE", str(tmp_path / "cache-processes"))
    remote = _evaluate(cfg, processes(cfg))
    assert threads.counts["skipped"] == 2
    assert_same(threads, remote)
    # workers that cannot build the run's adapters (which this process could): the stage runs here, warned
    fallback = processes(cfg, _missing_plugin)
    monkeypatch.setenv("FIQA_BENCH_CACHE", str(tmp_path / "cache-fallback"))
    with caplog_at_warning() as records:
        here = _evaluate(cfg, fallback, build=ConfigBuild(cfg))
    assert_same(threads, here)
    assert (
        fallback.used_processes == 0
        and "could not build the run's adapters: ModuleNotFoundError" in fallback.no_processes
    )
    assert any("running in this process" in r.getMessage() and "worker process" in r.getMessage() for r in records)
    # a broken worker build still names the worker process in one line
    with pytest.raises(
        FiqaBenchError,
        match=r"^worker process [0-9]+ could not build the run's adapters: "
        r"ModuleNotFoundError: No module named 'my_plugin' \(an adapter ",
    ):
        from fiqa_bench.executors.processes import ProcessPool

        ProcessPool(_missing_plugin, fallback.ctx, 1).start()


class caplog_at_warning:
    """The log records of fiqa_bench.executors at WARNING and above while the block runs."""

    def __enter__(self):
        import logging

        self.records: list = []
        self.handler = logging.Handler(logging.WARNING)
        self.handler.emit = self.records.append
        logging.getLogger("fiqa_bench.executors").addHandler(self.handler)
        return self.records

    def __exit__(self, *exc):
        import logging

        logging.getLogger("fiqa_bench.executors").removeHandler(self.handler)


def _missing_plugin():
    raise ModuleNotFoundError("No module named 'my_plugin'")


def test_a_shard_sent_again_counts_what_its_lost_attempt_computed(small_bench, mbf, tmp_path, monkeypatch):
    """A pool that breaks loses the results of every shard not yet returned, also those a surviving worker had
    finished and flushed to the cache: sent again, such a shard finds its values in the cache. They were computed
    by this run, so they count as computed now (images_scored_new equals the in-process run's); values computed
    by an earlier run stay cache hits."""
    from fiqa_bench.executors.base import StageContext, cache_root_of_driver
    from fiqa_bench.executors.processes import ProcessShardWorker

    monkeypatch.setenv("FIQA_BENCH_CACHE", str(tmp_path / "cache"))
    cfg = _cfg(small_bench, mbf, "blur", tmp_path)
    bench = ConfigBuild(cfg)()[0]

    def worker(run_id: str) -> ProcessShardWorker:
        ctx = StageContext(
            options=cfg.eval_options(),
            dataset_id=f"mini-{bench.fingerprint()['faces_sha256'][:16]}",
            method_name="blur",
            cache_root=cache_root_of_driver(),
            run_id=run_id,
        )
        return ProcessShardWorker(ConfigBuild(cfg), ctx, 1)

    rows = np.arange(48)
    first = worker("run-a").run("quality", 1, rows[:16], [], 0)  # its result is lost with the pool
    assert first["computed"] == 16
    restarted = worker("run-a")  # the new pool's worker: the same run, the same stage
    again = restarted.run("quality", 1, rows[:16], [], 0)
    assert again["computed"] == 16  # the lost attempt's 16 values, computed by this run
    assert np.array_equal(again["values"], first["values"])
    assert restarted.run("quality", 1, rows[16:24], [], 16)["computed"] == 8  # a shard never sent before
    later = worker("run-b").run("quality", 1, rows[:24], [], 0)  # the next run: everything is in the cache
    assert later["computed"] == 0
    assert np.array_equal(later["values"][:16], first["values"])
