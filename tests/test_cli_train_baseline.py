"""``fiqa-bench train-baseline``: data -> svm, rqs (and faceqnet with torch) -> evaluate on a tiny real set, through
the command line, and the torch-free path."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from fiqa_bench.cli.main import main


def _invoke(*args: str):
    res = CliRunner().invoke(main, ["train-baseline", *map(str, args)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res


def test_data_records_its_command_and_the_faces(baseline_set):
    from fiqa_bench.training.baselines import BaselineSet

    folder, fr = baseline_set
    data = BaselineSet.load(folder)
    assert data.meta["command"] == (
        f"fiqa-bench train-baseline data {folder} --fr {fr} "
        f"--fr-option normalisation=mobilefacenet --source {data.meta['sources'][0]} "
        f"--part all"
    )
    assert data.meta["backbone_spec"] == fr and data.meta["backbone_options"] == {"normalisation": "mobilefacenet"}
    assert data.landmarks.shape == (48, 5, 2) and np.isfinite(data.landmarks).all()
    assert list(data.level[:4]) == ["clean", "light", "medium", "strong"]
    assert (data.landmarks[1:4] == data.landmarks[0]).all()  # one detection per photo, shared by its ladder


@pytest.fixture(scope="module")
def trained(baseline_set, tmp_path_factory):
    folder, _ = baseline_set
    out = tmp_path_factory.mktemp("models")
    _invoke("svm", folder, "--out", out / "svm.npz", "--val-fraction", "0.25", "--C", "1.0")
    _invoke("rqs", folder, "--out", out / "rqs.npz", "--val-fraction", "0.25", "--C", "0.01", "--margin", "0.05")
    return out


def test_svm_and_rqs_cards_record_the_cli_command(baseline_set, trained):
    import hashlib

    from fiqa_bench.methods.rqs import RQSQuality

    folder, _ = baseline_set
    svm = json.loads((trained / "svm.json").read_text())
    assert svm["command"] == (
        f"fiqa-bench train-baseline svm {folder} --out {trained / 'svm.npz'} --val-fraction 0.25 --C 1.0"
    )
    assert svm["settings"]["C"] == 1.0 and svm["val_rows"] == 12 and svm["grid"] == []
    assert svm["sha256"] == hashlib.sha256((trained / "svm.npz").read_bytes()).hexdigest()
    assert svm["data"].startswith(f"{folder}: ") and "fiqa-bench train-baseline data" in svm["data"]
    rqs = json.loads((trained / "rqs.json").read_text())
    assert rqs["command"] == (
        f"fiqa-bench train-baseline rqs {folder} --out {trained / 'rqs.npz'} --val-fraction 0.25 --C 0.01 --margin 0.05"
    )
    assert rqs["settings"]["C"] == 0.01 and rqs["settings"]["margin"] == 0.05
    assert RQSQuality(weights=trained / "rqs.npz").identity().endswith(rqs["sha256"][:16])


def test_evaluate_scores_every_input_route(baseline_set, trained, tmp_path):
    from fiqa_bench.methods.blur import BlurQuality
    from fiqa_bench.methods.pose import PoseQuality
    from fiqa_bench.methods.rqs import RQSQuality
    from fiqa_bench.methods.svm import SVMQuality
    from fiqa_bench.methods.tinyfq import bundled_weights
    from fiqa_bench.registry import create
    from fiqa_bench.training.baselines import BaselineSet, FaceRebuilder, spearman

    folder, fr = baseline_set
    out = tmp_path / "eval.json"
    res = CliRunner().invoke(
        main,
        [
            "train-baseline",
            "evaluate",
            str(folder),
            "--no-progress",
            "--out",
            str(out),
            "--methods",
            "blur,jpeg,pose,combination,svm,rqs,faceqnet,tinyfq",
            "--svm",
            str(trained / "svm.npz"),
            "--rqs",
            str(trained / "rqs.npz"),
        ],
    )
    assert res.exit_code == 0, res.output
    report = json.loads(out.read_text())
    results = report["results"]
    expected = {"blur", "jpeg", "pose", "combination", "svm", "rqs", "faceqnet"}
    if bundled_weights().is_file():
        expected.add("tinyfq")
    else:  # skipped with the reason, not an error
        assert "tinyfq.onnx" in report["skipped"]["tinyfq"] and "skipped tinyfq" in res.output
    assert set(results) == expected
    data = BaselineSet.load(folder)
    labels = data.data.labels
    # each route computes what the method gives for these rows: svm on the stored embeddings, blur and rqs on the
    # stored crops, pose on the rebuilt faces (stored landmarks: one per photo, so every ladder is a tie)
    backbone = create("backbone", fr, normalisation="mobilefacenet")
    direct = {
        "svm": SVMQuality(backbone=backbone, model=trained / "svm.npz").score_embeddings(data.embeddings),
        "rqs": RQSQuality(weights=trained / "rqs.npz").score(np.asarray(data.data.images)),
        "blur": BlurQuality().score(np.asarray(data.data.images)),
    }
    for name, s in direct.items():
        assert results[name]["spearman_eq1_all"] == pytest.approx(spearman(s, labels), abs=1e-9), name
    assert results["svm"]["input"].startswith("stored embeddings") and results["rqs"]["input"].startswith("stored")
    faces = FaceRebuilder(data).faces(np.arange(8))
    assert results["pose"]["input"].startswith("faces rebuilt") and faces[1].image.shape == faces[0].image.shape
    assert results["pose"]["ladder"]["pairs"] == 0.5 and results["pose"]["ladder"]["n_photos"] == 12
    pose = PoseQuality().score(faces)
    assert pose[0] == pose[3] and pose[4] == pose[7] and pose[0] != pose[4]
    assert results["svm"]["spearman_eq1_all"] > 0.3  # fitted on 3 of the 4 identities: a real, if small, model
    assert report["command"].startswith(f"fiqa-bench train-baseline evaluate {folder} --methods blur,jpeg")
    assert "svm" in res.output and "rqs" in res.output


def test_faces_of_an_old_set_are_detected_again_and_checked(baseline_set, tmp_path):
    """A set saved before landmarks were stored: evaluate detects again (same numbers); a stored crop that the
    rebuilt face does not reproduce is a clear error naming the photo."""
    import shutil

    folder, _ = baseline_set
    old = tmp_path / "old"
    shutil.copytree(folder, old)
    (old / "landmarks.npy").unlink()
    (old / "boxes.npy").unlink()

    def jpeg(path):
        res = CliRunner().invoke(
            main,
            [
                "train-baseline",
                "evaluate",
                str(path),
                "--methods",
                "jpeg",
                "--no-progress",
                "--out",
                str(path / "e.json"),
            ],
        )
        return res, (json.loads((path / "e.json").read_text()) if res.exit_code == 0 else None)

    _, new_report = jpeg(folder)
    res, old_report = jpeg(old)
    assert res.exit_code == 0, res.output
    assert old_report["results"]["jpeg"]["spearman_eq1_all"] == new_report["results"]["jpeg"]["spearman_eq1_all"]
    images = np.load(old / "images.npy")
    images[5] = 255 - images[5]
    np.save(old / "images.npy", images)
    res, _ = jpeg(old)
    assert res.exit_code == 2 and "row 5" in res.output and "differs from the stored crop" in res.output


def test_svm_and_evaluate_never_import_torch(baseline_set, tmp_path):
    """svm training and evaluating every registered method run without torch (a fresh interpreter)."""
    folder, _ = baseline_set
    code = (
        "import sys; from click.testing import CliRunner; from fiqa_bench.cli.main import main; "
        f"r = CliRunner().invoke(main, ['train-baseline', 'svm', {str(folder)!r}, '--out', "
        f"{str(tmp_path / 's.npz')!r}]); "
        "assert r.exit_code == 0, r.output; "
        f"r = CliRunner().invoke(main, ['train-baseline', 'evaluate', {str(folder)!r}, '--no-progress', '--out', "
        f"{str(tmp_path / 'e.json')!r}]); "
        "assert r.exit_code == 0, r.output; "
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')"
    )
    env = {**os.environ, "OPENCV_LOG_LEVEL": "ERROR"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("NO-TORCH"), proc.stdout
    card = json.loads((tmp_path / "s.json").read_text())
    assert card["command"] == f"fiqa-bench train-baseline svm {folder} --out {tmp_path / 's.npz'}"
    results = json.loads((tmp_path / "e.json").read_text())["results"]
    assert {"blur", "jpeg", "pose", "combination", "random", "svm", "rqs", "faceqnet"} <= set(results)


def test_faceqnet_through_the_cli(baseline_set, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from fiqa_bench.methods.faceqnet import FaceQnet

    monkeypatch.setenv("FIQA_BENCH_THREADS", "1")
    folder, _ = baseline_set
    out = tmp_path / "fq.onnx"
    _invoke(
        "faceqnet",
        folder,
        "--out",
        out,
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--val-fraction",
        "0.25",
        "--no-progress",
    )
    card = json.loads(out.with_suffix(".json").read_text())
    # the card records no machine path: folders outside the working folder and the shared one by their last part
    assert card["command"] == (
        f"fiqa-bench train-baseline faceqnet {folder.name} --out {out.name} --val-fraction "
        f"0.25 --epochs 1 --batch-size 16"
    )
    assert str(tmp_path) not in json.dumps(card) and str(folder) not in json.dumps(card)
    assert card["completed"] and card["config"]["epochs"] == 1
    q = FaceQnet(weights=out).score(np.zeros((2, 112, 112, 3), np.uint8))
    assert q.shape == (2,) and np.isfinite(q).all()


def test_bad_options_are_clear_errors(tmp_path):
    res = CliRunner().invoke(
        main, ["train-baseline", "data", str(tmp_path / "s"), "--fr", "dlib", "--source", f"{tmp_path}:per_identity=x"]
    )
    assert res.exit_code != 0 and "per_identity" in res.output
    res = CliRunner().invoke(
        main, ["train-baseline", "data", str(tmp_path / "s"), "--fr", "dlib", "--source", str(tmp_path / "missing")]
    )
    assert res.exit_code == 2 and "not a folder of identity folders" in res.output


def test_list_shows_the_three_baselines_with_their_papers_without_torch():
    code = (
        "import json, sys; from click.testing import CliRunner; from fiqa_bench.cli.main import main; "
        "res = CliRunner().invoke(main, ['list', '--kind', 'method', '--json']); "
        "print(json.dumps({'out': res.output, 'code': res.exit_code, 'torch': 'torch' in sys.modules}))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["code"] == 0 and not got["torch"]
    cards = {name: dict(info["card"]) for name, info in json.loads(got["out"])["method"].items()}
    assert "Best-Rowden and A. K. Jain" in cards["svm"]["paper"] and "2018" in cards["svm"]["paper"]
    assert "J. Chen" in cards["rqs"]["paper"] and "2015" in cards["rqs"]["paper"]
    assert "Hernandez-Ortega" in cards["faceqnet"]["paper"] and "2019" in cards["faceqnet"]["paper"]
