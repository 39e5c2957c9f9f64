"""``fiqa-bench label`` then ``fiqa-bench train`` through the command line on real faces: the labelled set records
the command that made it, and the exported model's card repeats it with the label scaling it trained on."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from fiqa_bench.cli.main import main

pytest.importorskip("torch")
pytestmark = pytest.mark.shared


def _invoke(*args):
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res


def test_label_then_train_records_commands_and_label_range(tmp_path, copy_identities, shared, isolated_cache):
    src = copy_identities(tmp_path / "photos", 4, 4)
    mbf = shared / "models/mobilefacenet/mobilefacenet.onnx"
    res = _invoke(
        "label",
        src,
        "--fr",
        f"onnx:{mbf}",
        "--out",
        tmp_path / "set",
        "--part",
        "all",
        "--degraded-copies",
        "1",
        "--seed",
        "0",
        "--no-progress",
    )
    assert "32 labelled crops of 4 identities" in res.output
    meta = json.loads((tmp_path / "set" / "meta.json").read_text())["meta"]
    assert meta["command"].startswith("fiqa-bench label ") and "--degraded-copies 1" in meta["command"]
    assert meta["part"] == "all"

    out = tmp_path / "m" / "q.onnx"
    _invoke(
        "train",
        tmp_path / "set",
        "--out",
        out,
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--val-fraction",
        "0.25",
        "--sampling",
        "none",
        "--no-progress",
    )
    card = json.loads(out.with_suffix(".json").read_text())
    from fiqa_bench.training.export import strip_machine_paths

    assert card["data_command"] == strip_machine_paths(meta["command"])  # the card holds no machine path
    assert card["command"].startswith("fiqa-bench train ") and card["config"]["label_scaling"] == "minmax"
    labels = np.load(tmp_path / "set" / "labels.npy")
    train_ids = ~np.isin(np.load(tmp_path / "set" / "identities.npy"), card["val_identities"])
    assert card["config"]["label_range"] == [float(labels[train_ids].min()), float(labels[train_ids].max())]
    # a network for another crop size is refused in one line, before any training, naming the set and the fix
    res = CliRunner().invoke(
        main,
        [
            "train",
            str(tmp_path / "set"),
            "--net",
            "tinyfqnet-112",
            "--out",
            str(tmp_path / "m112.onnx"),
            "--epochs",
            "1",
            "--no-progress",
        ],
    )
    assert res.exit_code == 2, res.output
    assert f"{tmp_path / 'set'}: its crops are 64x64, network tinyfqnet-112 takes 112x112 " in res.output
    assert "--size 112" in res.output and not (tmp_path / "m112.onnx").exists()
