"""How often a quality network scores a face's strongly degraded copy below the face itself (issue 15's
acceptance: JPEG quality 10 and gaussian noise sigma 20 penalised in >= 80% of faces), on eval-part photos.

A thin caller of the suite's sensitivity code (``fiqa-bench sensitivity SET --degrade jpeg:10 --degrade
gaussian_noise:20 --method tinyfq ...`` gives the same shares with intervals, per kind and strength): the photos are
the undegraded rows of a labelled eval set (``fiqa-bench train-baseline data SET --part eval``, e.g.
.work/modern/evalset), each degraded as a whole loose photo (noise seeded by the row number), aligned with the
photo's stored landmarks, and scored (:mod:`fiqa_bench.training.baselines.sensitivity`). A tie counts as not
penalised. Writes the committed ``penalties-*.json`` layout for several weights files at once.

    python reports/tinyfq/penalties.py SET --weights methods/weights/tinyfq.onnx [--weights OTHER.onnx ...] --out J
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

#: The committed names of the two degradations and their (kind, level) in fiqa_bench.data.degradations.
DEGRADATIONS = {"jpeg-10": ("jpeg", "strong"), "noise-20": ("gaussian_noise", "strong")}


def main() -> None:
    from fiqa_bench.methods.tinyfq import TinyFQ
    from fiqa_bench.training.baselines.sensitivity import set_copies

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("set")
    ap.add_argument("--weights", action="append", required=True, help="ONNX file(s) to compare")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    out: dict = {"set": a.set, "photos": 0, "rule": "fraction of photos with score(degraded) < score(photo)"}
    out["weights"] = {}
    for w in a.weights:
        copies, out["photos"] = set_copies(a.set, list(DEGRADATIONS.values()), TinyFQ(weights=w), "tinyfq", a.limit)
        res = {}
        for name, (kind, level) in DEGRADATIONS.items():
            m = (copies.kind == kind) & (copies.level == level)
            res[name] = {
                "penalised": round(float(copies.penalised()[m].mean()), 4),
                "mean_drop": round(float(np.mean(copies.source_score[m] - copies.copy_score[m])), 4),
            }
        out["weights"][w] = res
        print(w, res, flush=True)
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
