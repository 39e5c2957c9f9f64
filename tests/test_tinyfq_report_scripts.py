"""reports/tinyfq's per-kind penalty count (own_penalties.py) and crop measures (visibility.py) on generated rows."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1] / "reports" / "tinyfq"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"tinyfq_{name}", ROOT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_own_penalties_count_copies_scored_below_their_photo_by_part():
    own = _load("own_penalties")
    jpeg = {"name": "jpeg", "level": "strong"}
    noise = {"name": "gaussian_noise", "level": "strong"}
    # photo a (id1) with 2 jpeg copies and 1 noise copy; photo b (id2, held out) with 1 jpeg copy;
    # a copy whose photo has no label and one without a photo row are left out
    ids = np.array(["id1", "id1", "id1", "id1", "id2", "id2", "id3", "id4"])
    src = np.array(["a", "a", "a", "a", "b", "b", "c", "d"])
    deg = [None, jpeg, jpeg, noise, None, jpeg, jpeg, None]
    pred = np.array([0.8, 0.5, 0.8, 0.9, 0.6, 0.4, 0.1, 0.5])  # a tie (row 2) is not penalised
    labels = np.array([0.9, 0.7, 0.6, 0.8, 0.7, 0.75, 0.2, np.nan])
    res = own.penalties(pred, labels, ids, src, deg, held_out={"id2"})
    assert res["train"]["jpeg/strong"] == {"n": 2, "net": 0.5, "label": 1.0, "net_drop": 0.15, "label_drop": 0.25}
    assert res["train"]["gaussian_noise/strong"] == {
        "n": 1,
        "net": 0.0,
        "label": 1.0,
        "net_drop": -0.1,
        "label_drop": 0.1,
    }
    assert res["val"]["jpeg/strong"] == {"n": 1, "net": 1.0, "label": 0.0, "net_drop": 0.2, "label_drop": -0.05}
    assert set(res) == {"train", "val"}


def test_visibility_measures_see_blur_remove_and_noise_add_high_frequencies():
    pytest.importorskip("cv2")
    import cv2

    vis = _load("visibility")
    rng = np.random.default_rng(0)
    photo = cv2.GaussianBlur(rng.integers(0, 256, (64, 64, 3)).astype(np.uint8), (0, 0), 1.0)
    same = vis.measures(photo, photo.copy())
    assert same[:4] == [0.0, 0.0, 0.0, 0.0] and same[4:] == [1.0, 1.0]
    blurred = vis.measures(photo, cv2.GaussianBlur(photo, (0, 0), 2.0))
    noisy = vis.measures(photo, np.clip(photo + rng.normal(0, 20, photo.shape), 0, 255).astype(np.uint8))
    assert blurred[4] < 0.5 and blurred[5] < 0.5  # blur removes high frequencies, luma and chroma
    assert noisy[4] > 1.5 and noisy[5] > 1.5  # noise adds them
    grey = np.repeat(photo[..., :1], 3, axis=2)  # a grey copy: no chroma difference energy beyond rounding
    assert vis.measures(grey, grey)[2:4] == [0.0, 0.0]
