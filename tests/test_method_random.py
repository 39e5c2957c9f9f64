"""``random`` (methods/random_select.py): the random-selection baseline, keyed on the image's benchmark-relative path.

The reference values are computed here independently of the module: the documented byte string assembled with
``struct`` and hashed with ``hashlib``; the pinned values on the six photos were computed once with coreutils'
``sha256sum`` (command below), with no Python at all. None of them depends on a library build (OpenCV, numpy,
a JPEG decoder): the key is the path, not the pixels, which is the point of the keying (issue 22).
"""

from __future__ import annotations

import hashlib
import shutil
import struct
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
import pytest
from scipy import stats

# the six photos of tests/test_pinned_scores.py with their landmarks; paths relative to the shared folder (the root
# their Face is named against)
from _pinned_inputs import LANDMARKS, PHOTOS
from fiqa_bench import registry
from fiqa_bench.faces import Face
from fiqa_bench.methods.random_select import RandomQuality
from fiqa_bench.testing import check_method, synthetic_faces, synthetic_inputs

# First 24 bits of the SHA-256, as integers; computed with coreutils (no Python, no OpenCV), for seed S in {0, 1}:
#   { printf 'fiqa-bench-random'; printf '\x0S\x00\x00\x00\x00\x00\x00\x00'; printf 'path\0'; printf '%s' "$p"; } \
#       | sha256sum | cut -c1-6
PINNED_24BIT = {
    0: [0xA8D756, 0x81409D, 0xD50008, 0xCB25CA, 0x732D09, 0xA99210],
    1: [0x9EF6C9, 0x2E8F96, 0x5B0F68, 0xDBC8A1, 0xC8103F, 0x7036CF],
}


def _reference(seed: int, path: str) -> float:
    """The documented hash, written out independently: domain, seed as signed 64-bit little endian, the tag and
    the path's UTF-8 bytes; the first three digest bytes over 2**24."""
    blob = b"fiqa-bench-random" + struct.pack("<q", seed) + b"path\0" + path.encode("utf-8")
    top = hashlib.sha256(blob).hexdigest()[:6]
    return int(top, 16) / 2.0**24


def _reference_pixels(seed: int, image: np.ndarray) -> float:
    """The fall-back for a face without a path: the same prefix, the tag, dtype and shape as text, the pixels."""
    blob = (
        b"fiqa-bench-random"
        + struct.pack("<q", seed)
        + b"pixels\0"
        + (image.dtype.str + repr(image.shape)).encode()
        + image.tobytes()
    )
    d = hashlib.sha256(blob).digest()
    return (d[0] * 65536 + d[1] * 256 + d[2]) / 16777216.0


def _faces(paths: list[str], images: list[np.ndarray] | None = None) -> list[Face]:
    rng = np.random.default_rng(3)
    if images is None:
        images = [rng.integers(0, 256, size=(40, 30, 3), dtype=np.uint8) for _ in paths]
    lm = np.array([[10, 12], [20, 12], [15, 18], [11, 24], [19, 24]], np.float32)
    return [Face(image=im, landmarks=lm, path=p) for p, im in zip(paths, images)]


# ------------------------------------------------------------------------------------------ the card
def test_random_is_registered_with_a_face_input_and_a_new_version():
    assert registry.load_class("method", "random") is RandomQuality
    card = RandomQuality.card
    assert card.input.kind == "face"  # the runner warps no crop for it
    assert card.version == "2"  # version 1 hashed aligned-crop pixels: cached scores of it are not reused
    assert RandomQuality(seed=0).identity().startswith("random-2-")
    assert "path relative to the benchmark root" in card.summary


def test_random_identity_and_seed_validation():
    assert RandomQuality(seed=3).identity() != RandomQuality(seed=4).identity()
    assert RandomQuality(seed=3).identity().endswith("-seed3")
    with pytest.raises(TypeError):
        RandomQuality(seed="3")
    with pytest.raises(TypeError):
        RandomQuality(seed=1.5)
    with pytest.raises(TypeError):
        RandomQuality(seed=True)


def test_random_refuses_aligned_crops():
    crops = np.zeros((2, 112, 112, 3), np.uint8)
    with pytest.raises(ValueError, match="takes faces"):
        RandomQuality().score(crops)


