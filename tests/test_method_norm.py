"""norm: the L2 norm of the raw embedding, on ONNX and torch backbones; the runner feeds it cached embeddings."""

from __future__ import annotations

import json

import numpy as np
import pytest

from _real_faces import degraded, lfw_faces, rgb_crops
from fiqa_bench.errors import CapabilityError
from fiqa_bench.methods.norm import EmbeddingNorm


@pytest.fixture(scope="module")
def faces(shared):
    return lfw_faces(shared)


@pytest.fixture()
def onnx(mbf):
    from fiqa_bench.registry import create

    return create("backbone", mbf)


def test_norm_of_the_onnx_embedding(onnx, faces, shared):
    import onnxruntime as ort

    q = EmbeddingNorm(onnx).score(faces)
    # independent: the model file run directly, ImageNet normalisation (the file's known one) written out
    sess = ort.InferenceSession(
        str(shared / "models/mobilefacenet/mobilefacenet.onnx"), providers=["CPUExecutionProvider"]
    )
    x = rgb_crops(faces).astype(np.float64) / 255.0
    x = ((x - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]).astype(np.float32).transpose(0, 3, 1, 2)
    ref = np.array(
        [np.sqrt((sess.run(None, {"input": x[i : i + 1]})[0].astype(np.float64) ** 2).sum()) for i in range(len(x))]
    )
    np.testing.assert_allclose(q, ref, rtol=1e-5)
    assert q.min() > 5  # raw features: far from unit norm


def test_degraded_faces_have_smaller_norms(onnx, faces):
    method = EmbeddingNorm(onnx)
    clean = method.score(faces)
    for kind in ("blur", "downscale"):
        assert (clean > method.score(degraded(faces, kind))).all(), kind


def test_torch_backbone_gives_the_same_norms(onnx, faces, shared):
    pytest.importorskip("torch")
    from fiqa_bench.backbones.torch_mobilefacenet import TorchMobileFaceNet

    np.testing.assert_allclose(
        EmbeddingNorm(TorchMobileFaceNet()).score(faces), EmbeddingNorm(onnx).score(faces), rtol=1e-4
    )


def test_a_backbone_without_raw_features_is_refused():
    pytest.importorskip("dlib")
    from fiqa_bench.backbones.dlib_resnet import DlibResNet

    with pytest.raises(CapabilityError, match="'norm' needs backbone capability 'raw_features'.*backbone 'dlib'"):
        EmbeddingNorm(DlibResNet())


def test_conformance_kit(onnx):
    from fiqa_bench.testing import check_method

    method = EmbeddingNorm(onnx)
    method.score([])  # nothing loaded yet; the kit also pickles it once the session exists
    check_method(method)


def test_run_scores_the_runs_cached_embeddings(shared, small_bench, mbf, tmp_path, isolated_cache):
    from fiqa_bench.config import RunConfig
    from fiqa_bench.pipeline.runner import run

    path, record = run(
        RunConfig(protocol=str(small_bench), backbone=mbf, method="norm", out=str(tmp_path), progress=False, workers=1)
    )
    counts = record["counts"]
    assert counts["images_embedded_for_quality"] == counts["images"] == counts["images_scored"]
    assert record["method"]["name"] == "norm" and json.loads(path.read_text())["metrics"]
