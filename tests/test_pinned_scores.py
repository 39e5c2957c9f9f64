"""Pinned scores of every bundled quality model on committed inputs of real faces: six celeba-wild photos with
landmarks written in ``_pinned_inputs.py`` (YuNet's, rounded to 0.01 px, so no detector is involved), decoded and
aligned once with OpenCV 5.0.0.93 into ``fixtures/pinned_inputs.npz`` (``fixtures/make_pinned_inputs.py``). Nothing
is decoded or warped here, so these numbers say "this model gives these scores on these crops", whatever OpenCV
build is installed; the image path (decode, align) is tested on its own in ``test_align_reference.py``. Any change
to a model file, its preprocessing (a normalisation constant, a colour order, a crop size) or a perceptual measure
moves a score by far more than the 1e-5 (relative) allowed. Deliberate changes must update these numbers, and say
why.

Versions: the numbers were pinned on 2026-12-01 (df0b3bb; tinyfq 184f301, tinyfq-m4-flip 80af1f0), before results
files recorded library versions. The environment then was the one the first recording shows a day later
(``suite.libraries`` of reports/tinyfq/ijb-reprepared, 62b752f): numpy 2.4.6, onnxruntime 1.32.0, OpenCV 5.0.0.93
(the crops; blur's and pose's own cv2 calls), torch 2.13.0+cpu, Python 3.11.7; with those they reproduce on the
committed inputs, as they do with OpenCV 5.1.0.95.
"""

from __future__ import annotations

import numpy as np
import pytest

from _pinned_inputs import LANDMARKS, PHOTOS, load
from _pinned_inputs import faces as fixture_faces

# `random` is not pinned here: its score hashes the crop's pixels, and its pins live in tests/test_method_random.py.
PINNED = {
    "blur": [7397.36865234375, 4102.3388671875, 3621.482666015625, 5005.50927734375, 4732.00390625, 5815.599609375],
    "jpeg": [
        8.93692684173584,
        9.15754222869873,
        10.23634147644043,
        9.807745933532715,
        9.684694290161133,
        9.851325035095215,
    ],
    "pose": [
        0.957758367061615,
        0.9060730934143066,
        0.9977123737335205,
        0.9922865629196167,
        0.9979913234710693,
        0.9090608358383179,
    ],
    "combination": [
        0.5012739300727844,
        0.3716220259666443,
        0.7873865365982056,
        0.7400946617126465,
        0.7553876042366028,
        0.5592305064201355,
    ],
    # issue 15's model (row m4-flip-adam-pnj2-os3-sjn6-e36); computed with the torch network of its training checkpoint
    # (not onnxruntime)
    "tinyfq": [
        0.6554497480392456,
        0.39803773164749146,
        0.7314623594284058,
        0.8266093134880066,
        0.6857553720474243,
        0.8292482495307922,
    ],
    "rqs": [
        1.7249821424484253,
        0.6986322402954102,
        1.5285614728927612,
        1.756546974182129,
        0.914332389831543,
        1.8699536323547363,
    ],
    "faceqnet": [
        0.5515823364257812,
        0.5929719805717468,
        0.5628150105476379,
        0.5515316724777222,
        0.5569251179695129,
        0.5626095533370972,
    ],
    # the SVM on the shared MobileFaceNet's embeddings (its bundled svm-mobilefacenet model)
    "svm": [
        0.7043338418006897,
        0.3988819420337677,
        0.6550351977348328,
        0.5364211797714233,
        0.48676827549934387,
        0.5830656290054321,
    ],
}


@pytest.fixture(scope="module")
def inputs():
    return load()


@pytest.fixture(scope="module")
def faces():
    return fixture_faces()


def test_fixture_holds_these_photos_and_what_the_face_methods_read(inputs, faces):
    """The committed inputs are of the photos and landmarks above, and the ``face`` methods pinned here read no
    pixel of the photo outside the stored jpeg window (pose reads the landmarks alone)."""
    from fiqa_bench.methods.jpeg import face_region

    assert inputs["paths"].tolist() == PHOTOS
    assert np.array_equal(inputs["landmarks"], np.asarray(LANDMARKS, np.float32))
    assert [face_region(f) for f in faces] == [tuple(w) for w in inputs["windows"].tolist()]
    # every input form a pinned method asks for is stored (svm's and combination's crops: 112 RGB, see below)
    assert {input_form(name) for name in PINNED} == {("aligned", 112, "RGB"), ("aligned", 64, "RGB"), ("face",)}


