"""The bundled tinyFQnet (methods/weights/tinyfq.onnx, issue 15: MobileFaceNet labels, 4 degraded copies, flips,
Adam, the JPEG/noise pair term x2, the strong copies 6x, 36 epochs): small, Table 1's parameter count, a card that
says how it was made, and scores that rank real faces above their strongly degraded copies; the models bundled
before (tinyfq-pnj1-e24.onnx, the 24-epoch row; tinyfq-m4-flip.onnx, issue 15's first recipe; tinyfq-v1.onnx, dlib
labels) are kept and named by file name."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fiqa_bench.methods.tinyfq import TinyFQ, bundled_weights
from fiqa_bench.models.onnx_info import count_parameters, read_graph

TABLE1_PARAMETERS = 13_366  # fiqa_bench.training.nets: Table 1 as built (the paper states 21,806; see nets.py)


def test_bundled_file_is_small_and_has_table1_parameter_count():
    path = bundled_weights()
    assert path.is_file(), f"{path} is missing"
    assert path.stat().st_size < 200 * 1024
    assert count_parameters(read_graph(path))[1] == TABLE1_PARAMETERS


def test_card_records_recipe_and_validation():
    card = json.loads(bundled_weights().with_suffix(".json").read_text())
    assert card["net"] == "tinyfqnet" and card["input_size"] == 64 and card["backbone"].startswith("onnx-")
    assert card["command"].startswith("fiqa-bench train ") and card["data_command"].startswith("fiqa-bench label ")
    assert "--part train" in card["data_command"]  # eval-part identities are never trained on
    assert "--fr onnx:../shared/models/mobilefacenet/mobilefacenet.onnx" in card["data_command"]
    assert "--degraded-copies 4" in card["data_command"] and "--hflip" in card["command"]
    assert "--optimizer adam" in card["command"] and "--pair-kinds jpeg,gaussian_noise" in card["command"]
    cfg = card["config"]
    assert cfg["epochs"] == 36 and cfg["lr_step"] == 15 and cfg["seed"] == 0 and cfg["hflip"]
    assert cfg["optimizer"] == "adam" and cfg["lr"] == 0.003 and cfg["label_scaling"] == "minmax"
    assert cfg["pair_weight"] == 2.0 and cfg["pair_kinds"] == ["gaussian_noise", "jpeg"]
    assert cfg["oversample"] == {"gaussian_noise": 3, "gaussian_noise/strong": 6, "jpeg": 3, "jpeg/strong": 6}
    assert cfg["sampling"] == "smooth" and cfg["rows"] == 21_905 and cfg["train_rows"] == 29_165
    assert cfg["label_range"][0] < cfg["label_range"][1]
    assert card["completed"] and card["validation"]["n"] == card["split"]["val_rows"] > 0
    # 0.642 on 2,565 rows of 86 held-out train-part identities (the card's, from training on 2026-12-01 with
    # torch 2.13.0+cpu, before other versions were recorded)
    assert card["validation"]["spearman"] > 0.64
    assert card["ablation_row"] == "m4-flip-adam-pnj2-os3-sjn6-e36"
    assert card["onnx_bytes"] == bundled_weights().stat().st_size


def test_the_models_bundled_before_are_kept():
    from fiqa_bench.registry import create

    last = bundled_weights().with_name("tinyfq-pnj1-e24.onnx")
    card = json.loads(last.with_suffix(".json").read_text())
    assert card["ablation_row"] == "m4-flip-adam-pnj1-os3-e24" and card["config"]["epochs"] == 24
    assert card["config"]["pair_weight"] == 1.0 and card["config"]["oversample"] == {"gaussian_noise": 3, "jpeg": 3}
    assert card["onnx"] == last.name and card["onnx_bytes"] == last.stat().st_size
    assert create("method", "tinyfq", weights="tinyfq-pnj1-e24.onnx").weights == last

    first = bundled_weights().with_name("tinyfq-m4-flip.onnx")
    card = json.loads(first.with_suffix(".json").read_text())
    assert card["ablation_row"] == "m4-flip" and card["config"]["epochs"] == 8 and "optimizer" not in card["config"]
    assert card["onnx"] == first.name and card["onnx_bytes"] == first.stat().st_size
    assert create("method", "tinyfq", weights="tinyfq-m4-flip.onnx").weights == first

    old = bundled_weights().with_name("tinyfq-v1.onnx")
    card = json.loads(old.with_suffix(".json").read_text())
    assert card["backbone"].startswith("dlib-") and card["config"]["epochs"] == 17
    assert card["onnx"] == old.name and card["onnx_bytes"] == old.stat().st_size
    method = create("method", "tinyfq", weights="tinyfq-v1.onnx")  # a bundled file named by its file name
    assert method.weights == old and method.identity() != create("method", "tinyfq").identity()


@pytest.mark.shared
def test_scores_rank_clean_faces_above_degraded_copies(shared):
    from fiqa_bench.data.degradations import downscale, gaussian_blur, gaussian_noise, jpeg
    from fiqa_bench.data.splits import identity_part
    from fiqa_bench.faces import Face, load_face, make_detector, to_input

    root = shared / "data/celeba-wild/images"
    det = make_detector("yunet")
    faces = []
    for folder in [p for p in sorted(root.iterdir()) if identity_part(p.name) == "eval"][:4]:
        faces += [load_face(photo, det) for photo in sorted(folder.glob("*.jpg"))[:4]]
    degradations = {
        "blur-4": lambda im, i: gaussian_blur(im, sigma=4.0),
        "down-8": lambda im, i: downscale(im, factor=8),
        "jpeg-10": lambda im, i: jpeg(im, quality=10),
        "noise-20": lambda im, i: gaussian_noise(im, sigma=20.0, seed=i),
    }
    penalised = {}
    for weights in (None, "tinyfq-m4-flip.onnx"):
        method = TinyFQ(weights=weights)
        clean = method.score(to_input(faces, method.card.input))
        for name, degrade in degradations.items():
            worse = method.score(
                to_input(
                    [Face(degrade(f.image, i), f.landmarks, f.box, f.path) for i, f in enumerate(faces)],
                    method.card.input,
                )
            )
            assert np.isfinite(worse).all()
            penalised[weights, name] = int((clean > worse).sum())
    # of these 16 faces: the bundled model penalises JPEG-10 and noise-20 where the model it replaced did not.
    # Counted on 2026-12-01 (184f301), before versions were recorded (the first recorded environment, a day later:
    # onnxruntime 1.32.0, numpy 2.4.6, OpenCV 5.0.0.93 for YuNet, the degradations and the warp); the same with
    # OpenCV 5.1.0.95.
    assert penalised == {
        (None, "blur-4"): 16,
        (None, "down-8"): 16,
        (None, "jpeg-10"): 12,
        (None, "noise-20"): 15,
        ("tinyfq-m4-flip.onnx", "blur-4"): 16,
        ("tinyfq-m4-flip.onnx", "down-8"): 16,
        ("tinyfq-m4-flip.onnx", "jpeg-10"): 9,
        ("tinyfq-m4-flip.onnx", "noise-20"): 8,
    }


def test_a_bundled_alternative_is_named_by_its_file_name_on_the_command_line(tmp_path, monkeypatch):
    """``--method-option weights=tinyfq-v1.onnx`` (what the README gives) parses anywhere, keeps the text as typed
    (no installation path in a results file) and loads the bundled v1 file; an unknown bare name is refused."""
    import hashlib

    from fiqa_bench.api.options import parse_options
    from fiqa_bench.errors import OptionError
    from fiqa_bench.models.quality_net import bundled_weights_path

    monkeypatch.chdir(tmp_path)  # nothing called tinyfq-v1.onnx here
    assert parse_options(TinyFQ, "method 'tinyfq'", {"weights": "tinyfq-v1.onnx"}) == {"weights": "tinyfq-v1.onnx"}
    v1 = TinyFQ(weights="tinyfq-v1.onnx")
    sha = hashlib.sha256(bundled_weights_path("tinyfq-v1.onnx").read_bytes()).hexdigest()
    assert v1.identity().endswith(f"-sha256-{sha[:16]}")
    assert v1.identity() != TinyFQ().identity()
    with pytest.raises(OptionError, match=r"option 'weights': tinyfq-v9.onnx: no such file"):
        parse_options(TinyFQ, "method 'tinyfq'", {"weights": "tinyfq-v9.onnx"})
