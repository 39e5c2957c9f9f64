"""Quality labels (Peng et al., Eq. 1 and Algorithm 1): how close an image's embedding lies to its identity's centre.

``quality(x) = cosine(f_x, u_y)``, ``f_x`` the FR embedding of image ``x`` and ``u_y`` the centre of its identity
``y`` in angular space. The paper takes ``u_y`` from the FR model's classifier weights (Algorithm 1: "extract
weights W of the classifier layer"). None of fiqa-bench's backbones ships a classifier (the insightface, dlib and
MobileFaceNet releases hold the embedding network only, and our data are not their training identities), so by
default the centre is estimated from the data: the mean of the identity's L2-normalised embeddings.

**Leave-one-out** (default): the image itself is left out of its own centre. With few images per identity
(CelebA-dev has a median of 22, LFW of 1-14) an image's own embedding is a large share of the mean and pulls the
centre towards itself, inflating its label; with k images, ``cos(f, mean including f)`` is at least ~1/sqrt(k)
even for an embedding orthogonal to all the others. Identities with one image (or one group, below) therefore
have no centre and get NaN, and so does an image with an all-zero embedding; NaN rows are meant to be dropped.

``class_centres`` (identity -> vector) replaces the estimate by given centres, e.g. the rows of a classifier
layer when a backbone has one; then nothing is left out (the classifier centre does not depend on one image).

``groups``: rows that must be left out together, e.g. a photo and its synthetic degraded copies (a copy's label
must not be raised by its own clean original in the centre). ``reference``: which rows build the centres (e.g.
only the undegraded photos, so that synthetic copies do not pull the centre); every row still gets a label.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from fiqa_bench.mathutil import l2_normalise as _l2_normalise


def l2_normalise(embeddings: np.ndarray) -> np.ndarray:
    """Rows divided by their norm (float64); all-zero or non-finite rows become NaN (no centre, no label)."""
    return _l2_normalise(embeddings, zero_rows="nan")


def quality_labels(
    embeddings: np.ndarray,
    identities: Sequence,
    leave_one_out: bool = True,
    *,
    class_centres: Mapping[object, np.ndarray] | None = None,
    groups: Sequence | None = None,
    reference: np.ndarray | None = None,
) -> np.ndarray:
    """Eq. 1 for every row: float32 (N,), cosine in [-1, 1], NaN where the row has no centre.

    ``embeddings`` (N, D) raw FR embeddings (normalised here); ``identities`` (N,) any hashable labels.
    """
    f = l2_normalise(embeddings)
    n = f.shape[0]
    ids = np.asarray(identities, dtype=object)
    if ids.shape != (n,):
        raise ValueError(f"identities must have shape ({n},), got {ids.shape}")
    if n == 0:
        return np.zeros(0, np.float32)
    valid = np.isfinite(f).all(axis=1)
    fz = np.where(valid[:, None], f, 0.0)

    if class_centres is not None:
        dim = f.shape[1]
        centres = np.full((n, dim), np.nan)
        for i, y in enumerate(ids):
            c = class_centres.get(y)
            if c is not None:
                centres[i] = np.asarray(c, dtype=np.float64).reshape(dim)
        return _cosine(fz, centres, valid)

    _, idx = np.unique(ids.astype(str), return_inverse=True)
    ref = np.ones(n, bool) if reference is None else np.asarray(reference, bool).reshape(n)
    use = ref & valid
    n_ids = int(idx.max()) + 1
    sums = np.zeros((n_ids, f.shape[1]))
    np.add.at(sums, idx[use], fz[use])
    counts = np.bincount(idx[use], minlength=n_ids)
    centre = sums[idx]
    count = counts[idx].astype(np.int64)
    if leave_one_out:
        grp = (
            np.arange(n)
            if groups is None
            else np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)[1]
        )
        # rows of the same identity and group are removed from each other's centre
        key = idx.astype(np.int64) * (int(grp.max()) + 1) + grp
        _, gidx = np.unique(key, return_inverse=True)
        gsums = np.zeros((int(gidx.max()) + 1, f.shape[1]))
        np.add.at(gsums, gidx[use], fz[use])
        gcounts = np.bincount(gidx[use], minlength=int(gidx.max()) + 1)
        centre = centre - gsums[gidx]
        count = count - gcounts[gidx]
    centre[count < 1] = np.nan
    if not leave_one_out:
        centre[count < 2] = np.nan  # a centre made of the image alone says nothing (cosine 1)
    return _cosine(fz, centre, valid)


def _cosine(f: np.ndarray, centres: np.ndarray, valid: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(centres, axis=1)
    ok = valid & np.isfinite(norms) & (norms > 1e-12)
    out = np.full(f.shape[0], np.nan)
    out[ok] = np.einsum("ij,ij->i", f[ok], centres[ok]) / norms[ok]
    return np.clip(out, -1.0, 1.0).astype(np.float32)
