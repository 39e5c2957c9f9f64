"""What a strong degradation does to the 64x64 crops tinyFQnet sees: luma / chroma difference energy (low and high
frequencies) and the copy's high-frequency energy relative to its photo's, per kind, on the labelled set.

Why: blur and down-scaling remove high frequencies (a "sharper is better" feature ranks them right), noise adds
them, mostly in chroma (so that feature ranks noisy copies *better*, while a chroma feature could tell), and
JPEG-10 leaves the luma high-frequency energy about unchanged (lost detail replaced by block edges) with a
moderate chroma rise: the reason the network's JPEG penalty stayed near chance in every ablation row.
YCbCr (BT.601), low = Gaussian sigma 2 px, high-frequency energy = mean square of image minus its sigma-1 blur.

    python reports/tinyfq/visibility.py [--set .work/tinyfq/c4] [--n 300] [--out J]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

YCC = np.array([[0.299, 0.587, 0.114], [-0.169, -0.331, 0.5], [0.5, -0.419, -0.081]], np.float32)
KINDS = ("jpeg", "gaussian_noise", "gaussian_blur", "motion_blur", "downscale")


def measures(photo: np.ndarray, copy: np.ndarray) -> list[float]:
    """[luma diff rms low, high, chroma diff rms low, high, copy/photo HF energy luma, chroma] of two uint8 crops."""
    import cv2

    a, b = photo.astype(np.float32) @ YCC.T, copy.astype(np.float32) @ YCC.T
    d = b - a
    low = cv2.GaussianBlur(d, (0, 0), 2.0)
    high = d - low
    hf = lambda x: float(((x - cv2.GaussianBlur(x, (0, 0), 1.0)) ** 2).mean())  # noqa: E731
    rms = lambda x: float(np.sqrt((x**2).mean()))  # noqa: E731
    return [
        rms(low[..., 0]),
        rms(high[..., 0]),
        rms(low[..., 1:]),
        rms(high[..., 1:]),
        hf(b[..., 0]) / hf(a[..., 0]),
        hf(np.ascontiguousarray(b[..., 1:])) / hf(np.ascontiguousarray(a[..., 1:])),
    ]


def main() -> None:
    from fiqa_bench.training.dataset import TrainingSet

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", default=".work/tinyfq/c4")
    ap.add_argument("--n", type=int, default=300, help="strong copies per kind (the first in row order)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    ts = TrainingSet.load(a.set)
    photo = {(ts.identities[i], ts.sources[i]): i for i, d in enumerate(ts.degradations) if not d}
    out = {}
    for kind in KINDS:
        rows = [
            i
            for i, d in enumerate(ts.degradations)
            if d and d["name"] == kind and d["level"] == "strong" and (ts.identities[i], ts.sources[i]) in photo
        ][: a.n]
        m = np.array([measures(ts.images[photo[(ts.identities[i], ts.sources[i])]], ts.images[i]) for i in rows])
        out[kind] = {
            "n": len(rows),
            "luma_diff_rms_low": round(float(m[:, 0].mean()), 2),
            "luma_diff_rms_high": round(float(m[:, 1].mean()), 2),
            "chroma_diff_rms_low": round(float(m[:, 2].mean()), 2),
            "chroma_diff_rms_high": round(float(m[:, 3].mean()), 2),
            "hf_ratio_luma_median": round(float(np.median(m[:, 4])), 3),
            "hf_ratio_chroma_median": round(float(np.median(m[:, 5])), 3),
            "luma_hf_up": round(float((m[:, 4] > 1).mean()), 3),
        }
        print(kind, out[kind])
    if a.out:
        Path(a.out).write_text(json.dumps({"set": a.set, "level": "strong", "kinds": out}, indent=2) + "\n")


if __name__ == "__main__":
    main()
