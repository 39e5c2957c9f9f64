"""The ``ray`` executor on a real local Ray instance (``ray.init(num_cpus=2)``, one per module): the metrics and
every raw array equal the ``local`` executor's on real faces, with shards sent in a shuffled order, and a worker
process killed (a real SIGKILL) mid-run is restarted and its shard retried to the same result."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest


def _require_ray():
    """Ray, else skipped with the reason; in CI (``CI`` set: .ci/run installs the ray extra) a failure instead."""
    try:
        import ray
    except ImportError:
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            raise  # CI installs the extra: a missing Ray is a broken environment, never a silent skip
        pytest.skip(
            "the ray extra is not installed (pip install 'fiqa-bench[ray]'); in CI this fails", allow_module_level=True
        )
    return ray


ray = _require_ray()

import _executors  # noqa: E402
from _executors import KillingBuild, assert_same  # noqa: E402
from _executors import evaluate_with as _evaluate  # noqa: E402
from _executors import run_config as _cfg  # noqa: E402
from fiqa_bench.executors import LocalExecutor  # noqa: E402
from fiqa_bench.executors.ray import RayExecutor  # noqa: E402
from fiqa_bench.pipeline.evaluation import evaluate  # noqa: E402
from fiqa_bench.pipeline.runner import run  # noqa: E402
from fiqa_bench.resolve import ConfigBuild  # noqa: E402

# the killing adapter (the tests' helper module) and this module's failing build are not importable on Ray
# workers: send both modules by value
ray.cloudpickle.register_pickle_by_value(_executors)
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance with 2 CPUs for the whole module (starting Ray takes seconds)."""
    if ray.is_initialized():
        ray.shutdown()
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")  # a new instance
    yield
    ray.shutdown()


@pytest.mark.parametrize("method", ["blur", "tinyfq", "norm"])  # norm: scores the run's own embeddings
def test_ray_equals_local_in_shuffled_shard_order(local_ray, small_bench, mbf, tmp_path, monkeypatch, method):
    cfg = _cfg(small_bench, mbf, method, tmp_path)
    monkeypatch.setenv("FIQA_BENCH_CACHE", str(tmp_path / "cache-local"))
    local = _evaluate(cfg, LocalExecutor())
    monkeypatch.setenv("FIQA_BENCH_CACHE", str(tmp_path / "cache-ray"))  # a cold cache: ray computes everything
    executor = RayExecutor(ConfigBuild(cfg), shard_size=8, shard_order_seed=7)
    remote = _evaluate(cfg, executor)
    assert local.counts["images_scored_new"] == local.counts["images"] == 48
    assert_same(local, remote)
    # the actors wrote the cache shards into the driver's cache folder: a second local run computes nothing
    again = _evaluate(cfg, LocalExecutor())
    assert again.counts["images_scored_new"] == 0 and again.counts["images_embedded_new"] == 0
    assert again.metrics == local.metrics


def test_run_with_executor_ray_writes_the_same_results_file(local_ray, small_bench, mbf, tmp_path, monkeypatch):
    import json

    monkeypatch.setenv("FIQA_BENCH_CACHE", str(tmp_path / "cache-local"))
    p_local, rec_local = run(_cfg(small_bench, mbf, "tinyfq", tmp_path / "a"))
    monkeypatch.setenv("FIQA_BENCH_CACHE", str(tmp_path / "cache-ray"))
    p_ray, rec_ray = run(_cfg(small_bench, mbf, "tinyfq", tmp_path / "b", executor="ray", ray_actors=2))
    assert p_local.name == p_ray.name  # the executor is not a setting: same file name
    assert json.loads(p_local.read_text())["metrics"] == json.loads(p_ray.read_text())["metrics"]
    assert rec_local["counts"] == rec_ray["counts"]
    with np.load(p_local.with_suffix(".npz")) as x, np.load(p_ray.with_suffix(".npz")) as y:
        assert sorted(x.files) == sorted(y.files)
        for key in x.files:
            assert np.array_equal(x[key], y[key], equal_nan=x[key].dtype.kind == "f"), key


