"""FR backbones: ONNX plumbing against an exact numpy reference, real faces through the shared MobileFaceNet
and dlib, zoo cards and weight resolution."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from _tiny_onnx import reference, write_linear_model
from fiqa_bench import registry
from fiqa_bench.backbones import THREADS_ENV, thread_count
from fiqa_bench.backbones.onnx_arcface import NORMALISATIONS, OnnxArcFace
from fiqa_bench.backbones.zoo import MBF, R50, R100
from fiqa_bench.errors import AdapterError, ChecksumError, DownloadError, MissingDependencyError

MFN_SHA256 = "f055d9c9a4d826d198c42666590fdefa0fdc1374a75ccb6306c3d1b1bf8f74c5"
RNG = np.random.default_rng(7)
W = RNG.normal(size=(3 * 112 * 112, 6)).astype(np.float32) / 100
CROPS = RNG.integers(0, 256, size=(7, 112, 112, 3), dtype=np.uint8)

# -- ONNX plumbing on a tiny real model (flatten @ W) -------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    d = tmp_path_factory.mktemp("onnx")
    return {
        "dynamic": write_linear_model(d / "dynamic.onnx", W, batch="N"),
        "fixed1": write_linear_model(d / "fixed1.onnx", W, batch=1),
        "fixed4": write_linear_model(d / "fixed4.onnx", W, batch=4),
        "nhwc": write_linear_model(d / "nhwc.onnx", W, batch="N", nhwc=True),
    }


@pytest.mark.parametrize("kind", ["dynamic", "fixed1", "fixed4", "nhwc"])
@pytest.mark.parametrize("norm", sorted(NORMALISATIONS))
def test_embed_matches_reference(tiny_models, isolated_cache, kind, norm):
    _, mean, std = NORMALISATIONS[norm]
    expected = reference(CROPS, W, mean, std, nhwc=kind == "nhwc")
    for batch_size in (1, 3, 32):
        got = OnnxArcFace(tiny_models[kind], normalisation=norm, batch_size=batch_size).embed(CROPS)
        assert got.dtype == np.float32 and got.shape == (7, 6)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_normalisation_constants_are_the_documented_formulas():
    x = np.array([0.0, 127.5, 255.0])
    _, m, s = NORMALISATIONS["arcface"]
    np.testing.assert_allclose((x - m[0]) / s[0], [-1, 0, 1])
    _, m, s = NORMALISATIONS["mobilefacenet"]
    np.testing.assert_allclose((x - m[0]) / s[0], (x - 127.5) / 128)
    _, m, s = NORMALISATIONS["imagenet"]
    np.testing.assert_allclose((x - m[1]) / s[1], (x / 255 - 0.456) / 0.224)


@pytest.mark.parametrize("kind", ["dynamic", "fixed1", "fixed4", "nhwc"])
def test_flip_adds_mirror_embedding(tiny_models, isolated_cache, kind):
    _, mean, std = NORMALISATIONS["arcface"]
    nhwc = kind == "nhwc"
    expected = reference(CROPS, W, mean, std, nhwc) + reference(CROPS[:, :, ::-1], W, mean, std, nhwc)
    got = OnnxArcFace(tiny_models[kind], flip=True, batch_size=2).embed(CROPS)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_bgr_model_gets_bgr_statistics(tiny_models, isolated_cache):
    _, mean, std = NORMALISATIONS["imagenet"]
    bb = OnnxArcFace(tiny_models["dynamic"], normalisation="imagenet", colour="BGR")
    np.testing.assert_allclose(bb.embed(CROPS), reference(CROPS, W, mean[::-1], std[::-1]), rtol=1e-4, atol=1e-4)
    assert bb.card.input.colour == "BGR"


def test_instance_card_and_identity(tiny_models, isolated_cache):
    import hashlib

    path = tiny_models["dynamic"]
    assert OnnxArcFace.card.name == "onnx" and OnnxArcFace.argument == "PATH"
    a = OnnxArcFace(path, normalisation="mobilefacenet", flip=True)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert a.card.weights.sha256 == sha and a.card.embedding_dim == 6 and a.card.input.size == 112
    assert "(x - 127.5) / 128" in a.card.normalisation
    ident = a.identity()
    assert sha in ident and "mobilefacenet" in ident and "flip1" in ident
    b = OnnxArcFace(path, normalisation="mobilefacenet", flip=False)
    c = OnnxArcFace(path, normalisation="arcface", flip=True)
    assert len({a.identity(), b.identity(), c.identity()}) == 3


def test_default_normalisation(shared, tiny_models, isolated_cache):
    assert OnnxArcFace(tiny_models["dynamic"]).normalisation == "arcface"  # unknown file: ArcFace convention
    mfn = OnnxArcFace(shared / "models/mobilefacenet/mobilefacenet.onnx")  # known file: its measured best
    assert mfn.normalisation == "imagenet" and "-imagenet-" in mfn.identity()
    assert (
        OnnxArcFace(shared / "models/mobilefacenet/mobilefacenet.onnx", normalisation="mobilefacenet").normalisation
        == "mobilefacenet"
    )


def test_constructor_is_lazy_and_validates(tmp_path):
    OnnxArcFace(tmp_path / "does-not-exist.onnx")  # no I/O yet
    with pytest.raises(ValueError, match="normalisation"):
        OnnxArcFace("x.onnx", normalisation="bogus")
    with pytest.raises(AdapterError, match="does-not-exist.onnx"):
        OnnxArcFace(tmp_path / "does-not-exist.onnx").embed(CROPS)
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(AdapterError, match="junk.onnx"):
        OnnxArcFace(tmp_path / "junk.onnx").embed(CROPS)


def test_wrong_crop_size_is_reported(tiny_models):
    with pytest.raises(AdapterError, match="112"):
        OnnxArcFace(tiny_models["dynamic"]).embed(np.zeros((2, 96, 96, 3), np.uint8))


def test_registry_creates_onnx_with_path(tiny_models, isolated_cache):
    bb = registry.create("backbone", f"onnx:{tiny_models['dynamic']}", flip=True)
    assert isinstance(bb, OnnxArcFace) and bb.flip
    with pytest.raises(Exception, match="onnx:PATH"):
        registry.create("backbone", "onnx")


def test_thread_count(monkeypatch):
    monkeypatch.setenv(THREADS_ENV, "3")
    assert thread_count() == 3
    monkeypatch.setenv(THREADS_ENV, "zero")
    with pytest.raises(ValueError, match=THREADS_ENV):
        thread_count()
    monkeypatch.delenv(THREADS_ENV)
    assert thread_count() >= 1


# -- zoo ---------------------------------------------------------------------------------------------------


def test_zoo_cards_pin_weights():
    assert R50.card.weights.sha256 == "4c06341c33c2ca1f86781dab0e829f88ad5b64be9fba56e56bc9ebdefc619e43"
    assert MBF.card.weights.sha256 == "9cc6e4a75f0e2bf0b1aed94578f144d15175f357bdc05e815e5c4a02b319eb4f"
    assert R50.card.weights.url.endswith("/w600k_r50.onnx") and MBF.card.weights.url.endswith("/w600k_mbf.onnx")
    assert R100.card.weights.url is None and "antelopev2.zip" in R100.card.weights.note
    for cls in (R50, R100, MBF):
        assert cls.card.embedding_dim == 512 and cls.card.input.size == 112 and cls.argument is None
        assert "non-commercial" in cls.card.licence
        assert isinstance(registry.create("backbone", cls.card.name), cls)  # constructing does no I/O


def test_zoo_rejects_a_wrong_local_file(tmp_path, isolated_cache, monkeypatch):
    (tmp_path / "w600k_r50.onnx").write_bytes(b"truncated download")
    monkeypatch.setenv("FIQA_BENCH_MODELS", str(tmp_path))
    with pytest.raises(ChecksumError, match="w600k_r50.onnx"):
        R50().embed(CROPS)


def test_r100_tells_where_to_put_the_file(tmp_path, isolated_cache, monkeypatch):
    monkeypatch.delenv("FIQA_BENCH_MODELS", raising=False)
    monkeypatch.delenv("FIQA_SHARED", raising=False)
    with pytest.raises(DownloadError) as err:
        R100().embed(CROPS)
    msg = str(err.value)
    assert "antelopev2.zip" in msg and str(isolated_cache / "weights" / "glintr100.onnx") in msg
    assert "FIQA_BENCH_MODELS" in msg


def test_r100_uses_a_placed_file_and_records_its_hash(tmp_path, isolated_cache, monkeypatch):
    import hashlib

    path = write_linear_model(tmp_path / "glintr100.onnx", W)  # stands in for the real file (no hash pinned)
    monkeypatch.setenv("FIQA_BENCH_MODELS", str(tmp_path))
    bb = R100()
    _, mean, std = NORMALISATIONS["arcface"]
    np.testing.assert_allclose(bb.embed(CROPS), reference(CROPS, W, mean, std), rtol=1e-4, atol=1e-4)
    assert bb.card.weights.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert bb.card.weights.sha256 in bb.identity()


# -- real faces ----------------------------------------------------------------------------------------------

# LFW View-2: two images of each of two people, and a third person
LFW_IMAGES = [
    "Aaron_Peirsol/Aaron_Peirsol_0001.jpg",
    "Aaron_Peirsol/Aaron_Peirsol_0003.jpg",
    "Abdullah_Gul/Abdullah_Gul_0012.jpg",
    "Abdullah_Gul/Abdullah_Gul_0014.jpg",
    "Zico/Zico_0001.jpg",
]
IDS = [0, 0, 1, 1, 2]


@pytest.fixture(scope="module")
def lfw_faces(shared):
    """(BGR image, 5 landmarks, box) per image, found with OpenCV's YuNet directly (2x upscaled, padded)."""
    import cv2

    det = cv2.FaceDetectorYN.create(
        str(shared / "models/yunet/face_detection_yunet_2026may.onnx"), "", (320, 320), 0.6, 0.3, 20
    )
    out = []
    for rel in LFW_IMAGES:
        img = cv2.imread(str(shared / "data/lfw/lfw" / rel))
        assert img is not None, rel
        p = 64
        big = cv2.resize(cv2.copyMakeBorder(img, p, p, p, p, cv2.BORDER_CONSTANT), None, fx=2, fy=2)
        det.setInputSize((big.shape[1], big.shape[0]))
        _, rows = det.detect(big)
        row = rows[int(np.argmax(rows[:, 14]))] / 2.0
        lm = row[4:14].reshape(5, 2) - p
        box = row[0:4] - [p, p, 0, 0]
        out.append((img, lm.astype(np.float32), box.astype(np.float32)))
    return out


