"""Path containment, regular-file reads, partial JPEG decodes, landmark sanity, umask-respecting writes,
adapter output types (issue 11): the pieces, tested directly."""

from __future__ import annotations

import os
import stat
import threading

import cv2
import numpy as np
import pytest

from fiqa_bench.api import check_embeddings, check_scores
from fiqa_bench.data import atomic, safepath
from fiqa_bench.errors import AdapterError, AdapterInterrupt, FileAccessError, ImageError, UnsafePathError
from fiqa_bench.faces.io import _jpeg_partial, load_image
from fiqa_bench.pipeline.stages import MIN_EYE_DISTANCE, call_adapter, landmark_problem


# ------------------------------------------------------------------------------------------ names
@pytest.mark.parametrize(
    "name,words",
    [
        ("../x.jpg", "'..'"),
        ("a/../../x.jpg", "'..'"),
        ("a\\..\\x.jpg", "'..'"),
        ("a/..", "'..'"),
        ("/etc/passwd", "absolute"),
        ("\\\\server\\share\\x.jpg", "absolute"),
        ("C:x.jpg", "absolute"),
        ("", "empty"),
        ("a\x00b.jpg", "NUL"),
    ],
)
def test_unusable_names(name, words):
    assert words in safepath.name_problem(name)


@pytest.mark.parametrize("name", ["a.jpg", "sub/a.jpg", "..a.jpg", "a..jpg", "x/..y/z.jpg", "./a.jpg"])
def test_usable_names(name):
    assert safepath.name_problem(name) is None


def test_resolve_refuses_links_leaving_the_root(tmp_path):
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (tmp_path / "secret.jpg").write_bytes(b"x")
    (root / "d" / "in.jpg").write_bytes(b"y")
    (root / "out.jpg").symlink_to(tmp_path / "secret.jpg")
    (root / "ok.jpg").symlink_to("d/in.jpg")
    (root / "dl").symlink_to(tmp_path)
    assert safepath.resolve(root, "ok.jpg") == root / "ok.jpg"
    for rel in ("out.jpg", "dl/secret.jpg"):
        with pytest.raises(UnsafePathError, match="--follow-symlinks"):
            safepath.resolve(root, rel)
        assert safepath.resolve(root, rel, follow_symlinks=True) == root / rel
    with pytest.raises(UnsafePathError, match="'..'"):
        safepath.resolve(root, "../secret.jpg", follow_symlinks=True)  # '..' is never allowed


def test_root_behind_a_link_is_fine(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "a.jpg").write_bytes(b"a")
    (tmp_path / "alias").symlink_to(real)
    assert safepath.resolve(tmp_path / "alias", "a.jpg") == tmp_path / "alias" / "a.jpg"


# ------------------------------------------------------------------------------------------ reading
def test_fifo_is_never_opened(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    done = []
    t = threading.Thread(target=lambda: done.append(pytest.raises(ImageError, safepath.read_regular, fifo)))
    t.start()
    t.join(10)
    assert done and "named pipe" in str(done[0].value), "read_regular blocked on a FIFO"


def test_device_and_directory_are_refused(tmp_path):
    with pytest.raises(ImageError, match="character device"):
        safepath.read_regular("/dev/zero")
    with pytest.raises(ImageError, match="directory"):
        safepath.read_regular(tmp_path)


def test_size_cap(tmp_path):
    f = tmp_path / "big.jpg"
    f.write_bytes(b"\x00" * 1001)
    assert len(safepath.read_regular(f, 1001)) == 1001
    with pytest.raises(ImageError, match="1001 bytes, over the 1000-byte limit"):
        safepath.read_regular(f, 1000)


# ------------------------------------------------------------------------------------------ partial JPEGs
def _decode(blob: bytes):
    return cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_COLOR)


