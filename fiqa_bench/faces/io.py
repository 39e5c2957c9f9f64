"""Image decoding: every image enters the pipeline through :func:`load_image`, so all adapters see the same pixels.

Bytes are read by Python and decoded by ``cv2.imdecode`` (``cv2.imread`` fails silently on non-ASCII paths on
some platforms). Decoding uses ``cv2.IMREAD_COLOR``, i.e. exactly what ``cv2.imread(path)`` gives: 8-bit BGR,
grey images expanded to 3 equal channels, 16-bit images reduced to 8 bits (high byte), alpha dropped, and the
EXIF orientation applied.
"""

from __future__ import annotations

import os
import re

import numpy as np

from fiqa_bench.data.safepath import DEFAULT_MAX_IMAGE_BYTES, read_regular
from fiqa_bench.errors import ImageError

_JPEG_SOI = b"\xff\xd8"
_JPEG_SOS = b"\xff\xda"
_JPEG_EOI = b"\xff\xd9"


def _jpeg_truncated(data: bytes) -> bool:
    """True for a JPEG whose last scan has no end-of-image marker after it.

    Inside entropy-coded data 0xFF is always stuffed (0xFF00) or a restart marker, so an EOI after the last
    start-of-scan marker means the file was written to the end. Some decoders (OpenCV 4.x's libjpeg) return
    a grey-filled image for a truncated JPEG instead of failing, which would silently score a broken face.
    """
    if not data.startswith(_JPEG_SOI):
        return False
    # "no end marker after the last scan marker", searched from the end marker, which is near the file's end
    # (a backward search for the scan marker would cross the whole entropy-coded data: a tenth of the decode)
    last_end = data.rfind(_JPEG_EOI)
    if last_end < 0:
        return True
    if data.find(_JPEG_SOS, last_end + 2) >= 0:  # a scan after the last end marker: it has none
        return True
    return data.find(_JPEG_SOS, 0, last_end) < 0  # no scan at all


# 512 bytes of fixed noise without 0xFF (so no marker can appear in it), see _jpeg_partial
_ENTROPY_PROBE = bytes((i * 73 + 41) % 255 for i in range(512))


MID_GREY_TOLERANCE = 4  # luma levels: a block decoded from zero coefficients is 128, give or take colour rounding


