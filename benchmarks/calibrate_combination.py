"""Calibrate the perceptual baselines on the shared real faces; prints Python literals to paste into the modules.

    python benchmarks/calibrate_combination.py pose-model   # -> REFERENCE_MODEL_MM in methods/pose.py
    python benchmarks/calibrate_combination.py quantiles    # -> QUANTILES in methods/combination.py

Run ``pose-model`` first: the pose quantiles depend on the model. Data: ``FIQA_SHARED`` (default ``../shared``).

Calibration sample (both steps): 1,500 CelebA-wild loose crops and 600 LFW 150x150 crops, each taken at a regular
stride through the sorted file list (``paths[::len(paths) // n][:n]``); faces by YuNet (score 0.6, NMS 0.3) with
the protocols' pads (LFW 0.25, CelebA-wild 0); images without a face are left out (1 CelebA-wild photo).
Deterministic: the same shared data gives the same numbers. Nothing is written; nothing here is a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

N_CELEBA, N_LFW = 1500, 600
PADS = {"celeba": 0.0, "lfw": 0.25}


def shared_root() -> Path:
    env = os.environ.get("FIQA_SHARED")
    root = Path(env) if env else Path(__file__).resolve().parents[2] / "shared"
    if not (root / "data").is_dir():
        sys.exit(f"shared data not found at {root}: set FIQA_SHARED")
    return root


def stride_sample(paths: list[Path], n: int) -> list[Path]:
    paths = sorted(paths)
    return paths[:: max(1, len(paths) // n)][:n]


def calibration_faces(root: Path) -> list:
    """The calibration sample as ``Face`` objects (CelebA-wild first, then LFW)."""
    from fiqa_bench.faces import load_face, make_detector

    detector = make_detector("yunet", model_path=root / "models/yunet/face_detection_yunet_2026may.onnx")
    sources = {
        "celeba": stride_sample(list((root / "data/celeba-wild/images").glob("*/*.jpg")), N_CELEBA),
        "lfw": stride_sample(list((root / "data/lfw/lfw").glob("*/*.jpg")), N_LFW),
    }
    faces = []
    for name, paths in sources.items():
        found = [load_face(p, detector, pad=PADS[name], on_no_face="skip") for p in paths]
        kept = [f for f in found if f is not None]
        print(f"# {name}: {len(kept)} faces in {len(paths)} images", file=sys.stderr)
        faces.extend(kept)
    return faces


def pose_model(faces: list) -> None:
    from fiqa_bench.methods.pose import reference_model_from_landmarks

    model = reference_model_from_landmarks(np.stack([f.landmarks for f in faces]))
    names = ("image-left eye", "image-right eye", "nose tip", "image-left mouth corner", "image-right mouth corner")
    print("REFERENCE_MODEL_MM = np.array(\n    [")
    for row, name in zip(model, names):
        x, y, z = (round(float(v), 2) + 0.0 for v in row)  # + 0.0: no "-0.00"
        print(f"        [{x:.2f}, {y:.2f}, {z:.2f}],  # {name}")
    print("    ],\n    dtype=np.float64,\n)")


def quantiles(faces: list) -> None:
    from fiqa_bench.methods.combination import LEVELS, MEASURES, component_scores

    raw = component_scores(faces)
    print("QUANTILES: dict[str, tuple[float, ...]] = {")
    for m in MEASURES:
        q = np.quantile(raw[m].astype(np.float64), LEVELS)
        if not (np.diff(q) > 0).all():
            sys.exit(f"{m}: quantiles not strictly increasing; use a larger sample")
        lines = textwrap.wrap(", ".join(f"{v:.7g}" for v in q), 108)
        print(f'    "{m}": (\n' + "\n".join("        " + line for line in lines) + ",\n    ),")
    print("}")
    for m in MEASURES:
        v = raw[m]
        print(f"# {m}: n={len(v)} min {v.min():.4g} median {np.median(v):.4g} max {v.max():.4g}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("pose-model", "quantiles"))
    args = parser.parse_args()
    start = time.perf_counter()
    faces = calibration_faces(shared_root())
    (pose_model if args.step == "pose-model" else quantiles)(faces)
    print(f"# {len(faces)} faces, {time.perf_counter() - start:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
