"""Issue 11: a corpus of malformed and hostile benchmarks, images, landmarks, caches and adapters, run through the
public CLI (``fiqa-bench run``) on real faces.

Each case asserts the exact outcome: exit code 2 with one ``error:`` line naming the file (and line) or the
adapter, or a counted skip where the user asked for skipping. Nothing may be read outside the benchmark folder,
hang, or change the pair or image count without a word.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from fiqa_bench.cli.main import main

pytestmark = pytest.mark.shared

PREFIX = "mini"


# ------------------------------------------------------------------------------------------ helpers
@pytest.fixture()
def bench(small_bench, tmp_path, isolated_cache) -> Path:
    """A private copy of the small prepared IJB-layout benchmark (6 identities x 8 real photos)."""
    root = tmp_path / "bench"
    shutil.copytree(small_bench, root)
    return root


@pytest.fixture()
def ytf(small_ytf, tmp_path, isolated_cache) -> Path:
    root = tmp_path / "ytf"
    shutil.copytree(small_ytf, root)
    return root


def meta(root: Path, kind: str) -> Path:
    return root / "meta" / f"{PREFIX}_{kind}.txt"


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def write_lines(path: Path, lines: list[str], end: str = "\n") -> None:
    path.write_text(end.join(lines) + end)


def cli(root: Path, mbf: str, out: Path, *extra: str, method: str = "blur"):
    args = ["run", "--protocol", str(root), "--fr", mbf, "--method", method, "--no-progress", "--out", str(out), *extra]
    return CliRunner().invoke(main, args)


def fails(res, *words: str) -> str:
    """Exit code 2 and exactly one ``error:`` line on stderr holding every one of ``words``; no traceback."""
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert "Traceback" not in res.output
    return lines[0]


def succeeds(res, out: Path) -> dict:
    assert res.exit_code == 0, (res.exit_code, res.output, res.exception)
    files = [p for p in out.glob("*.json")]
    assert len(files) == 1, files
    return json.loads(files[0].read_text())


def first_image(root: Path) -> tuple[str, Path]:
    name = read_lines(meta(root, "face_tid_mid"))[0].split()[0]
    return name, root / "loose_crop" / name


# ------------------------------------------------------------------------------------------ paths
def test_dotdot_name_is_refused_and_the_outside_image_never_read(bench, mbf, tmp_path):
    outside = tmp_path / "outside.jpg"
    shutil.copy(first_image(bench)[1], outside)  # a real face: it would be scored silently
    faces = meta(bench, "face_tid_mid")
    lines = read_lines(faces)
    lines[4] = "../../outside.jpg " + " ".join(lines[4].split()[1:])
    write_lines(faces, lines)
    before = os.stat(outside).st_atime_ns
    fails(cli(bench, mbf, tmp_path / "out"), f"{faces}:5:", "'..'")
    assert os.stat(outside).st_atime_ns == before


def test_absolute_name_is_refused(bench, mbf, tmp_path):
    faces = meta(bench, "face_tid_mid")
    lines = read_lines(faces)
    lines[0] = "/etc/passwd " + " ".join(lines[0].split()[1:])
    write_lines(faces, lines)
    fails(cli(bench, mbf, tmp_path / "out"), f"{faces}:1:", "absolute")


def test_symlink_leaving_the_root_is_refused_unless_allowed(bench, mbf, tmp_path):
    name, image = first_image(bench)
    outside = tmp_path / "elsewhere.jpg"
    shutil.move(image, outside)
    image.symlink_to(outside)
    fails(cli(bench, mbf, tmp_path / "out"), str(image), "symbolic link", "--follow-symlinks")
    rec = succeeds(cli(bench, mbf, tmp_path / "out2", "--follow-symlinks"), tmp_path / "out2")
    assert rec["counts"]["images_scored"] == 48 and rec["counts"]["skipped"] == 0


def test_symlinked_image_folder_leaving_the_root_is_refused(bench, mbf, tmp_path):
    moved = tmp_path / "crops-elsewhere"
    shutil.move(bench / "loose_crop", moved)
    (bench / "loose_crop").symlink_to(moved)
    fails(cli(bench, mbf, tmp_path / "out"), "symbolic link", "outside the benchmark folder")


def test_symlink_inside_the_root_is_fine(bench, mbf, tmp_path):
    clean = succeeds(cli(bench, mbf, tmp_path / "out"), tmp_path / "out")
    name, image = first_image(bench)
    (bench / "store").mkdir()
    shutil.move(image, bench / "store" / name)
    image.symlink_to(Path("..") / "store" / name)
    rec = succeeds(cli(bench, mbf, tmp_path / "out2"), tmp_path / "out2")
    assert rec["metrics"] == clean["metrics"]


def _fifo_bench(bench: Path) -> Path:
    name, image = first_image(bench)
    image.unlink()
    os.mkfifo(image)
    return image


def _cli_subprocess(root: Path, mbf: str, out: Path, *extra: str, env_cache: Path, timeout: float = 120):
    env = {**os.environ, "FIQA_BENCH_CACHE": str(env_cache)}
    cmd = [
        sys.executable,
        "-m",
        "fiqa_bench.cli.main",
        "run",
        "--protocol",
        str(root),
        "--fr",
        mbf,
        "--method",
        "blur",
        "--no-progress",
        "--out",
        str(out),
        *extra,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def test_named_pipe_is_never_opened(bench, mbf, tmp_path, isolated_cache):
    """A FIFO as an image used to block forever: now refused at once (subprocess with a timeout: a hang fails)."""
    image = _fifo_bench(bench)
    proc = _cli_subprocess(bench, mbf, tmp_path / "out", env_cache=isolated_cache, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert f"error: {image}: is a named pipe (FIFO), not a regular file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_named_pipe_is_a_counted_skip_on_request(bench, mbf, tmp_path):
    image = _fifo_bench(bench)
    rec = succeeds(cli(bench, mbf, tmp_path / "out", "--skip-bad-images"), tmp_path / "out")
    assert rec["counts"]["skipped"] == 1
    assert rec["counts"]["skipped_files"] == [f"loose_crop/{image.name}"]
    assert rec["counts"]["skipped_reasons"] == {"bad image: is a named pipe (FIFO), not a regular file: not read": 1}


def test_link_to_a_device_is_refused_even_when_links_are_allowed(bench, mbf, tmp_path, isolated_cache):
    name, image = first_image(bench)
    image.unlink()
    image.symlink_to("/dev/zero")
    fails(cli(bench, mbf, tmp_path / "out"), str(image), "symbolic link")
    proc = _cli_subprocess(bench, mbf, tmp_path / "out", "--follow-symlinks", env_cache=isolated_cache)
    assert proc.returncode == 2 and f"error: {image}: is a character device, not a regular file" in proc.stderr


def test_directory_in_place_of_an_image(bench, mbf, tmp_path):
    name, image = first_image(bench)
    image.unlink()
    image.mkdir()
    fails(cli(bench, mbf, tmp_path / "out"), str(image), "is a directory")


def test_image_over_the_size_cap(bench, mbf, tmp_path):
    name, image = first_image(bench)
    image.write_bytes(image.read_bytes() + b"\0" * 100_000)  # the largest file (trailing bytes decode the same)
    size = image.stat().st_size
    fails(
        cli(bench, mbf, tmp_path / "out", "--max-image-bytes", str(size - 1)),
        str(image),
        f"file is {size} bytes, over the {size - 1}-byte limit",
    )
    succeeds(cli(bench, mbf, tmp_path / "out2", "--max-image-bytes", str(size)), tmp_path / "out2")


# ------------------------------------------------------------------------------------------ images
def test_truncated_jpeg_with_an_end_marker(bench, mbf, tmp_path):
    """The half of a JPEG with its end marker appended decodes in OpenCV as a grey-filled face: now refused."""
    name, image = first_image(bench)
    data = image.read_bytes()
    image.write_bytes(data[: len(data) // 2] + b"\xff\xd9")
    assert cv2.imdecode(np.frombuffer(image.read_bytes(), np.uint8), cv2.IMREAD_COLOR) is not None  # the trap
    fails(cli(bench, mbf, tmp_path / "out"), str(image), "its data ends before the last pixel")
    rec = succeeds(cli(bench, mbf, tmp_path / "out2", "--skip-bad-images"), tmp_path / "out2")
    assert rec["counts"]["skipped_files"] == [f"loose_crop/{name}"]


def test_zero_byte_image(bench, mbf, tmp_path):
    name, image = first_image(bench)
    image.write_bytes(b"")
    fails(cli(bench, mbf, tmp_path / "out"), str(image), "empty")


def test_garbage_image(bench, mbf, tmp_path):
    name, image = first_image(bench)
    image.write_bytes(np.random.default_rng(3).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    fails(cli(bench, mbf, tmp_path / "out"), str(image), "cannot decode")


def test_image_without_end_marker(bench, mbf, tmp_path):
    name, image = first_image(bench)
    image.write_bytes(image.read_bytes()[:-2])
    fails(cli(bench, mbf, tmp_path / "out"), str(image), "no end-of-image marker")


# ------------------------------------------------------------------------------------------ IJB meta
def test_duplicated_pair_row(bench, mbf, tmp_path):
    pairs = meta(bench, "template_pair_label")
    lines = read_lines(pairs)
    write_lines(pairs, [*lines, lines[0]])
    a, b, _ = lines[0].split()
    fails(
        cli(bench, mbf, tmp_path / "out"),
        f"{pairs}:{len(lines) + 1}:",
        f"templates {a} and {b} are already paired on line 1",
    )


def test_duplicated_pair_row_in_reverse_order(bench, mbf, tmp_path):
    pairs = meta(bench, "template_pair_label")
    lines = read_lines(pairs)
    a, b, label = lines[0].split()
    write_lines(pairs, [*lines, f"{b} {a} {label}"])
    fails(cli(bench, mbf, tmp_path / "out"), f"{pairs}:{len(lines) + 1}:", "already paired on line 1")


def test_self_pair(bench, mbf, tmp_path):
    pairs = meta(bench, "template_pair_label")
    lines = read_lines(pairs)
    write_lines(pairs, [lines[0], "3 3 1", *lines[1:]])
    fails(cli(bench, mbf, tmp_path / "out"), f"{pairs}:2:", "template 3 is paired with itself")


def test_duplicated_face_row(bench, mbf, tmp_path):
    faces = meta(bench, "face_tid_mid")
    lines = read_lines(faces)
    write_lines(faces, [*lines[:3], lines[1], *lines[3:]])
    fails(cli(bench, mbf, tmp_path / "out"), f"{faces}:4:", "is listed twice (first on line 2)")


def test_template_id_beyond_int64_in_faces(bench, mbf, tmp_path):
    faces = meta(bench, "face_tid_mid")
    lines = read_lines(faces)
    name, _, media = lines[6].split()
    lines[6] = f"{name} 99999999999999999999 {media}"
    write_lines(faces, lines)
    fails(cli(bench, mbf, tmp_path / "out"), f"{faces}:7:", "outside the 64-bit integer range")


def test_template_id_beyond_int64_in_pairs(bench, mbf, tmp_path):
    pairs = meta(bench, "template_pair_label")
    lines = read_lines(pairs)
    lines[2] = "1 -9223372036854775809 0"
    write_lines(pairs, lines)
    fails(cli(bench, mbf, tmp_path / "out"), f"{pairs}:3:", "outside the 64-bit integer range")


def test_pair_of_a_template_without_images(bench, mbf, tmp_path):
    pairs = meta(bench, "template_pair_label")
    lines = read_lines(pairs)
    lines[1] = "1 999 0"
    write_lines(pairs, lines)
    fails(cli(bench, mbf, tmp_path / "out"), f"{pairs}:2:", "template 999 (field 2) is not in")


def test_pair_label_not_binary(bench, mbf, tmp_path):
    pairs = meta(bench, "template_pair_label")
    lines = read_lines(pairs)
    lines[0] = " ".join(lines[0].split()[:2]) + " 2"
    write_lines(pairs, lines)
    fails(cli(bench, mbf, tmp_path / "out"), f"{pairs}:1:", "label must be 0 or 1, got 2")


def test_short_faces_line(bench, mbf, tmp_path):
    faces = meta(bench, "face_tid_mid")
    lines = read_lines(faces)
    lines[9] = lines[9].split()[0]
    write_lines(faces, lines)
    fails(cli(bench, mbf, tmp_path / "out"), f"{faces}:10:", "expected 3 fields")


def test_faces_file_not_utf8(bench, mbf, tmp_path):
    faces = meta(bench, "face_tid_mid")
    data = faces.read_bytes().split(b"\n")
    data[2] = b"\xff\xfe" + data[2]
    faces.write_bytes(b"\n".join(data))
    fails(cli(bench, mbf, tmp_path / "out"), f"{faces}:3:", "not UTF-8")


def test_landmarks_file_lacks_an_image(bench, mbf, tmp_path):
    lm = meta(bench, "name_5pts_score")
    lines = read_lines(lm)
    missing = lines[5].split()[0]
    write_lines(lm, lines[:5] + lines[6:])
    fails(cli(bench, mbf, tmp_path / "out"), f"{meta(bench, 'face_tid_mid')}:", f"image {missing} has no line in")


def test_landmarks_file_lists_an_image_twice(bench, mbf, tmp_path):
    lm = meta(bench, "name_5pts_score")
    lines = read_lines(lm)
    write_lines(lm, [*lines, lines[0]])
    fails(cli(bench, mbf, tmp_path / "out"), f"{lm}:{len(lines) + 1}:", "is listed twice")


def test_infinite_landmark(bench, mbf, tmp_path):
    lm = meta(bench, "name_5pts_score")
    lines = read_lines(lm)
    fields = lines[2].split()
    fields[3] = "inf"
    lines[2] = " ".join(fields)
    write_lines(lm, lines)
    fails(cli(bench, mbf, tmp_path / "out"), f"{lm}:3:", "infinite")


def test_template_with_two_subjects(bench, mbf, tmp_path):
    sid = meta(bench, "tid_sid")
    lines = read_lines(sid)
    t, s = lines[0].split()
    write_lines(sid, [*lines, f"{t} {int(s) + 100}"])
    fails(cli(bench, mbf, tmp_path / "out"), f"{sid}:{len(lines) + 1}:", f"template {t} has two subjects")


# ------------------------------------------------------------------------------------------ YTF splits
def _splits(root: Path) -> tuple[Path, list[list[str]]]:
    path = root / "splits.txt"
    return path, [[f.strip() for f in line.split(",")] for line in path.read_text().splitlines() if line.strip()]


def _write_splits(path: Path, rows: list[list[str]]) -> None:
    path.write_bytes("".join(", ".join(r) + "\r\n" for r in rows).encode())


def test_ytf_split_eleven(ytf, mbf, tmp_path):
    path, rows = _splits(ytf)
    rows[4][0] = "11"
    _write_splits(path, rows)
    fails(cli(ytf, mbf, tmp_path / "out"), f"{path}:5:", "split must be 1..10, got 11")


def test_ytf_split_zero(ytf, mbf, tmp_path):
    path, rows = _splits(ytf)
    rows[0][0] = "0"
    _write_splits(path, rows)
    fails(cli(ytf, mbf, tmp_path / "out"), f"{path}:1:", "split must be >= 1, got 0")


def test_ytf_repeated_video_pair(ytf, mbf, tmp_path):
    path, rows = _splits(ytf)
    extra = [rows[0][0], "99", rows[0][3], rows[0][2], rows[0][4]]  # same two videos, other order and number
    _write_splits(path, [*rows, extra])
    fails(cli(ytf, mbf, tmp_path / "out"), f"{path}:{len(rows) + 1}:", "are already paired (line 1)")


def test_ytf_video_paired_with_itself(ytf, mbf, tmp_path):
    path, rows = _splits(ytf)
    rows[2][3] = rows[2][2]
    _write_splits(path, rows)
    fails(cli(ytf, mbf, tmp_path / "out"), f"{path}:3:", f"video {rows[2][2]} is paired with itself")


def test_ytf_split_and_pair_number_given_twice(ytf, mbf, tmp_path):
    path, rows = _splits(ytf)
    rows[1][1] = rows[0][1]
    _write_splits(path, rows)
    fails(cli(ytf, mbf, tmp_path / "out"), f"{path}:2:", "already given on line 1")


def test_ytf_video_name_climbing_out(ytf, mbf, tmp_path):
    path, rows = _splits(ytf)
    rows[3][2] = "../etc"
    _write_splits(path, rows)
    fails(cli(ytf, mbf, tmp_path / "out"), f"{path}:4:", "'.' or '..'")


def test_ytf_label_not_binary(ytf, mbf, tmp_path):
    path, rows = _splits(ytf)
    rows[6][4] = "3"
    _write_splits(path, rows)
    fails(cli(ytf, mbf, tmp_path / "out"), f"{path}:7:", "same must be 0 or 1, got 3")


def test_ytf_video_without_frames(ytf, mbf, tmp_path):
    path, rows = _splits(ytf)
    video = rows[0][2]
    for f in (ytf / "frame_images_DB" / video).iterdir():
        f.unlink()
    fails(cli(ytf, mbf, tmp_path / "out"), f"{path}:1:", "has no frames")


# ------------------------------------------------------------------------------------------ landmarks
def _set_landmarks(root: Path, row: int, values: list[float]) -> tuple[str, Path]:
    lm = meta(root, "name_5pts_score")
    lines = read_lines(lm)
    fields = lines[row].split()
    fields[1:11] = [repr(float(v)) for v in values]
    lines[row] = " ".join(fields)
    write_lines(lm, lines)
    return fields[0], root / "loose_crop" / fields[0]


def test_partly_nan_landmarks(bench, mbf, tmp_path):
    name, image = _set_landmarks(bench, 0, [float("nan")] + [60.0] * 9)
    fails(cli(bench, mbf, tmp_path / "out"), str(image), "are not all finite", "--on-no-face")


def test_huge_landmarks(bench, mbf, tmp_path):
    name, image = _set_landmarks(bench, 1, [1e9, 100, 140, 100, 120, 130, 100, 150, 140, 150])
    fails(cli(bench, mbf, tmp_path / "out"), str(image), "landmark 1 at (1e+09, 100) is outside the")


def test_out_of_image_landmarks_skipped_on_request(bench, mbf, tmp_path):
    name, image = _set_landmarks(bench, 1, [-500, 100, 140, 100, 120, 130, 100, 150, 140, 150])
    rec = succeeds(cli(bench, mbf, tmp_path / "out", "--on-no-face", "skip"), tmp_path / "out")
    assert rec["counts"]["skipped_reasons"] == {"bad landmarks: landmarks outside the image": 1}
    assert rec["counts"]["skipped_files"] == [f"loose_crop/{name}"]
    assert rec["counts"]["images_scored"] == 47


def test_collapsed_landmarks_centred_on_request(bench, mbf, tmp_path):
    name, image = _set_landmarks(bench, 2, [80.0] * 10)
    fails(cli(bench, mbf, tmp_path / "out"), str(image), "the eyes are 0 px apart")
    rec = succeeds(cli(bench, mbf, tmp_path / "out2", "--on-no-face", "center"), tmp_path / "out2")
    assert rec["counts"]["fallback_landmarks"] == 1 and rec["counts"]["skipped"] == 0
    assert rec["counts"]["images_scored"] == 48


def test_tiny_image_with_its_old_landmarks(bench, mbf, tmp_path):
    name, image = first_image(bench)
    small = cv2.resize(cv2.imread(str(image)), (20, 20), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(image), small)
    fails(cli(bench, mbf, tmp_path / "out"), str(image), "outside the 20x20 image")


# ------------------------------------------------------------------------------------------ caches
def _shards(cache: Path, kind: str) -> list[Path]:
    return sorted((cache / kind).rglob("shard-*.npz"))


def _rewrite_shard(shard: Path, change) -> None:
    with np.load(shard, allow_pickle=False) as z:
        parts = {k: z[k] for k in z.files}
    change(parts)
    with open(shard, "wb") as fh:
        np.savez(fh, **parts)


def test_cache_shard_with_wrong_values_is_recomputed(bench, mbf, tmp_path, isolated_cache):
    clean = succeeds(cli(bench, mbf, tmp_path / "out"), tmp_path / "out")
    (shard,) = _shards(isolated_cache, "quality")  # one consolidated shard per stage and run

    def scramble(parts):  # plausible, finite, wrong scores; checksum left as it was
        parts["values"] = parts["values"][::-1].copy()

    _rewrite_shard(shard, scramble)
    rec = succeeds(cli(bench, mbf, tmp_path / "out2"), tmp_path / "out2")
    assert rec["counts"]["images_scored_new"] == 48  # not one tampered value served
    assert rec["metrics"] == clean["metrics"]


def test_cache_shard_with_nan_and_a_valid_checksum_is_recomputed(bench, mbf, tmp_path, isolated_cache):
    from fiqa_bench.data.cache import shard_checksum

    clean = succeeds(cli(bench, mbf, tmp_path / "out"), tmp_path / "out")
    (shard,) = _shards(isolated_cache, "embeddings")

    def poison(parts):
        m = json.loads(str(parts["meta"]))
        parts["values"][0, :] = np.nan
        m["sha256"] = shard_checksum(m["producer"], m["width"], parts["keys"], parts["values"])
        parts["meta"] = np.array(json.dumps(m))

    _rewrite_shard(shard, poison)
    rec = succeeds(cli(bench, mbf, tmp_path / "out2"), tmp_path / "out2")
    assert rec["counts"]["images_embedded_new"] == 12
    assert rec["metrics"] == clean["metrics"]
    assert not shard.exists() and shard.with_name("rejected-" + shard.name).exists()  # set aside, not trusted again


def test_cache_shard_that_is_not_a_zip_is_recomputed(bench, mbf, tmp_path, isolated_cache):
    clean = succeeds(cli(bench, mbf, tmp_path / "out"), tmp_path / "out")
    (shard,) = _shards(isolated_cache, "quality")
    shard.write_bytes(b"PK\x03\x04 certainly not a zip")
    rec = succeeds(cli(bench, mbf, tmp_path / "out2"), tmp_path / "out2")
    assert rec["counts"]["images_scored_new"] == 48 and rec["metrics"] == clean["metrics"]


def test_unwritable_cache_folder(bench, mbf, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("FIQA_BENCH_CACHE", str(blocker / "cache"))
    line = fails(cli(bench, mbf, tmp_path / "out"), str(blocker))
    assert "not a folder" in line or "Not a directory" in line


def test_unwritable_results_folder(bench, mbf, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    line = fails(cli(bench, mbf, blocker / "out"), str(blocker))
    assert "not a folder" in line or "Not a directory" in line


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_results_folder(bench, mbf, tmp_path):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    try:
        fails(cli(bench, mbf, out), str(out), "Permission denied")
    finally:
        out.chmod(0o700)


# ------------------------------------------------------------------------------------------ permissions
def _modes(folder: Path) -> tuple[set[int], set[int]]:
    """(permission bits of every file, of every folder) under ``folder``."""
    entries = list(folder.rglob("*"))
    assert any(p.is_file() for p in entries)
    return (
        {p.stat().st_mode & 0o777 for p in entries if p.is_file()},
        {p.stat().st_mode & 0o777 for p in entries if p.is_dir()},
    )


def test_results_and_prepared_benchmarks_follow_the_umask(bench, mbf, tmp_path, copy_identities):
    from fiqa_bench.data.prepare import prepare_benchmark

    old = os.umask(0o022)
    try:
        rec_out = tmp_path / "out"
        succeeds(cli(bench, mbf, rec_out), rec_out)
        assert _modes(rec_out) == ({0o644}, {0o755}) or _modes(rec_out) == ({0o644}, set())
        src = copy_identities(tmp_path / "src", 4, 4)
        prepared = tmp_path / "prepared"
        prepare_benchmark(src, prepared, name="perm", seed=0, progress=False)
        assert _modes(prepared) == ({0o644}, {0o755})
        os.umask(0o027)
        out2 = tmp_path / "out2"
        succeeds(cli(bench, mbf, out2, "--selection", "all"), out2)
        assert _modes(out2)[0] == {0o640} and _modes(out2)[1] <= {0o750}
    finally:
        os.umask(old)


# ------------------------------------------------------------------------------------------ adapters
HOSTILE_METHOD = """
import os, sys
import numpy as np
from fiqa_bench.api import QualityMethod
from fiqa_bench.api.cards import InputSpec, MethodCard

