"""Small numeric helpers shared by inference and training, so that each exists once."""

from __future__ import annotations

import numpy as np


def l2_normalise(rows: np.ndarray, zero_rows: str = "zero") -> np.ndarray:
    """Each row divided by its L2 norm, in float64.

    ``zero_rows``: what an all-zero row becomes: ``"zero"`` (it stays zero: its cosine with anything is 0, what
    scoring wants) or ``"nan"`` (it and any non-finite row become NaN: "no direction", what labelling wants, so
    that such rows are dropped rather than labelled).
    """
    if zero_rows not in ("zero", "nan"):
        raise ValueError(f"zero_rows must be 'zero' or 'nan', got {zero_rows!r}")
    e = np.asarray(rows, dtype=np.float64)
    norms = np.linalg.norm(e, axis=1, keepdims=True)
    out = e / np.where(norms > 0, norms, 1.0)
    if zero_rows == "nan":
        out[~(np.isfinite(norms[:, 0]) & (norms[:, 0] > 0))] = np.nan
    return out
