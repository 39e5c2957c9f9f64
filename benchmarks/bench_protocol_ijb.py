"""Time the IJB layout reader at IJB-C scale: 469,375 faces (with 5-point landmarks), 23,124 templates,
15,658,489 template pairs, optionally with 469,375 (empty) image files for the existence check.

    python benchmarks/bench_protocol_ijb.py [--images] [--dir DIR]

The synthetic layout is written once into DIR (default: a temporary folder, removed afterwards) and read
three times; the best time is reported. Nothing here is asserted: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from fiqa_bench.protocols.ijb import IJBLayout

N_FACES, N_TEMPLATES, N_PAIRS = 469_375, 23_124, 15_658_489


def write_layout(root: Path, images: bool) -> None:
    rng = np.random.default_rng(0)
    meta = root / "meta"
    meta.mkdir(parents=True, exist_ok=True)
    tids = np.sort(rng.integers(1, N_TEMPLATES + 1, N_FACES))
    tids[:N_TEMPLATES] = np.arange(1, N_TEMPLATES + 1)
    (meta / "ijbc_face_tid_mid.txt").write_text(
        "".join(f"{i}.jpg {t} {i // 3}\n" for i, t in enumerate(tids.tolist(), 1))
    )
    rows = [" ".join(f"{v:.3f}" for v in r) for r in rng.uniform(0, 112, (1009, 11))]
    (meta / "ijbc_name_5pts_score.txt").write_text(
        "".join(f"{i}.jpg {rows[i % 1009]}\n" for i in range(1, N_FACES + 1))
    )
    # distinct unordered pairs, no template with itself (the reader refuses both), in random order
    keys = np.unique(rng.integers(0, N_TEMPLATES * N_TEMPLATES, 2 * N_PAIRS + N_PAIRS // 5))
    a, b = keys // N_TEMPLATES + 1, keys % N_TEMPLATES + 1
    keep = a < b
    drawn = rng.permutation(np.column_stack([a[keep], b[keep]]))[:N_PAIRS]
    with open(meta / "ijbc_template_pair_label.txt", "w") as fh:
        for start in range(0, N_PAIRS, 1_000_000):
            n = min(1_000_000, N_PAIRS - start)
            block = np.column_stack([drawn[start : start + n], rng.integers(0, 2, n)])
            fh.write("".join(f"{a} {b} {c}\n" for a, b, c in block.tolist()))
    if images:
        crops = root / "loose_crop"
        crops.mkdir(exist_ok=True)
        for i in range(1, N_FACES + 1):
            (crops / f"{i}.jpg").touch()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", action="store_true", help="also create the image files and check them")
    ap.add_argument("--dir", type=Path, help="where to write the layout (kept)")
    args = ap.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="ijbc-bench-"))
    try:
        if not (root / "meta" / "ijbc_template_pair_label.txt").is_file():
            t = time.perf_counter()
            write_layout(root, args.images)
            print(f"wrote layout in {time.perf_counter() - t:.1f} s at {root}")
        times = []
        for _ in range(3):
            t = time.perf_counter()
            bench = IJBLayout(root, check_images=args.images).load()
            times.append(time.perf_counter() - t)
        print(
            f"ijb layout load: {len(bench.faces):,} faces, {len(bench.pairs):,} pairs, check_images={args.images}: "
            f"best {min(times):.2f} s (runs: {', '.join(f'{x:.2f}' for x in times)})"
        )
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
