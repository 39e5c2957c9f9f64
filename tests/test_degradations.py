"""Each degradation moves the image in the expected direction, measured independently of the module."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from fiqa_bench.data import degradations as D


@pytest.fixture(scope="module")
def face(shared) -> np.ndarray:
    """A real loose face crop (BGR uint8) from celeba-wild."""
    first = sorted((shared / "data" / "celeba-wild" / "images").iterdir())[0]
    path = sorted(first.glob("*.jpg"))[0]
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[0] >= 100
    return image


@pytest.fixture(scope="module")
def texture() -> np.ndarray:
    """A sharp synthetic image (no shared data needed): blocky random texture plus edges."""
    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
    img = cv2.resize(img, (128, 96), interpolation=cv2.INTER_NEAREST)
    img[40:56, 20:100] = 255
    return img


def laplacian_var(img: np.ndarray) -> float:
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float64)
    lap = grey[1:-1, :-2] + grey[1:-1, 2:] + grey[:-2, 1:-1] + grey[2:, 1:-1] - 4 * grey[1:-1, 1:-1]
    return float(lap.var())


def blockiness(img: np.ndarray) -> float:
    """Mean |difference| across 8-px block boundaries over the mean |difference| elsewhere (columns and rows)."""
    g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float64)
    dx = np.abs(np.diff(g, axis=1))  # dx[:, j] = g[:, j+1] - g[:, j]
    dy = np.abs(np.diff(g, axis=0))
    bx = (np.arange(dx.shape[1]) % 8) == 7
    by = (np.arange(dy.shape[0]) % 8) == 7
    boundary = (dx[:, bx].mean() + dy[by, :].mean()) / 2
    inner = (dx[:, ~bx].mean() + dy[~by, :].mean()) / 2
    return float(boundary / inner)


def high_freq_energy(img: np.ndarray, cutoff: float) -> float:
    """Spectral energy of the grey image beyond ``cutoff`` x Nyquist (max over the two axes)."""
    g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float64)
    spec = np.abs(np.fft.fft2(g - g.mean())) ** 2
    fy = np.abs(np.fft.fftfreq(g.shape[0]))[:, None] * 2  # 1.0 = Nyquist
    fx = np.abs(np.fft.fftfreq(g.shape[1]))[None, :] * 2
    return float(spec[np.maximum(fy, fx) > cutoff].sum())


# ---------------------------------------------------------------- directions (real face)


@pytest.mark.parametrize("level", D.LEVELS)
def test_gaussian_blur_lowers_laplacian_variance(face, level):
    sigma = D.DEGRADATIONS["gaussian_blur"].levels[level]["sigma"]
    out = D.gaussian_blur(face, sigma=sigma)
    assert laplacian_var(out) < 0.6 * laplacian_var(face)


def test_blur_strength_is_monotonic(face):
    values = [laplacian_var(D.gaussian_blur(face, sigma=s)) for s in (1.0, 2.0, 4.0)]
    assert values[0] > values[1] > values[2]
    values = [laplacian_var(D.motion_blur(face, length=n, angle=30)) for n in (5, 9, 15)]
    assert laplacian_var(face) > values[0] > values[1] > values[2]


def test_motion_blur_smooths_along_its_direction_only():
    stripes_x = np.zeros((64, 64, 3), np.uint8)
    stripes_x[:, ::4] = 255  # intensity varies along x only
    horizontal = D.motion_blur(stripes_x, length=9, angle=0)
    assert (
        np.abs(np.diff(horizontal.astype(int), axis=1)).mean()
        < 0.2 * np.abs(np.diff(stripes_x.astype(int), axis=1)).mean()
    )
    stripes_y = np.ascontiguousarray(stripes_x.transpose(1, 0, 2))  # varies along y only
    assert np.array_equal(D.motion_blur(stripes_y, length=9, angle=0), stripes_y)
    vertical = D.motion_blur(stripes_y, length=9, angle=90)
    assert (
        np.abs(np.diff(vertical.astype(int), axis=0)).mean()
        < 0.2 * np.abs(np.diff(stripes_y.astype(int), axis=0)).mean()
    )


def test_motion_kernel_is_normalised_line():
    k = D.motion_kernel(9, 0)
    assert k.shape == (9, 9) and k.sum() == pytest.approx(1.0, abs=1e-6)
    assert np.allclose(k[4], 1 / 9) and np.count_nonzero(k) == 9
    assert D.motion_kernel(9, 45).sum() == pytest.approx(1.0, abs=1e-6)


def test_jpeg_q10_raises_blockiness(face):
    # the source is a q92 JPEG crop whose grid is not aligned with ours after cropping: start near 1
    before = blockiness(face)
    after = blockiness(D.jpeg(face, quality=10))
    assert after > before + 0.3 and after > 1.3


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_downscale_removes_high_frequencies(face, factor):
    # what survives above the new Nyquist is only the imaging of linear up-sampling
    before = high_freq_energy(face, cutoff=1.0 / factor)
    after = high_freq_energy(D.downscale(face, factor=factor), cutoff=1.0 / factor)
    assert after < 0.5 * before
    assert high_freq_energy(D.downscale(face, factor=factor), 0.0) < high_freq_energy(face, 0.0)


def test_noise_raises_std_on_flat_region():
    flat = np.full((120, 160, 3), 128, np.uint8)
    for sigma in (5.0, 10.0, 20.0):
        out = D.gaussian_noise(flat, sigma=sigma, seed=3)
        assert out.astype(float).std() == pytest.approx(sigma, rel=0.05)
        assert out.astype(float).mean() == pytest.approx(128, abs=0.5)


def test_noise_on_real_face_raises_local_std(face):
    out = D.gaussian_noise(face, sigma=10.0, seed=1)
    diff = out.astype(float) - face.astype(float)
    assert diff.std() == pytest.approx(10.0, rel=0.15)  # clipping at 0/255 trims a little


def test_occlusion_sets_expected_pixels(texture):
    # box 100 x 80 at (10, 8); fraction 0.25 -> 50 x 40 occluder; centred -> x 35..85, y 28..68
    out = D.occlusion(texture, fraction=0.25, box=(10, 8, 100, 80), position=(0.5, 0.5), fill=0)
    mask = np.zeros(texture.shape[:2], bool)
    mask[28:68, 35:85] = True
    assert (out[mask] == 0).all()
    assert np.array_equal(out[~mask], texture[~mask])
    # top-left corner of the box
    out = D.occlusion(texture, fraction=0.25, box=(10, 8, 100, 80), position=(0, 0), fill=200)
    mask = np.zeros(texture.shape[:2], bool)
    mask[8:48, 10:60] = True
    assert (out[mask] == 200).all() and np.array_equal(out[~mask], texture[~mask])


def test_occlusion_without_box_covers_image_centre(texture):
    h, w = texture.shape[:2]  # 96 x 128; fraction 0.25 -> 64 x 48 centred -> x 32..96, y 24..72
    out = D.occlusion(texture, fraction=0.25)
    assert (out[24:72, 32:96] == 0).all()
    changed = np.any(out != texture, axis=2)
    assert changed.sum() <= 48 * 64 and not changed[:24].any() and not changed[72:].any()


def test_occlusion_clips_to_image(texture):
    out = D.occlusion(texture, fraction=1.0, box=(100, 80, 60, 60), position=(0.5, 0.5))
    assert (out[80:, 100:] == 0).all() and np.array_equal(out[:80], texture[:80])


def test_brightness_contrast_direction(face):
    grey = lambda im: cv2.cvtColor(im, cv2.COLOR_BGR2GRAY).astype(float)  # noqa: E731
    brighter = D.brightness_contrast(face, contrast=1.0, brightness=40)
    darker = D.brightness_contrast(face, contrast=1.0, brightness=-40)
    flatter = D.brightness_contrast(face, contrast=0.5, brightness=0)
    assert grey(brighter).mean() > grey(face).mean() + 20
    assert grey(darker).mean() < grey(face).mean() - 20
    assert grey(flatter).std() < 0.6 * grey(face).std()
    # independent formula on a few pixels
    x = face[:4, :4].astype(float)
    assert np.array_equal(
        D.brightness_contrast(face, contrast=0.6, brightness=-60)[:4, :4],
        np.clip(np.rint(0.6 * (x - 127.5) + 127.5 - 60), 0, 255).astype(np.uint8),
    )


# ---------------------------------------------------------------- contract: shape, dtype, determinism


def _all_records():
    """One record per (name, level) with the free parameters drawn from a fixed generator."""
    rng = np.random.default_rng(0)
    for name, deg in D.DEGRADATIONS.items():
        for level in D.LEVELS:
            params = {**deg.levels[level], **deg.draw(rng, (96, 128, 3), (20, 10, 80, 70))}
            yield {"name": name, "level": level, "params": params}


@pytest.mark.parametrize("record", list(_all_records()), ids=lambda r: f"{r['name']}-{r['level']}")
def test_shape_dtype_preserved_and_pure(texture, record):
    before = texture.copy()
    out = D.apply_record(texture, record)
    assert out.dtype == np.uint8 and out.shape == texture.shape
    assert np.array_equal(texture, before), "input modified in place"
    assert not np.array_equal(out, texture), "degradation did nothing"
    assert np.array_equal(D.apply_record(texture, record), out)
    json.dumps(record)  # records are JSON-serialisable


@pytest.mark.parametrize("shape", [(40, 50), (40, 50, 1)])
def test_grey_images_keep_their_shape(shape):
    img = np.random.default_rng(1).integers(0, 256, size=shape, dtype=np.uint8)
    for record in _all_records():
        out = D.apply_record(img, record)
        assert out.shape == img.shape and out.dtype == np.uint8, record


def test_rejects_non_uint8():
    with pytest.raises(ValueError, match="uint8"):
        D.gaussian_blur(np.zeros((8, 8, 3), np.float32), sigma=1.0)


def test_apply_random_is_deterministic_and_replayable(texture):
    box = (20, 10, 80, 70)
    a = [D.apply_random(texture, np.random.default_rng(42), box) for _ in range(2)]
    assert a[0][1] == a[1][1] and np.array_equal(a[0][0], a[1][0])
    rng1, rng2 = np.random.default_rng(5), np.random.default_rng(5)
    seq1 = [D.apply_random(texture, rng1, box) for _ in range(30)]
    seq2 = [D.apply_random(texture, rng2, box) for _ in range(30)]
    for (im1, r1), (im2, r2) in zip(seq1, seq2):
        assert r1 == r2 and np.array_equal(im1, im2)
        assert np.array_equal(D.apply_record(texture, r1), im1)
    assert {r["name"] for _, r in seq1} == set(D.DEGRADATIONS)  # 30 draws reach all 7 with seed 5
    assert {r["level"] for _, r in seq1} == set(D.LEVELS)


def test_apply_random_respects_names_and_levels(texture):
    rng = np.random.default_rng(0)
    for _ in range(10):
        _, rec = D.apply_random(texture, rng, names=["jpeg"], levels=["strong"])
        assert rec == {"name": "jpeg", "level": "strong", "params": {"quality": 10}}
    with pytest.raises(KeyError):
        D.apply_random(texture, rng, names=["sharpen"])


def test_occlusion_record_uses_given_box(texture):
    rng = np.random.default_rng(0)
    while True:
        out, rec = D.apply_random(texture, rng, (20, 10, 80, 70))
        if rec["name"] == "occlusion":
            break
    assert rec["params"]["box"] == [20, 10, 80, 70]
    changed = np.any(out != texture, axis=2)
    ys, xs = np.nonzero(changed)
    assert xs.min() >= 20 and xs.max() < 100 and ys.min() >= 10 and ys.max() < 80
    frac = rec["params"]["fraction"]
    assert changed.sum() <= round(80 * np.sqrt(frac)) * round(70 * np.sqrt(frac))


def test_docstring_table_matches_levels():
    rows = {
        line.split()[0]: line for line in D.__doc__.splitlines() if line.split() and line.split()[0] in D.DEGRADATIONS
    }
    assert set(rows) == set(D.DEGRADATIONS)
    for name, deg in D.DEGRADATIONS.items():
        assert tuple(deg.levels) == D.LEVELS, name
        assert deg.summary, name
        cells = rows[name][rows[name].index("  ", len(name) + 2) :].split("  ")
        documented = [c.strip() for c in cells if c.strip()][-3:]
        actual = [", ".join(str(v) for v in deg.levels[lv].values()) for lv in D.LEVELS]
        assert documented == actual, name
