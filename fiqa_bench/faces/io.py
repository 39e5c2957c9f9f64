"""Image decoding: every image enters the pipeline through :func:`load_image`, so all adapters see the same pixels.

Bytes are read by Python and decoded by ``cv2.imdecode`` (``cv2.imread`` fails silently on non-ASCII paths on
some platforms). Decoding uses ``cv2.IMREAD_COLOR``, i.e. exactly what ``cv2.imread(path)`` gives: 8-bit BGR,
grey images expanded to 3 equal channels, 16-bit images reduced to 8 bits (high byte), alpha dropped, and the
EXIF orientation applied.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ImageError

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
    last_scan = data.rfind(_JPEG_SOS)
    if last_scan < 0:
        return True
    return data.find(_JPEG_EOI, last_scan) < 0


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file into a uint8 (H, W, 3) BGR array.

    Raises :class:`fiqa_bench.errors.ImageError` (naming the file) when it is missing, unreadable, empty,
    truncated, corrupt or in a format OpenCV cannot decode.
    """
    import cv2

    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise ImageError(path, "file not found") from None
    except IsADirectoryError:
        raise ImageError(path, "is a directory, not an image file") from None
    except PermissionError:
        raise ImageError(path, "permission denied") from None
    except OSError as exc:
        raise ImageError(path, f"cannot read file: {exc.strerror or exc}") from None
    if not data:
        raise ImageError(path, "file is empty (0 bytes)")
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
    return image  # IMREAD_COLOR: always uint8 (H, W, 3) BGR
