"""YTF reader: the real protocol files (text and .mat forms), frame trees built in tmp, malformed files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from fiqa_bench import registry
from fiqa_bench.errors import FiqaBenchError, ProtocolFormatError
from fiqa_bench.pipeline.benchmark import LANDMARK_COLUMNS
from fiqa_bench.protocols.ytf import YTF, YTFLayout, normalise_video_name, read_splits, read_splits_mat


@pytest.fixture(scope="module")
def ytf_dir(shared) -> Path:
    return shared / "data" / "protocols" / "ytf"


def parse_text_independently(path: Path) -> list[tuple[int, int, str, str, int]]:
    rows = []
    for line in path.read_bytes().decode().split("\r\n"):
        s, p, v1, v2, same = (x.strip() for x in line.split(","))
        rows.append((int(s) - 1, int(p), v1, v2, int(same)))
    return rows


def test_real_splits_text(ytf_dir):
    pairs = YTF(ytf_dir).load_pairs()
    assert list(pairs.columns) == ["fold", "pair", "video1", "video2", "label"]
    assert len(pairs) == 5000
    counts = pairs.groupby("fold")["label"].agg(["sum", "count"])
    assert list(counts.index) == list(range(10))
    assert (counts["count"] == 500).all() and (counts["sum"] == 250).all()
    assert [tuple(r) for r in pairs.itertuples(index=False)] == parse_text_independently(ytf_dir / "splits.txt")
    assert tuple(pairs.iloc[0]) == (0, 1, "Sadie_Frost/1", "Sadie_Frost/5", 1)
    assert tuple(pairs.iloc[-1]) == (9, 500, "Ben_Curtis/0", "Hank_Stram/4", 0)


def test_real_text_and_mat_agree_on_all_pairs(ytf_dir):
    text = read_splits(ytf_dir / "splits.txt")
    mat = read_splits(ytf_dir / "Youtube_splits.mat")
    cols = ["fold", "pair", "video1", "video2", "label"]
    assert len(mat) == 5000
    assert (text[cols].to_numpy() == mat[cols].to_numpy()).all()
    # and through the option
    assert YTF(splits=ytf_dir / "Youtube_splits.mat").load_pairs().equals(text[cols])


def test_real_labels_match_identities(ytf_dir):
    """same == 1 exactly when both videos belong to one person (Youtube_labels.mat, an independent source)."""
    names = (ytf_dir / "Youtube_names.txt").read_text().split()
    person = dict(zip(names, scipy.io.loadmat(ytf_dir / "Youtube_labels.mat")["z"].ravel().tolist()))
    pairs = YTF(ytf_dir).load_pairs()
    same_person = np.array([person[a] == person[b] for a, b in zip(pairs["video1"], pairs["video2"])])
    np.testing.assert_array_equal(same_person, pairs["label"].to_numpy() == 1)
    assert (pairs["video1"] != pairs["video2"]).all()


def test_official_meta_and_splits_form(ytf_dir, tmp_path):
    """The official file's variables (Splits + a cell array of names) read like the repackaged ones."""
    m = scipy.io.loadmat(ytf_dir / "Youtube_splits.mat")["m"].astype(np.float64)
    names = (ytf_dir / "Youtube_names.txt").read_text().split()
    cell = np.empty((1, len(names)), dtype=object)
    cell[0, :] = [n.replace("/", "\\") for n in names]  # a Windows-made file: backslashes
    (tmp_path / "meta_data").mkdir()
    scipy.io.savemat(tmp_path / "meta_data" / "meta_and_splits.mat", {"Splits": m, "mat_names": cell})
    official = YTF(tmp_path).load_pairs()
    assert official.equals(YTF(ytf_dir).load_pairs())


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("AJ_Cook/0", "AJ_Cook/0"),
        ("AJ_Cook\\3", "AJ_Cook/3"),
        ("descriptors_DB/AJ_Cook/aligned_video_12.mat", "AJ_Cook/12"),
        (" Zico/2 ", "Zico/2"),
    ],
)
def test_normalise_video_name(raw, expected):
    assert normalise_video_name(raw) == expected