# ------------------------------------------------------------------------------------------ the key
def test_random_matches_the_documented_hash():
    faces = synthetic_inputs(RandomQuality.card.input, n=4)  # Face objects named synthetic/0-<i>.png
    assert [f.path for f in faces] == [f"synthetic/0-{i}.png" for i in range(4)]
    for seed in (0, 7, -3, 2**40):
        got = RandomQuality(seed=seed).score(faces)
        assert got.dtype == np.float32 and got.shape == (4,)
        assert got.tolist() == [_reference(seed, f.path) for f in faces]


def test_random_gives_the_same_value_for_the_same_path_whatever_the_pixels():
    faces = synthetic_faces(6)
    method = RandomQuality(seed=0)
    before = method.score(faces)
    changed = []
    for f in faces:  # re-encoded (JPEG 40: other pixels), resized (other shape) and brightened copies
        ok, buf = cv2.imencode(".jpg", f.image, [cv2.IMWRITE_JPEG_QUALITY, 40])
        assert ok
        image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        assert not np.array_equal(image, f.image)
        changed.append(Face(image=image, landmarks=f.landmarks, box=f.box, path=f.path))
        changed.append(Face(image=cv2.resize(f.image, (77, 91)), landmarks=f.landmarks * 0.5, path=f.path))
        changed.append(
            Face(
                image=np.clip(f.image.astype(np.int16) + 9, 0, 255).astype(np.uint8), landmarks=f.landmarks, path=f.path
            )
        )
    assert np.array_equal(method.score(changed), np.repeat(before, 3))


def test_random_keys_the_path_in_posix_form():
    method = RandomQuality(seed=0)
    same = ["img/a/b.jpg", "img//a/./b.jpg", "img\\a\\b.jpg", "./img/a/b.jpg", "img/a/b.jpg/"]
    got = method.score(_faces(same))
    assert got.tolist() == [_reference(0, "img/a/b.jpg")] * len(same)
    assert method.score(
        [Face(image=np.zeros((4, 4, 3), np.uint8), landmarks=np.zeros((5, 2)), path=PurePosixPath("img/a/b.jpg"))]
    ).tolist() == [_reference(0, "img/a/b.jpg")]
    # case, other folders and non-ASCII names are other names
    others = ["img/a/B.jpg", "img/b/b.jpg", "a/b.jpg", "img/a/b.jpeg", "img/ä/b.jpg"]
    vals = method.score(_faces(others)).tolist()
    assert vals == [_reference(0, p) for p in others]
    assert len(set(vals + got[:1].tolist())) == 6


def test_random_is_uniform_and_seeds_differ():
    paths = [f"loose_crop/{i // 20:04d}_{i:06d}.jpg" for i in range(2000)]
    faces = _faces(paths, [np.zeros((8, 8, 3), np.uint8)] * len(paths))  # identical pixels: only the names differ
    a = RandomQuality(seed=0).score(faces)
    b = RandomQuality(seed=1).score(faces)
    assert ((a >= 0) & (a < 1)).all() and ((b >= 0) & (b < 1)).all()
    assert len(np.unique(a)) > 1990  # 2000 draws of 2**24 values: a handful of collisions at most
    assert stats.kstest(a, "uniform").pvalue > 1e-3
    assert stats.kstest(b, "uniform").pvalue > 1e-3
    assert (a != b).mean() > 0.99  # another seed is another draw
    assert abs(stats.spearmanr(a, b).statistic) < 0.1
    assert a.tolist() == [_reference(0, p) for p in paths]
    assert b.tolist() == [_reference(1, p) for p in paths]


def test_random_is_independent_of_batching_and_order():
    faces = synthetic_inputs(RandomQuality.card.input, n=6) + _faces(["", ""])  # two in-memory faces too
    method = RandomQuality(seed=5)
    whole = method.score(faces)
    assert np.array_equal(method.score(faces[::-1]), whole[::-1])
    assert np.array_equal(np.concatenate([method.score(faces[i : i + 1]) for i in range(8)]), whole)
    perm = np.random.default_rng(0).permutation(8)
    assert np.array_equal(method.score([faces[i] for i in perm]), whole[perm])
    assert np.array_equal(np.concatenate([method.score(faces[:3]), method.score(faces[3:])]), whole)
    assert method.score([]).dtype == np.float32 and method.score([]).shape == (0,)


