"""Hand-crafted face features for RQS (Chen et al. 2015): HoG, Gabor, Gist and LBP on the aligned face.

Chen, Deng, Bai and Su ("Face image quality assessment based on learning to rank", IEEE SPL 22(1), 2015) rank faces
with low-level features that see sharpness, noise, compression, contrast and pose. Our versions, all computed
on the 112x112 ArcFace-aligned RGB crop turned grey (``cv2.COLOR_RGB2GRAY``, values scaled to [0, 1]); each is
our own numpy/OpenCV code (OpenCV 5 has no HoG descriptor in its Python build):

========  =====  ==================================================================================================
group     dim    what
========  =====  ==================================================================================================
``hog``   1296   Dalal & Triggs (2005): central-difference gradients, 9 unsigned orientation bins (0-180 deg, vote
                 split linearly between the two nearest bins), 16x16 px cells (7x7), blocks of 2x2 cells at a
                 stride of one cell (6x6 blocks x 36), L2-Hys normalisation (L2, clip at 0.2, L2 again).
``gabor`` 80     Energy of a log-Gabor bank, 5 scales (centre frequency 0.25 * 2^(-k/2) cycles/px, k=0..4)
                 x 8 orientations, applied in the frequency domain; per filter the mean and the standard deviation
                 of the response magnitude over the central face region (rows 24-103, cols 24-87, as ``blur``).
                 High-frequency energy falls with blur, downscaling and low contrast, rises with noise.
``gist``  512    Oliva & Torralba (2001) spatial envelope: local contrast normalisation (log intensity, minus its
                 Gaussian low-pass with sigma 4 px, divided by the local RMS), then 4 scales (0.25 * 2^-k, k=0..3)
                 x 8 orientations of the same Gabor bank, magnitude averaged over a 4x4 grid of 28x28 px cells.
``lbp``   944    Ojala et al. (2002) uniform LBP(8, 1) codes (3x3 neighbourhood, 58 uniform patterns + 1 bin for
                 all others), histograms over a 4x4 grid of 28x28 px cells, each normalised to sum 1.
========  =====  ==================================================================================================

The Gabor filters are log-Gabor transfer functions (see :func:`gabor_bank`), one-sided (analytic), so the
magnitude of the inverse transform is the local energy at that scale and orientation. The image (minus its
mean) is mirror-padded by 8 px to 128x128 before the FFT so that the wrap-around does not create false edges.

Every feature is computed per image: a batch gives the same rows as single images (up to FFT rounding).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

SIZE = 112
GROUPS = ("hog", "gabor", "gist", "lbp")
DIMS = {"hog": 1296, "gabor": 80, "gist": 512, "lbp": 944}
#: The central face region used by the Gabor statistics (same as :mod:`fiqa_bench.methods.blur`).
REGION = (slice(24, 104), slice(24, 88))
_PAD = 8
_FFT = SIZE + 2 * _PAD
GABOR_FREQUENCIES = tuple(0.25 * 2.0 ** (-k / 2) for k in range(5))
GIST_FREQUENCIES = tuple(0.25 * 2.0 ** (-k) for k in range(4))
ORIENTATIONS = 8
_BANDWIDTH = 0.65  # log-Gabor sigma / f0 ratio


def grey(crops: np.ndarray) -> np.ndarray:
    """uint8 RGB crops (N, 112, 112, 3) -> float32 grey (N, 112, 112) in [0, 1] (cv2 BT.601 luma, rounded)."""
    import cv2

    crops = np.asarray(crops)
    if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[1:] != (SIZE, SIZE, 3):
        raise ValueError(f"expected uint8 aligned RGB crops (N, {SIZE}, {SIZE}, 3), got {crops.dtype} {crops.shape}")
    n = len(crops)
    if n == 0:
        return np.zeros((0, SIZE, SIZE), np.float32)
    g = cv2.cvtColor(np.ascontiguousarray(crops).reshape(n * SIZE, SIZE, 3), cv2.COLOR_RGB2GRAY)
    return g.reshape(n, SIZE, SIZE).astype(np.float32) / 255.0


# ------------------------------------------------------------------------------------------------ HoG
def hog(g: np.ndarray, cell: int = 16, bins: int = 9) -> np.ndarray:
    """(N, 112, 112) grey -> (N, 1296) HoG (see the module table)."""
    g = np.asarray(g, np.float32)
    n = g.shape[0]
    gx = np.zeros_like(g)
    gy = np.zeros_like(g)
    gx[:, :, 1:-1] = g[:, :, 2:] - g[:, :, :-2]
    gy[:, 1:-1, :] = g[:, 2:, :] - g[:, :-2, :]
    mag = np.sqrt(gx * gx + gy * gy)
    ang = np.mod(np.degrees(np.arctan2(gy, gx)), 180.0)
    pos = ang / (180.0 / bins) - 0.5  # bin centres at (b + 0.5) * 20 deg
    lo = np.floor(pos)
    frac = pos - lo
    lo_bin = np.mod(lo, bins).astype(np.int64)
    hi_bin = np.mod(lo + 1, bins).astype(np.int64)
    cells = SIZE // cell
    b = np.arange(bins)
    votes = (
        (lo_bin[..., None] == b) * (mag * (1.0 - frac))[..., None] + (hi_bin[..., None] == b) * (mag * frac)[..., None]
    ).astype(np.float32)
    hist = votes.reshape(n, cells, cell, cells, cell, bins).sum(axis=(2, 4), dtype=np.float64)
    blocks = np.concatenate([hist[:, :-1, :-1], hist[:, :-1, 1:], hist[:, 1:, :-1], hist[:, 1:, 1:]], axis=-1)
    eps = 1e-6
    blocks = blocks / np.sqrt((blocks**2).sum(-1, keepdims=True) + eps)
    blocks = np.minimum(blocks, 0.2)
    blocks = blocks / np.sqrt((blocks**2).sum(-1, keepdims=True) + eps)
    return blocks.reshape(n, -1).astype(np.float32)


# ------------------------------------------------------------------------------------------------ Gabor bank
@lru_cache(maxsize=4)
def gabor_bank(frequencies: tuple[float, ...], orientations: int = ORIENTATIONS) -> np.ndarray:
    """Transfer functions (len(frequencies) * orientations, 128, 128) on the FFT grid, scale-major.

    Log-Gabor (Field 1987): radial ``exp(-ln(f / f0)^2 / (2 ln(0.65)^2))`` (about 1.6 octaves, zero at DC, so
    the strong low frequencies of a face cannot leak into the fine scales) times angular
    ``exp(-d^2 / (2 (pi / orientations / 1.2)^2))``, ``d`` the angle between the frequency and the filter's
    orientation, one-sided (analytic: the magnitude of the response is the local energy).
    """
    f = np.fft.fftfreq(_FFT)
    v, u = np.meshgrid(f, f, indexing="ij")  # v: vertical frequency (rows), u: horizontal
    radius = np.hypot(u, v)
    radius[0, 0] = 1.0  # avoid log(0); the DC term is zeroed below
    angle = np.arctan2(v, u)
    sigma_theta = np.pi / orientations / 1.2
    out = []
    for f0 in frequencies:
        radial = np.exp(-(np.log(radius / f0) ** 2) / (2 * np.log(_BANDWIDTH) ** 2))
        radial[0, 0] = 0.0
        for k in range(orientations):
            theta = np.pi * k / orientations
            d = np.angle(np.exp(1j * (angle - theta)))  # wrapped to (-pi, pi]
            out.append(radial * np.exp(-(d**2) / (2 * sigma_theta**2)))
    bank = np.stack(out).astype(np.float64)
    bank.setflags(write=False)
    return bank


def _magnitudes(g: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """|image * filter| for every filter: (N, F, 112, 112) float32, one image at a time (memory, determinism)."""
    import cv2
    from scipy import fft

    n = g.shape[0]
    out = np.empty((n, bank.shape[0], SIZE, SIZE), np.float32)
    bank32 = bank.astype(np.float32)
    for i in range(n):
        img = g[i].astype(np.float32)
        img = img - np.float32(img.mean(dtype=np.float64))
        padded = cv2.copyMakeBorder(img, _PAD, _PAD, _PAD, _PAD, cv2.BORDER_REFLECT_101)
        spectrum = fft.fft2(padded).astype(np.complex64)
        resp = fft.ifft2(spectrum[None] * bank32, axes=(-2, -1), workers=1)
        out[i] = np.abs(resp[:, _PAD : _PAD + SIZE, _PAD : _PAD + SIZE])
    return out


def gabor(g: np.ndarray) -> np.ndarray:
    """(N, 112, 112) grey -> (N, 80): mean and std of each filter's magnitude over :data:`REGION`."""
    mags = _magnitudes(np.asarray(g, np.float32), gabor_bank(GABOR_FREQUENCIES))[:, :, REGION[0], REGION[1]]
    flat = mags.reshape(mags.shape[0], mags.shape[1], -1).astype(np.float64)
    return np.concatenate([flat.mean(-1), flat.std(-1)], axis=1).astype(np.float32)


