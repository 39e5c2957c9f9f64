"""The image path restructured for throughput (issue 12): each shortcut gives exactly what the plain code gave.

Stacked similarity transforms equal the per-face ones bit for bit; batched warps and the one-call colour swap
give the same bytes; the JPEG header walk gives Pillow's sizes; the mid-grey rule of the partial-JPEG quick path
still catches cut files; chunked, pipelined loading keeps values, ordering, skips and the first error in row
order; the stage's scores equal an independent per-image computation on real faces.
"""

from __future__ import annotations

import io
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from fiqa_bench.faces.align import (
    ARCFACE_TEMPLATE,
    align_face,
    align_faces,
    arcface_template,
    similarity_transform,
    similarity_transforms,
)


def _landmark_sets(rng: np.random.Generator, n: int) -> np.ndarray:
    """Faces at random scales, angles and places (as detectors give them), plus wild point sets."""
    base = ARCFACE_TEMPLATE.astype(np.float64) - 56.0
    out = []
    for _ in range(n):
        a, s = rng.uniform(-np.pi, np.pi), rng.uniform(0.2, 6.0)
        r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) * s
        out.append(base @ r.T + rng.uniform(-50, 600, 2) + rng.normal(0, 2, (5, 2)))
    out += list(rng.uniform(-100, 1000, (n, 5, 2)))
    mirrored = np.array(out[:n]) * [-1, 1]  # reflections: the SVD's flip branch
    return np.concatenate([np.array(out), mirrored]).astype(np.float32)


@pytest.mark.parametrize("size", [64, 112, 128])
def test_stacked_similarity_transforms_equal_the_single_one_bit_for_bit(size):
    sets = _landmark_sets(np.random.default_rng(size), 2000)
    dst = arcface_template(size)
    stacked = similarity_transforms(sets, dst)
    single = np.stack([similarity_transform(s, dst) for s in sets])
    assert stacked.shape == (len(sets), 2, 3)
    assert np.array_equal(stacked.view(np.uint64), single.view(np.uint64))


def test_stacked_similarity_transforms_refuse_what_the_single_one_refuses():
    sets = _landmark_sets(np.random.default_rng(0), 3)
    bad = sets.copy()
    bad[2, 1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        similarity_transforms(bad, ARCFACE_TEMPLATE)
    bad = sets.copy()
    bad[1] = 7.0  # all at one point
    with pytest.raises(ValueError, match="same point"):
        similarity_transforms(bad, ARCFACE_TEMPLATE)
    assert similarity_transforms(np.zeros((0, 5, 2)), ARCFACE_TEMPLATE).shape == (0, 2, 3)


@pytest.mark.shared
def test_batched_alignment_and_colour_swap_give_the_same_bytes(shared):
    import cv2

    from fiqa_bench.api.cards import InputSpec
    from fiqa_bench.faces.pipeline import Face, fallback_landmarks, to_input

    files = sorted((shared / "data/celeba-wild/images").rglob("*.jpg"))[::97][:24]
    images = [cv2.imread(str(f)) for f in files]
    rng = np.random.default_rng(1)
    lms = [fallback_landmarks(im.shape) + rng.normal(0, 3, (5, 2)).astype(np.float32) for im in images]
    images.append(cv2.cvtColor(images[0], cv2.COLOR_BGR2GRAY))  # a grey image goes through the same path
    lms.append(lms[0])
    for size in (64, 112):
        batched = align_faces(images, lms, size)
        one_by_one = np.stack([align_face(im, lm, size) for im, lm in zip(images, lms)])
        assert np.array_equal(batched, one_by_one)
        rgb = to_input(
            [Face(im if im.ndim == 3 else cv2.cvtColor(im, cv2.COLOR_GRAY2BGR), lm) for im, lm in zip(images, lms)],
            InputSpec("aligned", size, "RGB"),
        )
        assert rgb.flags.c_contiguous and np.array_equal(rgb, one_by_one[..., ::-1])


# ------------------------------------------------------------------------------------------ decoding
@pytest.mark.shared
def test_jpeg_header_walk_agrees_with_pillow(shared):
    import cv2
    from PIL import Image

    from fiqa_bench.faces.io import _claimed_pixels, _jpeg_header, _png_size

    files = sorted((shared / "data/celeba-wild/images").rglob("*.jpg"))[::60]
    files += sorted((shared / "data/lfw/lfw").rglob("*.jpg"))[::300]
    image = cv2.imread(str(files[0]))
    blobs = [f.read_bytes() for f in files]
    blobs.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes())
    blobs.append(cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))[1].tobytes())
    for blob in blobs:
        with Image.open(io.BytesIO(blob)) as im:
            expected = (im.size[0], im.size[1], len(im.getbands()))
        assert _jpeg_header(blob) == expected
    png = cv2.imencode(".png", image)[1].tobytes()
    assert _png_size(png) == (image.shape[1], image.shape[0]) and _jpeg_header(png) is None
    assert _claimed_pixels(png) == image.shape[0] * image.shape[1]
    # not well formed: left to Pillow (None here), never a wrong size
    assert _jpeg_header(b"\xff\xd8\x00\x00junk") is None
    assert _jpeg_header(blobs[0][:20]) is None
    # a decompression bomb's header is refused from the walk alone
    sof = blobs[0].find(b"\xff\xc0")
    bomb = bytearray(blobs[0])
    bomb[sof + 5 : sof + 9] = (60000).to_bytes(2, "big") + (60000).to_bytes(2, "big")
    assert _claimed_pixels(bytes(bomb)) == 60000 * 60000


