"""torch-mobilefacenet: the architecture reproduces the ONNX model, weights are found and verified like other
model files, capabilities work as declared, and without torch the name fails with an install hint."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from _real_faces import degraded, lfw_faces, rgb_crops
from fiqa_bench.errors import AdapterError, ChecksumError, DownloadError, MissingDependencyError

torch = pytest.importorskip("torch")

from fiqa_bench.backbones.torch_mobilefacenet import STATE_DICT_SHA256, TorchMobileFaceNet  # noqa: E402

#: Stated tolerance of the torch-vs-ONNX agreement (the ONNX file has BatchNorm folded into the convolutions, so
#: the two differ by float32 rounding only): per image, cosine > 1 - 1e-5 and max |difference| < 1e-4 of the
#: largest component.
COSINE_TOL = 1e-5
RELATIVE_TOL = 1e-4


@pytest.fixture(scope="module")
def faces(shared):
    return lfw_faces(shared)


@pytest.fixture(scope="module")
def crops(faces):
    # the clean faces and the same faces blurred: agreement must hold on poor images as well
    return np.concatenate([rgb_crops(faces), rgb_crops(degraded(faces, "blur"))])


@pytest.fixture()
def mfn(shared, isolated_cache):
    return TorchMobileFaceNet()


@pytest.mark.parametrize("normalisation", ["imagenet", "mobilefacenet"])
def test_embeddings_match_the_onnx_model(shared, crops, isolated_cache, normalisation):
    from fiqa_bench.backbones.onnx_arcface import OnnxArcFace

    onnx = OnnxArcFace(shared / "models/mobilefacenet/mobilefacenet.onnx", normalisation=normalisation).embed(crops)
    mine = TorchMobileFaceNet(normalisation=normalisation).embed(crops)
    assert mine.shape == onnx.shape == (16, 128) and mine.dtype == np.float32
    cos = (mine * onnx).sum(1) / np.linalg.norm(mine, axis=1) / np.linalg.norm(onnx, axis=1)
    assert cos.min() > 1 - COSINE_TOL, cos
    rel = np.abs(mine - onnx).max(axis=1) / np.abs(onnx).max(axis=1)
    assert rel.max() < RELATIVE_TOL, rel
    # the normalisation matters (guards against one being silently ignored)
    other = "mobilefacenet" if normalisation == "imagenet" else "imagenet"
    assert np.abs(TorchMobileFaceNet(normalisation=other).embed(crops[:2]) - mine[:2]).max() > 1e-2


def test_default_is_the_shared_files_normalisation(mfn, crops, shared):
    from fiqa_bench.backbones.onnx_arcface import OnnxArcFace

    onnx = OnnxArcFace(shared / "models/mobilefacenet/mobilefacenet.onnx")  # known file: imagenet
    assert mfn.normalisation == onnx.normalisation == "imagenet"


def test_flip_adds_the_mirror(shared, crops, isolated_cache):
    plain = TorchMobileFaceNet().embed(crops[:3])
    mirror = TorchMobileFaceNet().embed(np.ascontiguousarray(crops[:3, :, ::-1]))
    np.testing.assert_allclose(TorchMobileFaceNet(flip=True).embed(crops[:3]), plain + mirror, rtol=1e-5, atol=1e-5)
    assert "flip1" in TorchMobileFaceNet(flip=True).identity()


def test_weights_found_in_shared_and_verified(mfn):
    path = mfn.weights_path()
    assert path.name == "mobilefacenet_state_dict.pt" and mfn.card.weights.sha256 == STATE_DICT_SHA256
    assert STATE_DICT_SHA256 in mfn.identity() and mfn.card.embedding_dim == 128
    assert sum(p.numel() for p in mfn.torch_model().parameters()) == 999_936


def test_models_env_folder_wins_and_a_wrong_file_is_rejected(tmp_path, isolated_cache, monkeypatch):
    (tmp_path / "mobilefacenet_state_dict.pt").write_bytes(b"not the weights")
    monkeypatch.setenv("FIQA_BENCH_MODELS", str(tmp_path))
    with pytest.raises(ChecksumError, match="sha256 mismatch"):
        TorchMobileFaceNet().embed(np.zeros((1, 112, 112, 3), np.uint8))


def test_no_file_anywhere_says_where_to_get_it(tmp_path, isolated_cache, monkeypatch):
    monkeypatch.setenv("FIQA_SHARED", str(tmp_path))  # no models/ here, no network in tests
    monkeypatch.delenv("FIQA_BENCH_MODELS", raising=False)
    import fiqa_bench.data.download as dl

    def offline(url, dest, sha256, **kw):
        raise DownloadError(f"{url}: cannot connect (offline test)")

    monkeypatch.setattr(dl, "download", offline)
    with pytest.raises(DownloadError, match=r"mobilefacenet_state_dict\.pt.*\n.*Fetch https://raw\.githubusercontent"):
        TorchMobileFaceNet().weights_path()


def test_weights_path_option_and_a_state_dict_that_does_not_fit(shared, tmp_path, isolated_cache):
    state = torch.load(
        shared / "models/mobilefacenet/mobilefacenet_state_dict.pt", map_location="cpu", weights_only=True
    )
    good = tmp_path / "copy.pt"
    torch.save(state, good)
    bb = TorchMobileFaceNet(weights=good)
    assert bb.card.weights.filename == "copy.pt" and bb.card.weights.sha256 != ""
    del state["conv3.bias"]
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    with pytest.raises(AdapterError, match=r"bad\.pt: does not fit torch-mobilefacenet's architecture"):
        TorchMobileFaceNet(weights=bad).embed(np.zeros((1, 112, 112, 3), np.uint8))
    with pytest.raises(AdapterError, match="weights file not found"):
        TorchMobileFaceNet(weights=tmp_path / "nope.pt").embed(np.zeros((1, 112, 112, 3), np.uint8))


def test_pickled_code_in_a_weights_file_is_refused(tmp_path, isolated_cache):
    evil = tmp_path / "evil.pt"
    torch.save({"conv1.0.weight": torch.zeros(1), "x": object.__new__(_Marker)}, evil)
    with pytest.raises(AdapterError, match="weights_only=True"):
        TorchMobileFaceNet(weights=evil).torch_model()


class _Marker:  # an arbitrary class: weights_only loading must refuse to unpickle it
    pass


def test_stochastic_passes(mfn, crops):
    plain = mfn.embed(crops[:4])
    s = mfn.stochastic_embed(crops[:4], passes=5, rate=0.5, seed=0)
    assert s.shape == (4, 5, 128) and s.dtype == np.float32
    # rate 0: every pass is the plain embedding (dropout acts on the head input only)
    np.testing.assert_allclose(
        mfn.stochastic_embed(crops[:4], passes=3, rate=0.0, seed=0),
        np.repeat(plain[:, None], 3, axis=1),
        rtol=1e-5,
        atol=1e-5,
    )
    # independent computation of one pass: trunk features, the seeded mask, head
    model = mfn.torch_model()
    with torch.no_grad():
        f = model.trunk(mfn.to_tensor(crops[:1]))
        mask = mfn.dropout_masks(5, 512, 0.5, 0)[2].view(1, 512, 1, 1)
        ref = model.bn(model.conv3(f * mask)).flatten(1).numpy()
    np.testing.assert_allclose(s[0, 2], ref[0], rtol=1e-5, atol=1e-5)
    # seeded: the same seed gives the same passes whatever the batch; another seed other passes
    np.testing.assert_allclose(mfn.stochastic_embed(crops[2:3], 5, 0.5, 0)[0], s[2], rtol=1e-5, atol=1e-5)
    assert np.abs(mfn.stochastic_embed(crops[:4], 5, 0.5, 1) - s).max() > 1e-2
    masks = mfn.dropout_masks(100, 512, 0.5, 0)
    assert set(np.unique(masks.numpy()).tolist()) == {0.0, 2.0} and abs(float((masks == 0).float().mean()) - 0.5) < 0.01


def test_layers(mfn, crops):
    assert mfn.block_names[0] == "input"
    for name in mfn.block_names[1:]:
        assert mfn.block(name) is mfn.torch_model().get_submodule(name)
    with pytest.raises(ValueError, match="block must be one of"):
        mfn.block("features.99")
    x = mfn.pixels(crops[:2])
    assert float(x.min()) >= 0 and float(x.max()) <= 1 and tuple(x.shape) == (2, 3, 112, 112)
    np.testing.assert_allclose(mfn.normalise(x).numpy(), mfn.to_tensor(crops[:2]).numpy(), rtol=1e-6, atol=1e-6)
    assert not any(p.requires_grad for p in mfn.torch_model().parameters())


def test_card_declares_capabilities():
    from fiqa_bench.backbones.onnx_arcface import OnnxArcFace

    assert TorchMobileFaceNet.card.capabilities == ("raw_features", "stochastic", "layers")
    assert OnnxArcFace.card.capabilities == ("raw_features",)
    # capabilities do not enter the card hash (declaring them invalidates no cache)
    import dataclasses

    assert dataclasses.replace(OnnxArcFace.card, capabilities=()).card_hash() == OnnxArcFace.card.card_hash()


def test_conformance_kit(shared, faces, isolated_cache):
    from fiqa_bench.testing import check_backbone

    check_backbone(TorchMobileFaceNet(), rgb_crops(faces[:4]))
    check_backbone(TorchMobileFaceNet())  # synthetic faces


def test_without_torch_the_name_fails_with_an_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    from fiqa_bench.registry import create

    with pytest.raises(MissingDependencyError, match=r"pip install 'fiqa-bench\[train\]'"):
        create("backbone", "torch-mobilefacenet")


def test_listing_does_not_import_torch():
    code = (
        "import sys\nfrom fiqa_bench.cli.main import main\n"
        "try:\n    main(['list'])\nexcept SystemExit:\n    pass\n"
        "print('TORCH', 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    for name in ("torch-mobilefacenet", "serfiq", "grafiqs", "faceqan", "norm"):
        assert name in out.stdout
    assert "TORCH False" in out.stdout
