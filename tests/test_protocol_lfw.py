"""LFW View 2 reader: the real pairs.txt + images, and malformed files generated in tmp."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from fiqa_bench import registry
from fiqa_bench.errors import FiqaBenchError, ProtocolFormatError
from fiqa_bench.pipeline.benchmark import LANDMARK_COLUMNS
from fiqa_bench.protocols.lfw import LFW, parse_pairs


@pytest.fixture(scope="module")
def real(shared):
    return LFW(shared / "data" / "lfw").load()


def test_real_counts(real, shared):
    assert real.name == "lfw" and real.metric == "kfold_accuracy"
    assert real.detect_pad == LFW.DETECT_PAD == 0.25
    assert len(real.pairs) == 6000 and len(real.faces) == 7701
    per_fold = real.pairs.groupby("fold")["label"].agg(["sum", "count"])
    assert list(per_fold.index) == list(range(10))
    assert (per_fold["sum"] == 300).all() and (per_fold["count"] == 600).all()
    # every image of the shared copy is used exactly once in the faces table
    on_disk = sorted(
        f"lfw/{d}/{f}" for d in os.listdir(shared / "data/lfw/lfw") for f in os.listdir(shared / "data/lfw/lfw" / d)
    )
    assert sorted(real.faces["path"]) == on_disk


def test_real_tables(real, shared):
    f, p = real.faces, real.pairs
    assert f["group"].tolist() == list(range(len(f))) and (f["media"] == f["group"]).all()
    assert f["path"].is_unique
    assert (f["identity"] == f["path"].str.split("/").str[1]).all()
    assert f[LANDMARK_COLUMNS].isna().all().all() and f["face_score"].isna().all()
    same = f["identity"].to_numpy()[p["a"]] == f["identity"].to_numpy()[p["b"]]
    np.testing.assert_array_equal(same, p["label"].to_numpy() == 1)
    # pairs follow the file: compare with a plain reading of pairs.txt
    lines = (shared / "data/lfw/pairs.txt").read_text().splitlines()[1:]
    paths = f["path"].to_numpy()

    def img(name, n):
        return f"lfw/{name}/{name}_{int(n):04d}.jpg"

    for k in (0, 299, 300, 599, 600, 5999):
        parts = lines[k].split()
        want = (
            (img(parts[0], parts[1]), img(parts[0], parts[2]))
            if len(parts) == 3
            else (img(parts[0], parts[1]), img(parts[2], parts[3]))
        )
        assert (paths[p["a"][k]], paths[p["b"][k]]) == want
        assert p["fold"][k] == k // 600 and p["label"][k] == (k % 600 < 300)


def test_real_is_deterministic(real, shared):
    again = LFW(shared / "data" / "lfw").load()
    assert again.fingerprint() == real.fingerprint()


def test_default_root_comes_from_datasets(shared, monkeypatch):
    datasets = pytest.importorskip("fiqa_bench.data.datasets")
    monkeypatch.setattr(datasets, "lfw_root", lambda data=None: shared / "data" / "lfw")
    assert len(LFW().load().pairs) == 6000


def test_registered():
    assert registry.load_class("protocol", "lfw") is LFW
    with pytest.raises(FiqaBenchError, match="does not take option"):
        LFW("x", image_dir="lfw")


# ---------------------------------------------------------------------------------------------- malformed
GOOD = [
    "2\t2",
    "Ann\t1\t2",
    "Bob\t1\t3",
    "Ann\t1\tBob\t2",
    "Cy\t1\tDee\t1",
    "Cy\t1\t2",
    "Dee\t1\t2",
    "Ann\t2\tCy\t2",
    "Bob\t3\tDee\t2",
]
IMAGES = {"Ann": [1, 2], "Bob": [1, 2, 3], "Cy": [1, 2], "Dee": [1, 2]}


def make_lfw(root: Path, lines=GOOD, images=IMAGES) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    for name, numbers in images.items():
        (root / "lfw" / name).mkdir(parents=True, exist_ok=True)
        for n in numbers:
            (root / "lfw" / name / f"{name}_{n:04d}.jpg").write_bytes(b"")
    return root


def test_small_file(tmp_path):
    bench = LFW(make_lfw(tmp_path)).load()
    f, p = bench.faces, bench.pairs
    used = sorted(
        {("Ann", 1), ("Ann", 2), ("Bob", 1), ("Bob", 3), ("Bob", 2), ("Cy", 1), ("Dee", 1), ("Cy", 2), ("Dee", 2)}
    )
    assert f["path"].tolist() == [f"lfw/{n}/{n}_{k:04d}.jpg" for n, k in used]
    idx = {u: i for i, u in enumerate(used)}
    assert p["a"].tolist() == [
        idx["Ann", 1],
        idx["Bob", 1],
        idx["Ann", 1],
        idx["Cy", 1],
        idx["Cy", 1],
        idx["Dee", 1],
        idx["Ann", 2],
        idx["Bob", 3],
    ]
    assert p["label"].tolist() == [1, 1, 0, 0, 1, 1, 0, 0] and p["fold"].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]


def test_deep_funneled_folder_name(tmp_path):
    root = make_lfw(tmp_path)
    (root / "lfw").rename(root / "lfw-deepfunneled")
    assert LFW(root).load().faces["path"].iloc[0].startswith("lfw-deepfunneled/")


def _with(lineno: int, text: str | None) -> list[str]:
    lines = list(GOOD)
    if text is None:
        del lines[lineno - 1]
    else:
        lines[lineno - 1] = text
    return lines


MALFORMED = [
    ("short same line", _with(3, "Bob\t1"), 3, "same-person line"),
    ("long same line", _with(2, "Ann\t1\t2\t3"), 2, "same-person line"),
    ("short different line", _with(5, "Cy\t1\tDee"), 5, "different-person line"),
    ("non-numeric id", _with(7, "Dee\t1\tx"), 7, "image number is not a number"),
    ("negative id", _with(8, "Ann\t-2\tCy\t2"), 8, "not a number"),
    ("zero id", _with(6, "Cy\t0\t2"), 6, "must be >= 1"),
    ("bad header", _with(1, "2"), 1, "expected header"),
    ("non-numeric header", _with(1, "two\t2"), 1, "number of folds"),
    ("missing pair line", _with(9, None), 1, "has 7 pair lines"),
    ("extra pair line", [*GOOD, "Ann\t1\t2"], 1, "has 9 pair lines"),
]


@pytest.mark.parametrize("what,lines,lineno,words", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_pairs(tmp_path, what, lines, lineno, words):
    root = make_lfw(tmp_path, lines)
    with pytest.raises(ProtocolFormatError) as err:
        LFW(root).load()
    assert Path(err.value.path) == root / "pairs.txt" and err.value.line == lineno
    assert words in err.value.reason and f"pairs.txt:{lineno}:" in str(err.value)


def test_missing_image_names_the_first_line_using_it(tmp_path):
    root = make_lfw(tmp_path, images={**IMAGES, "Bob": [1, 2]})  # Bob_0003 is used on lines 3 and 9
    with pytest.raises(ProtocolFormatError) as err:
        LFW(root).load()
    assert err.value.line == 3 and "Bob_0003.jpg does not exist" in err.value.reason
    assert len(LFW(root, check_images=False).load().faces) == 9


def test_missing_files(tmp_path):
    with pytest.raises(FiqaBenchError, match="no pairs.txt"):
        LFW(tmp_path).load()
    (tmp_path / "pairs.txt").write_text("1 1\nA 1 2\nA 1 B 1\n")
    with pytest.raises(FiqaBenchError, match="no image folder"):
        LFW(tmp_path).load()
    (tmp_path / "pairs.txt").write_text("")
    with pytest.raises(ProtocolFormatError, match="empty"):
        parse_pairs(tmp_path / "pairs.txt")