# ---------------------------------------------------------------------------------------- frame trees in tmp
def splits_text(rows: list[tuple[int, int, str, str, int]]) -> str:
    return "\r\n".join(f"{s}, {p}, {a}, {b}, {same}" for s, p, a, b, same in rows)  # official: no final newline


ROWS = [
    (1, 1, "Ann/0", "Ann/1", 1),
    (1, 2, "Ann/0", "Bob/0", 0),
    (2, 1, "Bob/0", "Bob/2", 1),
    (2, 2, "Ann/1", "Bob/2", 0),
]
FRAMES = {"Ann/0": [1, 2, 10, 9], "Ann/1": [5], "Bob/0": [0, 1, 2], "Bob/2": [7, 8]}


def make_tree(root: Path, rows=ROWS, frames=FRAMES, frames_dir="frame_images_DB") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "splits.txt").write_bytes(splits_text(rows).encode())
    for video, numbers in frames.items():
        folder = root / frames_dir / video
        folder.mkdir(parents=True)
        vid = video.split("/")[1]
        for k in numbers:
            (folder / f"{vid}.{k}.jpg").write_bytes(b"")
        (folder / "Thumbs.db").write_bytes(b"")  # not a frame
    return root


def test_frame_tree(tmp_path):
    bench = YTF(make_tree(tmp_path)).load()
    assert bench.name == "ytf" and bench.metric == "kfold_accuracy" and bench.detect_pad == 0.0
    f = bench.faces
    videos = sorted(FRAMES)  # groups are the videos in sorted order
    expected_paths = [f"frame_images_DB/{v}/{v.split('/')[1]}.{k}.jpg" for v in videos for k in sorted(FRAMES[v])]
    assert list(f["path"]) == expected_paths  # natural order: 9 before 10
    assert list(f["group"]) == [g for g, v in enumerate(videos) for _ in FRAMES[v]]
    assert (f["media"] == f["group"]).all()
    assert list(f["identity"]) == [v.split("/")[0] for v in videos for _ in FRAMES[v]]
    assert f[LANDMARK_COLUMNS].isna().all().all() and f["face_score"].isna().all()
    p = bench.pairs
    index = {v: g for g, v in enumerate(videos)}
    assert list(zip(p["a"], p["b"], p["label"], p["fold"])) == [
        (index[a], index[b], same, s - 1) for s, _, a, b, same in ROWS
    ]


def test_labeled_faces_boxes(tmp_path):
    root = make_tree(tmp_path)
    (root / "frame_images_DB" / "Ann.labeled_faces.txt").write_text(
        "Ann\\0\\0.2.jpg,0,100,80,40,50,0.0,1\nAnn\\1\\1.5.jpg,0,60,61,20,20,0.0,1\nAnn\\7\\7.1.jpg,0,1,1,1,1,0,1\n"
    )
    f = YTF(root).load().faces.set_index("path")
    assert f.loc["frame_images_DB/Ann/0/0.2.jpg", ["box_x", "box_y", "box_w", "box_h"]].tolist() == [80, 55, 40, 50]
    assert f.loc["frame_images_DB/Ann/1/1.5.jpg", "box_x"] == 50
    assert int(f["box_x"].notna().sum()) == 2


def test_aligned_images_and_max_frames(tmp_path):
    frames = {v: list(range(20)) for v in FRAMES}
    root = make_tree(tmp_path, frames=frames, frames_dir="aligned_images_DB")
    bench = YTF(root, max_frames=5).load()
    first = bench.faces[bench.faces["group"] == 0]["path"].tolist()
    assert first == [f"aligned_images_DB/Ann/0/0.{k}.jpg" for k in (0, 5, 10, 14, 19)]  # evenly spread, ends kept
    assert len(bench.faces) == 4 * 5
    assert len(YTF(root).load().faces) == 4 * 20


