"""The ``ray`` executor on a real two-node cluster (``ray.cluster_utils.Cluster``: a head and a second node,
one CPU each, so the two actors land on different nodes): the results equal the ``local`` executor's, also
when a worker process is SIGKILLed mid-run and its shard is retried."""

from __future__ import annotations

import sys

import numpy as np
import pytest

# first: importing test_ray_executor skips this module without Ray (isort: split keeps it ahead of the others)
from test_ray_executor import KillingBuild, _cfg, _evaluate, assert_same, ray

# isort: split
from fiqa_bench.executors import LocalExecutor
from fiqa_bench.executors.ray import RayExecutor
from fiqa_bench.resolve import ConfigBuild

ray.cloudpickle.register_pickle_by_value(sys.modules["test_ray_executor"])

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def two_nodes():
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, logging_level="WARNING")
    cluster.wait_for_nodes()
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def test_two_nodes_equal_local_with_a_worker_killed(two_nodes, small_bench, mbf, tmp_path, monkeypatch):
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    cfg = _cfg(small_bench, mbf, "tinyfq", tmp_path)
    monkeypatch.setenv("FIQA_BENCH_CACHE", str(tmp_path / "cache-local"))
    local = _evaluate(cfg, LocalExecutor())

    monkeypatch.setenv("FIQA_BENCH_CACHE", str(tmp_path / "cache-ray"))
    executor = RayExecutor(ConfigBuild(cfg), shard_size=8, shard_order_seed=11)
    remote = _evaluate(cfg, executor)
    assert len(executor.nodes) == 2  # one actor per node
    assert_same(local, remote)

    monkeypatch.setenv("FIQA_BENCH_CACHE", str(tmp_path / "cache-ray-kill"))
    marker = tmp_path / "kill-me"
    marker.write_text("")
    executor = RayExecutor(KillingBuild(cfg, str(marker)), shard_size=8, shard_order_seed=5)
    driver = ConfigBuild(cfg)()
    from fiqa_bench.pipeline.evaluation import evaluate

    killed = evaluate(
        *driver, cfg.eval_options(), backbone_name=cfg.backbone, method_name=cfg.method, executor=executor
    )
    assert not marker.exists() and executor.restarts() == 1
    assert_same(local, killed)
    assert np.isfinite(killed.raw["image_quality"]).all()