def test_a_killed_worker_is_restarted_and_its_shard_retried(local_ray, small_bench, mbf, tmp_path, monkeypatch):
    cfg = _cfg(small_bench, mbf, "blur", tmp_path)
    monkeypatch.setenv("FIQA_BENCH_CACHE", str(tmp_path / "cache-local"))
    local = _evaluate(cfg, LocalExecutor())
    monkeypatch.setenv("FIQA_BENCH_CACHE", str(tmp_path / "cache-ray"))
    marker = tmp_path / "kill-me"
    marker.write_text("")
    executor = RayExecutor(KillingBuild(cfg, str(marker)), shard_size=8, shard_order_seed=1)
    remote = _evaluate(cfg, executor)  # the driver's own adapters (ConfigBuild): the kill happens in a worker only
    assert not marker.exists()  # a worker saw it and killed itself
    assert executor.restarts() == 1  # one actor process was replaced
    assert_same(local, remote)


def test_errors_on_a_worker_are_the_drivers_one_line_errors(local_ray, small_bench, mbf, tmp_path, monkeypatch):
    import shutil

    from fiqa_bench.errors import ImageError

    bench = tmp_path / "bench"
    shutil.copytree(small_bench, bench)
    victim = sorted(p for p in bench.rglob("*.jpg"))[5]
    victim.write_bytes(b"not a jpeg")
    monkeypatch.setenv("FIQA_BENCH_CACHE", str(tmp_path / "cache"))
    cfg = _cfg(bench, mbf, "blur", tmp_path)
    with pytest.raises(ImageError, match=victim.name):
        _evaluate(cfg, RayExecutor(ConfigBuild(cfg), shard_size=8))
    # two bad images: the one local stops at (the first in row order) also when shards finish in another order
    later = sorted(p for p in bench.rglob("*.jpg"))[40]
    later.write_bytes(b"not a jpeg either")
    with pytest.raises(ImageError) as first:
        _evaluate(cfg, LocalExecutor())
    with pytest.raises(ImageError) as remote_first:
        _evaluate(cfg, RayExecutor(ConfigBuild(cfg), shard_size=8, shard_order_seed=3))
    assert str(remote_first.value) == str(first.value)
    later.unlink()
    shutil.copy(small_bench / later.relative_to(bench), later)
    # skipped instead, with an image whose given landmarks lie far outside it: the same counted skips as local
    (marks,) = (bench / "meta").glob("*_name_5pts_score.txt")
    lines = marks.read_text().splitlines()
    name, *_, score = lines[20].split()
    lines[20] = " ".join([name, *["9999.00"] * 10, score])
    marks.write_text("\n".join(lines) + "\n")
    cfg = _cfg(bench, mbf, "blur", tmp_path, on_bad_image="skip", on_no_face="skip")
    monkeypatch.setenv("FIQA_BENCH_CACHE", str(tmp_path / "cache-local"))
    local = _evaluate(cfg, LocalExecutor())
    monkeypatch.setenv("FIQA_BENCH_CACHE", str(tmp_path / "cache-ray"))
    remote = _evaluate(cfg, RayExecutor(ConfigBuild(cfg), shard_size=8, shard_order_seed=2))
    assert local.counts["skipped"] == 2
    assert local.counts["landmarks_rejected"] == {"landmarks outside the image": 1}
    assert_same(local, remote)


def test_cuda_on_a_cluster_without_gpus_is_one_line(local_ray, small_bench, mbf, tmp_path, isolated_cache):
    from fiqa_bench.errors import FiqaBenchError

    cfg = _cfg(small_bench, mbf, "blur", tmp_path)
    bench, backbone, method = ConfigBuild(cfg)()
    with pytest.raises(FiqaBenchError, match="the Ray cluster has no GPU"):
        evaluate(bench, backbone, method, cfg.eval_options(), executor=RayExecutor(ConfigBuild(cfg)), device="cuda")