def test_real_splits_over_a_frame_tree(ytf_dir, tmp_path):
    """All 5,000 real pairs resolve against a tree with one frame per video."""
    table = read_splits(ytf_dir / "splits.txt")
    videos = sorted(set(table["video1"]) | set(table["video2"]))
    for v in videos:
        (tmp_path / "frame_images_DB" / v).mkdir(parents=True)
        (tmp_path / "frame_images_DB" / v / "0.jpg").write_bytes(b"")
    bench = YTF(tmp_path, splits=ytf_dir / "Youtube_splits.mat").load()
    assert len(bench.faces) == len(videos) and len(bench.pairs) == 5000
    assert bench.faces["group"].tolist() == list(range(len(videos)))
    back = bench.faces["path"].str.slice(len("frame_images_DB/"), -len("/0.jpg")).to_numpy()
    np.testing.assert_array_equal(back[bench.pairs["a"]], table["video1"].to_numpy())
    np.testing.assert_array_equal(back[bench.pairs["b"]], table["video2"].to_numpy())


def test_prepared_layout(tmp_path):
    root = make_tree(tmp_path / "bench")
    (root / "benchmark.json").write_text(json.dumps({"name": "mine", "layout": "ytf"}))
    frames = [f"{v}/{v.split('/')[1]}.{k}.jpg" for v in sorted(FRAMES) for k in FRAMES[v]]
    (root / "meta").mkdir()
    (root / "meta" / "mine_name_5pts_score.txt").write_text(
        "".join(f"{fr} " + " ".join(str(i + j) for j in range(10)) + f" 0.{i}\n" for i, fr in enumerate(frames))
    )
    bench = YTFLayout(root).load()
    assert bench.name == "mine"
    f = bench.faces.set_index("path")
    row = f.loc["frame_images_DB/Ann/0/0.10.jpg"]
    k = frames.index("Ann/0/0.10.jpg")
    assert row[LANDMARK_COLUMNS].tolist() == [float(k + j) for j in range(10)]
    assert row["face_score"] == pytest.approx(float(f"0.{k}"))
    (root / "benchmark.json").unlink()
    assert YTFLayout(root).load().name == "bench"  # no benchmark.json: the folder's name
    (root / "benchmark.json").write_text(json.dumps({"name": "mine", "layout": "ijb"}))
    with pytest.raises(FiqaBenchError, match="'ijb' layout"):
        YTFLayout(root).load()


def test_prepared_layout_frame_without_landmarks(tmp_path):
    root = make_tree(tmp_path)
    (root / "meta").mkdir()
    (root / "meta" / "x_name_5pts_score.txt").write_text("Ann/0/0.1.jpg " + " ".join(["1"] * 11) + "\n")
    with pytest.raises(ProtocolFormatError, match="no line for frame"):
        YTFLayout(root).load()
    line = "Ann/0/0.1.jpg " + " ".join(["1"] * 11) + "\n"
    (root / "meta" / "x_name_5pts_score.txt").write_text(line + "Ann/0/0.2.jpg 1 2\n")
    with pytest.raises(ProtocolFormatError, match="expected 12 fields") as err:
        YTFLayout(root).load()
    assert err.value.line == 2
    (root / "meta" / "x_name_5pts_score.txt").write_text(line + "\n" + line)
    with pytest.raises(ProtocolFormatError, match="listed twice") as err:
        YTFLayout(root).load()
    assert err.value.line == 3


# ---------------------------------------------------------------------------------------------- malformed
MALFORMED_TEXT = [
    ("short line", "1, 3, Ann/0, Ann/1", 3, "expected 5 fields"),
    ("non-numeric split", "x, 3, Ann/0, Ann/1, 1", 3, "split is not a number"),
    ("split 0", "0, 3, Ann/0, Ann/1, 1", 3, "split must be >= 1"),
    ("label 2", "1, 3, Ann/0, Ann/1, 2", 3, "same must be 0 or 1"),
    ("video without person", "1, 3, Ann0, Ann/1, 1", 3, "'<person>/<video>'"),
    ("duplicate pair", "1, 2, Ann/0, Ann/1, 1", 3, "already given on line 2"),
]