def gist_prefilter(g: np.ndarray, sigma: float = 4.0) -> np.ndarray:
    """Local contrast normalisation: ``l = log(1 + 255 g)``, ``h = l - G(l)``, ``h / sqrt(G(h^2) + 1e-2)``."""
    import cv2

    out = np.empty_like(np.asarray(g, np.float32))
    for i, img in enumerate(np.asarray(g, np.float32)):
        lg = np.log1p(255.0 * img)
        high = lg - cv2.GaussianBlur(lg, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
        local = cv2.GaussianBlur(high * high, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
        out[i] = high / np.sqrt(local + 1e-2)
    return out


def gist(g: np.ndarray, grid: int = 4) -> np.ndarray:
    """(N, 112, 112) grey -> (N, 512): Gabor magnitude averaged over a 4x4 grid, after :func:`gist_prefilter`."""
    mags = _magnitudes(gist_prefilter(g), gabor_bank(GIST_FREQUENCIES))
    n, f = mags.shape[:2]
    cell = SIZE // grid
    pooled = mags.reshape(n, f, grid, cell, grid, cell).mean(axis=(3, 5), dtype=np.float64)
    return pooled.reshape(n, -1).astype(np.float32)


# ------------------------------------------------------------------------------------------------ LBP
@lru_cache(maxsize=1)
def uniform_lbp_table() -> np.ndarray:
    """code (0..255) -> label 0..58: the 58 uniform patterns (<= 2 circular 0/1 transitions) in code order, 58
    for every other pattern."""
    table = np.full(256, 58, np.int64)
    label = 0
    for code in range(256):
        bits = [(code >> k) & 1 for k in range(8)]
        transitions = sum(bits[k] != bits[(k + 1) % 8] for k in range(8))
        if transitions <= 2:
            table[code] = label
            label += 1
    assert label == 58
    table.setflags(write=False)
    return table


def lbp_codes(g: np.ndarray) -> np.ndarray:
    """(N, 112, 112) grey -> (N, 110, 110) LBP(8, 1) codes of the interior pixels (neighbour >= centre -> 1)."""
    q = np.rint(np.asarray(g, np.float32) * 255.0).astype(np.int16)  # compare on the uint8 grey levels
    c = q[:, 1:-1, 1:-1]
    h, w = c.shape[1:]
    offsets = [(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)]  # clockwise from top-left
    code = np.zeros(c.shape, np.int64)
    for k, (dy, dx) in enumerate(offsets):
        neighbour = q[:, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        code |= (neighbour >= c).astype(np.int64) << k
    return code


def lbp(g: np.ndarray, grid: int = 4) -> np.ndarray:
    """(N, 112, 112) grey -> (N, 944): uniform-LBP histograms on a 4x4 grid of the 112x112 crop."""
    labels = uniform_lbp_table()[lbp_codes(g)]
    n = labels.shape[0]
    full = np.full((n, SIZE, SIZE), -1, np.int64)  # border pixels (no full neighbourhood) are not counted
    full[:, 1:-1, 1:-1] = labels
    cell = SIZE // grid
    cell_index = np.arange(SIZE) // cell
    cell_id = cell_index[:, None] * grid + cell_index[None, :]
    out = np.zeros((n, grid * grid, 59), np.float64)
    for i in range(n):
        ok = full[i] >= 0
        counts = np.bincount(cell_id[ok] * 59 + full[i][ok], minlength=grid * grid * 59)
        out[i] = counts.reshape(grid * grid, 59)
    out /= np.maximum(out.sum(-1, keepdims=True), 1.0)
    return out.reshape(n, -1).astype(np.float32)


# ------------------------------------------------------------------------------------------------ all together
FUNCTIONS = {"hog": hog, "gabor": gabor, "gist": gist, "lbp": lbp}


def features(crops: np.ndarray, groups: tuple[str, ...] = GROUPS, batch_size: int = 64) -> dict[str, np.ndarray]:
    """uint8 RGB aligned 112x112 crops (N, 112, 112, 3) -> {group: float32 (N, DIMS[group])}."""
    unknown = [k for k in groups if k not in FUNCTIONS]
    if unknown:
        raise ValueError(f"unknown feature groups {unknown}; known: {', '.join(GROUPS)}")
    crops = np.asarray(crops)
    g = grey(crops)
    out = {k: np.zeros((len(g), DIMS[k]), np.float32) for k in groups}
    for start in range(0, len(g), batch_size):
        chunk = g[start : start + batch_size]
        for k in groups:
            out[k][start : start + len(chunk)] = FUNCTIONS[k](chunk)
    return out
