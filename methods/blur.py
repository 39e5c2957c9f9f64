"""``blur``: sharpness of the aligned face as the variance of its Laplacian.

The variance of the Laplacian is the focus measure of Pech-Pacheco et al. (2000), "Diatom autofocusing in
brightfield microscopy: a comparative study" (ICPR 2000): defocus removes high frequencies, so the second
derivative flattens and its variance drops. Recipe, exactly:

1. the 112x112 RGB aligned crop (ArcFace template) -> grey with ``cv2.cvtColor(RGB2GRAY)``
   (0.299 R + 0.587 G + 0.114 B, rounded to uint8);
2. ``cv2.Laplacian(grey, CV_64F, ksize=3)`` over the whole crop (kernel [[2,0,2],[0,-8,0],[2,0,2]], OpenCV's
   ksize=3 aperture; default border);
3. the population variance of the Laplacian over the central face region rows 24..103, columns 24..87
   (64 x 80 px: eyebrows to below the mouth; the template puts the eyes at y=51.6 and the mouth at y=92.3).

The region keeps the black border that the alignment warp adds where a face is near the edge of its photo out of
the measure (its edge would otherwise dominate the variance): over 400 LFW and CelebA faces, no pixel of the region
is border in more than 1.3% of the crops (0.04% on average), against 21% for pixels of the top rows.

Higher = sharper. The value is in grey levels squared and depends on image content (texture, contrast) as well
as focus, so it ranks degraded versions of one face better than it ranks different faces.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fiqa_bench.api import QualityMethod
from fiqa_bench.api.cards import InputSpec, MethodCard

SIZE = 112
#: (row slice, column slice) of the 112x112 aligned crop that the variance is taken over.
REGION = (slice(24, 104), slice(24, 88))


def laplacian_variance(grey: np.ndarray) -> float:
    """Variance of the 3x3-aperture Laplacian of one uint8 grey 112x112 crop over :data:`REGION`."""
    import cv2

    lap = cv2.Laplacian(grey, cv2.CV_64F, ksize=3)
    return float(lap[REGION].var())


class BlurQuality(QualityMethod):
    """Variance of the Laplacian (Pech-Pacheco et al. 2000) on the central face region; higher = sharper."""

    card = MethodCard(
        name="blur",
        version="1",
        summary=(
            "Sharpness: variance of cv2.Laplacian(ksize=3, CV_64F) of the grey 112x112 aligned crop, "
            "over the central face region rows 24-103, cols 24-87 (avoids the warp's black border)"
        ),
        licence="MIT",
        paper=(
            "J. L. Pech-Pacheco, G. Cristobal, J. Chamorro-Martinez, J. Fernandez-Valdivia, 'Diatom autofocusing "
            "in brightfield microscopy: a comparative study', ICPR 2000"
        ),
        input=InputSpec("aligned", SIZE, "RGB"),
        higher_is_better=True,
        score_range="[0, inf), grey levels squared",
        weights=None,
    )

    def score(self, images: Any) -> np.ndarray:
        import cv2

        if len(images) == 0:
            return np.zeros(0, dtype=np.float32)
        batch = np.asarray(images)
        if batch.dtype != np.uint8 or batch.shape[1:] != (SIZE, SIZE, 3):
            raise ValueError(f"expected uint8 aligned crops (N, {SIZE}, {SIZE}, 3), got {batch.dtype} {batch.shape}")
        out = np.empty(len(batch), dtype=np.float32)
        for i, image in enumerate(batch):
            out[i] = laplacian_variance(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        return out
