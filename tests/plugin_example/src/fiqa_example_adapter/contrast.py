"""``example-contrast``: RMS contrast of the aligned face, a stand-in for "your quality method here".

RMS contrast (Peli 1990) is the standard deviation of the luminance, here ``0.299 R + 0.587 G + 0.114 B`` divided
by 255, over the central face region of the 112x112 ArcFace crop (rows 24-103, columns 24-87: the eyes, nose and
mouth, clear of the black border that alignment adds near image edges). Washed-out, dark or heavily blurred
faces have low contrast. The value is in [0, 0.5]; higher is better.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fiqa_bench.api import QualityMethod
from fiqa_bench.api.cards import InputSpec, MethodCard

SIZE = 112
REGION = (slice(24, 104), slice(24, 88))
_LUMA = np.array([0.299, 0.587, 0.114])


class ContrastQuality(QualityMethod):
    """RMS contrast of the central face region of the aligned crop."""

    card = MethodCard(
        name="example-contrast",
        version="1",
        summary="RMS contrast: std of luminance/255 over rows 24-103, cols 24-87 of the 112x112 aligned RGB crop",
        licence="MIT",
        paper="E. Peli, 'Contrast in complex images', J. Opt. Soc. Am. A 7(10), 1990",
        input=InputSpec("aligned", SIZE, "RGB"),
        higher_is_better=True,
        score_range="[0, 0.5]",
        weights=None,
    )

    def score(self, images: Any) -> np.ndarray:
        # An empty batch is valid and gives an empty result.
        if len(images) == 0:
            return np.zeros(0, dtype=np.float32)
        batch = np.asarray(images)
        if batch.dtype != np.uint8 or batch.shape[1:] != (SIZE, SIZE, 3):
            raise ValueError(f"expected uint8 aligned crops (N, {SIZE}, {SIZE}, 3), got {batch.dtype} {batch.shape}")
        # Image by image (not batch statistics), so a face's score never depends on its batch.
        luma = batch[:, REGION[0], REGION[1], :].astype(np.float64) @ _LUMA / 255.0
        return luma.reshape(len(batch), -1).std(axis=1).astype(np.float32)
