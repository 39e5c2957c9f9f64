"""Pinned scores of every bundled quality model on fixed crops of real faces: six celeba-wild photos with landmarks
written here (YuNet's, rounded to 0.01 px, so no detector is involved). Any change to a model file, its
preprocessing (a normalisation constant, a colour order, a crop size) or a perceptual measure moves a score by far
more than the 1e-5 (relative) allowed. Deliberate changes must update these numbers, and say why."""

from __future__ import annotations

import numpy as np
import pytest

PHOTOS = ["data/celeba-wild/images/7201/001085.jpg", "data/celeba-wild/images/7202/006155.jpg",
          "data/celeba-wild/images/7204/004623.jpg", "data/celeba-wild/images/7205/018774.jpg",
          "data/celeba-wild/images/7207/001321.jpg", "data/celeba-wild/images/7208/015339.jpg"]
LANDMARKS = [[[106.22, 100.16], [155.89, 99.69], [134.36, 126.93], [109.92, 142.11], [149.23, 142.43]],
             [[82.6, 87.9], [113.64, 87.72], [103.96, 108.55], [84.26, 116.15], [108.35, 120.74]],
             [[105.67, 111.37], [151.75, 110.78], [128.62, 137.06], [111.02, 158.33], [148.72, 156.91]],
             [[112.44, 94.76], [162.63, 97.91], [139.0, 122.92], [111.24, 142.65], [156.73, 146.26]],
             [[98.42, 112.74], [154.34, 109.47], [128.16, 136.74], [108.48, 159.74], [153.74, 155.83]],
             [[114.2, 113.71], [153.58, 114.91], [142.02, 138.48], [115.24, 156.27], [149.1, 157.6]]]
PINNED = {
    "random": [0.18028414249420166, 0.5040732622146606, 0.4233008027076721, 0.12725931406021118, 0.6681514978408813,
               0.6068915724754333],
    "blur": [7397.36865234375, 4102.3388671875, 3621.482666015625, 5005.50927734375, 4732.00390625,
             5815.599609375],
    "jpeg": [8.93692684173584, 9.15754222869873, 10.23634147644043, 9.807745933532715, 9.684694290161133,
             9.851325035095215],
    "pose": [0.957758367061615, 0.9060730934143066, 0.9977123737335205, 0.9922865629196167, 0.9979913234710693,
             0.9090608358383179],
    "combination": [0.5012739300727844, 0.3716220259666443, 0.7873865365982056, 0.7400946617126465,
                    0.7553876042366028, 0.5592305064201355],
    # issue 15's model (row m4-flip-adam-pnj2-os3-sjn6-e36); computed with the torch network of its training checkpoint
    # (not onnxruntime)
    "tinyfq": [0.6554497480392456, 0.39803773164749146, 0.7314623594284058, 0.8266093134880066, 0.6857553720474243,
               0.8292482495307922],
    "rqs": [1.7249821424484253, 0.6986322402954102, 1.5285614728927612, 1.756546974182129, 0.914332389831543,
            1.8699536323547363],
    "faceqnet": [0.5515823364257812, 0.5929719805717468, 0.5628150105476379, 0.5515316724777222, 0.5569251179695129,
                 0.5626095533370972],
    # the SVM on the shared MobileFaceNet's embeddings (its bundled svm-mobilefacenet model)
    "svm": [0.7043338418006897, 0.3988819420337677, 0.6550351977348328, 0.5364211797714233, 0.48676827549934387,
            0.5830656290054321],
}


@pytest.fixture(scope="module")
def faces(shared):
    from fiqa_bench.faces import Face
    from fiqa_bench.faces.io import load_image

    return [Face(load_image(shared / p), np.asarray(lm, np.float32), None, p) for p, lm in zip(PHOTOS, LANDMARKS)]


@pytest.mark.shared
@pytest.mark.parametrize("name", sorted(PINNED))
def test_bundled_scores_are_pinned(name, faces, shared):
    from fiqa_bench import registry
    from fiqa_bench.faces import to_input

    cls = registry.load_class("method", name)
    kwargs = {}
    if getattr(cls.card, "needs_backbone", False):
        kwargs["backbone"] = registry.create("backbone", f"onnx:{shared / 'models/mobilefacenet/mobilefacenet.onnx'}")
    method = registry.create("method", name, **kwargs)
    got = method.score(to_input(faces, method.card.input))
    np.testing.assert_allclose(got, PINNED[name], rtol=1e-5, atol=0)


@pytest.mark.shared
def test_tinyfq_m4_flip_keeps_the_scores_it_had_when_bundled(faces):
    """methods/weights/tinyfq-m4-flip.onnx, the tinyfq bundled from issue 15's first recipe until the Adam row
    replaced it: the scores pinned for it then (torch network of its checkpoint)."""
    from fiqa_bench import registry
    from fiqa_bench.faces import to_input

    method = registry.create("method", "tinyfq", weights="tinyfq-m4-flip.onnx")
    got = method.score(to_input(faces, method.card.input))
    np.testing.assert_allclose(got, [0.6746817827224731, 0.6302388310432434, 0.815279483795166, 0.7841890454292297,
                                     0.7481006383895874, 0.7946984767913818], rtol=1e-5, atol=0)


@pytest.mark.shared
def test_tinyfq_v1_keeps_the_scores_it_had_when_bundled(faces):
    """methods/weights/tinyfq-v1.onnx, the tinyfq bundled before issue 15: the scores pinned for it then."""
    from fiqa_bench import registry
    from fiqa_bench.faces import to_input

    method = registry.create("method", "tinyfq", weights="tinyfq-v1.onnx")
    got = method.score(to_input(faces, method.card.input))
    np.testing.assert_allclose(got, [0.8631298542022705, 0.8400887250900269, 0.7742280960083008, 0.8549749255180359,
                                     0.821580171585083, 0.7588264346122742], rtol=1e-5, atol=0)
