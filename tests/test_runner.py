"""End to end on real faces: prepare a small IJB-layout benchmark from celeba-wild, run the paper's protocol.

Pins the runner's contract: results files with metrics, only kept images embedded, reruns served from caches,
an interrupted run resumes to the same numbers, bad input named or counted, misbehaving adapters named.
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap

import numpy as np
import pytest

from _reference import best_rows, kfold_accuracy_loop, tpr_at_fpr_conservative
from fiqa_bench.config import RunConfig
from fiqa_bench.errors import AdapterError, ImageError
from fiqa_bench.pipeline.runner import run
from fiqa_bench.results.record import read_raw


def _cfg(bench, backbone, tmp_path, **kw) -> RunConfig:
    return RunConfig(protocol=str(bench), backbone=backbone, out=str(tmp_path / "out"), progress=False, **kw)


def test_top1_embeds_only_kept_images_and_rerun_is_cached(small_bench, mbf, tmp_path, isolated_cache):
    path, rec = run(_cfg(small_bench, mbf, tmp_path, method="blur"))
    assert path.is_file() and json.loads(path.read_text())["metrics"] == json.loads(json.dumps(rec["metrics"]))
    tpr = rec["metrics"]["tpr_at_fpr"]["values"]
    raw = read_raw(path)
    # the kept image of each template is its best-scored one (a loop over the images), and each TPR is the one a
    # loop over the recorded pairs reads at that FPR
    n = raw["image_group"].shape[0]
    assert sorted(raw["kept_rows"].tolist()) == best_rows(raw["image_group"], raw["image_quality"], np.ones(n, bool), 1)
    assert tpr == {k: tpr_at_fpr_conservative(raw["pair_scores"], raw["pair_labels"], float(k)) for k in tpr}
    assert set(tpr) == {"1e-1", "1e-2", "1e-3", "1e-4", "1e-5"} and tpr["1e-1"] == 1.0
    c = rec["counts"]
    assert c["images_embedded"] == c["templates"] == 12
    assert c["images_scored"] == c["images"] > c["templates"]
    assert c["genuine"] == 6 and c["impostor"] == 60
    # 60 impostor pairs: FPR 1e-2 is readable, 1e-3 is not: null with a reason, never extrapolated
    assert tpr["1e-3"] is None and "impostor" in rec["metrics"]["tpr_at_fpr"]["detail"]["1e-3"]["reason"]

    _, again = run(_cfg(small_bench, mbf, tmp_path, method="blur"))
    assert again["counts"]["images_scored_new"] == 0 and again["counts"]["images_embedded_new"] == 0
    assert again["metrics"]["tpr_at_fpr"]["values"] == tpr


def test_selection_all_pools_every_image(small_bench, mbf, tmp_path, isolated_cache):
    _, rec = run(_cfg(small_bench, mbf, tmp_path, selection="all"))
    assert rec["method"]["name"] == "none"
    assert rec["counts"]["images_embedded"] == rec["counts"]["images"]
    assert rec["counts"]["images_scored"] == 0


def test_methods_on_fr_features_score_the_runs_cached_embeddings(
    small_bench, mbf, tmp_path, isolated_cache, monkeypatch
):
    """svm scores the run's own embeddings: every image is embedded once, through the run's embedding cache, which
    the FR stage and later runs share; the numbers equal those of the method embedding inside its own score()."""
    import fiqa_bench.pipeline.evaluation as evaluation

    _, rec = run(_cfg(small_bench, mbf, tmp_path, method="svm"))
    c = rec["counts"]
    assert c["images_embedded_for_quality"] == c["images_scored"] == c["images"]
    assert c["images_scored_new"] == c["images"] and c["images_embedded_new"] == 0  # kept ones already embedded
    _, pooled = run(_cfg(small_bench, mbf, tmp_path, selection="all"))
    assert pooled["counts"]["images_embedded_new"] == 0

    monkeypatch.setattr(evaluation, "scores_run_embeddings", lambda method, backbone: False)
    _, own = run(_cfg(small_bench, mbf, tmp_path / "own", method="svm"))
    assert own["counts"]["images_embedded_for_quality"] == 0 and own["counts"]["images_scored_new"] == c["images"]
    assert own["metrics"]["tpr_at_fpr"] == rec["metrics"]["tpr_at_fpr"]


def test_quality_changes_the_kept_image(small_bench, mbf, tmp_path, isolated_cache):
    """blur and random keep different images in at least one template (else the benchmark measures nothing)."""
    p_blur, blur = run(_cfg(small_bench, mbf, tmp_path, method="blur"))
    p_rnd, rnd = run(_cfg(small_bench, mbf, tmp_path, method="random"))
    # the second run embeds exactly the images it keeps that the first did not: at least one
    new = set(read_raw(p_rnd)["kept_rows"].tolist()) - set(read_raw(p_blur)["kept_rows"].tolist())
    assert rnd["counts"]["images_embedded_new"] == len(new) > 0


INTERRUPTING_METHOD = """
import os
import numpy as np
from fiqa_bench.api import QualityMethod
from fiqa_bench.api.cards import InputSpec, MethodCard

