"""``random``: the paper's "random selection" baseline — a quality that carries no information.

Any quality method should beat choosing images at random; this method is that floor. The value must still be
reproducible and must not depend on how the runner batches or orders images (scores are cached per image and
batches are cut anywhere), so it is not drawn from a generator stream: each image's value is a hash of the seed
and the image's own pixels,

    q = first 24 bits of SHA-256(b"fiqa-bench-random" | seed (8 bytes, little endian) | shape | pixels) / 2**24

which is uniform on [0, 1) over images, exactly representable in float32, identical whether the image is scored
alone or in any batch, and different for every seed. Two byte-identical crops get the same value (they are the
same image as far as any quality method can tell).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from fiqa_bench.api import QualityMethod
from fiqa_bench.cards import InputSpec, MethodCard

_DOMAIN = b"fiqa-bench-random"
_BITS = 24  # float32 has a 24-bit significand: every value k / 2**24 is exact


class RandomQuality(QualityMethod):
    """Uniform random quality in [0, 1), a pure function of ``(seed, image pixels)``."""
    OPTION_HELP = {"seed": "set with --seed"}

    card = MethodCard(
        name="random",
        version="1",
        summary=(
            "Random selection baseline: q = SHA-256(seed, aligned-crop pixels) mapped to [0, 1); "
            "reproducible, independent of batching and order, carries no information about quality"
        ),
        licence="MIT",
        paper="baseline ('random selection'); no publication",
        input=InputSpec("aligned", 112, "RGB"),
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

    def score(self, images: Any) -> np.ndarray:
        if len(images) == 0:
            return np.zeros(0, dtype=np.float32)
        batch = np.asarray(images)
        if batch.ndim != 4 or batch.dtype != np.uint8:
            raise ValueError(f"expected uint8 aligned crops (N, S, S, 3), got {batch.dtype} {batch.shape}")
        prefix = _DOMAIN + self.seed.to_bytes(8, "little", signed=True)
        out = np.empty(len(batch), dtype=np.float32)
        for i, image in enumerate(batch):
            h = hashlib.sha256(prefix)
            h.update(repr(image.shape).encode())
            h.update(np.ascontiguousarray(image).tobytes())
            out[i] = int.from_bytes(h.digest()[:3], "big") / float(1 << _BITS)
        return out