def test_only_mid_grey_flat_corners_need_the_second_decode():
    from fiqa_bench.faces.io import _flat_corner

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)
    assert not _flat_corner(image) and not _flat_corner(image, grey_only=True)
    dark = image.copy()
    dark[64:, 88:] = 20  # the last (partial) block flat, but not mid-grey: a dark background
    assert _flat_corner(dark) and not _flat_corner(dark, grey_only=True)
    grey = image.copy()
    grey[:8, :8] = 129  # a zero-coefficient block (EXIF orientation can move it to any corner)
    assert _flat_corner(grey) and _flat_corner(grey, grey_only=True)


def _flat_corner_reference(image: np.ndarray, grey_only: bool) -> bool:
    """The rule of _flat_corner computed plainly: any corner 8x8 block with luma max - min <= 1 (mid-grey)."""
    import cv2

    from fiqa_bench.faces.io import MID_GREY_TOLERANCE

    luma = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(int)
    h, w = luma.shape
    y1, x1 = ((h - 1) // 8) * 8, ((w - 1) // 8) * 8
    for y, x in ((y1, x1), (0, 0), (0, x1), (y1, 0)):
        block = luma[y : y + 8, x : x + 8]
        if block.max() - block.min() <= 1 and (not grey_only or abs(block.min() - 128) <= MID_GREY_TOLERANCE):
            return True
    return False


@pytest.mark.parametrize("seed", range(3))
def test_flat_corner_quick_rejection_changes_no_verdict(seed):
    """The one-pixel-per-corner luma pre-check only skips images no corner block of which can pass: every
    verdict equals the plain rule, near-grey flat blocks (luma 121..136, all colours near the boundary) included."""
    from fiqa_bench.faces.io import _flat_corner

    rng = np.random.default_rng(seed)
    verdicts = []
    for k in range(400):
        image = rng.integers(0, 256, (int(rng.integers(9, 40)), int(rng.integers(9, 40)), 3), dtype=np.uint8)
        h, w = image.shape[:2]
        y1, x1 = ((h - 1) // 8) * 8, ((w - 1) // 8) * 8
        y, x = [(y1, x1), (0, 0), (0, x1), (y1, 0)][k % 4]
        level = 121 + k % 16
        tint = rng.integers(-3, 4, 3)
        image[y : y + 8, x : x + 8] = np.clip(level + tint, 0, 255).astype(np.uint8)  # flat in every channel
        for grey_only in (True, False):
            got, want = _flat_corner(image, grey_only), _flat_corner_reference(image, grey_only)
            assert got == want, (k, grey_only, level, tint)
            verdicts.append(got)
    assert 0 < sum(verdicts) < len(verdicts)  # both answers occur


def _truncated_reference(data: bytes) -> bool:
    """The rule of _jpeg_truncated as first written: no end marker after the last start-of-scan marker."""
    if not data.startswith(b"\xff\xd8"):
        return False
    last_scan = data.rfind(b"\xff\xda")
    return last_scan < 0 or data.find(b"\xff\xd9", last_scan) < 0


def test_truncation_rule_searched_from_the_end_marker_agrees(tmp_path):
    """Cuts at every position class, trailing bytes, a thumbnail's own scan and end marker before the image's
    scan (EXIF-like), a second scan (progressive), no scan at all: same verdict as the plain rule."""
    import cv2

    from fiqa_bench.faces.io import _jpeg_truncated

    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
    base = cv2.imencode(".jpg", image)[1].tobytes()
    prog = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
    thumb = cv2.imencode(".jpg", image[:8, :8])[1].tobytes()
    exif = base[:2] + b"\xff\xe1" + (len(thumb) + 2).to_bytes(2, "big") + thumb + base[2:]
    blobs = [base, prog, exif, base + b"\x00" * 7, exif + b"\xff\xda\x00\x02", b"\xff\xd8\xff\xd9", b"\xff\xd8"]
    for blob in (base, prog, exif):
        blobs += [blob[: int(c)] for c in rng.integers(2, len(blob), 40)]
    verdicts = [_jpeg_truncated(b) for b in blobs]
    assert verdicts == [_truncated_reference(b) for b in blobs]
    assert verdicts[:4] == [False, False, False, False] and verdicts[4] and verdicts[6]


@pytest.mark.shared
def test_cut_jpegs_are_still_caught_and_dark_corners_pass(shared, tmp_path):
    import cv2

    from fiqa_bench.errors import ImageError
    from fiqa_bench.faces.io import _jpeg_partial, decode_image

    photo = cv2.imread(str(sorted((shared / "data/celeba-wild/images").rglob("*.jpg"))[5]))
    photo[-16:, :] = 0
    photo[:16, :] = 0  # flat black corners: the quick path used to send these to the second decode
    data = cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    assert not _jpeg_partial(data, decode_image(data, "whole.jpg"))
    for fraction in (0.5, 0.7, 0.9):
        cut = data[: int(len(data) * fraction)] + b"\xff\xd9"
        with pytest.raises(ImageError, match="truncated or corrupt JPEG"):
            decode_image(cut, "cut.jpg")


# ------------------------------------------------------------------------------------------ paths and keys
def test_resolve_with_a_folder_cache_keeps_every_containment_check(tmp_path):
    from fiqa_bench.data.safepath import resolve
    from fiqa_bench.errors import UnsafePathError

    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "loose_crop").mkdir(parents=True)
    outside.mkdir()
    (root / "loose_crop" / "a.jpg").write_bytes(b"x")
    (outside / "b.jpg").write_bytes(b"y")
    os.symlink(outside / "b.jpg", root / "loose_crop" / "link.jpg")
    os.symlink(outside, root / "away")
    os.symlink(root / "loose_crop", root / "inside")
    dirs: dict[str, str] = {}
    real_root = os.path.realpath(root)
    assert resolve(root, "loose_crop/a.jpg", real_root=real_root, real_dirs=dirs) == root / "loose_crop/a.jpg"
    assert resolve(root, "inside/a.jpg", real_root=real_root, real_dirs=dirs) == root / "inside/a.jpg"
    for name in ("loose_crop/link.jpg", "away/b.jpg"):
        with pytest.raises(UnsafePathError, match="leads outside"):
            resolve(root, name, real_root=real_root, real_dirs=dirs)
        assert resolve(root, name, follow_symlinks=True, real_dirs=dirs) == root / name
    assert dirs[str(root / "loose_crop")] == os.path.realpath(root / "loose_crop")
    # a sibling whose name starts like the root is not inside it
    (tmp_path / "root2").mkdir()
    (tmp_path / "root2" / "c.jpg").write_bytes(b"z")
    os.symlink(tmp_path / "root2" / "c.jpg", root / "loose_crop" / "c.jpg")
    with pytest.raises(UnsafePathError):
        resolve(root, "loose_crop/c.jpg", real_root=real_root, real_dirs=dirs)


def test_image_key_from_the_read_stat_equals_a_fresh_stat(tmp_path):
    from fiqa_bench.data.cache import image_key
    from fiqa_bench.data.safepath import read_regular_stat

    (tmp_path / "a.jpg").write_bytes(b"abc" * 100)
    data, st = read_regular_stat(tmp_path / "a.jpg")
    assert data == b"abc" * 100
    assert image_key(tmp_path, "a.jpg", b"lm", stat=(st.st_size, st.st_mtime_ns)) == image_key(tmp_path, "a.jpg", b"lm")
    assert image_key(tmp_path, "a.jpg", b"lm", stat=(st.st_size + 1, st.st_mtime_ns)) != image_key(
        tmp_path, "a.jpg", b"lm"
    )


# ------------------------------------------------------------------------------------------ the stage
@pytest.fixture()
def bench_copy(small_bench, tmp_path, isolated_cache) -> Path:
    root = tmp_path / "bench"
    shutil.copytree(small_bench, root)
    return root


def _stage(
    root: Path, method, batch_size: int, workers: int = 2, on_no_face: str = "error", on_bad_image: str = "error"
):
    from fiqa_bench.api import check_scores
    from fiqa_bench.data.cache import ArrayCache
    from fiqa_bench.faces.pipeline import to_input
    from fiqa_bench.pipeline.stages import FaceSource, per_image_stage
    from fiqa_bench.protocols.ijb import IJBLayout

    bench = IJBLayout(root).load()
    source = FaceSource(bench, "yunet", on_bad_image, on_no_face, workers)
    cache = ArrayCache(root.parent / f"cache-{batch_size}-{workers}", 1, producer="test")
    calls = []

    def compute(faces):
        calls.append([f.path for f in faces])
        return check_scores(method.score(to_input(faces, method.card.input)), len(faces), "m")[:, None]

    skipped: dict = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        values, new = per_image_stage(
            "quality", np.arange(len(bench.faces)), source, cache, 1, compute, pool, skipped, batch_size
        )
    return bench, values[:, 0], new, skipped, calls, source


@pytest.mark.shared
def test_stage_scores_equal_an_independent_per_image_computation(bench_copy):
    """tinyfq through the pipelined stage = load_image + align_face + score, one image at a time."""
    from fiqa_bench.faces.io import load_image
    from fiqa_bench.methods.tinyfq import TinyFQ

    method = TinyFQ()
    bench, values, new, skipped, calls, _ = _stage(bench_copy, method, batch_size=5)
    assert new == len(bench.faces) and not skipped
    assert [p for c in calls for p in c] == bench.faces["path"].tolist()  # batches in row order
    lm = bench.landmarks()
    expected = np.array(
        [
            method.score(align_face(load_image(bench_copy / p), lm[i], 64)[None, ..., ::-1].copy())[0]
            for i, p in enumerate(bench.faces["path"])
        ],
        np.float32,
    )
    assert np.array_equal(values, expected)
    for batch_size, workers in ((1, 1), (7, 2), (64, 3)):  # batch and pool sizes change nothing
        assert np.array_equal(_stage(bench_copy, method, batch_size, workers)[1], expected)


@pytest.mark.shared
def test_stage_skips_and_the_first_error_in_row_order(bench_copy):
    from fiqa_bench.errors import ImageError, NoFaceError
    from fiqa_bench.methods.tinyfq import TinyFQ

    faces_file = bench_copy / "meta" / "mini_face_tid_mid.txt"
    lm_file = bench_copy / "meta" / "mini_name_5pts_score.txt"
    names = [line.split()[0] for line in faces_file.read_text().splitlines()]
    lines = lm_file.read_text().splitlines()
    # row 2: collapsed landmarks (both eyes at one point); row 3: a corrupt image; one load chunk holds both
    at = next(i for i, line in enumerate(lines) if line.split()[0] == names[2])
    fields = lines[at].split()
    fields[3:5] = fields[1:3]
    lines[at] = " ".join(fields)
    lm_file.write_text("\n".join(lines) + "\n")
    (bench_copy / "loose_crop" / names[3]).write_bytes(b"\xff\xd8 not really a jpeg")
    method = TinyFQ()
    with pytest.raises(NoFaceError, match="eyes are"):  # row 2 comes first, though row 3 fails while decoding
        _stage(bench_copy, method, batch_size=8)
    with pytest.raises(ImageError, match=names[3]):
        _stage(bench_copy, method, batch_size=8, on_no_face="skip")
    bench, values, new, skipped, calls, source = _stage(bench_copy, method, 8, on_no_face="skip", on_bad_image="skip")
    assert sorted(skipped) == [2, 3] and np.isnan(values[[2, 3]]).all() and np.isfinite(np.delete(values, [2, 3])).all()
    assert skipped[2].reason == "bad landmarks: landmarks collapsed" and skipped[3].reason.startswith("bad image")
    assert source.landmark_rejections == {"landmarks collapsed": 1}
    assert new == len(bench.faces) - 2


@pytest.mark.shared
def test_an_error_in_the_batch_loading_ahead_comes_after_the_batch_before_is_saved(bench_copy):
    """The next batch decodes while this one is computed; its error is raised only once this one is cached."""
    from fiqa_bench.data.cache import ArrayCache
    from fiqa_bench.errors import ImageError
    from fiqa_bench.methods.tinyfq import TinyFQ

    names = [line.split()[0] for line in (bench_copy / "meta" / "mini_face_tid_mid.txt").read_text().splitlines()]
    (bench_copy / "loose_crop" / names[12]).write_bytes(b"")  # in the second batch of 10
    with pytest.raises(ImageError, match="empty"):
        _stage(bench_copy, TinyFQ(), batch_size=10)
    cache = ArrayCache(bench_copy.parent / "cache-10-2", 1, producer="test")
    assert len(cache) == 10  # the first batch was computed and written before the error


def test_batch_crop_keys_equal_the_single_ones(tmp_path):
    from fiqa_bench.faces.pipeline import Face
    from fiqa_bench.pipeline.stages import crop_key, crop_keys

    rng = np.random.default_rng(3)
    for i in range(4):
        (tmp_path / f"{i}.jpg").write_bytes(bytes(i + 1))
    faces = [Face(np.zeros((8, 8, 3), np.uint8), rng.uniform(0, 200, (5, 2)), path=f"{i}.jpg") for i in range(4)]
    faces[1].box = np.array([1.004, 2.5, 30.123, 40.0], np.float32)
    faces[2].stat = (1, 12345)
    assert crop_keys(tmp_path, faces) == [crop_key(tmp_path, f) for f in faces]
    assert len(set(crop_keys(tmp_path, faces))) == 4 and crop_keys(tmp_path, []) == []
