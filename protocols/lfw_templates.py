"""LFW templates: a quick-start template protocol (TPR at FPR), derived deterministically from LFW View 2.

It exercises the template code path (several images fused per side) on data anyone can get, where IJB-B/C
are gated. Derivation, fixed so that every copy of LFW gives the same tables:

* the images are those referenced by View-2 ``pairs.txt`` (so the full 13,233-image LFW and the 7,701-image
  View-2 subset give the same protocol);
* identities with at least ``MIN_PHOTOS`` = 4 of those images, sorted by name (439 identities, 2,431 images);
* each identity's images, sorted by image number, are dealt alternately into two templates: positions 0, 2,
  4, ... form template ``2k``, positions 1, 3, 5, ... template ``2k + 1`` (k = identity rank): 878 templates;
* genuine pairs: the two templates of each identity (439); impostor pairs: every pair of templates of
  different identities (878 x 877 / 2 - 439 = 384,564), no sampling. Pairs are sorted by (a, b), a < b;
* media id = the image's row in the faces table (every image is its own media).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fiqa_bench.api import Protocol
from fiqa_bench.api.cards import ProtocolCard
from fiqa_bench.pipeline.benchmark import Benchmark, empty_landmarks
from fiqa_bench.protocols._layout import reject_unknown
from fiqa_bench.protocols._metrics import TEMPLATE_METRICS
from fiqa_bench.protocols.lfw import LFW


class LFWTemplates(Protocol):
    """Two templates per LFW identity with >= 4 View-2 images; all cross-identity template pairs are impostors."""

    card = ProtocolCard(
        name="lfw-templates",
        version="1",
        summary="LFW-derived template protocol: 439 identities with >= 4 View-2 images, 2 alternating templates "
        "each; 439 genuine + 384,564 impostor template pairs; TPR at FPR",
        licence="research use; news photographs, no image licence stated",
        paper="derived from G. B. Huang et al., Labeled Faces in the Wild, UMass TR 07-49, 2007",
        metric="tpr_at_fpr",
        metrics=TEMPLATE_METRICS,
        data="same files as 'lfw' (pairs.txt + lfw/ images); no extra download",
    )
    MIN_PHOTOS = 4
    DETECT_PAD = LFW.DETECT_PAD
    OPTIONS = LFW.OPTIONS

    def __init__(self, root: str | Path | None = None, **options: Any) -> None:
        super().__init__(root, **options)
        reject_unknown(self.card.name, options, self.OPTIONS)

    def load(self) -> Benchmark:
        root, parsed, images_dir = LFW(self.root, **self.options).parse()
        by_identity: dict[str, list[int]] = defaultdict(list)
        for i, (name, _) in enumerate(parsed.images):  # images are sorted by (name, number)
            by_identity[name].append(i)
        kept = [name for name in sorted(by_identity) if len(by_identity[name]) >= self.MIN_PHOTOS]

        paths: list[str] = []
        identities: list[str] = []
        groups: list[int] = []
        for k, name in enumerate(kept):
            for position, image in enumerate(by_identity[name]):
                paths.append(parsed.image_path(image, images_dir))
                identities.append(name)
                groups.append(2 * k + position % 2)
        n = len(paths)
        faces = pd.DataFrame(
            {
                "path": paths,
                "identity": identities,
                "group": np.array(groups, dtype=np.int64),
                "media": np.arange(n, dtype=np.int64),
                "face_score": np.full(n, np.nan, dtype=np.float32),
                **empty_landmarks(n),
            }
        )

        n_templates = 2 * len(kept)
        a, b = np.triu_indices(n_templates, k=1)
        same_identity = (a // 2) == (b // 2)
        label = same_identity.astype(np.int8)  # within one identity only (2k, 2k+1) exists: genuine
        pairs = pd.DataFrame(
            {
                "a": a.astype(np.int64),
                "b": b.astype(np.int64),
                "label": label,
                "fold": np.full(a.size, -1, dtype=np.int8),
            }
        )
        genuine = int(label.sum())
        return self.benchmark(
            faces,
            pairs,
            root=root,
            source_files=[parsed.path],
            detect_pad=self.DETECT_PAD,
            notes=[
                f"{len(kept)} identities with >= {self.MIN_PHOTOS} images, {n} images, {n_templates} templates, "
                f"{genuine} genuine + {len(pairs) - genuine} impostor pairs"
            ],
        )
