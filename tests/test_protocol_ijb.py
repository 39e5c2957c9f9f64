"""IJB (insightface layout) reader: small layouts written by hand, every malformed case, a realistic-size run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fiqa_bench import registry
from fiqa_bench.errors import FiqaBenchError, ProtocolFormatError
from fiqa_bench.pipeline.benchmark import LANDMARK_COLUMNS
from fiqa_bench.protocols.ijb import IJBB, IJBC, IJBLayout, read_ijb_layout

IMAGES = ["1.jpg", "2.jpg", "3.jpg", "4.jpg", "5.jpg", "6.jpg"]
TEMPLATES = [10, 10, 11, 11, 12, 12]
MEDIA = [100, 101, 102, 102, 103, 104]
PAIRS = [(10, 11, 1), (10, 12, 0), (11, 12, 0)]


def landmark_row(i: int) -> list[float]:
    """Ten distinct coordinates and a faceness score for image i (easy to recompute in assertions)."""
    return [round(20.5 + 3 * i + k, 2) for k in range(10)] + [round(0.9 - 0.1 * i, 3)]


def default_files(prefix: str) -> dict[str, str]:
    tid = "".join(f"{n} {t} {m}\n" for n, t, m in zip(IMAGES, TEMPLATES, MEDIA))
    pairs = "".join(f"{a} {b} {lab}\n" for a, b, lab in PAIRS)
    pts = "".join(f"{n} " + " ".join(str(v) for v in landmark_row(i)) + "\n" for i, n in enumerate(IMAGES))
    return {
        f"meta/{prefix}_face_tid_mid.txt": tid,
        f"meta/{prefix}_template_pair_label.txt": pairs,
        f"meta/{prefix}_name_5pts_score.txt": pts,
    }


def write_layout(
    root: Path, prefix: str = "mini", replace: dict[str, str | None] | None = None, images: list[str] = IMAGES
) -> Path:
    files = default_files(prefix)
    for key, text in (replace or {}).items():
        files[key.format(p=prefix)] = text
    for rel, text in files.items():
        if text is None:
            continue
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "loose_crop").mkdir(parents=True, exist_ok=True)
    for name in images:
        (root / "loose_crop" / name).write_bytes(b"")
    return root


def test_reads_the_layout(tmp_path):
    bench = IJBLayout(write_layout(tmp_path)).load()
    f = bench.faces
    assert bench.name == "mini" and bench.metric == "tpr_at_fpr" and bench.detect_pad == 0.0
    assert list(f["path"]) == [f"loose_crop/{n}" for n in IMAGES]
    assert list(f["group"]) == TEMPLATES and list(f["media"]) == MEDIA
    assert f["group"].dtype == np.int64 and f["media"].dtype == np.int64
    assert list(f["identity"]) == [""] * len(IMAGES)
    expected = np.array([landmark_row(i) for i in range(len(IMAGES))], dtype=np.float32)
    np.testing.assert_array_equal(f[LANDMARK_COLUMNS].to_numpy(np.float32), expected[:, :10])
    np.testing.assert_array_equal(f["face_score"].to_numpy(np.float32), expected[:, 10])
    assert bench.landmarks().shape == (6, 5, 2)
    assert bench.landmarks()[2, 1].tolist() == [expected[2, 2], expected[2, 3]]  # right eye of image 3
    p = bench.pairs
    assert list(zip(p["a"], p["b"], p["label"])) == PAIRS
    assert (p["fold"] == -1).all()
    assert [s.name for s in bench.source_files] == [
        "mini_face_tid_mid.txt",
        "mini_template_pair_label.txt",
        "mini_name_5pts_score.txt",
    ]


def test_landmark_file_in_another_order_is_matched_by_name(tmp_path):
    pts = default_files("mini")["meta/mini_name_5pts_score.txt"].splitlines(keepends=True)
    bench = IJBLayout(write_layout(tmp_path, replace={"meta/{p}_name_5pts_score.txt": "".join(pts[::-1])})).load()
    expected = np.array([landmark_row(i)[:10] for i in range(len(IMAGES))], dtype=np.float32)
    np.testing.assert_array_equal(bench.faces[LANDMARK_COLUMNS].to_numpy(np.float32), expected)


def test_without_landmark_file_landmarks_are_left_to_detection(tmp_path):
    bench = IJBLayout(write_layout(tmp_path, replace={"meta/{p}_name_5pts_score.txt": None})).load()
    assert bench.faces[LANDMARK_COLUMNS].isna().all().all()
    assert bench.faces["face_score"].isna().all()


def test_subject_file_gives_identities(tmp_path):
    sid = "10 7\n11 7\n12 9\n12 9\n"  # a repeated identical row is harmless
    bench = IJBLayout(write_layout(tmp_path, replace={"meta/{p}_tid_sid.txt": sid})).load()
    assert list(bench.faces["identity"]) == ["7", "7", "7", "7", "9", "9"]


def test_subject_names_from_benchmark_json(tmp_path):
    root = write_layout(tmp_path, replace={"meta/{p}_tid_sid.txt": "10 1\n11 1\n12 2\n"})
    (root / "benchmark.json").write_text(json.dumps({"name": "mini", "layout": "ijb", "subjects": {"1": "Ann Lee"}}))
    assert list(IJBLayout(root).load().faces["identity"]) == ["Ann Lee"] * 4 + ["2", "2"]


def test_an_image_in_two_templates_is_allowed(tmp_path):
    tid = "".join(f"{n} {t} {m}\n" for n, t, m in zip(IMAGES, TEMPLATES, MEDIA)) + "1.jpg 12 100\n"
    pts = default_files("mini")[PTS.format(p="mini")]
    pts += pts.splitlines(keepends=True)[0]  # row-aligned with the face file
    bench = IJBLayout(write_layout(tmp_path, replace={TID: tid, PTS: pts})).load()
    assert bench.faces["path"].tolist()[-1] == "loose_crop/1.jpg" and bench.faces["group"].tolist()[-1] == 12


def test_loose_text_is_accepted_and_reads_the_same(tmp_path):
    """CRLF, tabs, trailing spaces and a literal nan leave the fast parser; the exact pass gives the same tables."""
    clean = IJBLayout(write_layout(tmp_path / "clean")).load()
    files = default_files("mini")
    loose = {k: v.replace(" ", "\t", 1).replace("\n", " \r\n") for k, v in files.items()}
    loose["meta/{p}_template_pair_label.txt"] = "\n" + loose.pop("meta/mini_template_pair_label.txt") + "\n\n"
    bench = IJBLayout(write_layout(tmp_path / "loose", replace=loose)).load()
    pd.testing.assert_frame_equal(bench.faces, clean.faces)
    pd.testing.assert_frame_equal(bench.pairs, clean.pairs)
    pts = files["meta/mini_name_5pts_score.txt"].splitlines()
    pts[1] = "2.jpg " + " ".join(["nan"] * 10) + " 0.5"
    bench = IJBLayout(write_layout(tmp_path / "nan", replace={"meta/{p}_name_5pts_score.txt": "\n".join(pts)})).load()
    assert bench.faces.loc[1, LANDMARK_COLUMNS].isna().all() and bench.faces.loc[1, "face_score"] == 0.5
    assert not bench.faces.loc[0, LANDMARK_COLUMNS].isna().any()


def _edit(prefix: str, rel: str, lineno: int, new: str | None) -> dict[str, str]:
    """The default file with 1-based line ``lineno`` replaced (or removed when ``new`` is None)."""
    lines = default_files(prefix)[rel.format(p=prefix)].splitlines()
    if new is None:
        del lines[lineno - 1]
    else:
        lines[lineno - 1] = new
    return {rel: "\n".join(lines) + "\n"}


TID = "meta/{p}_face_tid_mid.txt"
PAIR = "meta/{p}_template_pair_label.txt"
PTS = "meta/{p}_name_5pts_score.txt"
FIVE = " ".join(["1.5"] * 10) + " 0.9"

MALFORMED = [
    # (what, file edited, line edited, new text, file named in the error, line named, words in the reason)
    ("short face line", TID, 3, "3.jpg 11", TID, 3, "expected 3 fields"),
    ("long face line", TID, 2, "2.jpg 10 101 7", TID, 2, "expected 3 fields"),
    ("non-numeric template id", TID, 4, "4.jpg x11 102", TID, 4, "template_id) is not an integer"),
    ("fractional media id", TID, 5, "5.jpg 12 103.5", TID, 5, "media_id) is not an integer"),
    ("short pair line", PAIR, 2, "10 12", PAIR, 2, "expected 3 fields"),
    ("non-numeric pair id", PAIR, 1, "10 eleven 1", PAIR, 1, "template_id2) is not an integer"),
    ("unknown template, first field", PAIR, 3, "13 12 0", PAIR, 3, "template 13 (field 1)"),
    ("unknown template, second field", PAIR, 2, "10 99 0", PAIR, 2, "template 99 (field 2)"),
    ("label 2", PAIR, 3, "11 12 2", PAIR, 3, "label must be 0 or 1"),
    ("label -1", PAIR, 1, "10 11 -1", PAIR, 1, "label must be 0 or 1"),
    ("short landmark line", PTS, 2, "2.jpg 1 2 3", PTS, 2, "expected 12 fields"),
    ("non-numeric landmark", PTS, 4, "4.jpg " + FIVE.replace("1.5", "abc", 1), PTS, 4, "(x1) is not a number"),
    ("infinite faceness", PTS, 3, "3.jpg " + FIVE.replace("0.9", "inf"), PTS, 3, "infinite"),
    ("image without landmarks", PTS, 5, None, TID, 5, "5.jpg has no line in"),
    ("landmarks listed twice", PTS, 5, "1.jpg " + FIVE, PTS, 5, "1.jpg is listed twice"),
]


@pytest.mark.parametrize("what,rel,lineno,new,bad_file,bad_line,words", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_files_name_file_and_line(tmp_path, what, rel, lineno, new, bad_file, bad_line, words):
    root = write_layout(tmp_path, replace=_edit("mini", rel, lineno, new))
    with pytest.raises(ProtocolFormatError) as err:
        IJBLayout(root).load()
    assert Path(err.value.path) == root / bad_file.format(p="mini")
    assert err.value.line == bad_line
    assert words in err.value.reason
    assert f"{err.value.path}:{bad_line}:" in str(err.value)


def test_line_numbers_count_blank_lines(tmp_path):
    root = write_layout(tmp_path, replace={PAIR: "10 11 1\n\n10 12 0\n\n11 12 5\n"})
    with pytest.raises(ProtocolFormatError) as err:
        IJBLayout(root).load()
    assert err.value.line == 5 and "got 5" in err.value.reason


def test_missing_image_names_the_face_line(tmp_path):
    root = write_layout(tmp_path, images=[n for n in IMAGES if n != "4.jpg"])
    with pytest.raises(ProtocolFormatError) as err:
        IJBLayout(root).load()
    assert Path(err.value.path).name == "mini_face_tid_mid.txt" and err.value.line == 4
    assert "4.jpg does not exist" in err.value.reason
    assert IJBLayout(root, check_images=False).load().faces.shape[0] == 6


def test_image_in_a_subfolder_is_found(tmp_path):
    tid = default_files("mini")[TID.format(p="mini")].replace("6.jpg", "sub/6.jpg")
    pts = default_files("mini")[PTS.format(p="mini")].replace("6.jpg", "sub/6.jpg")
    root = write_layout(tmp_path, replace={TID: tid, PTS: pts}, images=IMAGES[:5])
    (root / "loose_crop" / "sub").mkdir()
    (root / "loose_crop" / "sub" / "6.jpg").write_bytes(b"")
    assert IJBLayout(root).load().faces["path"].iloc[5] == "loose_crop/sub/6.jpg"


def test_empty_and_missing_files(tmp_path):
    root = write_layout(tmp_path, replace={PAIR: ""})
    with pytest.raises(ProtocolFormatError, match="no rows") as err:
        IJBLayout(root).load()
    assert err.value.line is None
    (root / "meta" / "mini_template_pair_label.txt").unlink()
    with pytest.raises(ProtocolFormatError, match="file not found"):
        IJBLayout(root).load()


def test_conflicting_subjects(tmp_path):
    root = write_layout(tmp_path, replace={"meta/{p}_tid_sid.txt": "10 7\n11 7\n12 9\n11 8\n"})
    with pytest.raises(ProtocolFormatError, match="two subjects") as err:
        IJBLayout(root).load()
    assert err.value.line == 4
    root2 = write_layout(tmp_path / "b", replace={"meta/{p}_tid_sid.txt": "10 7\n11 7\n"})
    with pytest.raises(ProtocolFormatError, match="template 12 has no subject") as err:
        IJBLayout(root2).load()
    assert err.value.line == 5 and Path(err.value.path).name == "mini_face_tid_mid.txt"


def test_layout_name_from_benchmark_json_and_option(tmp_path):
    root = write_layout(tmp_path, prefix="alpha")
    write_layout(tmp_path, prefix="beta")
    with pytest.raises(FiqaBenchError, match="several layouts"):
        IJBLayout(root).load()
    assert IJBLayout(root, name="beta").load().name == "beta"
    (root / "benchmark.json").write_text(json.dumps({"name": "alpha", "layout": "ijb", "detect_pad": 0.1}))
    bench = IJBLayout(root).load()
    assert bench.name == "alpha" and bench.detect_pad == 0.1
    (root / "benchmark.json").write_text(json.dumps({"name": "alpha", "layout": "ytf"}))
    with pytest.raises(FiqaBenchError, match="'ytf' layout"):
        IJBLayout(root).load()
    (root / "benchmark.json").write_text("{not json")
    with pytest.raises(ProtocolFormatError, match="not valid JSON"):
        IJBLayout(root).load()


def test_not_a_layout(tmp_path):
    with pytest.raises(ProtocolFormatError, match="not an IJB"):
        IJBLayout(tmp_path).load()


def test_official_classes(tmp_path):
    for cls, prefix in ((IJBB, "ijbb"), (IJBC, "ijbc")):
        with pytest.raises(FiqaBenchError, match=prefix) as err:
            cls().load()
        assert not isinstance(err.value, ProtocolFormatError)
        release = tmp_path / "IJB_release"
        write_layout(release / prefix.upper(), prefix=prefix)
        for root in (release, release / prefix.upper()):  # IJB_release/ or IJB_release/IJBB/
            bench = cls(root).load()
            assert bench.name == prefix and bench.metric == "tpr_at_fpr"
            assert bench.root == release / prefix.upper()
        with pytest.raises(FiqaBenchError, match="does not take option"):
            cls(release, chek_images=False)


def test_registered_names():
    assert registry.load_class("protocol", "ijbb") is IJBB
    assert registry.load_class("protocol", "ijbc") is IJBC
    assert registry.load_class("protocol", "ijb-layout") is IJBLayout
    assert IJBLayout.argument == "PATH"
    with pytest.raises(FiqaBenchError):
        registry.create("protocol", "ijb-layout")


@pytest.mark.slow
def test_realistic_size(tmp_path):
    """IJB-C's 469,375 faces with landmarks and 1M pairs read in seconds (timings: benchmarks/bench_protocol_ijb.py)."""
    rng = np.random.default_rng(0)
    n_faces, n_templates, n_pairs = 469_375, 23_124, 1_000_000
    tids = np.sort(rng.integers(1, n_templates + 1, n_faces))
    tids[:n_templates] = np.arange(1, n_templates + 1)
    blocks = rng.uniform(0, 112, (997, 11)).round(2)  # landmark rows reused cyclically: files write fast
    texts = [" ".join(f"{v:.2f}" for v in row) for row in blocks]
    meta = tmp_path / "meta"
    meta.mkdir()
    (meta / "big_face_tid_mid.txt").write_text("".join(f"{i}.jpg {t} {i // 3}\n" for i, t in enumerate(tids.tolist())))
    (meta / "big_name_5pts_score.txt").write_text("".join(f"{i}.jpg {texts[i % 997]}\n" for i in range(n_faces)))
    drawn = rng.integers(1, n_templates + 1, (n_pairs + n_pairs // 10, 2))
    drawn = drawn[drawn[:, 0] != drawn[:, 1]]  # the reader refuses self-pairs and repeated pairs
    _, first = np.unique(np.sort(drawn, axis=1), axis=0, return_index=True)
    drawn = drawn[np.sort(first)][:n_pairs]
    pairs = np.column_stack([drawn, rng.integers(0, 2, n_pairs)])
    (meta / "big_template_pair_label.txt").write_text("".join(f"{a} {b} {c}\n" for a, b, c in pairs.tolist()))
    bench = IJBLayout(tmp_path, check_images=False).load()
    assert bench.faces.shape[0] == n_faces and bench.pairs.shape[0] == n_pairs
    np.testing.assert_array_equal(bench.pairs["a"].to_numpy(), pairs[:, 0])
    np.testing.assert_array_equal(bench.pairs["label"].to_numpy(), pairs[:, 2])
    np.testing.assert_array_equal(bench.faces["group"].to_numpy(), tids)
    np.testing.assert_allclose(bench.faces["face_score"].to_numpy(), blocks[np.arange(n_faces) % 997, 10], rtol=1e-6)
    assert bench.faces["path"].iloc[-1] == f"loose_crop/{n_faces - 1}.jpg"


def test_reader_function_directly(tmp_path):
    bench = read_ijb_layout(write_layout(tmp_path), "mini", "custom")
    assert bench.name == "custom" and len(bench.faces) == 6