def aligned_rgb(faces):
    from fiqa_bench.faces.align import align_face

    return np.stack([align_face(img, lm)[:, :, ::-1] for img, lm, _ in faces])


def cosine(e):
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    return e @ e.T


def assert_separates(e):
    """Each genuine pair is more similar than every impostor pair."""
    s = cosine(e)
    ids = np.array(IDS)
    same = ids[:, None] == ids[None, :]
    off = ~np.eye(len(ids), dtype=bool)
    assert s[same & off].min() > s[~same].max() + 0.05, np.round(s, 3)


@pytest.mark.parametrize("norm", ["imagenet", "mobilefacenet"])
def test_mobilefacenet_on_real_faces(shared, lfw_faces, isolated_cache, norm):
    path = shared / "models/mobilefacenet/mobilefacenet.onnx"
    crops = aligned_rgb(lfw_faces)
    bb = OnnxArcFace(path, normalisation=norm, flip=True)
    e = bb.embed(crops)
    assert e.shape == (5, 128) and bb.card.embedding_dim == 128 and bb.card.weights.sha256 == MFN_SHA256
    assert_separates(e)
    plain = OnnxArcFace(path, normalisation=norm).embed(crops)
    mirror = OnnxArcFace(path, normalisation=norm).embed(np.ascontiguousarray(crops[:, :, ::-1]))
    np.testing.assert_allclose(e, plain + mirror, rtol=1e-4, atol=1e-4)
    # swapping colour order must change the embedding (guards against a silently ignored channel order)
    bgr = OnnxArcFace(path, normalisation=norm).embed(np.ascontiguousarray(crops[..., ::-1]))
    assert np.abs(bgr - plain).max() > 1e-2


