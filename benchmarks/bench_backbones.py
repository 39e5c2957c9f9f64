"""Throughput of the FR backbones' ``embed`` on real LFW faces (images/s; preparation not timed).

    python benchmarks/bench_backbones.py --n 64           # MobileFaceNet (onnx) and dlib, batch and single

Faces are decoded, detected (YuNet) and, for aligned-input backbones, aligned before timing, so the numbers
are the backbone alone. "batch" embeds all ``--n`` faces in one call (batch_size 32); "single" calls ``embed``
once per face, as an interactive user would. Needs the shared data (``--shared`` or ``$FIQA_SHARED``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from fiqa_bench.backbones import thread_count
from fiqa_bench.backbones.onnx_arcface import OnnxArcFace
from fiqa_bench.faces import Face, YuNetDetector, detect_face, load_image, to_input
from fiqa_bench.faces.detect import LFW_PAD


def lfw_faces(shared: Path, n: int, seed: int) -> list[Face]:
    files = sorted(shared.glob("data/lfw/lfw/*/*.jpg"))
    rng = np.random.default_rng(seed)
    detector = YuNetDetector(shared / "models/yunet/face_detection_yunet_2026may.onnx")
    faces = []
    for i in rng.permutation(len(files)):
        image = load_image(files[i])
        det = detect_face(detector, image, LFW_PAD)
        if det is not None:
            faces.append(Face(image, det.landmarks, det.box, str(files[i]), detected=True))
        if len(faces) == n:
            return faces
    sys.exit("not enough faces found")


def rate(fn, n_images: int, repeat: int) -> float:
    fn()  # warm-up: loads weights, first-run allocations
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n_images / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=os.environ.get("FIQA_SHARED"))
    ap.add_argument("--n", type=int, default=64, help="faces per timing")
    ap.add_argument("--repeat", type=int, default=2, help="timings per case (best is reported)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-dlib", action="store_true")
    args = ap.parse_args()
    if args.shared is None or not (args.shared / "data/lfw").is_dir():
        sys.exit("needs the shared data: --shared PATH or FIQA_SHARED")
    faces = lfw_faces(args.shared, args.n, args.seed)
    mfn = args.shared / "models/mobilefacenet/mobilefacenet.onnx"

    cases = []
    for flip in (False, True):
        bb = OnnxArcFace(mfn, normalisation="imagenet", flip=flip)
        cases.append((f"onnx mobilefacenet flip={flip}", bb, to_input(faces, bb.card.input)))
    if not args.skip_dlib:
        from fiqa_bench.backbones.dlib_resnet import DlibResNet

        for flip in (False, True):
            bb = DlibResNet(flip=flip)
            cases.append((f"dlib flip={flip}", bb, to_input(faces, bb.card.input)))

    print(f"cpus {os.cpu_count()}, onnxruntime threads {thread_count()}, n={args.n}, best of {args.repeat}")
    print(f"{'backbone':32s} {'batch img/s':>12s} {'single img/s':>13s}")
    for label, bb, inputs in cases:
        # B023: rate() calls each lambda at once, within this iteration, so the loop variables are the current ones
        batch = rate(lambda: bb.embed(inputs), len(inputs), args.repeat)  # noqa: B023
        single = rate(lambda: [bb.embed(inputs[i : i + 1]) for i in range(len(inputs))], len(inputs), args.repeat)  # noqa: B023
        print(f"{label:32s} {batch:12.1f} {single:13.1f}", flush=True)


if __name__ == "__main__":
    main()
