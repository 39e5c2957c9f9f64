"""How often a quality network scores a face's strongly degraded copy below the face itself (issue 15's
acceptance: JPEG quality 10 and gaussian noise sigma 20 penalised in >= 80% of faces), on eval-part photos.

The photos are the undegraded rows of a labelled eval set (``fiqa-bench train-baseline data SET --part eval``,
e.g. .work/modern/evalset): each source photo is decoded, degraded as a whole loose photo (as the benchmark and
the labelled sets degrade, so JPEG blocks and noise act at the photo's own resolution; noise seeded by the row
number), aligned with the photo's stored landmarks, and scored. A tie counts as not penalised.

    python reports/tinyfq/penalties.py SET --weights methods/weights/tinyfq.onnx [--weights OTHER.onnx ...] --out J
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

DEGRADATIONS = {
    "jpeg-10": lambda image, i: __import__("fiqa_bench.data.degradations", fromlist=["jpeg"]).jpeg(image, quality=10),
    "noise-20": lambda image, i: __import__("fiqa_bench.data.degradations", fromlist=["gaussian_noise"]).gaussian_noise(
        image, sigma=20.0, seed=i
    ),
}


def faces_of(set_folder: str, limit: int = 0):
    """(clean faces, degraded faces by name) of the set's undegraded rows (first ``limit`` if > 0)."""
    from fiqa_bench.faces import Face, load_image
    from fiqa_bench.training.baselines import BaselineSet

    data = BaselineSet.load(set_folder)
    rows = np.flatnonzero(data.clean)
    if limit:
        rows = rows[:limit]
    clean, degraded = [], {name: [] for name in DEGRADATIONS}
    for i in rows.tolist():
        src = str(data.data.sources[i])
        image = load_image(src)
        lm, box = data.landmarks[i], data.boxes[i]
        box = None if not np.isfinite(box).all() else box
        clean.append(Face(image, lm, box, src))
        for name, fn in DEGRADATIONS.items():
            degraded[name].append(Face(fn(image, i), lm, box, src))
    return clean, degraded


def main() -> None:
    from fiqa_bench.faces import to_input
    from fiqa_bench.methods.tinyfq import TinyFQ

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("set")
    ap.add_argument("--weights", action="append", required=True, help="ONNX file(s) to compare")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    clean, degraded = faces_of(a.set, a.limit)
    out = {
        "set": a.set,
        "photos": len(clean),
        "rule": "fraction of photos with score(degraded) < score(photo)",
        "weights": {},
    }
    for w in a.weights:
        method = TinyFQ(weights=w)
        spec = method.card.input
        base = np.concatenate([method.score(to_input(clean[s : s + 256], spec)) for s in range(0, len(clean), 256)])
        res = {}
        for name, faces in degraded.items():
            worse = np.concatenate(
                [method.score(to_input(faces[s : s + 256], spec)) for s in range(0, len(faces), 256)]
            )
            res[name] = {
                "penalised": round(float((worse < base).mean()), 4),
                "mean_drop": round(float((base - worse).mean()), 4),
            }
        out["weights"][w] = res
        print(w, res, flush=True)
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
