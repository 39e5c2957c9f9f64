"""Spearman with Eq. 1 and ladder order of the training-free methods on a labelled eval set, on torch-mobilefacenet.

``fiqa-bench train-baseline evaluate`` gives a method needing the backbone the set's labelling backbone (the
shared MobileFaceNet as ``onnx:PATH``); serfiq, grafiqs and faceqan need capabilities an ONNX file does not
offer, so they are skipped there with the CapabilityError. This script scores the same set with the same weights
in PyTorch (``torch-mobilefacenet``; embeddings equal to the ONNX model's within 1e-5 cosine) and writes the
same numbers as ``evaluate`` (:func:`fiqa_bench.training.baselines.spearman`, ``ladder_accuracy``).

Each method scores the set's stored 112x112 RGB crops (``score_crops``): exactly what ``score`` makes of a face
for this backbone (``evaluate`` checks that faces rebuilt from the photos give these crops within 2 grey levels).

``--photos N``: only N photos (every k-th photo of the set, all four ladder rows of each), for methods too costly
for the whole set (faceqan); every method listed is then scored on the same rows. Usage::

    python reports/modern/spearman_eval.py SET --methods norm,serfiq,grafiqs --out reports/modern/spearman-eval.json
    python reports/modern/spearman_eval.py SET --methods norm,serfiq,grafiqs,faceqan --photos 100 --out ...
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    from fiqa_bench.backbones.torch_mobilefacenet import TorchMobileFaceNet
    from fiqa_bench.registry import create
    from fiqa_bench.training.baselines import BaselineSet, ladder_accuracy, spearman

    ap = argparse.ArgumentParser()
    ap.add_argument("set")
    ap.add_argument("--methods", default="norm,serfiq,grafiqs")
    ap.add_argument("--photos", type=int, default=0, help="score only this many photos (evenly spaced); 0 = all")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    data = BaselineSet.load(args.set)
    photo = data.photo
    if args.photos:
        chosen = np.unique(photo)[:: max(1, len(np.unique(photo)) // args.photos)][: args.photos]
        data = data.subset(np.flatnonzero(np.isin(photo, chosen)))
    crops = data.data.images
    labels = np.asarray(data.data.labels, np.float64)
    clean = data.clean
    backbone = TorchMobileFaceNet()
    out = {
        "set": {k: data.meta.get(k) for k in ("part", "seed", "ladder")},
        "set_command": "fiqa-bench train-baseline data SET --fr onnx:S/models/mobilefacenet/mobilefacenet.onnx "
        "--source S/data/celeba-wild/images:per_identity=10 --part eval --seed 0",
        "labels": "Eq. 1 of the shared MobileFaceNet (the set's labelling backbone; the same weights as "
        "torch-mobilefacenet)",
        "rows": int(len(data)),
        "photos": int(len(np.unique(data.photo))),
        "identities": int(len(np.unique(data.data.identities))),
        "backbone": backbone.identity(),
        "methods": {},
    }
    for name in [m.strip() for m in args.methods.split(",") if m.strip()]:
        method = create("method", name, backbone=backbone)
        t = time.perf_counter()
        scores = np.concatenate(
            [method.score_crops(np.asarray(crops[i : i + args.batch])) for i in range(0, len(data), args.batch)]
        ).astype(np.float64)
        seconds = time.perf_counter() - t
        ladder = ladder_accuracy(scores, data)
        out["methods"][name] = {
            "spearman_eq1_all": round(spearman(scores, labels), 4),
            "spearman_eq1_clean": round(spearman(scores[clean], labels[clean]), 4),
            "ladder_pairs": round(ladder["pairs"], 4),
            "ladder_photos": round(ladder["photos"], 4),
            "identity": method.identity(),
            "seconds": round(seconds, 1),
            "ms_per_row": round(1000 * seconds / len(data), 1),
        }
        print(name, out["methods"][name], flush=True)
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
