"""grafiqs: the BN-statistics loss and its gradient (checked by finite differences in float64), direction on
real faces, block choice."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from _real_faces import degraded, lfw_faces, rgb_crops

torch = pytest.importorskip("torch")

from fiqa_bench.methods.grafiqs import DEFAULT_BLOCK, GraFIQs  # noqa: E402


@pytest.fixture(scope="module")
def backbone(shared):
    from fiqa_bench.backbones.torch_mobilefacenet import TorchMobileFaceNet

    return TorchMobileFaceNet()


@pytest.fixture(scope="module")
def faces(shared):
    return lfw_faces(shared)


def _bns_loss64(model, x):
    """The loss written independently, in float64: per BatchNorm2d (more than one position), MSE of the image's
    per-channel mean and biased variance against the running statistics, averaged over layers."""
    terms = []

    def hook(module, args):
        a = args[0]
        if a.shape[2] * a.shape[3] > 1:
            flat = a[0].reshape(a.shape[1], -1)
            mu = flat.mean(1)
            var = ((flat - mu[:, None]) ** 2).mean(1)
            terms.append(((mu - module.running_mean) ** 2).mean() + ((var - module.running_var) ** 2).mean())

    handles = [m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return sum(terms) / len(terms)


def test_input_gradient_matches_finite_differences(backbone, faces):
    crop = rgb_crops(faces[:1])
    (g,) = GraFIQs(backbone, block="input").gradients(crop)
    model64 = copy.deepcopy(backbone.torch_model()).double()
    x = backbone.to_tensor(crop).double()
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for _ in range(3):
            v = torch.from_numpy(rng.normal(size=x.shape))
            h = 1e-6
            fd = (_bns_loss64(model64, x + h * v) - _bns_loss64(model64, x - h * v)) / (2 * h)
            directional = float((torch.from_numpy(g.astype(np.float64))[None] * v).sum())
            assert directional == pytest.approx(float(fd), rel=2e-3)


def test_block_gradient_matches_finite_differences(backbone, faces):
    crop = rgb_crops(faces[1:2])
    (g,) = GraFIQs(backbone, block="features.4").gradients(crop)
    model64 = copy.deepcopy(backbone.torch_model()).double()
    x = backbone.to_tensor(crop).double()
    block = model64.get_submodule("features.4")
    with torch.no_grad():
        phi = model64.features[:5](model64.dw_conv(model64.conv1(x)))
    assert g.shape == tuple(phi.shape[1:])
    v = torch.from_numpy(np.random.default_rng(1).normal(size=phi.shape))
    h = 1e-6

    def loss_at(shift):
        handle = block.register_forward_hook(lambda m, a, out: phi + shift)
        try:
            with torch.no_grad():
                return float(_bns_loss64(model64, x))
        finally:
            handle.remove()

    fd = (loss_at(h * v) - loss_at(-h * v)) / (2 * h)
    assert float((torch.from_numpy(g.astype(np.float64))[None] * v).sum()) == pytest.approx(fd, rel=2e-3)


def test_score_is_minus_the_absolute_gradient_sum(backbone, faces):
    method = GraFIQs(backbone)
    q = method.score(faces[:3])
    grads = method.gradients(rgb_crops(faces[:3]))
    np.testing.assert_allclose(q, [-np.abs(g.astype(np.float64)).sum() for g in grads], rtol=1e-6)
    assert method.block == DEFAULT_BLOCK and f"block={DEFAULT_BLOCK}" in method.identity()


@pytest.mark.parametrize("block", [DEFAULT_BLOCK, "input"])
def test_degraded_faces_score_lower(backbone, faces, block):
    method = GraFIQs(backbone, block=block)
    clean = method.score(faces)
    for kind in ("blur", "downscale"):
        assert (clean > method.score(degraded(faces, kind))).all(), (block, kind)


def test_block_is_validated(backbone):
    with pytest.raises(ValueError, match="block must be one of"):
        GraFIQs(backbone, block="conv3")


def test_conformance_kit(backbone):
    from fiqa_bench.testing import check_method

    check_method(GraFIQs(backbone))
