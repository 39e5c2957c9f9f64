"""Choose GraFIQs' block for MobileFaceNet on TRAIN-part identities only (the eval part is never looked at).

Usage (``S`` = ``$FIQA_SHARED``)::

    fiqa-bench train-baseline data .work/modern/trainset --fr onnx:S/models/mobilefacenet/mobilefacenet.onnx \
        --source S/data/celeba-wild/images:per_identity=3 --part train --seed 0
    python reports/modern/choose_grafiqs_block.py .work/modern/trainset --rows 400 \
        --out reports/modern/grafiqs-blocks-train.json

For each block of ``torch-mobilefacenet`` it scores the first ``--rows`` rows of the set (stored 112x112 crops,
whole photos with their ladders) with ``-sum |dL_BNS / d block|`` and reports the Spearman correlation with the
set's Eq. 1 labels, the ladder-pair accuracy and the sign check (is the unsigned sum larger on degraded rows?).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    from fiqa_bench.backbones.torch_mobilefacenet import TorchMobileFaceNet
    from fiqa_bench.methods.grafiqs import GraFIQs
    from fiqa_bench.training.baselines import BaselineSet, ladder_accuracy, spearman

    ap = argparse.ArgumentParser()
    ap.add_argument("set")
    ap.add_argument("--rows", type=int, default=400)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    data = BaselineSet.load(args.set)
    if data.meta.get("part") != "train":
        raise SystemExit(f"{args.set}: part {data.meta.get('part')!r}; the block is chosen on train-part identities")
    data = data.subset(np.arange(min(args.rows, len(data))))
    crops = np.asarray(data.data.images)
    labels = np.asarray(data.data.labels, np.float64)
    clean = data.clean
    backbone = TorchMobileFaceNet()
    out = {
        "set": Path(args.set).name,
        "part": "train",
        "rows": len(data),
        "photos": int(len(np.unique(data.photo))),
        "blocks": {},
    }
    for block in backbone.block_names:
        t = time.perf_counter()
        grads = GraFIQs(backbone, block=block).gradients(crops)
        sums = np.array([np.abs(g.astype(np.float64)).sum() for g in grads])
        q = -sums
        out["blocks"][block] = {
            "spearman_eq1_all": round(spearman(q, labels), 4),
            "spearman_eq1_clean": round(spearman(q[clean], labels[clean]), 4),
            "ladder_pairs": round(ladder_accuracy(q, data)["pairs"], 4),
            "mean_abs_grad_sum_clean": float(sums[clean].mean()),
            "mean_abs_grad_sum_degraded": float(sums[~clean].mean()),
            "ms_per_image": round(1000 * (time.perf_counter() - t) / len(data), 1),
        }
        print(block, out["blocks"][block], flush=True)
    best = max(out["blocks"], key=lambda b: out["blocks"][b]["spearman_eq1_all"])
    out["best_by_spearman_all"] = best
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
