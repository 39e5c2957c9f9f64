"""Eq. 1 labels averaged over several FR backbones (``fiqa-bench label --fr A --fr B``): each backbone's own Eq. 1
label, then their mean, on real faces with the shared MobileFaceNet and dlib's ResNet; the embeddings are kept side
by side so the labels can be recomputed (or one backbone's alone) without embedding again."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from fiqa_bench.training.dataset import TrainingSet, build_training_set, eq1_labels, images_by_identity_folder
from fiqa_bench.training.labels import quality_labels

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def photos(shared, tmp_path_factory, copy_identities):
    """3 celeba-wild identities x 3 photos, as identity folders."""
    pytest.importorskip("dlib")
    return copy_identities(tmp_path_factory.mktemp("ids"), 3, 3)


@pytest.fixture(scope="module")
def sets(photos, shared, tmp_path_factory):
    """The same photos and copies labelled by MobileFaceNet, by dlib, and by both (the mean)."""
    from fiqa_bench.registry import create

    mp = pytest.MonkeyPatch()
    mp.setenv("FIQA_BENCH_THREADS", "1")
    mp.setenv("FIQA_BENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
    paths, ids = images_by_identity_folder(photos)
    mfn = create("backbone", f"onnx:{shared / 'models/mobilefacenet/mobilefacenet.onnx'}")
    dlib = create("backbone", "dlib")
    kw = dict(size=64, degraded_copies=1, seed=0, progress=False)
    out = {
        "mfn": build_training_set(paths, ids, backbone=mfn, **kw),
        "dlib": build_training_set(paths, ids, backbone=dlib, **kw),
        "both": build_training_set(paths, ids, backbone=[mfn, dlib], **kw),
    }
    yield out
    mp.undo()


def test_the_label_is_the_mean_of_each_backbones_eq1(sets):
    a, b, both = sets["mfn"], sets["dlib"], sets["both"]
    assert len(both) == 18 and not both.meta["skipped"]
    expected = ((a.labels.astype(np.float64) + b.labels.astype(np.float64)) / 2).astype(np.float32)
    np.testing.assert_array_equal(both.labels, expected)
    assert not np.array_equal(both.labels, a.labels) and not np.array_equal(both.labels, b.labels)
    # the same rows: crops, identities, copies; the embeddings of both, side by side
    np.testing.assert_array_equal(both.images, a.images)
    assert both.degradations == a.degradations and both.identities.tolist() == a.identities.tolist()
    np.testing.assert_array_equal(both.embeddings, np.hstack([a.embeddings, b.embeddings]))
    assert both.meta["backbones"] == [a.meta["backbone"], b.meta["backbone"]]
    assert both.meta["backbone"] == f"{a.meta['backbone']} + {b.meta['backbone']}"
    assert both.meta["embedding_dims"] == [128, 128]
    assert both.meta["label_rule"].startswith("the mean over 2 backbones of their own Eq. 1")
    assert "backbones" not in a.meta and a.meta["label_rule"].startswith("Eq. 1")


def test_labels_are_recomputed_from_the_stored_embeddings(sets, tmp_path):
    both = TrainingSet.load(sets["both"].save(tmp_path / "set"))
    clean = np.array([d is None for d in both.degradations])
    again = eq1_labels(
        both.embeddings, both.identities, both.meta["embedding_dims"], groups=both.sources, reference=clean
    )
    np.testing.assert_array_equal(again, both.labels)
    # the mean of cosines, not the cosine of the joined features
    joined = quality_labels(both.embeddings, both.identities, groups=both.sources, reference=clean)
    assert not np.allclose(joined, both.labels, atol=1e-4)
    one = eq1_labels(both.embeddings[:, :128], both.identities, groups=both.sources, reference=clean)
    np.testing.assert_array_equal(one, sets["mfn"].labels)
    with pytest.raises(ValueError, match=r"widths \[128, 64\] do not add up to the 256 columns"):
        eq1_labels(both.embeddings, both.identities, [128, 64])


def test_several_backbones_take_no_shared_options(photos):
    paths, ids = images_by_identity_folder(photos)
    with pytest.raises(ValueError, match="backbone_options applies to one backbone"):
        build_training_set(paths, ids, backbone=["dlib", "dlib"], backbone_options={"x": 1}, progress=False)


def test_cli_repeats_fr_to_average_and_records_both(photos, shared, sets, tmp_path, monkeypatch):
    from fiqa_bench.cli.main import main

    monkeypatch.setenv("FIQA_BENCH_THREADS", "1")
    monkeypatch.setenv("FIQA_BENCH_CACHE", str(tmp_path / "cache"))
    mfn = f"onnx:{shared / 'models/mobilefacenet/mobilefacenet.onnx'}"
    out = tmp_path / "avg"
    res = CliRunner().invoke(
        main,
        [
            "label",
            str(photos),
            "--fr",
            mfn,
            "--fr",
            "dlib",
            "--out",
            str(out),
            "--part",
            "all",
            "--degraded-copies",
            "1",
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "18 labelled crops of 3 identities" in res.output
    ts = TrainingSet.load(out)
    assert ts.meta["command"].count("--fr ") == 2 and f"--fr {mfn} --fr dlib" in ts.meta["command"]
    np.testing.assert_array_equal(ts.labels, sets["both"].labels)  # the API's set, photo for photo
    assert json.loads((out / "meta.json").read_text())["meta"]["embedding_dims"] == [128, 128]
