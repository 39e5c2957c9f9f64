"""What persisting finished work costs (issue 11): the per-image stage with the cache's policy (a checksummed
shard at least every 256 images or 5 s, merged into one when the stage ends) against the same stage writing once
at its end, on real faces.

    python benchmarks/bench_resume.py [--bench DIR] [--images 2600] [--repeats 3] [--fr onnx:PATH]

DIR is a prepared IJB-layout benchmark (default: one is prepared from FIQA_SHARED's celeba-wild in a temporary
folder). Two stages are timed: blur quality on every image (the cheapest stage, so the worst case for the
overhead) and embedding with the FR backbone. Each is run ``--repeats`` times per policy, alternating, on fresh
cache folders; the median is reported, with the time spent inside shard writes measured directly. Also timed:
the partial-JPEG check of ``faces.io`` per image. Nothing is asserted: a measurement, not a test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from fiqa_bench import registry
from fiqa_bench.data.cache import ArrayCache
from fiqa_bench.faces.io import _jpeg_partial
from fiqa_bench.faces.pipeline import to_input
from fiqa_bench.pipeline.stages import FaceSource, per_image_stage


def prepare(shared: Path, dest: Path, n_images: int) -> Path:
    from fiqa_bench.data.prepare import prepare_benchmark

    per_id = 20
    root = shared / "data/celeba-wild/images"
    ids = [p.name for p in sorted(root.iterdir()) if len(list(p.glob("*.jpg"))) >= per_id][: n_images // per_id]
    src = dest / "src"
    for ident in ids:
        (src / ident).mkdir(parents=True)
        for photo in sorted((root / ident).glob("*.jpg"))[:per_id]:
            shutil.copy(photo, src / ident / photo.name)
    out = dest / "bench"
    prepare_benchmark(src, out, name="resume", seed=0, layout="ijb", templates_per_identity=4, progress=False)
    return out


class TimedCache(ArrayCache):
    """An ArrayCache that adds up the time spent writing shards (the whole cost of persisting)."""

    write_s = 0.0

    def _write_shard(self, keys, vals):
        t = time.perf_counter()
        try:
            return super()._write_shard(keys, vals)
        finally:
            TimedCache.write_s += time.perf_counter() - t


def run_stage(bench, width: int, compute, folder: Path, persist: bool, pool) -> tuple[float, float, int]:
    shutil.rmtree(folder, ignore_errors=True)
    if persist:
        cache = TimedCache(folder, width, producer="bench")
    else:  # one shard at the end of the stage
        cache = TimedCache(folder, width, flush_every=10**12, flush_seconds=float("inf"), producer="bench")
    source = FaceSource(bench, "yunet", "error", "error", 2)
    TimedCache.write_s = 0.0
    t = time.perf_counter()
    _, computed = per_image_stage("bench", np.arange(len(bench.faces)), source, cache, width, compute, pool, {}, 32)
    elapsed = time.perf_counter() - t
    shards = len(list(folder.glob("shard-*.npz")))
    assert computed == len(bench.faces) and shards == 1, (computed, shards)
    return elapsed, TimedCache.write_s, cache.flush_every


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench", type=Path, help="a prepared IJB-layout folder (default: prepared from celeba-wild)")
    ap.add_argument("--images", type=int, default=2600)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--fr", default=None, help="backbone for the embedding stage (default: the shared MobileFaceNet)")
    args = ap.parse_args()
    shared = Path(os.environ.get("FIQA_SHARED", "../shared"))
    tmp = Path(tempfile.mkdtemp(prefix="bench-resume-"))
    try:
        root = args.bench or prepare(shared, tmp, args.images)
        bench = registry.create("protocol", f"ijb-layout:{root}").load()
        print(f"benchmark {root}: {len(bench.faces)} images")

        import cv2

        paths = [root / p for p in bench.faces["path"]]
        blobs = [p.read_bytes() for p in paths]
        t = time.perf_counter()
        images = [cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR) for b in blobs]
        decode_ms = (time.perf_counter() - t) / len(blobs) * 1000
        t = time.perf_counter()
        flagged = sum(_jpeg_partial(b, im) for b, im in zip(blobs, images))
        check_ms = (time.perf_counter() - t) / len(blobs) * 1000
        print(
            f"partial-JPEG check: {check_ms:.2f} ms/image after the OpenCV decode ({decode_ms:.2f} ms), "
            f"{flagged} of {len(blobs)} flagged"
        )

        blur = registry.create("method", "blur")
        fr = args.fr or f"onnx:{shared / 'models/mobilefacenet/mobilefacenet.onnx'}"
        backbone = registry.create("backbone", fr)
        stages = {
            "quality (blur)": (1, lambda faces: blur.score(to_input(faces, blur.card.input))[:, None]),
            f"embed ({fr.split('/')[-1]})": (
                backbone.card.embedding_dim,
                lambda faces: backbone.embed(to_input(faces, backbone.card.input)),
            ),
        }
        with ThreadPoolExecutor(2) as pool:
            for name, (width, compute) in stages.items():
                compute(FaceSource(bench, "yunet", "error", "error", 1).load(np.arange(4), pool))  # warm up
                times: dict[bool, list[float]] = {True: [], False: []}
                writes: dict[bool, list[float]] = {True: [], False: []}
                for _ in range(args.repeats):
                    for persist in (False, True):
                        elapsed, write_s, _ = run_stage(bench, width, compute, tmp / "cache", persist, pool)
                        times[persist].append(elapsed)
                        writes[persist].append(write_s)
                base, pers = statistics.median(times[False]), statistics.median(times[True])
                w_base, w_pers = statistics.median(writes[False]), statistics.median(writes[True])
                print(
                    f"{name}: write once {base:.2f} s, persist every 256 images/5 s {pers:.2f} s "
                    f"(end to end {100 * (pers - base) / base:+.1f}%); time inside shard writes "
                    f"{w_pers:.3f} s vs {w_base:.3f} s = {100 * (w_pers - w_base) / base:.2f}% of the stage "
                    f"[runs: {', '.join(f'{t:.2f}' for t in times[True])} vs "
                    f"{', '.join(f'{t:.2f}' for t in times[False])}]"
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