class Hostile(QualityMethod):
    card = MethodCard(name="hostile", version="1", summary="mean intensity; misbehaves on request (tests)",
                      licence="MIT", input=InputSpec("aligned", 64, "RGB"))

    def score(self, images):
        mode = os.environ.get("HOSTILE_MODE", "")
        out = np.asarray(images, dtype=np.float32).reshape(len(images), -1).mean(axis=1)
        if mode == "exit":
            sys.exit(3)
        if mode == "interrupt":
            raise KeyboardInterrupt
        if mode == "strings":
            return out.astype(str)
        if mode == "objects":
            return np.array([float(v) for v in out[:-1]] + ["0.5"], dtype=object)
        if mode == "list-of-strings":
            return [str(v) for v in out]
        if mode == "base":
            raise GeneratorExit("odd")
        return out
"""


@pytest.fixture()
def hostile_plugin(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    (site / "hostile_fiqa.py").write_text(textwrap.dedent(HOSTILE_METHOD))
    info = site / "hostile_fiqa-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hostile-fiqa\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[fiqa_bench.methods]\nhostile = hostile_fiqa:Hostile\n")
    monkeypatch.syspath_prepend(str(site))
    yield
    sys.modules.pop("hostile_fiqa", None)


@pytest.mark.parametrize(
    "mode,words",
    [
        ("exit", ["quality method 'hostile' called sys.exit(3)"]),
        ("strings", ["quality method 'hostile' returned scores of dtype <U", "expected a numeric"]),
        ("objects", ["quality method 'hostile' returned scores of dtype object"]),
        ("list-of-strings", ["quality method 'hostile' returned scores of dtype <U"]),
        ("base", ["quality method 'hostile' raised GeneratorExit: odd"]),
    ],
)
def test_misbehaving_plugin_is_named(bench, mbf, tmp_path, hostile_plugin, monkeypatch, mode, words):
    monkeypatch.setenv("HOSTILE_MODE", mode)
    fails(cli(bench, mbf, tmp_path / "out", method="hostile"), *words)


def test_interrupt_inside_a_plugin_still_interrupts(bench, mbf, tmp_path, hostile_plugin, monkeypatch):
    monkeypatch.setenv("HOSTILE_MODE", "interrupt")
    res = cli(bench, mbf, tmp_path / "out", method="hostile")
    assert res.exit_code == 130, (res.exit_code, res.output)
    assert "Traceback" not in res.output
    assert res.stderr.startswith("interrupted while quality method 'hostile' was running (first image of the batch: ")


# ------------------------------------------------------------------------------------------ more paths
def test_benchmark_name_climbing_out_of_meta(bench, mbf, tmp_path):
    """benchmark.json's name is the prefix of the meta files: '../..' in it would read meta files elsewhere."""
    info = json.loads((bench / "benchmark.json").read_text())
    info["name"] = "../../elsewhere/mini"
    (bench / "benchmark.json").write_text(json.dumps(info))
    fails(cli(bench, mbf, tmp_path / "out"), str(bench / "benchmark.json"), "plain file prefix")


def test_faces_file_replaced_by_a_fifo(bench, mbf, tmp_path, isolated_cache):
    faces = meta(bench, "face_tid_mid")
    faces.unlink()
    os.mkfifo(faces)
    proc = _cli_subprocess(bench, mbf, tmp_path / "out", env_cache=isolated_cache, timeout=120)
    assert proc.returncode == 2 and f"error: {faces}: file not found" in proc.stderr, proc.stderr


def test_ytf_video_folder_linked_outside_the_root(ytf, mbf, tmp_path):
    path, rows = _splits(ytf)
    video = ytf / "frame_images_DB" / rows[0][2]
    moved = tmp_path / "video-elsewhere"
    shutil.move(video, moved)
    video.symlink_to(moved)
    fails(cli(ytf, mbf, tmp_path / "out"), str(video), "symbolic link", "--follow-symlinks")
