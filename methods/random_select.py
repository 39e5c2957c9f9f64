"""``random``: the paper's "random selection" baseline — a quality that carries no information.

Any quality method should beat choosing images at random; this method is that floor. The value must be
reproducible, must not depend on how the runner batches or orders images (scores are cached per image and batches
are cut anywhere), and must not depend on the library build that decodes or warps the image (an OpenCV release
that rounds one pixel of one crop differently must not reshuffle the baseline). So it is not drawn from a
generator stream, and it is not a hash of pixels: each image's value is a hash of the seed and the image's name,

    q = first 24 bits of SHA-256(b"fiqa-bench-random" | seed (8 bytes, little endian, signed) | b"path\\0" | path)
        / 2**24

where ``path`` is the face's ``Face.path`` as UTF-8 text in POSIX form (``\\`` read as a separator, as
:func:`fiqa_bench.data.safepath.name_problem` reads it; repeated ``/`` and ``.`` components dropped, so
``a//./b.jpg`` and ``a\\b.jpg`` key as ``a/b.jpg``). In a benchmark run that is the image's path relative to
the benchmark root, exactly as the protocol lists it (:class:`fiqa_bench.pipeline.stages.FaceSource`), so the same
benchmark gives the same values on every machine and with every build of OpenCV, numpy or the JPEG decoder, and
a benchmark prepared again (whose degraded copies may differ in a few bytes) keeps every value.

The value is uniform on [0, 1) over names, exactly representable in float32, identical whether the image is
scored alone or in any batch, and different for every seed. It is a property of the image *file*, not of the face
in it: two rows that list the same file (e.g. two faces of one frame) get the same value, and so do the degraded
versions of one photo that ``train-baseline evaluate`` rebuilds from a single source file (their ladder is then
all ties: exactly chance).

A face with an empty ``path`` (made in memory, e.g. by a caller holding decoded images, not by the runner) has
no name to key on; it falls back to the decoded pixels,

    q = first 24 bits of SHA-256(b"fiqa-bench-random" | seed | b"pixels\\0" | dtype | shape | pixel bytes) / 2**24

which is reproducible for the same array and batch-independent too, but moves with whatever decoded the image.
The ``path`` and ``pixels`` tags keep the two key spaces apart. The card's input is ``face``: the runner hands
the decoded face as it is, so no crop is warped for this method (its cost is one hash per image).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from fiqa_bench.api import QualityMethod
from fiqa_bench.api.cards import InputSpec, MethodCard

_DOMAIN = b"fiqa-bench-random"
_BITS = 24  # float32 has a 24-bit significand: every value k / 2**24 is exact


def posix_key(path: Any) -> str:
    """The name a face is keyed on: ``path`` in POSIX form (``\\`` as ``/``; empty and ``.`` parts dropped);
    ``""`` for no path."""
    text = os.fspath(path) if path is not None else ""
    if not isinstance(text, str):  # bytes paths
        text = os.fsdecode(text)
    if not text:
        return ""
    return PurePosixPath(text.replace("\\", "/")).as_posix()


class RandomQuality(QualityMethod):
    """Uniform random quality in [0, 1), a pure function of ``(seed, the image's benchmark-relative path)``."""

    OPTION_HELP = {"seed": "set with --seed"}

    card = MethodCard(
        name="random",
        version="2",
        summary=(
            "Random selection baseline: q = SHA-256(seed, the image's path relative to the benchmark root) mapped "
            "to [0, 1) (a face without a path: its decoded pixels); reproducible, independent of batching, order "
            "and the decoder's build, carries no information about quality"
        ),
        licence="MIT",
        paper="baseline ('random selection'); no publication",
        input=InputSpec("face"),
        higher_is_better=True,
        score_range="[0, 1), uniform",
        weights=None,
    )

    def __init__(self, seed: int = 0) -> None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an integer, got {seed!r}")
        self.seed = int(seed)

    def identity(self) -> str:
        return f"{super().identity()}-seed{self.seed}"

    def _prefix(self) -> bytes:
        return _DOMAIN + self.seed.to_bytes(8, "little", signed=True)

    def value(self, face: Any) -> float:
        """The score of one face (a :class:`fiqa_bench.faces.Face` or anything with ``path`` and ``image``)."""
        h = hashlib.sha256(self._prefix())
        key = posix_key(getattr(face, "path", ""))
        if key:
            h.update(b"path\x00")
            h.update(key.encode("utf-8", "surrogateescape"))
        else:
            image = getattr(face, "image", None)
            if image is None:
                raise ValueError("random: a face with neither a path nor an image has nothing to key on")
            image = np.ascontiguousarray(image)
            h.update(b"pixels\x00")
            h.update(f"{image.dtype.str}{image.shape!r}".encode())
            h.update(image.tobytes())
        return int.from_bytes(h.digest()[:3], "big") / float(1 << _BITS)

    def score(self, faces: Any) -> np.ndarray:
        if isinstance(faces, np.ndarray):
            raise ValueError(
                f"random takes faces (fiqa_bench.faces.Face, card input 'face'), got an array "
                f"{faces.dtype} {faces.shape}"
            )
        return np.asarray([self.value(f) for f in faces], dtype=np.float32).reshape(-1)
