"""faceqan: the aggregation, the attack's direction, the symmetry term, seeding and direction on real faces."""

from __future__ import annotations

import numpy as np
import pytest

from _real_faces import degraded, lfw_faces, rgb_crops
from fiqa_bench.methods.faceqan import FaceQAN, faceqan_aggregate


def test_aggregation_is_the_papers():
    s = np.array([[0.99, 0.97, 0.95], [0.9, 0.92, 0.94]])
    mean, std = s.mean(), s.std()
    expected = ((1 + mean) / 2 * (1 - std) * 0.8) ** 5
    assert faceqan_aggregate(s, 0.8, 5) == pytest.approx(expected, rel=1e-12)
    # a spread larger than 1 is clipped to 0
    assert faceqan_aggregate(np.array([-1.0, 1.0, -1.0, 1.0]) * 1.5, 0.9, 5) == 0.0
    # more robust (higher, tighter similarities) and more symmetric: higher quality
    assert faceqan_aggregate(s + 0.005, 0.8, 5) > faceqan_aggregate(s, 0.8, 5) > faceqan_aggregate(s, 0.7, 5)


@pytest.fixture(scope="module")
def backbone(shared):
    pytest.importorskip("torch")
    from fiqa_bench.backbones.torch_mobilefacenet import TorchMobileFaceNet

    return TorchMobileFaceNet()


@pytest.fixture(scope="module")
def faces(shared):
    return lfw_faces(shared)


def test_attack_lowers_similarity_and_starts_from_the_noisy_copies(backbone, faces):
    import torch

    crops = rgb_crops(faces[:2])
    method = FaceQAN(backbone, iterations=3, copies=4, seed=0)
    sims, sym = method.similarities(crops)
    assert sims[0].shape == (3, 4) and sym.shape == (2,)
    # iterate 0: cosine between the face and its uniformly noised copies, computed independently
    x = backbone.pixels(crops[:1])
    noise = (torch.rand((4, 3, 112, 112), generator=torch.Generator().manual_seed(0)) * 2 - 1) * 0.001
    model = backbone.torch_model()
    with torch.no_grad():
        e = model(backbone.normalise(x)).numpy()[0]
        en = model(backbone.normalise((x + noise).clamp(0, 1))).numpy()
    ref = en @ e / np.linalg.norm(en, axis=1) / np.linalg.norm(e)
    np.testing.assert_allclose(sims[0][0], ref, rtol=1e-5)
    # each FGSM step moves every copy away from the face (an inverted step would move it closer)
    for s in sims:
        assert (np.diff(s, axis=0) < 0).all()


def _reference_scores(backbone, crops, eps, iterations, copies, exponent, seed):
    """FaceQAN from its definition, one image at a time, every iterate through autograd (no shortcut)."""
    import torch
    import torch.nn.functional as F

    from fiqa_bench.backbones.onnx_arcface import NORMALISATIONS

    model = backbone.torch_model()
    _, mean, std = NORMALISATIONS[backbone.normalisation]  # the backbone's input normalisation (255-scale RGB)
    mean, std = (torch.tensor(v, dtype=torch.float32).view(1, 3, 1, 1) / 255.0 for v in (mean, std))
    noise = (torch.rand((copies, 3, 112, 112), generator=torch.Generator().manual_seed(seed)) * 2 - 1) * eps
    out = []
    for crop in crops:
        x = torch.from_numpy(crop.astype(np.float32).transpose(2, 0, 1)[None] / 255.0)
        with torch.no_grad():
            e = model((x - mean) / std)
            s_f = F.cosine_similarity(e, model((x.flip(-1) - mean) / std)).item()
        xa, sims = (x + noise).clamp(0, 1), []
        for _ in range(iterations):
            xa = xa.detach().requires_grad_(True)
            s = F.cosine_similarity(model((xa - mean) / std), e.expand(copies, -1))
            (grad,) = torch.autograd.grad((1 - s).mean(), xa)
            sims.append(s.detach().double().numpy())
            xa = (xa.detach() + eps * grad.sign()).clamp(0, 1)
        sims = np.concatenate(sims)
        out.append(((1 + sims.mean()) / 2 * np.clip(1 - sims.std(), 0, 1) * s_f) ** exponent)
    return np.asarray(out)


def test_scores_equal_an_independent_per_image_computation(backbone, faces):
    crops = rgb_crops(faces[:3] + degraded(faces[3:4]))
    ref = _reference_scores(backbone, crops, eps=0.001, iterations=3, copies=4, exponent=5, seed=0)
    got = FaceQAN(backbone, iterations=3, copies=4, seed=0).score_crops(crops)
    # each image alone (the default). The reference normalises its pixels with its own float32 expression, so a
    # rounding difference can flip the sign of a near-zero gradient component and move a step: 1.4e-5 relative
    # was seen with two torch threads (CI), below 1e-6 with one; an inverted or missing step moves scores by 1e-2
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-4)
    # several images per autograd call: equal up to float32 rounding of the batched convolutions (a rounding
    # change can flip the sign of a near-zero gradient component), and a cache identity of its own
    batched = FaceQAN(backbone, iterations=3, copies=4, seed=0, batch_size=3)
    np.testing.assert_allclose(batched.score_crops(crops), ref, rtol=0, atol=1e-4)
    assert "batch_size=3" in batched.identity() and "batch_size" not in FaceQAN(backbone).identity()
    with pytest.raises(ValueError, match="batch_size"):
        FaceQAN(backbone, batch_size=0)


def test_symmetry_of_a_mirror_symmetric_face_is_one(backbone, faces):
    crop = rgb_crops(faces[:1]).astype(np.float64)
    symmetric = np.round((crop + crop[:, :, ::-1]) / 2).astype(np.uint8)
    symmetric = np.minimum(symmetric, symmetric[:, :, ::-1])  # exactly mirror-symmetric after rounding
    _, sym = FaceQAN(backbone, iterations=1, copies=2).similarities(symmetric)
    assert sym[0] == pytest.approx(1.0, abs=1e-5)
    _, sym_real = FaceQAN(backbone, iterations=1, copies=2).similarities(rgb_crops(faces[:1]))
    assert sym_real[0] < sym[0] - 1e-3


def test_degraded_faces_score_lower(backbone, faces):
    method = FaceQAN(backbone)  # the paper's settings (about 150 forward passes per face: four faces)
    clean = method.score(faces[:4])
    for kind in ("blur", "downscale"):
        assert (clean > method.score(degraded(faces[:4], kind))).all(), kind


def test_seeded_and_validated(backbone, faces):
    a = FaceQAN(backbone, iterations=2, copies=3, seed=0).score(faces[:2])
    np.testing.assert_array_equal(a, FaceQAN(backbone, iterations=2, copies=3, seed=0).score(faces[:2]))
    assert not np.array_equal(a, FaceQAN(backbone, iterations=2, copies=3, seed=5).score(faces[:2]))
    assert "eps=0.001" in FaceQAN(backbone).identity()
    with pytest.raises(ValueError, match="eps"):
        FaceQAN(backbone, eps=0)
    with pytest.raises(ValueError, match="copies"):
        FaceQAN(backbone, copies=1)


def test_conformance_kit(backbone):
    from fiqa_bench.testing import check_method, synthetic_faces

    # fewer, smaller attacks than the defaults keep the kit's dozen passes over the images quick
    check_method(FaceQAN(backbone, iterations=2, copies=3), synthetic_faces(4))
