"""The executor seam without Ray running: the default is the local executor, ``--executor ray`` without Ray
installed is one line with the install hint (exit 2), and the cache shards several worker processes write into
one folder never clobber each other (what the Ray executor relies on)."""

from __future__ import annotations

import multiprocessing
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from fiqa_bench.cli.main import main
from fiqa_bench.config import RunConfig
from fiqa_bench.data.cache import ArrayCache
from fiqa_bench.executors import LocalExecutor
from fiqa_bench.pipeline.runner import make_executor


def _one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def test_local_is_the_default():
    cfg = RunConfig(protocol="p", backbone="dlib")
    assert cfg.executor == "local" and cfg.device == "cpu"
    assert isinstance(make_executor(cfg), LocalExecutor)


def test_ray_address_needs_the_ray_executor(tmp_path):
    res = CliRunner().invoke(
        main, ["run", "-p", str(tmp_path), "--fr", "dlib", "--ray-address", "auto", "-o", str(tmp_path / "out")]
    )
    assert res.exit_code == 2
    assert "--ray-address needs --executor ray" in _one_error_line(res.output)


def test_executor_ray_without_ray_installed_is_one_line_with_the_hint(tmp_path, monkeypatch, isolated_cache):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as where it is absent
    res = CliRunner().invoke(
        main, ["run", "-p", str(tmp_path), "--fr", "dlib", "--executor", "ray", "-o", str(tmp_path / "out")]
    )
    assert res.exit_code == 2
    line = _one_error_line(res.output)
    assert line == "error: --executor ray needs Ray, which is not installed: pip install 'fiqa-bench[ray]'"


def _writer(folder: str, start: int, n: int) -> None:
    cache = ArrayCache(folder, 3, flush_every=7, producer="quality|x|d")
    for i in range(start, start + n, 5):  # many small shards, then the merge that removes them
        keys = [f"k{j}" for j in range(i, min(i + 5, start + n))]
        cache.put_many(keys, np.array([[j, j + 0.5, -j] for j in range(i, i + len(keys))], np.float32))
    cache.consolidate()


def test_concurrent_writer_processes_never_clobber_each_other(tmp_path):
    folder = str(tmp_path / "shared-cache")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(folder, k * 100, 100)) for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    merged = ArrayCache(folder, 3, producer="quality|x|d")
    assert merged.rejected_shards == 0
    assert len(merged) == 300
    found, values = merged.get_many([f"k{j}" for j in range(300)])
    assert found.all()
    np.testing.assert_array_equal(values[:, 0], np.arange(300, dtype=np.float32))
    assert len(list((tmp_path / "shared-cache").glob("shard-*.npz"))) == 3  # one merged shard per writer


def test_a_cache_view_shares_the_index_but_merges_only_its_own_shards(tmp_path):
    base = ArrayCache(tmp_path / "c", 1, flush_every=2, producer="p")
    first = base.view()
    first.put_many(["a", "b", "c"], np.array([1, 2, 3], np.float32))
    first.consolidate()
    one = sorted((tmp_path / "c").glob("shard-*.npz"))
    second = base.view()
    assert second.get("a") is not None and float(second.get("c")[0]) == 3.0  # the first task's values are found
    second.put_many(["d", "e", "f"], np.array([4, 5, 6], np.float32))
    second.consolidate()
    shards = sorted((tmp_path / "c").glob("shard-*.npz"))
    assert len(shards) == 2 and one[0] in shards  # the first task's merged shard was not rewritten
    assert len(ArrayCache(tmp_path / "c", 1, producer="p")) == 6


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux's")
def test_the_embed_stage_decodes_on_lower_priority_threads():
    """The initializer of StageWorker's embed-stage pool makes its threads BACKGROUND_NICE levels nicer than the
    caller (capped at 19); a pool without it runs at the caller's priority."""
    import os
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from fiqa_bench.executors.base import BACKGROUND_NICE, background_thread

    def nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    caller = nice()
    with ThreadPoolExecutor(1, initializer=background_thread) as pool:
        assert pool.submit(nice).result() == min(19, caller + BACKGROUND_NICE)
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(nice).result() == caller