class Flaky(QualityMethod):
    card = MethodCard(name="flaky", version="1", summary="mean intensity; misbehaves on request (tests)",
                      licence="MIT", input=InputSpec("aligned", 64, "RGB"))
    calls = 0

    def score(self, images):
        mode = os.environ.get("FLAKY_MODE", "")
        Flaky.calls += 1
        if mode == "interrupt" and Flaky.calls == 3:
            raise KeyboardInterrupt
        out = np.asarray(images, dtype=np.float32).reshape(len(images), -1).mean(axis=1)
        if mode == "nan":
            out[0] = np.nan
        if mode == "shape":
            out = out[:-1]
        if mode == "raise":
            raise RuntimeError("model exploded")
        return out
"""


@pytest.fixture()
def flaky_plugin(tmp_path, monkeypatch):
    """A third-party method installed the way pip leaves one: a module plus a dist-info with an entry point."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "flaky_fiqa.py").write_text(textwrap.dedent(INTERRUPTING_METHOD))
    info = site / "flaky_fiqa-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: flaky-fiqa\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[fiqa_bench.methods]\nflaky = flaky_fiqa:Flaky\n")
    monkeypatch.syspath_prepend(str(site))
    yield
    sys.modules.pop("flaky_fiqa", None)


@pytest.mark.parametrize("mode,message", [("nan", "non-finite"), ("shape", "shape"), ("raise", "model exploded")])
def test_misbehaving_adapter_is_named(
    small_bench, mbf, tmp_path, isolated_cache, flaky_plugin, monkeypatch, mode, message
):
    monkeypatch.setenv("FLAKY_MODE", mode)
    with pytest.raises(AdapterError, match=rf"quality method 'flaky'.*{message}|{message}.*"):
        run(_cfg(small_bench, mbf, tmp_path, method="flaky", batch_size=8))


def test_interrupted_run_resumes_to_the_same_numbers(
    small_bench, mbf, tmp_path, isolated_cache, flaky_plugin, monkeypatch
):
    monkeypatch.setenv("FLAKY_MODE", "interrupt")
    with pytest.raises(KeyboardInterrupt):
        run(_cfg(small_bench, mbf, tmp_path, method="flaky", batch_size=8))
    monkeypatch.setenv("FLAKY_MODE", "")
    _, resumed = run(_cfg(small_bench, mbf, tmp_path, method="flaky", batch_size=8))
    # the two batches finished before the interruption were not scored again
    assert resumed["counts"]["images_scored_new"] == resumed["counts"]["images"] - 16

    monkeypatch.setenv("FIQA_BENCH_CACHE", str(tmp_path / "fresh-cache"))
    _, fresh = run(_cfg(small_bench, mbf, tmp_path, method="flaky", batch_size=8))
    assert fresh["counts"]["images_scored_new"] == fresh["counts"]["images"]
    assert fresh["metrics"]["tpr_at_fpr"] == resumed["metrics"]["tpr_at_fpr"]


