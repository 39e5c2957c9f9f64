"""Throughput of the face pipeline on real images, and the LFW detection rate.

    python benchmarks/bench_faces.py --n 300            # images/s: decode, +detect (YuNet, SCRFD), +align
    python benchmarks/bench_faces.py --rate             # YuNet detection rate on all 7701 LFW images

Needs the shared data (``--shared`` or ``$FIQA_SHARED``). Each stage is timed on the same ``--n`` files (a seeded
sample), once with OpenCV and onnxruntime limited to 1 thread and once with their default thread counts.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from fiqa_bench.faces.align import align_face
from fiqa_bench.faces.detect import LFW_PAD, ScrfdDetector, YuNetDetector, detect_face
from fiqa_bench.faces.io import load_image

DATASETS = {
    "lfw": ("data/lfw/lfw/*/*.jpg", LFW_PAD),
    "celeba-wild": ("data/celeba-wild/images/*/*.jpg", 0.0),
}


def _files(shared: Path, dataset: str, n: int | None, seed: int) -> list[Path]:
    files = sorted(shared.glob(DATASETS[dataset][0]))
    if not files:
        sys.exit(f"no images for {dataset} under {shared}")
    if n is None or n >= len(files):
        return files
    rng = np.random.default_rng(seed)
    return [files[i] for i in sorted(rng.choice(len(files), n, replace=False))]


def _rate(files, fn) -> tuple[float, float]:
    """(images/s, fraction of images with a face) for ``fn(path) -> bool``."""
    t = time.perf_counter()
    found = sum(bool(fn(p)) for p in files)
    return len(files) / (time.perf_counter() - t), found / len(files)


def throughput(shared: Path, n: int, seed: int) -> None:
    import cv2

    yunet_path = shared / "models/yunet/face_detection_yunet_2026may.onnx"
    scrfd_path = shared / "models/scrfd/scrfd_500m_kps.onnx"
    default_threads = cv2.getNumThreads()
    print(f"cv2 {cv2.__version__}, default cv2 threads {default_threads}, cpus {os.cpu_count()}, n={n}")
    print(f"{'dataset':12s} {'threads':8s} {'stage':28s} {'img/s':>8s} {'found':>7s}")
    for dataset, (_, pad) in DATASETS.items():
        files = _files(shared, dataset, n, seed)
        for f in files:  # warm the OS file cache so the first stage is not charged for disk reads
            f.read_bytes()
        for label, cv_threads, ort_threads in (("1", 1, 1), ("default", default_threads, None)):
            cv2.setNumThreads(cv_threads)
            yunet = YuNetDetector(yunet_path)
            scrfd = ScrfdDetector(scrfd_path, threads=ort_threads)
            warm = load_image(files[0])
            yunet.detect(warm)
            scrfd.detect(warm)

            # B023: these functions are timed and dropped in this iteration (the loop below), never kept for later
            def align(p):
                img = load_image(p)
                det = detect_face(yunet, img, pad)  # noqa: B023
                return det is not None and align_face(img, det.landmarks, 112) is not None

            stages = [
                ("decode", lambda p: load_image(p) is not None),
                (f"decode+detect yunet pad={pad:g}", lambda p: detect_face(yunet, load_image(p), pad)),  # noqa: B023
                (f"decode+detect scrfd pad={pad:g}", lambda p: detect_face(scrfd, load_image(p), pad)),  # noqa: B023
                ("decode+detect yunet+align", align),
            ]
            for name, fn in stages:
                speed, found = _rate(files, fn)
                print(f"{dataset:12s} {label:8s} {name:28s} {speed:8.1f} {found:7.2%}", flush=True)
    cv2.setNumThreads(default_threads)


def detection_rate(shared: Path, pads: list[float], detectors: list[str]) -> None:
    files = _files(shared, "lfw", None, 0)
    images = [load_image(p) for p in files]
    for name in detectors:
        if name == "yunet":
            det = YuNetDetector(shared / "models/yunet/face_detection_yunet_2026may.onnx")
        else:
            det = ScrfdDetector(shared / "models/scrfd/scrfd_500m_kps.onnx")
        for pad in pads:
            t = time.perf_counter()
            missed = [f for f, img in zip(files, images) if detect_face(det, img, pad) is None]
            rate = 1 - len(missed) / len(files)
            print(
                f"LFW {name} pad={pad:g}: {len(files) - len(missed)}/{len(files)} = {rate:.2%} "
                f"({time.perf_counter() - t:.0f} s)",
                flush=True,
            )
            for f in missed[:10]:
                print(f"   missed {f.relative_to(shared)}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=300, help="images per dataset for the throughput run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shared", type=Path, default=os.environ.get("FIQA_SHARED"), help="shared data folder")
    ap.add_argument("--rate", action="store_true", help="measure the detection rate on all LFW images instead")
    ap.add_argument("--pads", default=f"0,{LFW_PAD:g}", help="comma-separated pads for --rate")
    ap.add_argument("--detectors", default="yunet", help="comma-separated detectors for --rate (yunet,scrfd)")
    args = ap.parse_args(argv)
    if args.shared is None or not Path(args.shared).is_dir():
        ap.error("give --shared or set FIQA_SHARED to the shared data folder")
    shared = Path(args.shared)
    if args.rate:
        detection_rate(shared, [float(p) for p in args.pads.split(",")], args.detectors.split(","))
    else:
        throughput(shared, args.n, args.seed)


if __name__ == "__main__":
    main()