def input_form(name: str) -> tuple:
    from fiqa_bench import registry

    spec = registry.load_class("method", name).card.input
    return (spec.kind, spec.size, spec.colour) if spec.kind == "aligned" else (spec.kind,)


def aligned(inputs, spec) -> np.ndarray:
    """The committed ``to_input`` for an ``aligned`` InputSpec."""
    assert spec.kind == "aligned", spec
    return inputs[f"aligned_{spec.size}_{spec.colour}"]


def score_on_fixture(method, name: str, inputs, faces) -> np.ndarray:
    """``method.score`` of the six faces, from the committed inputs. Two ``face`` methods warp inside ``score``:
    svm (the backbone's crop) and combination (blur's crop); their public parts are called with the committed
    crops instead, the same composition as their ``score``."""
    spec = method.card.input
    if spec.kind == "aligned":
        return method.score(aligned(inputs, spec))
    if name == "svm":  # SVMQuality.score: the SVR on the backbone's embeddings of its to_input
        backbone = method.backbone
        return method.score_embeddings(np.asarray(backbone.embed(aligned(inputs, backbone.card.input)), np.float32))
    if name == "combination":  # CombinationQuality.score: combine(component_scores(faces))
        from fiqa_bench.methods.blur import BlurQuality
        from fiqa_bench.methods.combination import combine, component_scores

        return combine(component_scores(faces, crops=aligned(inputs, BlurQuality.card.input)))
    return method.score(faces)  # pose, jpeg


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.shared) if n == "svm" else n for n in sorted(PINNED)]
)
def test_bundled_scores_are_pinned(name, inputs, faces, request):
    from fiqa_bench import registry

    cls = registry.load_class("method", name)
    kwargs = {}
    if getattr(cls.card, "needs_backbone", False):
        shared = request.getfixturevalue("shared")
        kwargs["backbone"] = registry.create("backbone", f"onnx:{shared / 'models/mobilefacenet/mobilefacenet.onnx'}")
    method = registry.create("method", name, **kwargs)
    got = score_on_fixture(method, name, inputs, faces)
    np.testing.assert_allclose(got, PINNED[name], rtol=1e-5, atol=0)


def test_tinyfq_m4_flip_keeps_the_scores_it_had_when_bundled(inputs):
    """methods/weights/tinyfq-m4-flip.onnx, the tinyfq bundled from issue 15's first recipe until the Adam row
    replaced it: the scores pinned for it then (torch network of its checkpoint; 500bfea, before versions were
    recorded: see the module docstring)."""
    from fiqa_bench import registry

    method = registry.create("method", "tinyfq", weights="tinyfq-m4-flip.onnx")
    got = method.score(aligned(inputs, method.card.input))
    np.testing.assert_allclose(
        got,
        [
            0.6746817827224731,
            0.6302388310432434,
            0.815279483795166,
            0.7841890454292297,
            0.7481006383895874,
            0.7946984767913818,
        ],
        rtol=1e-5,
        atol=0,
    )


def test_tinyfq_v1_keeps_the_scores_it_had_when_bundled(inputs):
    """methods/weights/tinyfq-v1.onnx, the tinyfq bundled before issue 15: the scores pinned for it then (df0b3bb,
    before versions were recorded: see the module docstring)."""
    from fiqa_bench import registry

    method = registry.create("method", "tinyfq", weights="tinyfq-v1.onnx")
    got = method.score(aligned(inputs, method.card.input))
    np.testing.assert_allclose(
        got,
        [
            0.8631298542022705,
            0.8400887250900269,
            0.7742280960083008,
            0.8549749255180359,
            0.821580171585083,
            0.7588264346122742,
        ],
        rtol=1e-5,
        atol=0,
    )