def test_corrupt_image_is_named_or_counted(small_bench, mbf, tmp_path, isolated_cache):
    broken = tmp_path / "broken"
    shutil.copytree(small_bench, broken)
    victim = sorted((broken / "loose_crop").iterdir())[3]
    victim.write_bytes(victim.read_bytes()[:200])  # truncated JPEG
    with pytest.raises(ImageError, match=victim.name):
        run(_cfg(broken, mbf, tmp_path, method="blur"))
    _, rec = run(_cfg(broken, mbf, tmp_path, method="blur", on_bad_image="skip"))
    assert rec["counts"]["skipped"] == 1
    assert rec["counts"]["skipped_files"] == [f"{victim.name}"] or rec["counts"]["skipped_files"][0].endswith(
        victim.name
    )
    assert sum(rec["counts"]["skipped_reasons"].values()) == 1


def test_missing_image_is_named(small_bench, mbf, tmp_path, isolated_cache):
    broken = tmp_path / "missing"
    shutil.copytree(small_bench, broken)
    victim = sorted((broken / "loose_crop").iterdir())[5]
    victim.unlink()
    with pytest.raises(Exception, match=victim.name):
        run(_cfg(broken, mbf, tmp_path, method="blur"))


def test_no_face_policy(tmp_path, mbf, isolated_cache, shared):
    """An image without a face: error naming it by default, counted skip or centred fallback on request."""
    import cv2

    from fiqa_bench.data.prepare import prepare_benchmark

    src = tmp_path / "src"
    root = shared / "data/celeba-wild/images"
    ids = [p.name for p in sorted(root.iterdir()) if len(list(p.glob("*.jpg"))) >= 4][:3]
    for ident in ids:
        (src / ident).mkdir(parents=True)
        for photo in sorted((shared / "data/celeba-wild/images" / ident).glob("*.jpg"))[:4]:
            shutil.copy(photo, src / ident / photo.name)
    out = tmp_path / "bench"
    prepare_benchmark(src, out, name="noface", seed=0, progress=False)
    # replace one prepared image by a face-free picture and drop its landmarks so it must be detected
    meta = out / "meta" / "noface_name_5pts_score.txt"
    lines = meta.read_text().splitlines()
    first = lines[0].split()[0]
    meta.write_text("\n".join([first + " nan" * 11, *lines[1:]]) + "\n")
    flat = np.full((160, 160, 3), 127, np.uint8)
    cv2.imwrite(str(out / "loose_crop" / first), flat)
    with pytest.raises(Exception, match=first):
        run(_cfg(out, mbf, tmp_path, method="blur"))
    _, rec = run(_cfg(out, mbf, tmp_path, method="blur", on_no_face="skip"))
    assert rec["counts"]["skipped_reasons"] == {"no face detected": 1}
    _, rec = run(_cfg(out, mbf, tmp_path, method="blur", on_no_face="center"))
    assert rec["counts"]["fallback_landmarks"] == 1 and rec["counts"]["skipped"] == 0


def test_ytf_layout_runs_end_to_end(small_ytf, mbf, tmp_path, isolated_cache):
    path, rec = run(_cfg(small_ytf, mbf, tmp_path, method="blur"))
    acc = rec["metrics"]["accuracy"]
    raw = read_raw(path)
    # the best frame of each video is kept; the k-fold accuracy is the one a loop over the recorded pairs gives
    n = raw["image_group"].shape[0]
    assert sorted(raw["kept_rows"].tolist()) == best_rows(raw["image_group"], raw["image_quality"], np.ones(n, bool), 1)
    ref = kfold_accuracy_loop(raw["pair_scores"], raw["pair_labels"], raw["pair_folds"])
    assert len(acc["folds"]) == 10
    assert (acc["mean"], acc["std"], acc["folds"], acc["thresholds"]) == (
        ref["mean"],
        ref["std"],
        ref["folds"],
        ref["thresholds"],
    )
    assert rec["counts"]["images_embedded"] == rec["counts"]["templates"]
    p_pooled, pooled = run(_cfg(small_ytf, mbf, tmp_path, selection="all"))
    raw = read_raw(p_pooled)
    ref = kfold_accuracy_loop(raw["pair_scores"], raw["pair_labels"], raw["pair_folds"])
    acc = pooled["metrics"]["accuracy"]
    assert len(acc["folds"]) == 10 and acc["folds"] == ref["folds"] and acc["mean"] == ref["mean"]
