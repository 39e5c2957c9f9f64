"""The evaluation core's stages on hand-made groups, and a golden end-to-end run on a small real benchmark.

These pin the heart of the protocol: top1 keeps the argmax (ties to the first listed image), topk the k best,
weighted pools with quality-rank weights, all pools like insightface; the kept image of every template and the
metrics of a real run; rescore from the .npz; a same-size edit of an image invalidates its cached score.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from _reference import best_rows, fnm_edc_pauc_loop, kfold_accuracy_loop, template_quality_loop, tpr_at_fpr_conservative
from fiqa_bench.config import RunConfig
from fiqa_bench.metrics.edc import edc, pauc, theoretical_best_area
from fiqa_bench.pipeline.evaluation import select, template_features, template_quality
from fiqa_bench.pipeline.runner import run
from fiqa_bench.results.record import read_raw

# ------------------------------------------------------------------------------------ selection (units)
GROUPS = np.array([7, 7, 7, 3, 3, 9, 9, 9, 9])
QUALITY = np.array([0.2, 0.9, 0.5, 0.1, 0.1, 0.3, 0.8, 0.8, 0.1])


def test_top1_keeps_the_argmax_of_each_group():
    kept = select(GROUPS, QUALITY, np.ones(9, bool), "top1")
    # group 3: a tie (0.1, 0.1) -> the first listed row (3); group 9: tie 0.8/0.8 -> row 6
    assert kept.tolist() == [3, 1, 6]


def test_top1_tie_break_is_the_protocol_order_not_the_sort():
    q = np.array([0.5, 0.5, 0.5, 0.5])
    assert select(np.array([1, 1, 1, 1]), q, np.ones(4, bool), "top1").tolist() == [0]
    avail = np.array([False, True, True, True])
    assert select(np.array([1, 1, 1, 1]), q, avail, "top1").tolist() == [1]


def test_topk_keeps_the_k_best_in_rank_order():
    kept = select(GROUPS, QUALITY, np.ones(9, bool), "topk", k=2)
    assert kept.tolist() == [3, 4, 1, 2, 6, 7]
    assert select(GROUPS, QUALITY, np.ones(9, bool), "topk", k=1).tolist() == [3, 1, 6]
    assert select(GROUPS, QUALITY, np.ones(9, bool), "topk", k=10).tolist() == [3, 4, 1, 2, 0, 6, 7, 5, 8]


def test_unavailable_images_are_never_kept():
    avail = np.ones(9, bool)
    avail[[1, 6, 7]] = False
    assert select(GROUPS, QUALITY, avail, "top1").tolist() == [3, 2, 5]
    assert select(GROUPS, QUALITY, avail, "all").tolist() == [0, 2, 3, 4, 5, 8]


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_weighted_pooling_equals_a_loop_reference():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(9, 8)).astype(np.float32)
    rows = np.arange(9)
    ids, feats = template_features(GROUPS, GROUPS, rows, emb, QUALITY, "weighted")
    # reference: rank of each image's quality among all (average ranks for ties), weight = rank / N
    ranks = np.array([np.mean([1 + j for j, v in enumerate(sorted(QUALITY)) if v == q]) for q in QUALITY])
    w = ranks / 9
    for t, gid in enumerate(ids):
        members = np.flatnonzero(GROUPS == gid)
        ref = sum(w[i] * _unit(emb[i].astype(np.float64)) for i in members) / len(members)
        np.testing.assert_allclose(feats[t], _unit(ref), atol=1e-6)


def test_all_pooling_is_insightface_media_mean_then_sum():
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(5, 4)).astype(np.float32)
    groups = np.array([1, 1, 1, 1, 2])
    media = np.array([10, 10, 11, 12, 20])
    ids, feats = template_features(groups, media, np.arange(5), emb, None, "all")
    u = _unit(emb.astype(np.float64))
    ref1 = (u[0] + u[1]) / 2 + u[2] + u[3]
    np.testing.assert_allclose(feats[0], _unit(ref1), atol=1e-6)
    np.testing.assert_allclose(feats[1], u[4], atol=1e-6)


def test_template_quality_per_selection():
    rows = select(GROUPS, QUALITY, np.ones(9, bool), "topk", k=2)
    ids = np.array([3, 7, 9])
    assert template_quality(GROUPS, rows, QUALITY, "topk", ids).tolist() == pytest.approx([0.1, 0.7, 0.8])
    top1 = select(GROUPS, QUALITY, np.ones(9, bool), "top1")
    assert template_quality(GROUPS, top1, QUALITY, "top1", ids).tolist() == [0.1, 0.9, 0.8]
    assert template_quality(GROUPS, np.arange(9), QUALITY, "all", ids).tolist() == [0.1, 0.9, 0.8]


# ------------------------------------------------------------------------------------ golden end to end
def _cfg(bench, backbone, out, **kw) -> RunConfig:
    return RunConfig(protocol=str(bench), backbone=backbone, out=str(out), progress=False, **kw)


@pytest.mark.shared
def test_golden_run_kept_images_metrics_and_rescore(small_bench, mbf, tmp_path, isolated_cache):
    path, rec = run(_cfg(small_bench, mbf, tmp_path / "out", method="blur"))
    raw = read_raw(path)
    groups, q = raw["image_group"], raw["image_quality"]
    # the kept image of every template is the argmax of the method's scores (first listed on ties)
    for g, row in zip(raw["kept_group"], raw["kept_rows"]):
        members = np.flatnonzero(groups == g)
        assert row == members[np.argmax(q[members])]
    assert len(set(raw["kept_group"].tolist())) == rec["counts"]["templates"] == 12
    assert raw["kept_paths"].tolist() == GOLDEN_PATHS
    assert rec["metrics"]["tpr_at_fpr"]["values"] == GOLDEN_TPR
    assert rec["metrics"]["edc_fnm"]["pauc"] == pytest.approx(GOLDEN_FNM_PAUC, abs=1e-12)
    # EDC from the .npz by the definition, independently of the suite's code path
    mated = raw["pair_labels"] == 1
    s, pq = raw["pair_scores"][mated].astype(np.float64), raw["pair_quality"][mated]
    t_pos = {t: i for i, t in enumerate(raw["template_ids"].tolist())}
    tq = raw["template_quality"]
    expect_pq = np.minimum([tq[t_pos[a]] for a in raw["pair_a"][mated]], [tq[t_pos[b]] for b in raw["pair_b"][mated]])
    np.testing.assert_array_equal(pq, expect_pq)
    thr = np.quantile(s, 0.05)
    assert rec["metrics"]["edc_fnm"]["threshold"] == thr
    # rescore recomputes every metric from the .npz alone
    from fiqa_bench.results.rescore import rescore

    assert rescore(path) == []
    # tampering with a pair score is caught by the recorded sha256
    raw_file = path.with_suffix(".npz")
    blob = bytearray(raw_file.read_bytes())
    blob[-100] ^= 1
    raw_file.write_bytes(bytes(blob))
    from fiqa_bench.errors import FiqaBenchError

    with pytest.raises(FiqaBenchError, match="sha256 differs"):
        rescore(path)


#: The `small_bench` fixture (prepare seed 0) with blur and the shared MobileFaceNet: the kept image of each of the
#: 12 templates (in template order; note blur keeps one degraded copy, `_deg`: noise raises the Laplacian) and
#: the metrics. 6 genuine / 60 impostor pairs: only FPR 1e-1 is measurable. Made on 2026-12-01 (89fbf0d), before
#: versions were recorded (the first recorded environment, a day later: numpy 2.4.6, onnxruntime 1.32.0, OpenCV
#: 5.0.0.93 for prepare's degradations, the decode and the warp); the same with OpenCV 5.1.0.95.
GOLDEN_PATHS = [
    "loose_crop/7201_030251.jpg",
    "loose_crop/7201_001085_deg.jpg",
    "loose_crop/7202_035829.jpg",
    "loose_crop/7202_094984.jpg",
    "loose_crop/7204_015278.jpg",
    "loose_crop/7204_027530.jpg",
    "loose_crop/7205_039353.jpg",
    "loose_crop/7205_032425.jpg",
    "loose_crop/7207_001321.jpg",
    "loose_crop/7207_048279.jpg",
    "loose_crop/7210_021086.jpg",
    "loose_crop/7210_020287.jpg",
]
GOLDEN_TPR = {"1e-1": 1.0, "1e-2": None, "1e-3": None, "1e-4": None, "1e-5": None}
GOLDEN_FNM_PAUC = {"0.20": 0.034444444444444444, "0.30": 0.05444444444444445}


@pytest.mark.shared
def test_topk_k2_and_k3_write_two_files_and_both_reach_the_report(small_bench, mbf, tmp_path, isolated_cache):
    from fiqa_bench.writers.report import load_results, render_markdown

    out = tmp_path / "out"
    p2, r2 = run(_cfg(small_bench, mbf, out, method="blur", selection="topk", k=2))
    p3, r3 = run(_cfg(small_bench, mbf, out, method="blur", selection="topk", k=3))
    assert p2 != p3 and p2.is_file() and p3.is_file()
    assert "__topk-k2__" in p2.name and "__topk-k3__" in p3.name
    md = render_markdown(load_results(out))
    assert "blur {k=2}" in md and "blur {k=3}" in md
    assert r2["counts"]["images_embedded"] == 24 and r3["counts"]["images_embedded"] == 36
    # exact, by loops: the k best images of each template kept, the template's quality the mean of theirs, a pair's
    # quality the min of its two templates', and the metrics read off the recorded pairs
    for p, r, k in ((p2, r2, 2), (p3, r3, 3)):
        raw = read_raw(p)
        groups, iq = raw["image_group"], raw["image_quality"].astype(np.float64)
        kept = best_rows(groups, iq, np.ones(groups.shape[0], bool), k)
        assert sorted(raw["kept_rows"].tolist()) == sorted(kept)
        tq = template_quality_loop(kept, groups, iq, "mean")
        assert raw["template_quality"].tolist() == [tq[t] for t in raw["template_ids"].tolist()]
        assert raw["pair_quality"].tolist() == [
            min(tq[a], tq[b]) for a, b in zip(raw["pair_a"].tolist(), raw["pair_b"].tolist())
        ]
        s, y = raw["pair_scores"], raw["pair_labels"]
        tpr = r["metrics"]["tpr_at_fpr"]["values"]
        assert tpr == {key: tpr_at_fpr_conservative(s, y, float(key)) for key in tpr}
        for limit in ("0.20", "0.30"):
            thr, area = fnm_edc_pauc_loop(s[y == 1], raw["pair_quality"][y == 1], 0.05, float(limit))
            assert r["metrics"]["edc_fnm"]["threshold"] == thr and r["metrics"]["edc_fnm"]["pauc"][limit] == area
    # k=3 keeps more of each template than k=2: the two runs' template qualities differ
    assert read_raw(p2)["template_quality"].tolist() != read_raw(p3)["template_quality"].tolist()


@pytest.mark.shared
def test_runs_differing_only_in_reading_flip_or_detector_get_their_own_files(
    small_bench, mbf, tmp_path, isolated_cache
):
    out = tmp_path / "out"
    a, _ = run(_cfg(small_bench, mbf, out, method="blur"))
    b, _ = run(_cfg(small_bench, mbf, out, method="blur", fpr_reading="nearest"))
    c, _ = run(_cfg(small_bench, mbf, out, method="blur", flip=True))
    assert len({a, b, c}) == 3 and all(p.is_file() for p in (a, b, c))
    # landmarks are given in this benchmark: the detector cannot change a number and does not split the file
    d, _ = run(_cfg(small_bench, mbf, out, method="blur", detector="scrfd"))
    assert d == a


@pytest.mark.shared
def test_results_record_no_absolute_path(small_bench, mbf, tmp_path, isolated_cache, monkeypatch):
    monkeypatch.chdir(small_bench.parent)
    path, _ = run(
        RunConfig(protocol=small_bench.name, backbone=mbf, method="blur", out=str(tmp_path / "out"), progress=False)
    )
    text = path.read_text()
    assert str(small_bench) not in text and str(tmp_path) not in text
    record = json.loads(text)
    assert record["protocol"]["spec"] == small_bench.name  # as typed
    assert record["backbone"]["name"] == "onnx:mobilefacenet.onnx"


def test_results_record_the_versions_of_the_libraries_the_numbers_depend_on(small_bench, mbf, tmp_path, isolated_cache):
    import platform

    import cv2
    import onnxruntime

    path, _ = run(_cfg(small_bench, mbf, tmp_path / "out", method="blur"))
    libs = json.loads(path.read_text())["suite"]["libraries"]
    assert libs["numpy"] == np.__version__ and libs["onnxruntime"] == onnxruntime.__version__
    assert libs["opencv"].startswith(cv2.__version__ + ".")  # the wheel's build number after cv2's version
    assert libs["python"] == platform.python_version() and libs["machine"] == platform.machine()


@pytest.mark.shared
def test_same_size_edit_of_an_image_is_rescored(small_bench, mbf, tmp_path, isolated_cache):
    """The cache key holds size and mtime: an edit that keeps the size but changes the mtime is recomputed."""
    bench = tmp_path / "bench"
    shutil.copytree(small_bench, bench)
    out = tmp_path / "out"
    _, first = run(_cfg(bench, mbf, out, method="blur"))
    victim = sorted((bench / "loose_crop").iterdir())[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01  # same size, other content
    st = victim.stat()
    victim.write_bytes(bytes(data))
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000_000))
    _, second = run(_cfg(bench, mbf, out, method="blur"))
    assert second["counts"]["images_scored_new"] == 1


def _mini_lfw(shared: Path, root: Path, per_fold: int = 6) -> Path:
    """An LFW-layout folder (pairs.txt, 2 folds) from real LFW photos: per fold ``per_fold`` matched and
    ``per_fold`` mismatched pairs."""
    lfw = shared / "data/lfw/lfw"
    people = sorted(p.name for p in lfw.iterdir() if len(list(p.glob("*.jpg"))) >= 2)[: 4 * per_fold]
    numbers = {p: sorted(int(f.stem.rsplit("_", 1)[1]) for f in (lfw / p).glob("*.jpg")) for p in people}
    lines = [f"2\t{per_fold}"]
    for fold in range(2):
        group = people[fold * 2 * per_fold : (fold + 1) * 2 * per_fold]
        lines += [f"{name}\t{numbers[name][0]}\t{numbers[name][1]}" for name in group[:per_fold]]
        lines += [f"{a}\t{numbers[a][0]}\t{b}\t{numbers[b][0]}" for a, b in zip(group[:per_fold], group[per_fold:])]
    (root / "lfw").mkdir(parents=True)
    for name in people:
        shutil.copytree(lfw / name, root / "lfw" / name)
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.shared
def test_pair_protocol_scores_every_image_and_reports_accuracy_and_edc(shared, mbf, tmp_path, isolated_cache):
    root = _mini_lfw(shared, tmp_path / "lfw")
    path, rec = run(
        RunConfig(
            protocol="lfw", data=str(root), backbone=mbf, method="blur", out=str(tmp_path / "out"), progress=False
        )
    )
    c = rec["counts"]
    assert c["images_scored"] == c["images"] == c["images_embedded"]
    assert c["genuine"] == 12 and c["impostor"] == 12
    assert len(rec["metrics"]["accuracy"]["folds"]) == 2
    fnm = rec["metrics"]["edc_fnm"]
    raw = read_raw(path)
    ref = kfold_accuracy_loop(raw["pair_scores"], raw["pair_labels"], raw["pair_folds"])
    assert {k: rec["metrics"]["accuracy"][k] for k in ref} == ref
    mated = raw["pair_labels"] == 1
    # image-level quality: each side's quality is that image's score, pair quality the min of the two
    iq = raw["image_quality"]
    np.testing.assert_array_equal(raw["pair_quality"], np.minimum(iq[raw["pair_a"]], iq[raw["pair_b"]]))
    curve = edc(raw["pair_scores"][mated], raw["pair_quality"][mated], "fnm", start_error=0.05)
    assert fnm["pauc"]["0.20"] == pauc(curve, 0.2) and fnm["pauc"]["0.30"] == pauc(curve, 0.3)
    assert fnm["pauc_minus_best"]["0.30"] == pauc(curve, 0.3) - theoretical_best_area(curve.start_error, 0.3)
    # without a method the same protocol has no EDC, said so
    p_none, none = run(
        RunConfig(protocol="lfw", data=str(root), backbone=mbf, out=str(tmp_path / "out"), progress=False)
    )
    raw = read_raw(p_none)
    assert "unavailable" in none["metrics"]["edc_fnm"]
    ref = kfold_accuracy_loop(raw["pair_scores"], raw["pair_labels"], raw["pair_folds"])
    assert {k: none["metrics"]["accuracy"][k] for k in ref} == ref
    # no method, no selection: the same pair scores as the run with one (every image is embedded either way)
    assert raw["pair_scores"].tolist() == read_raw(path)["pair_scores"].tolist()
