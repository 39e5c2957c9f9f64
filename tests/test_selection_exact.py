"""Every selection, pinned exactly against loops written here: the kept images, each template's quality (what EDC
discards by), each pair's quality and score, and the metrics read off them.

The template-quality rule (top1: the kept image's; topk: the mean of the k kept; weighted and all: the best image
of the template) is what the results' pair quality note promises; a ``weighted`` template quality taken as the
mean would change every EDC number of a weighted run and nothing else, so it is checked both on hand-made groups
and on a real run. Pair scores are checked against embeddings the test computes itself, one image at a time, pooled
by the definitions below: a run that kept other images (e.g. the worst instead of the best) fails here even though
its ``.npz`` would be self-consistent.
"""

from __future__ import annotations

import numpy as np
import pytest

from _reference import (
    best_rows,
    cosine,
    embed_rows,
    fnm_edc_pauc_loop,
    template_quality_loop,
    tpr_at_fpr_conservative,
    unit,
)
from fiqa_bench.config import RunConfig
from fiqa_bench.pipeline.evaluation import select, template_quality
from fiqa_bench.pipeline.runner import run
from fiqa_bench.results.record import read_raw

GROUPS = np.array([7, 7, 7, 3, 3, 9, 9, 9, 9])
QUALITY = np.array([0.2, 0.9, 0.5, 0.1, 0.4, 0.3, 0.8, 0.8, 0.1])
IDS = np.array([3, 7, 9])


@pytest.mark.parametrize(
    "selection,k,how",
    [("top1", 1, "max"), ("topk", 2, "mean"), ("topk", 3, "mean"), ("weighted", 99, "max"), ("all", 99, "max")],
)
def test_template_quality_of_each_selection_equals_a_loop(selection, k, how):
    """weighted and all keep every image and take the best one's quality (0.9, not the mean 0.533 of group 7)."""
    rows = select(GROUPS, QUALITY, np.ones(9, bool), selection, k)
    assert sorted(rows.tolist()) == sorted(best_rows(GROUPS, QUALITY, np.ones(9, bool), k))
    expect = template_quality_loop(rows, GROUPS, QUALITY, how)
    got = template_quality(GROUPS, rows, QUALITY, selection, IDS)
    assert got.tolist() == [expect[g] for g in IDS.tolist()]


def test_weighted_template_quality_is_the_best_images_not_the_mean():
    got = template_quality(GROUPS, np.arange(9), QUALITY, "weighted", IDS)
    assert got.tolist() == [0.4, 0.9, 0.8]


# ------------------------------------------------------------------------------------------ real runs
@pytest.fixture(scope="module")
def embeddings(small_bench, shared):
    """Every image of ``small_bench`` embedded by the shared MobileFaceNet, one at a time."""
    from fiqa_bench.pipeline.runner import open_protocol
    from fiqa_bench.registry import create

    bench = open_protocol(str(small_bench)).load()
    backbone = create("backbone", f"onnx:{shared / 'models/mobilefacenet/mobilefacenet.onnx'}")
    return bench, embed_rows(bench, backbone, range(len(bench.faces)))


def _template_features(selection: str, kept, groups, media, quality, emb) -> dict[int, np.ndarray]:
    """top1: the kept image; topk: the mean of the kept images' unit embeddings; weighted: the mean of every
    image's unit embedding weighted by its quality rank among all kept images / their count (average ranks on
    ties); all: per media the mean, summed over media. Each then made unit length."""
    kept = [int(r) for r in kept]
    weight = {r: 1.0 for r in kept}
    if selection == "weighted":
        qs = [float(quality[r]) for r in kept]
        ordered = sorted(qs)
        for r, q in zip(kept, qs):
            positions = [i + 1 for i, v in enumerate(ordered) if v == q]
            weight[r] = (sum(positions) / len(positions)) / len(kept)
    feats = {}
    for g in sorted({int(groups[r]) for r in kept}):
        members = [r for r in kept if int(groups[r]) == g]
        if selection == "all":
            total = np.zeros_like(emb[members[0]])
            for m in sorted({int(media[r]) for r in members}):
                in_media = [r for r in members if int(media[r]) == m]
                total = total + sum(unit(emb[r]) for r in in_media) / len(in_media)
            feats[g] = unit(total)
        else:
            feats[g] = unit(sum(weight[r] * unit(emb[r]) for r in members) / len(members))
    return feats


@pytest.mark.shared
@pytest.mark.parametrize("selection,k", [("top1", 3), ("topk", 2), ("weighted", 3), ("all", 3)])
def test_each_selection_end_to_end_equals_loops(small_bench, mbf, tmp_path, isolated_cache, embeddings, selection, k):
    bench, emb = embeddings
    method = None if selection == "all" else "blur"
    path, rec = run(
        RunConfig(
            protocol=str(small_bench),
            backbone=mbf,
            method=method,
            selection=selection,
            k=k,
            bootstrap=0,
            out=str(tmp_path / "out"),
            progress=False,
        )
    )
    raw = read_raw(path)
    groups = raw["image_group"]
    n = groups.shape[0]
    # the kept images: the k best of each template (every image for weighted and all)
    take = {"top1": 1, "topk": k}.get(selection, n)
    q = raw["image_quality"].astype(np.float64) if method else np.zeros(n)
    expect_rows = best_rows(groups, q, np.ones(n, bool), take)
    assert sorted(raw["kept_rows"].tolist()) == sorted(expect_rows)
    assert rec["counts"]["images_embedded"] == len(expect_rows)
    # each template's quality, each pair's quality (min of its two sides)
    t_ids = raw["template_ids"].tolist()
    if method:
        how = "mean" if selection == "topk" else "max"
        tq = template_quality_loop(expect_rows, groups, raw["image_quality"].astype(np.float64), how)
        assert raw["template_quality"].tolist() == [tq[t] for t in t_ids]
        assert raw["pair_quality"].tolist() == [
            min(tq[int(a)], tq[int(b)]) for a, b in zip(raw["pair_a"], raw["pair_b"])
        ]
    else:
        assert np.isnan(raw["template_quality"]).all() and np.isnan(raw["pair_quality"]).all()
    # each pair's score: the cosine of the two templates' pooled features, from the test's own embeddings
    media = bench.faces["media"].to_numpy(np.int64)
    feats = _template_features(selection, expect_rows, groups, media, raw["image_quality"], emb)
    ref_scores = [cosine(feats[int(a)], feats[int(b)]) for a, b in zip(raw["pair_a"], raw["pair_b"])]
    np.testing.assert_allclose(raw["pair_scores"], ref_scores, rtol=0, atol=1e-5)  # float32; measured 6e-8
    # the metrics read off the recorded pairs, by the definitions
    s, y = raw["pair_scores"], raw["pair_labels"]
    values = rec["metrics"]["tpr_at_fpr"]["values"]
    assert values == {key: tpr_at_fpr_conservative(s, y, float(key)) for key in values}
    if method:
        mated = y == 1
        fnm = rec["metrics"]["edc_fnm"]
        for limit in ("0.20", "0.30"):
            thr, area = fnm_edc_pauc_loop(s[mated], raw["pair_quality"][mated], 0.05, float(limit))
            assert fnm["threshold"] == thr
            assert fnm["pauc"][limit] == area
    else:
        assert "unavailable" in rec["metrics"]["edc_fnm"]