def _flat_corner(image: np.ndarray, grey_only: bool = False) -> bool:
    """True when an 8x8 luma block at a corner of the decoded image is flat (within rounding).

    A block whose entropy data is missing is decoded from zero AC coefficients: exactly flat in luma. The last
    block of a baseline JPEG is at the bottom-right corner (another corner once EXIF orientation is applied),
    so an image with no flat corner block cannot be one that ran out of data, and needs no further test.
    ``grey_only``: only a flat block of mid-grey luma counts. libjpeg leaves the coefficients of the blocks after
    the data ran out at zero, DC included, which decodes to 128 in every component: mid-grey in a one- or
    three-component (YCbCr or RGB) file. A flat corner of another colour (a dark background, a blurred
    border: a third of real crops) then needs no second decode. Not for four-component (CMYK) files, whose
    zero blocks are not grey."""
    import cv2

    h, w = image.shape[:2]
    y1, x1 = ((h - 1) // 8) * 8, ((w - 1) // 8) * 8
    if grey_only and image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8:
        # every pixel of a flat mid-grey block has a luma in [128 - tol, 128 + tol + 1]: when the first pixel of
        # no corner block has one, no block can pass the test below. The integer BT.601 formula here is within 1
        # of OpenCV's BGR->grey for every one of the 2^24 colours (checked exhaustively), hence the margin of 1.
        lo_ok, hi_ok = 128 - MID_GREY_TOLERANCE - 1, 128 + MID_GREY_TOLERANCE + 2
        for y, x in ((y1, x1), (0, 0), (0, x1), (y1, 0)):
            b, g, r = image[y, x].tolist()
            if lo_ok <= (b * 1868 + g * 9617 + r * 4899 + 8192) >> 14 <= hi_ok:
                break
        else:
            return False
    blocks = [image[y : y + 8, x : x + 8] for y, x in ((y1, x1), (0, 0), (0, x1), (y1, 0))]
    # one colour conversion for the four blocks (it is per pixel): a row of their pixels side by side
    row = np.concatenate([b.reshape(1, -1, 3) for b in blocks], axis=1)
    luma = cv2.cvtColor(row, cv2.COLOR_BGR2GRAY).reshape(-1).astype(np.int16)
    starts = np.cumsum([0] + [b.shape[0] * b.shape[1] for b in blocks[:-1]])
    lo, hi = np.minimum.reduceat(luma, starts), np.maximum.reduceat(luma, starts)
    flat = hi - lo <= 1  # a DC-only block
    if grey_only:
        flat &= np.abs(lo - 128) <= MID_GREY_TOLERANCE
    return bool(flat.any())


def _jpeg_partial(data: bytes, image: np.ndarray | None = None, header: tuple | None = None) -> bool:
    """True for a JPEG whose entropy-coded data ends before its last pixel, although it has an end marker.

    libjpeg meets the end marker early, warns "Corrupt JPEG data: premature end of data segment" (on stderr,
    which OpenCV does not report) and fills the rest of the image from zero coefficients: a grey face would be
    scored. The test asks the decoder itself: the same stream with extra bytes just before its end marker decodes
    to the same pixels when the decoder had finished (it skips them as extraneous) and to different pixels, or
    not at all, when it was still short of data. Pillow decodes quietly; baseline files are compared at 1/8
    scale (the DC coefficients, which every missing block changes), progressive ones at full size (a late scan
    refines AC coefficients only). With the decoded ``image``, a baseline file whose corner blocks are not flat
    is passed without decoding again (:func:`_flat_corner`; in a one- or three-component file only a flat
    mid-grey corner counts): 99% of real crops cost microseconds, the others (and every progressive file) two
    Pillow decodes at 1/8 scale (14 of 2,000 celeba-wild and LFW photos; a third before the mid-grey rule).
    libjpeg decodes the blocks after the data ran out as flat mid-grey, so every loss of a whole block is
    caught; a cut inside the last block or two (tens of bytes, a damaged corner of a few hundred pixels) may pass
    the quick path (3 of 1,500 random cuts in a file's last 75%; with the mid-grey rule 4 of 800 instead of 3,
    the extra one 0.2% before the file's end). ``header``: :func:`_jpeg_header` of ``data`` when the caller
    has it.
    """
    import io

    from PIL import Image

    end = data.rfind(_JPEG_EOI)
    if end < 0:
        return True
    first_scan = data.find(_JPEG_SOS)
    progressive = data.find(b"\xff\xc2", 0, first_scan) >= 0 if first_scan > 0 else False
    if image is not None and not progressive:
        header = header or _jpeg_header(data)
        if not _flat_corner(image, grey_only=header is not None and header[2] in (1, 3)):
            return False  # the decoded pixels already rule it out (most photos): no second decode
    probe = data[:end] + _ENTROPY_PROBE + data[end:]

    def decode(im) -> np.ndarray:
        with im:
            if not progressive:
                im.draft(im.mode, (max(1, im.size[0] // 8), max(1, im.size[1] // 8)))
            im.load()
            return np.asarray(im)

    try:
        first = Image.open(io.BytesIO(data))
    except Exception:  # noqa: BLE001 - a JPEG variant Pillow does not read (lossless, 12-bit): no opinion
        return False
    try:
        a = decode(first)
        b = decode(Image.open(io.BytesIO(probe)))
    except Exception:  # noqa: BLE001 - Pillow reads the header but not the data (OSError, ...): not whole
        return True
    return a.shape != b.shape or not np.array_equal(a, b)


# SOF0-3, 5-7, 9-11, 13-15: the frame headers (DHT 0xC4, JPG 0xC8 and DAC 0xCC share the range but are not)
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_header(data: bytes) -> tuple[int, int, int] | None:
    """(width, height, components) of a well-formed JPEG's frame header, read by walking its marker segments up
    to the first scan; None for anything else (not a JPEG, padding or junk between segments, no frame header
    before the scan, a zero size), which is then left to Pillow. The last frame header before the scan counts,
    as in Pillow's reader."""
    if not data.startswith(b"\xff\xd8"):
        return None
    i, n, found = 2, len(data), None
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xDA:
            return found
        if marker in (0xD8, 0xD9, 0xFF, 0x00) or 0xD0 <= marker <= 0xD7:
            return None  # no length field here: an unusual file, Pillow's to read
        length = (data[i + 2] << 8) | data[i + 3]
        if length < 2:
            return None
        if marker in _SOF_MARKERS:
            if i + 10 > n:
                return None
            h, w, comps = (data[i + 5] << 8) | data[i + 6], (data[i + 7] << 8) | data[i + 8], data[i + 9]
            if not (w and h):
                return None
            found = (w, h, comps)
        i += 2 + length
    return None


def _png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk (always the first), None if this is not a PNG with one."""
    if len(data) >= 24 and data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
        w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        return (w, h) if w and h else None
    return None


MAX_PIXELS = 2**27  # 134 Mpx (a 400 MB BGR array): a few kB of PNG can claim 100,000 x 100,000 pixels


def _claimed_pixels(data: bytes, size: tuple | None = None) -> int | None:
    """Width x height from the file's header, None where Pillow cannot tell. JPEG and PNG headers are read
    here (a few segment lengths: Pillow's parser costs a fifth of the decode); other files by Pillow.
    ``size``: the header's (width, height, ...) when the caller has read it."""
    import io

    size = size or _jpeg_header(data) or _png_size(data)
    if size is not None:
        return int(size[0]) * int(size[1])

    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
    except Image.DecompressionBombError as exc:  # over twice Pillow's own limit: its message has the size
        numbers = [int(n) for n in re.findall(r"[0-9]+", str(exc))]
        return numbers[0] if numbers else MAX_PIXELS + 1
    except Exception:  # noqa: BLE001 - not for Pillow to judge: OpenCV decides below
        return None
    return int(w) * int(h)


def decode_image(data: bytes, path: str | os.PathLike) -> np.ndarray:
    """Decode the bytes of an image file (``path`` names it in errors) into a uint8 (H, W, 3) BGR array.

    An image whose header claims more than :data:`MAX_PIXELS` is refused before decoding (a decompression bomb
    would exhaust memory; OpenCV's own limit is 2^30 pixels, 3 GB per image)."""
    import cv2

    if not data:
        raise ImageError(path, "file is empty (0 bytes)")
    header = _jpeg_header(data)
    pixels = _claimed_pixels(data, header)
    if pixels is not None and pixels > MAX_PIXELS:
        raise ImageError(path, f"image claims {pixels} pixels, over the limit of {MAX_PIXELS} per image: not decoded")
    if _jpeg_truncated(data):
        raise ImageError(path, f"truncated or corrupt JPEG (no end-of-image marker; {len(data)} bytes)")
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise ImageError(path, f"cannot decode image: {str(exc).strip().splitlines()[-1]}") from None
    if image is None:
        raise ImageError(path, f"cannot decode image (corrupt, truncated or unsupported format; {len(data)} bytes)")
    if image.size == 0:
        raise ImageError(path, "decoded image has no pixels")
    if data.startswith(_JPEG_SOI) and _jpeg_partial(data, image, header):
        raise ImageError(path, f"truncated or corrupt JPEG (its data ends before the last pixel; {len(data)} bytes)")
    return image  # IMREAD_COLOR: always uint8 (H, W, 3) BGR


def load_image(path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES) -> np.ndarray:
    """Decode an image file into a uint8 (H, W, 3) BGR array.

    Raises :class:`fiqa_bench.errors.ImageError` (naming the file) when it is missing, unreadable, not a regular
    file (a FIFO or device is never opened), over ``max_bytes``, empty, truncated, corrupt or in a format
    OpenCV cannot decode. Files named by a benchmark go through :func:`fiqa_bench.data.safepath.resolve` first.
    """
    return decode_image(read_regular(path, max_bytes), path)