@pytest.mark.shared
def test_partial_jpeg_check_on_real_photos(shared):
    """No complete real photo is flagged; every one cut anywhere in its second half, end marker appended, is
    (OpenCV decodes the baseline ones without an error). Baseline and progressive encodings."""
    files = sorted((shared / "data/celeba-wild/images").rglob("*.jpg"))[::40]
    files += sorted((shared / "data/lfw/lfw").rglob("*.jpg"))[::200]
    rng = np.random.default_rng(0)
    for f in files:
        data = f.read_bytes()
        progressive = cv2.imencode(".jpg", cv2.imread(str(f)), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
        for blob in (data, progressive):
            assert not _jpeg_partial(blob) and not _jpeg_partial(blob, _decode(blob)), f
            cut = int(rng.integers(len(blob) // 2, len(blob) - 64))
            broken = blob[:cut] + b"\xff\xd9"
            image = _decode(broken)
            if blob is data:  # the trap: OpenCV returns a grey-filled image without a word
                assert image is not None
            assert _jpeg_partial(broken), (f, cut)
            if image is not None and cut < len(blob) * 15 // 16:  # the quick path (decoded pixels first) agrees
                assert _jpeg_partial(broken, image), (f, cut)  # once whole blocks are lost (see its docstring)


@pytest.mark.shared
def test_load_image_refuses_the_partial_decode(shared, tmp_path):
    data = (shared / "data/lfw/lfw/Aaron_Eckhart/Aaron_Eckhart_0001.jpg").read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) * 2 // 3] + b"\xff\xd9")
    with pytest.raises(ImageError, match="truncated or corrupt JPEG"):
        load_image(path)


# ------------------------------------------------------------------------------------------ landmarks
GOOD = np.array([[38.3, 51.7], [73.5, 51.5], [56.0, 71.7], [41.5, 92.4], [70.7, 92.2]])


def test_landmark_sanity():
    assert landmark_problem(GOOD, (112, 112, 3)) is None
    assert landmark_problem(GOOD, (112, 112, 3), margin=0.0) is None
    nan = GOOD.copy()
    nan[2, 0] = np.nan
    assert landmark_problem(nan, (112, 112, 3))[0] == "landmarks not finite"
    inf = GOOD.copy()
    inf[4, 1] = np.inf
    assert landmark_problem(inf, (112, 112, 3))[0] == "landmarks not finite"
    # the margin: 25% of the size beyond each border is allowed, not more
    edge = GOOD.copy()
    edge[3] = [-0.25 * 112, 112 * 1.25]
    assert landmark_problem(edge, (112, 112, 3)) is None
    edge[3] = [-0.25 * 112 - 0.01, 50]
    cat, detail = landmark_problem(edge, (112, 112, 3))
    assert cat == "landmarks outside the image" and "landmark 4" in detail and "112x112" in detail
    assert landmark_problem(GOOD, (40, 40, 3))[0] == "landmarks outside the image"  # a shrunk image
    collapsed = GOOD.copy()
    collapsed[1] = collapsed[0] + [MIN_EYE_DISTANCE * 0.99, 0]
    assert landmark_problem(collapsed, (112, 112, 3))[0] == "landmarks collapsed"
    collapsed[1] = collapsed[0] + [MIN_EYE_DISTANCE, 0]
    assert landmark_problem(collapsed, (112, 112, 3)) is None


# ------------------------------------------------------------------------------------------ writing
@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic.write_text(tmp_path / "sub" / "f.txt", "hello")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "sub" / "f.txt").stat().st_mode) == mode
    assert (tmp_path / "sub" / "f.txt").read_text() == "hello"
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["f.txt"]


def test_os_errors_name_the_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(FileAccessError, match=rf"{blocker}.*(not a folder|Not a directory)") as err:
        atomic.write_text(blocker / "x" / "f.txt", "hello")
    assert isinstance(err.value, OSError)  # callers catching OSError still do
    with pytest.raises(FileAccessError, match="results folder \\(--out\\)"):
        atomic.check_writable(blocker / "out", "results folder (--out)")
    assert atomic.check_writable(tmp_path / "new" / "out", "results folder") == tmp_path / "new" / "out"
    assert list((tmp_path / "new" / "out").iterdir()) == []  # the probe leaves nothing behind


