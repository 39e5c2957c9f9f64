"""LFW-derived template protocol: counts recomputed from the image folders, structure, determinism."""

from __future__ import annotations

import os
from collections import Counter
from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from fiqa_bench import registry
from fiqa_bench.protocols.lfw import LFW
from fiqa_bench.protocols.lfw_templates import LFWTemplates
from test_protocol_lfw import make_lfw


@pytest.fixture(scope="module")
def real(shared):
    return LFWTemplates(shared / "data" / "lfw").load()


def test_real_counts(real, shared):
    """Identities with >= 4 images, counted from the folders (the shared copy holds exactly the View-2 images)."""
    folder = shared / "data" / "lfw" / "lfw"
    sizes = {d: len(os.listdir(folder / d)) for d in os.listdir(folder)}
    kept = {d for d, n in sizes.items() if n >= 4}
    assert len(kept) == 439 and sum(sizes[d] for d in kept) == 2431
    f, p = real.faces, real.pairs
    assert set(f["identity"]) == kept and len(f) == 2431
    assert f["group"].nunique() == 878
    assert int(p["label"].sum()) == 439 and int((p["label"] == 0).sum()) == 878 * 877 // 2 - 439 == 384_564
    assert real.metric == "tpr_at_fpr" and real.detect_pad == LFW.DETECT_PAD and real.name == "lfw-templates"
    assert (p["fold"] == -1).all()


def test_real_structure(real):
    f, p = real.faces, real.pairs
    ident = f.groupby("group")["identity"].agg(lambda s: s.unique().tolist())
    assert (ident.str.len() == 1).all()  # one identity per template
    owner = ident.str[0]
    assert (p["a"] < p["b"]).all() and not p.duplicated(["a", "b"]).any()
    np.testing.assert_array_equal(owner[p["a"]].to_numpy() == owner[p["b"]].to_numpy(), p["label"].to_numpy() == 1)
    sizes = f.groupby("group").size()
    assert sizes.min() >= 2
    # the two templates of one identity differ in size by at most one (alternating deal)
    per_identity = sizes.groupby(owner).agg(["min", "max"])
    assert ((per_identity["max"] - per_identity["min"]) <= 1).all()
    assert f["media"].tolist() == list(range(len(f)))


def test_real_is_deterministic(real, shared):
    again = LFWTemplates(shared / "data" / "lfw").load()
    pd.testing.assert_frame_equal(again.faces, real.faces)
    pd.testing.assert_frame_equal(again.pairs, real.pairs)
    assert again.fingerprint() == real.fingerprint()


def test_small_example_exactly(tmp_path):
    """Ann (4 images), Bob (5), Cy (2, dropped): templates dealt alternately in image-number order."""
    lines = ["1\t3", "Ann\t1\t2", "Ann\t3\t4", "Bob\t1\t2", "Bob\t3\tCy\t1", "Bob\t4\tCy\t2", "Bob\t5\tAnn\t1"]
    images = {"Ann": [1, 2, 3, 4], "Bob": [1, 2, 3, 4, 5], "Cy": [1, 2]}
    bench = LFWTemplates(make_lfw(tmp_path, lines, images)).load()
    f = bench.faces
    assert f["path"].tolist() == [f"lfw/Ann/Ann_{k:04d}.jpg" for k in (1, 2, 3, 4)] + [
        f"lfw/Bob/Bob_{k:04d}.jpg" for k in (1, 2, 3, 4, 5)
    ]
    assert f["group"].tolist() == [0, 1, 0, 1, 2, 3, 2, 3, 2]
    expected = [(a, b, int(a // 2 == b // 2)) for a, b in combinations(range(4), 2)]
    assert list(zip(bench.pairs["a"], bench.pairs["b"], bench.pairs["label"])) == expected
    assert Counter(bench.pairs["label"].tolist()) == {1: 2, 0: 4}


def test_registered():
    assert registry.load_class("protocol", "lfw-templates") is LFWTemplates
