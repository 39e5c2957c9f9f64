"""Quality-stage throughput of the ``local`` and ``ray`` executors, side by side on the same images.

Each repeat runs the score stage (decode + align + score, cold cache) over every image of a prepared benchmark
with each executor in turn (local, ray, local, ray, ...: the machine's load drifts, so they alternate), and
prints img/s per executor plus Ray's fixed costs (starting a local instance, starting the actors: each builds
its own model session), and the load average before and after. The values are checked equal (same cache
identity, same rows) so a faster executor is never a different computation.

    python benchmarks/bench_executors.py --bench /tmp/g-bench --method tinyfq \\
        --fr onnx:$FIQA_SHARED/models/mobilefacenet/mobilefacenet.onnx --actors 2 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def _stage(executor, cfg, build) -> tuple[np.ndarray, float, float]:
    """(values, seconds to open the executor, seconds of the quality stage) on a fresh cache."""
    from fiqa_bench.executors import StageContext
    from fiqa_bench.executors.base import cache_root_of_driver

    bench, backbone, method = build()
    ctx = StageContext(
        options=cfg.eval_options(),
        dataset_id=f"bench-{bench.name}",
        backbone_name=cfg.backbone,
        method_name=cfg.method,
        cache_root=cache_root_of_driver(),
    )
    t = time.perf_counter()
    executor.open(bench, backbone, method, ctx)
    opened = time.perf_counter() - t
    try:
        t = time.perf_counter()
        values, computed = executor.stage("quality", np.arange(len(bench.faces)), {})
        seconds = time.perf_counter() - t
    finally:
        executor.close()
    assert computed == len(bench.faces), "the cache was not cold"
    return values, opened, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", required=True, help="a folder written by `fiqa-bench prepare`")
    ap.add_argument("--method", default="tinyfq")
    ap.add_argument("--fr", required=True, help="the run's backbone (its cache identity keys nothing here)")
    ap.add_argument("--actors", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2, help="decoding threads per worker (as --workers)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument(
        "--all-threads",
        action="store_true",
        help="every actor's inference uses every CPU (default: its own CPU count, FIQA_BENCH_THREADS)",
    )
    args = ap.parse_args()

    import ray

    from fiqa_bench.config import RunConfig
    from fiqa_bench.executors import LocalExecutor
    from fiqa_bench.executors.ray import RayExecutor
    from fiqa_bench.resolve import ConfigBuild

    cfg = RunConfig(protocol=args.bench, backbone=args.fr, method=args.method, progress=False, workers=args.workers)
    build = ConfigBuild(cfg)
    out: dict = {
        "cpus": os.cpu_count(),
        "load_before": os.getloadavg(),
        "method": args.method,
        "actors": args.actors,
        "workers": args.workers,
        "runs": [],
    }
    t = time.perf_counter()
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, logging_level="WARNING")
    out["ray_init_s"] = round(time.perf_counter() - t, 2)
    reference = None
    try:
        for repeat in range(args.repeats):
            for name in ("local", "ray"):
                with tempfile.TemporaryDirectory() as tmp:
                    os.environ["FIQA_BENCH_CACHE"] = str(Path(tmp) / "cache")
                    ex = (
                        LocalExecutor()
                        if name == "local"
                        else RayExecutor(build, actors=args.actors, limit_threads=not args.all_threads)
                    )
                    values, opened, seconds = _stage(ex, cfg, build)
                n = len(values)
                if reference is None:
                    reference = values
                assert np.array_equal(values, reference, equal_nan=True), f"{name} computed other values"
                run = {
                    "repeat": repeat,
                    "executor": name,
                    "images": n,
                    "open_s": round(opened, 2),
                    "stage_s": round(seconds, 3),
                    "img_per_s": round(n / seconds, 1),
                    "load": round(os.getloadavg()[0], 2),
                }
                out["runs"].append(run)
                print(json.dumps(run), flush=True)
    finally:
        ray.shutdown()
    out["load_after"] = os.getloadavg()
    for name in ("local", "ray"):
        rates = [r["img_per_s"] for r in out["runs"] if r["executor"] == name]
        out[f"{name}_img_per_s_median"] = float(np.median(rates))
    print(json.dumps({k: v for k, v in out.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
