"""The protocol-independent view of an evaluation that the runner works on.

Every protocol reduces to the same two tables:

* ``faces``: one row per image — ``path`` (relative to ``root``), ``identity`` (str), ``group`` (int64: the
  template, video or — for single-image protocols like LFW — the image itself), ``media`` (int64: IJB media
  id, else same as group), ``face_score`` (float, NaN if unknown) and 10 landmark columns ``lx0, ly0, ...,
  lx4, ly4`` in image pixels (NaN where landmarks must be detected). Landmark order is ArcFace's: left eye,
  right eye (as seen in the image), nose tip, left and right mouth corner.
* ``pairs``: one row per comparison — ``a``, ``b`` (group ids), ``label`` (1 genuine, 0 impostor) and
  ``fold`` (0..k-1 for k-fold protocols, -1 otherwise).

``metric`` names the protocol kind, a label from the protocol's card (template 1:1 verification, k-fold pair
verification, ...: reports never put two kinds in one table); ``metrics`` the declared metrics (registered keys)
the protocol reports, in display order: they, not the kind, decide what is computed and shown.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

LANDMARK_COLUMNS = [f"{axis}{i}" for i in range(5) for axis in ("lx", "ly")]
FACE_COLUMNS = ["path", "identity", "group", "media", "face_score", *LANDMARK_COLUMNS]
PAIR_COLUMNS = ["a", "b", "label", "fold"]


@dataclass
class Benchmark:
    name: str
    root: Path
    faces: pd.DataFrame
    pairs: pd.DataFrame
    metric: str
    version: str = "1"
    source_files: list[Path] = field(default_factory=list)
    detect_pad: float = 0.0  # fraction of the image size padded on each side before detection (tight crops)
    notes: list[str] = field(default_factory=list)
    metrics: tuple[str, ...] = ()  # the declared metrics reported, from the protocol's card

    def __post_init__(self) -> None:
        missing = [c for c in FACE_COLUMNS if c not in self.faces.columns]
        if missing:
            raise ValueError(f"faces table lacks columns {missing}")
        missing = [c for c in PAIR_COLUMNS if c not in self.pairs.columns]
        if missing:
            raise ValueError(f"pairs table lacks columns {missing}")
        if not self.metric:
            raise ValueError(
                f"benchmark {self.name!r} names no protocol kind: its protocol's card gives one (metric=..., a label)"
            )
        if not self.metrics:
            raise ValueError(
                f"benchmark {self.name!r} names no metric: its protocol's card lists the declared metrics "
                f"it reports (metrics=(...), keys of the entry-point group fiqa_bench.metrics)"
            )
        self.metrics = tuple(str(k) for k in self.metrics)

    def landmarks(self) -> np.ndarray:
        """(N, 5, 2) float32 landmarks; rows of NaN where they must be detected."""
        return self.faces[LANDMARK_COLUMNS].to_numpy(np.float32).reshape(-1, 5, 2)

    def dataset_id(self) -> str:
        """The name the per-image caches (quality, embeddings) key this benchmark's images on: its name and the hash
        of its image list, so two benchmarks never share cached arrays."""
        return f"{self.name}-{self.fingerprint()['faces_sha256'][:16]}"

    def fingerprint(self) -> dict[str, str]:
        """Hashes of the template/image list and the pair list: results record exactly what was compared."""
        f = self.faces
        h_faces = hashlib.sha256()
        h_faces.update("\n".join(f["path"].astype(str)).encode())
        h_faces.update(f["group"].to_numpy(np.int64).tobytes())
        h_faces.update(f["media"].to_numpy(np.int64).tobytes())
        h_faces.update(np.nan_to_num(f[LANDMARK_COLUMNS].to_numpy(np.float64), nan=-1.0).round(3).tobytes())
        h_pairs = hashlib.sha256()
        for col in PAIR_COLUMNS:
            h_pairs.update(self.pairs[col].to_numpy(np.int64).tobytes())
        return {"faces_sha256": h_faces.hexdigest(), "pairs_sha256": h_pairs.hexdigest()}


def empty_landmarks(n: int) -> dict[str, np.ndarray]:
    return {c: np.full(n, np.nan, dtype=np.float32) for c in LANDMARK_COLUMNS}