@pytest.mark.parametrize("what,line,lineno,words", MALFORMED_TEXT, ids=[m[0] for m in MALFORMED_TEXT])
def test_malformed_splits_text(tmp_path, what, line, lineno, words):
    path = tmp_path / "splits.txt"
    path.write_bytes(("1, 1, Ann/0, Ann/1, 1\r\n1, 2, Ann/0, Bob/0, 0\r\n" + line + "\r\n").encode())
    with pytest.raises(ProtocolFormatError) as err:
        YTF(tmp_path).load_pairs()
    assert Path(err.value.path) == path and err.value.line == lineno and words in err.value.reason


def test_missing_or_empty_video_folder_names_the_splits_line(tmp_path):
    root = make_tree(tmp_path, frames={k: v for k, v in FRAMES.items() if k != "Bob/2"})
    with pytest.raises(ProtocolFormatError) as err:
        YTF(root).load()
    assert Path(err.value.path).name == "splits.txt" and err.value.line == 3  # first line naming Bob/2
    assert "Bob/2 does not exist" in err.value.reason
    (root / "frame_images_DB" / "Bob" / "2").mkdir()
    with pytest.raises(ProtocolFormatError, match="has no frames") as err:
        YTF(root).load()
    assert err.value.line == 3


def test_malformed_labeled_faces(tmp_path):
    root = make_tree(tmp_path)
    (root / "frame_images_DB" / "Bob.labeled_faces.txt").write_text(
        "Bob\\0\\0.0.jpg,0,1,2,3,4,0,1\nBob\\0\\0.1.jpg,0,1,2\n"
    )
    with pytest.raises(ProtocolFormatError) as err:
        YTF(root).load()
    assert Path(err.value.path).name == "Bob.labeled_faces.txt" and err.value.line == 2


def test_malformed_mat(tmp_path):
    m = np.zeros((2, 3, 1), dtype=np.uint16)
    m[:, :, 0] = [[1, 2, 1], [1, 3, 0]]
    (tmp_path / "Youtube_names.txt").write_text("Ann/0\nAnn/1\n")
    scipy.io.savemat(tmp_path / "Youtube_splits.mat", {"m": m})
    with pytest.raises(ProtocolFormatError, match=r"split 1 pair 2\): video index 3 is not in 1..2"):
        read_splits_mat(tmp_path / "Youtube_splits.mat")
    (tmp_path / "Youtube_names.txt").write_text("Ann/0\n\nAnn/1\n")
    with pytest.raises(ProtocolFormatError) as err:
        read_splits_mat(tmp_path / "Youtube_splits.mat")
    assert err.value.line == 2
    scipy.io.savemat(tmp_path / "Youtube_splits.mat", {"q": m})
    with pytest.raises(ProtocolFormatError, match="no 'Splits'"):
        read_splits_mat(tmp_path / "Youtube_splits.mat")
    scipy.io.savemat(tmp_path / "Youtube_splits.mat", {"m": m[:, :2]})
    with pytest.raises(ProtocolFormatError, match="pairs x 3 x splits"):
        read_splits_mat(tmp_path / "Youtube_splits.mat")


def test_no_root_and_registry(tmp_path):
    with pytest.raises(FiqaBenchError, match="ytf") as err:
        YTF().load()
    assert not isinstance(err.value, ProtocolFormatError)
    with pytest.raises(FiqaBenchError, match="no YTF splits file"):
        YTF(tmp_path).load_pairs()
    with pytest.raises(FiqaBenchError, match="does not take option"):
        YTF(tmp_path, max_frame=3)
    assert registry.load_class("protocol", "ytf") is YTF
    assert registry.load_class("protocol", "ytf-layout") is YTFLayout and YTFLayout.argument == "PATH"