# ------------------------------------------------------------------------------------------ in-memory faces
def test_a_face_without_a_path_falls_back_to_its_pixels():
    rng = np.random.default_rng(1)
    images = list(rng.integers(0, 256, size=(400, 24, 20, 3), dtype=np.uint8))
    faces = _faces([""] * 400, images)
    a = RandomQuality(seed=0).score(faces)
    b = RandomQuality(seed=1).score(faces)
    assert a.tolist() == [_reference_pixels(0, im) for im in images]
    assert ((a >= 0) & (a < 1)).all()
    assert stats.kstest(a, "uniform").pvalue > 1e-3
    assert abs(stats.spearmanr(a, b).statistic) < 0.2  # another seed is another draw
    changed = [im.copy() for im in images]
    for im in changed:
        im[0, 0, 0] ^= 1  # one bit of one pixel
    assert (RandomQuality(seed=0).score(_faces([""] * 400, changed)) != a).mean() > 0.99
    # the same pixels under a name key on the name, not on the pixels (the tags keep the two apart)
    named = RandomQuality(seed=0).score(_faces(["x.png"] * 400, images))
    assert named.tolist() == [_reference(0, "x.png")] * 400


def test_random_passes_the_conformance_kit():
    for seed in (0, 11):
        check_method(RandomQuality(seed=seed))  # synthetic faces, named synthetic/<seed>-<i>.png
    check_method(RandomQuality(), images=_faces([""] * 6))  # in-memory faces: the pixel fall-back
    check_method(RandomQuality(), images=_faces(["a.jpg", "", "b/c.jpg", "", "a.jpg", "d.png"]))


# ------------------------------------------------------------------------------------------ real photos
@pytest.mark.shared
def test_random_pinned_values_on_the_six_photos(shared):
    from fiqa_bench.faces.io import load_image

    faces = [Face(load_image(shared / p), np.asarray(lm, np.float32), None, p) for p, lm in zip(PHOTOS, LANDMARKS)]
    for seed, tops in PINNED_24BIT.items():
        pinned = [t / 2**24 for t in tops]
        assert [_reference(seed, p) for p in PHOTOS] == pinned
        assert RandomQuality(seed=seed).score(faces).tolist() == pinned  # exact: no library build involved
        # the same photos re-encoded (another JPEG quality: other pixels) keep every value
        again = []
        for f in faces:
            ok, buf = cv2.imencode(".jpg", f.image, [cv2.IMWRITE_JPEG_QUALITY, 55])
            assert ok
            image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
            assert not np.array_equal(image, f.image)
            again.append(Face(image, f.landmarks, None, f.path))
        assert RandomQuality(seed=seed).score(again).tolist() == pinned


@pytest.mark.shared
def test_a_run_keys_each_image_on_its_benchmark_relative_path(small_bench, mbf, tmp_path, isolated_cache):
    """End to end: the runner hands random each face named as the protocol lists it, so the scores are the
    reference hash of those names; a copy of the benchmark elsewhere, every image re-encoded (other bytes, other
    pixels, as a preparation with another OpenCV build gives for some degraded copies), scores the same."""
    from fiqa_bench.config import RunConfig
    from fiqa_bench.pipeline.runner import open_protocol, run
    from fiqa_bench.results.record import load_record, read_raw

    def scores(bench: Path, out: Path) -> tuple[np.ndarray, list[str], dict]:
        path, _ = run(
            RunConfig(protocol=str(bench), backbone=mbf, method="random", out=str(out), progress=False, bootstrap=0)
        )
        record = load_record(path)
        raw = read_raw(path, record)
        names = open_protocol(str(bench)).load().faces["path"].astype(str).tolist()
        return np.asarray(raw["image_quality"]), names, record.counts

    q, names, counts = scores(small_bench, tmp_path / "a")
    assert counts["images_scored"] == len(names) == 48 and not Path(names[0]).is_absolute()
    assert q.dtype == np.float32 and q.tolist() == [_reference(0, n) for n in names]

    copy = tmp_path / "elsewhere" / "mini"
    shutil.copytree(small_bench, copy)
    changed = 0
    for name in names:
        image = cv2.imread(str(copy / name), cv2.IMREAD_COLOR)
        ok, buf = cv2.imencode(Path(name).suffix, image, [cv2.IMWRITE_JPEG_QUALITY, 60])
        assert ok
        (copy / name).write_bytes(buf.tobytes())
        changed += not np.array_equal(cv2.imread(str(copy / name), cv2.IMREAD_COLOR), image)
    assert changed >= 0.9 * len(names)
    q2, names2, _ = scores(copy, tmp_path / "b")
    assert names2 == names and np.array_equal(q2, q)
