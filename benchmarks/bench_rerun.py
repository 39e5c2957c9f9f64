"""What the replicate store saves on a rerun (issue 22): the bootstrap of a results file's pairs computed, then
read back from a fresh store, checked bit for bit, and optionally a whole cached rerun of the command.

    python benchmarks/bench_rerun.py RESULTS.json [--repeats 3] [--rerun "run --method tinyfq --fr dlib ..."]

RESULTS.json is any results file with its ``.npz`` (e.g. the README's main job's,
``results/lfw-templates__tinyfq__dlib__top1__*.json``); its B, seed and metric settings are used. Each repeat times
the bootstrap computed into an empty store and then reused from it; the ratio reused / computed is printed per
repeat and as the median. ``--rerun "ARGS"`` also times ``python -m fiqa_bench ARGS --no-progress`` (run it once
before, so every cache is warm) and prints its wall time and its ratio to the computed bootstrap alone. Nothing is
asserted but the bit-identity: a measurement, not a test; the load average is printed beside the times.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fiqa_bench.pipeline.evaluation import measure, pairdata_from_raw
from fiqa_bench.pipeline.replicate_store import ReplicateStore, bootstrap_reusing
from fiqa_bench.pipeline.uncertainty import BootstrapOptions
from fiqa_bench.results.record import load_record, read_raw
from fiqa_bench.results.rescore import metric_options


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", help="a results file with its .npz")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument(
        "--rerun",
        default=None,
        help="fiqa-bench arguments (one string) of a whole command to time, after a run that warmed the caches",
    )
    args = ap.parse_args()

    record = load_record(args.results)
    raw = read_raw(args.results, record)
    data = pairdata_from_raw(raw)
    options = metric_options(record.config)
    metrics = measure(data, record.protocol.get("metrics") or list(record.metrics), options)
    boot = BootstrapOptions(
        B=int(record.config.get("bootstrap", 1000)),
        level=float(record.config.get("bootstrap_level", 0.95)),
        seed=int(record.config.get("bootstrap_seed", 0)),
    )
    print(f"{Path(args.results).name}: {data.scores.shape[0]:,} pairs, B={boot.B}, seed {boot.seed}")
    computed_s, ratios = [], []
    for i in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            store = ReplicateStore(tmp)
            before = load()
            first = bootstrap_reusing(data, metrics, options, boot, store=store)
            again = bootstrap_reusing(data, metrics, options, boot, store=store)
            assert not first.reused and again.reused
            for key, matrix in first.replicates.items():
                assert matrix.tobytes() == again.replicates[key].tobytes(), key
                stored = raw.get(f"boot_{key}")
                if stored is not None:
                    assert np.array_equal(stored, matrix, equal_nan=True), f"{key}: differs from the .npz"
        computed_s.append(first.seconds)
        ratios.append(again.seconds / first.seconds)
        print(
            f"repeat {i + 1}: computed {first.seconds:.2f} s, reused {again.seconds:.3f} s, "
            f"reused/computed {ratios[-1]:.4f} (load {before} -> {load()})"
        )
    print(f"median reused/computed: {statistics.median(ratios):.4f}; replicates bit-identical, equal to the .npz's")
    if args.rerun:
        cmd = [sys.executable, "-m", "fiqa_bench", *shlex.split(args.rerun), "--no-progress"]
        before = load()
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t
        print(
            f"whole rerun: {wall:.2f} s wall, {wall / statistics.median(computed_s):.3f} of the computed "
            f"bootstrap alone (load {before} -> {load()})"
        )


if __name__ == "__main__":
    main()