def test_detection_on_the_workers_equals_local(local_ray, small_bench, mbf, tmp_path, monkeypatch):
    """Without given landmarks each actor detects faces itself: same faces, same detector identity recorded."""
    import shutil

    bench = tmp_path / "bench"
    shutil.copytree(small_bench, bench)
    for f in (bench / "meta").glob("*_name_5pts_score.txt"):
        f.unlink()  # no landmarks given: the IJB reader leaves them to the detector
    import cv2

    blank = sorted(bench.rglob("*.jpg"))[7]
    cv2.imwrite(str(blank), np.full((120, 100, 3), 128, np.uint8))  # a real JPEG without a face: centred fallback
    cfg = _cfg(bench, mbf, "blur", tmp_path, on_no_face="center")
    monkeypatch.setenv("FIQA_BENCH_CACHE", str(tmp_path / "cache-local"))
    local = _evaluate(cfg, LocalExecutor())
    monkeypatch.setenv("FIQA_BENCH_CACHE", str(tmp_path / "cache-ray"))
    remote = _evaluate(cfg, RayExecutor(ConfigBuild(cfg), shard_size=16, shard_order_seed=4))
    assert local.detector is not None and local.detector.startswith("yunet")
    assert local.counts["fallback_landmarks"] == 1
    assert remote.detector == local.detector
    assert_same(local, remote)
    assert list((tmp_path / "cache-ray" / "detections").rglob("shard-*.npz"))  # the workers cached detections


def test_a_damaged_cache_shard_is_counted_once_as_locally(local_ray, small_bench, mbf, tmp_path, monkeypatch):
    import shutil

    cfg = _cfg(small_bench, mbf, "blur", tmp_path)
    monkeypatch.setenv("FIQA_BENCH_CACHE", str(tmp_path / "warm"))
    _evaluate(cfg, LocalExecutor())
    (shard,) = (tmp_path / "warm" / "quality").rglob("shard-*.npz")
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF  # damaged after it was written
    shard.write_bytes(bytes(data))
    shutil.copytree(tmp_path / "warm", tmp_path / "warm-ray")
    local = _evaluate(cfg, LocalExecutor())
    monkeypatch.setenv("FIQA_BENCH_CACHE", str(tmp_path / "warm-ray"))
    remote = _evaluate(cfg, RayExecutor(ConfigBuild(cfg), shard_size=8, shard_order_seed=9))
    assert local.counts["cache_shards_rejected"] == 1 and local.counts["images_scored_new"] == 48
    assert_same(local, remote)


def _missing_plugin():
    raise ModuleNotFoundError("No module named 'my_plugin'")


def test_a_worker_that_cannot_build_the_adapters_is_one_line(local_ray, small_bench, mbf, tmp_path, isolated_cache):
    from fiqa_bench.errors import FiqaBenchError

    cfg = _cfg(small_bench, mbf, "blur", tmp_path)
    with pytest.raises(
        FiqaBenchError,
        match=r"could not build the run's adapters: ModuleNotFoundError: No module "
        r"named 'my_plugin' \(every node needs the same environment",
    ):
        _evaluate(cfg, RayExecutor(_missing_plugin), build=ConfigBuild(cfg))


def test_cli_error_from_a_worker_is_one_line_exit_2(local_ray, small_bench, mbf, tmp_path, isolated_cache):
    import shutil

    from click.testing import CliRunner

    from fiqa_bench.cli.main import main

    bench = tmp_path / "bench"
    shutil.copytree(small_bench, bench)
    victim = sorted(bench.rglob("*.jpg"))[3]
    victim.write_bytes(b"junk")
    res = CliRunner().invoke(
        main,
        [
            "run",
            "-p",
            str(bench),
            "--fr",
            mbf,
            "-m",
            "blur",
            "--executor",
            "ray",
            "--no-progress",
            "-o",
            str(tmp_path / "out"),
        ],
    )
    assert res.exit_code == 2
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and victim.name in lines[0], lines


class _Elsewhere:
    """A recipe whose protocol folder does not exist where the worker runs (as on a node without the share)."""

    def __init__(self, cfg):
        self.cfg = cfg

    def __call__(self):
        import dataclasses

        return ConfigBuild(dataclasses.replace(self.cfg, protocol=self.cfg.protocol + "-not-here"))()


def test_a_worker_without_the_data_names_its_node(local_ray, small_bench, mbf, tmp_path, isolated_cache):
    from fiqa_bench.errors import FiqaBenchError

    cfg = _cfg(small_bench, mbf, "blur", tmp_path)
    with pytest.raises(FiqaBenchError, match=r"^Ray worker on .+-not-here.+same on every node"):
        _evaluate(cfg, RayExecutor(_Elsewhere(cfg)), build=ConfigBuild(cfg))
