"""Training cards carry no machine path: a bundled file is read on other machines (fiqa_bench.training.export)."""

from __future__ import annotations

import json

import pytest

from fiqa_bench.training.export import strip_machine_paths


def test_absolute_paths_become_relative_or_base_names(tmp_path):
    shared = tmp_path / "shared"
    work = tmp_path / "work"
    (shared / "models").mkdir(parents=True)
    work.mkdir()
    card = {
        "command": f"fiqa-bench train {work}/labels --out /home/me/run/tinyfq.onnx --checkpoints {work}/ck/",
        "data_command": f"fiqa-bench label {shared}/data/lfw/lfw --fr onnx:{shared}/models/m.onnx --out LABELS",
        "nested": [{"data": str(work)}, "relative/path", "../shared/data", 3, None],
        "windows": r"C:\Users\me\labels",
        "normalisation": "(x - 127.5) / 128, RGB, NCHW",
        "url": "https://example.org/a/b",
    }
    out = strip_machine_paths(card, shared=shared, cwd=work)
    assert out["command"] == "fiqa-bench train labels --out tinyfq.onnx --checkpoints ck"
    assert out["data_command"] == "fiqa-bench label S/data/lfw/lfw --fr onnx:S/models/m.onnx --out LABELS"
    assert out["nested"] == [{"data": "."}, "relative/path", "../shared/data", 3, None]
    assert out["windows"] == "labels"
    assert out["normalisation"] == card["normalisation"] and out["url"] == card["url"]
    assert str(tmp_path) not in json.dumps(out) and "/home/me" not in json.dumps(out)


@pytest.mark.parametrize("name", ["tinyfq.onnx", "tinyfq-pnj1-e24.onnx", "tinyfq-m4-flip.onnx", "tinyfq-v1.onnx"])
def test_bundled_tinyfq_files_hold_no_machine_path(name):
    import onnx

    from fiqa_bench.methods.tinyfq import bundled_weights

    path = bundled_weights().with_name(name)
    if not path.is_file():
        pytest.skip(f"{name} not bundled")
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    texts = [props["fiqa_bench.training_card"], path.with_suffix(".json").read_text()]
    for text in texts:
        assert strip_machine_paths(text) == text
        for fragment in ("/work/", "/tmp/", "/home/", "/root/"):
            assert fragment not in text