class FakeFace:  # the attributes of fiqa_bench.faces.pipeline.Face that the dlib backbone reads
    def __init__(self, image, landmarks, box):
        self.image, self.landmarks, self.box = image, landmarks, box


def test_dlib_on_real_faces(shared, lfw_faces):
    pytest.importorskip("dlib")
    from fiqa_bench.backbones.dlib_resnet import DlibResNet

    faces = [FakeFace(*f) for f in lfw_faces]
    bb = DlibResNet()
    e = bb.embed(faces)
    assert e.dtype == np.float32 and e.shape == (5, 128)
    assert_separates(e)
    # the published operating point: same person below 0.6 Euclidean distance of descriptors
    assert np.linalg.norm(e[0] - e[1]) < 0.6 and np.linalg.norm(e[0] - e[4]) > 0.6
    flipped = DlibResNet(flip=True, batch_size=2).embed(faces)
    assert bb.embed([]).shape == (0, 128)
    chips = [bb.chip(f) for f in faces]
    import dlib

    from fiqa_bench.backbones.dlib_resnet import RECOGNITION_FILE, models_dir

    net = dlib.face_recognition_model_v1(str(models_dir() / RECOGNITION_FILE))
    ref = np.array(net.compute_face_descriptor(chips)) + np.array(
        net.compute_face_descriptor([np.ascontiguousarray(c[:, ::-1]) for c in chips])
    )
    np.testing.assert_allclose(flipped, ref, rtol=1e-4, atol=1e-4)


def test_dlib_box_agrees_with_dlib_detector(shared, lfw_faces):
    dlib = pytest.importorskip("dlib")
    from fiqa_bench.backbones.dlib_resnet import dlib_box

    detector = dlib.get_frontal_face_detector()
    for img, lm, _ in lfw_faces[:3]:
        rects = detector(np.ascontiguousarray(img[:, :, ::-1]), 1)
        if not rects:
            continue
        r = max(rects, key=lambda r: r.area())
        a = np.array([r.left(), r.top(), r.right(), r.bottom()], float)
        b = np.array(dlib_box(lm))
        inter = np.prod(np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None))
        union = np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter
        assert inter / union > 0.6


def test_dlib_missing_says_how_to_install(monkeypatch):
    from fiqa_bench.backbones.dlib_resnet import DlibResNet

    monkeypatch.setitem(sys.modules, "dlib", None)  # makes `import dlib` fail
    with pytest.raises(MissingDependencyError, match=r"pip install 'fiqa-bench\[dlib\]'"):
        DlibResNet().embed([])


def test_dlib_card():
    from fiqa_bench.backbones.dlib_resnet import DlibResNet

    card = DlibResNet.card
    assert card.input.kind == "face" and card.embedding_dim == 128 and "CC0" in card.licence
    assert "flip1" in DlibResNet(flip=True).identity() and card.weights.sha256 in DlibResNet().identity()