def test_write_error_inside_the_block_is_named(tmp_path):
    def fail(tmp):
        raise OSError(28, "No space left on device")

    with pytest.raises(FileAccessError, match=rf"{tmp_path / 'f.bin'}: cannot write: No space left on device"):
        with atomic.atomic_path(tmp_path / "f.bin") as tmp:
            fail(tmp)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------ adapters
@pytest.mark.parametrize(
    "values",
    [
        np.array(["0.5", "0.7"]),
        ["0.5", "0.7"],
        np.array([0.5, "x"], dtype=object),
        np.array([True, False]),
        np.array([1 + 2j, 3j]),
        [[0.5], [0.5, 1]],
    ],
)
def test_non_numeric_scores_are_refused(values):
    with pytest.raises(AdapterError, match="quality method 'm'"):
        check_scores(values, 2, "quality method 'm'")


def test_numeric_scores_of_any_numeric_type_pass():
    for values in (np.array([1, 2], np.int64), np.array([0.5, 0.25]), [0.5, 1.5], np.array([3, 4], np.uint8)):
        out = check_scores(values, 2, "m")
        assert out.dtype == np.float32 and out.tolist() == [float(v) for v in np.asarray(values)]
    with pytest.raises(AdapterError, match="backbone 'b' returned embeddings of dtype <U"):
        check_embeddings(np.array([["1", "2"]]), 1, 2, "backbone 'b'")


def test_call_adapter_names_the_adapter_for_every_exception():
    def exits(_):
        raise SystemExit(4)

    def interrupts(_):
        raise KeyboardInterrupt

    with pytest.raises(AdapterError, match=r"quality method 'q' called sys.exit\(4\)"):
        call_adapter("quality method 'q'", exits, None)
    with pytest.raises(KeyboardInterrupt) as err:  # still an interruption (exit 130), but named
        call_adapter("quality method 'q'", interrupts, None, " (first image of the batch: a.jpg)")
    assert isinstance(err.value, AdapterInterrupt)
    assert str(err.value) == "while quality method 'q' was running (first image of the batch: a.jpg)"


def test_conformance_kit_refuses_strings_and_exits():
    from fiqa_bench.api.cards import InputSpec, MethodCard
    from fiqa_bench.testing import method_checks

    class Strings:
        card = MethodCard(
            name="strings", version="1", summary="returns text", licence="MIT", input=InputSpec("aligned", 64, "RGB")
        )

        def score(self, images):
            return np.array(["0.5"] * len(images))

    class Exits(Strings):
        def score(self, images):
            raise SystemExit(1)

    checks = dict(method_checks(Strings()))
    with pytest.raises(AssertionError, match="non-numeric dtype <U3"):
        checks["output"]()
    checks = dict(method_checks(Exits()))
    with pytest.raises(AssertionError, match="raised SystemExit"):
        checks["output"]()


def _png_header_only(w: int, h: int) -> bytes:
    """A PNG of a few dozen bytes whose header claims w x h pixels (a decompression bomb's first line)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("w,h", [(100_000, 100_000), (12_000, 12_000)])
def test_decompression_bomb_is_not_decoded(tmp_path, w, h):
    from fiqa_bench.faces.io import MAX_PIXELS

    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(w, h))
    with pytest.raises(ImageError, match=f"image claims {w * h} pixels, over the limit of {MAX_PIXELS}"):
        load_image(path)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads files without read permission")
def test_unreadable_meta_file_is_one_line(tmp_path):
    from fiqa_bench.errors import ProtocolFormatError
    from protocols._tables import read_table

    path = tmp_path / "t.txt"
    path.write_text("a 1\n")
    path.chmod(0o000)
    try:
        with pytest.raises(ProtocolFormatError, match="cannot read: Permission denied"):
            read_table(path, [("a", "str"), ("b", "int")])
    finally:
        path.chmod(0o600)
