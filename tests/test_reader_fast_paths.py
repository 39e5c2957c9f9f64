"""The IJB reader's fast paths (issue 12): the duplicate-pair search gives the set scan's answer whether the ids
fit 16 bits (uint32 keys), 31 bits or more, and whether the file lists its pairs in order (no sort) or not."""

from __future__ import annotations

import numpy as np
import pytest

from protocols._tables import first_duplicate_pair


def _set_scan(a: np.ndarray, b: np.ndarray):
    seen: dict[tuple[int, int], int] = {}
    for i, (x, y) in enumerate(zip(a.tolist(), b.tolist())):
        key = (min(x, y), max(x, y))
        if key in seen:
            return i, seen[key]
        seen[key] = i
    return None


@pytest.mark.parametrize("top", [300, 2**16 - 1, 2**16 + 5, 2**31 - 1])
@pytest.mark.parametrize("ordered", [False, True])
def test_duplicate_pair_search_matches_a_set_scan(top, ordered):
    rng = np.random.default_rng(top + ordered)
    for trial in range(30):
        n = int(rng.integers(2, 400))
        a = rng.integers(0, top + 1, n)
        b = rng.integers(0, top + 1, n)
        a[0], b[-1] = top, top  # the largest id is present: the key width is chosen from it
        if ordered:
            lo, hi = np.minimum(a, b), np.maximum(a, b)
            keys = np.unique(lo.astype(np.int64) * (top + 1) + hi)
            a, b = keys // (top + 1), keys % (top + 1)
            if trial % 2:
                a, b = b, a  # the same pairs written the other way round
        if trial % 3 == 0 and len(a) > 3:  # a repeat, either way round
            i, j = sorted(rng.choice(len(a), 2, replace=False))
            a, b = a.copy(), b.copy()
            a[j], b[j] = (b[i], a[i]) if trial % 2 else (a[i], b[i])
        for dtype in (np.int32, np.int64) if top < 2**31 else (np.int64,):
            assert first_duplicate_pair(a.astype(dtype), b.astype(dtype)) == _set_scan(a, b)


def test_no_pairs_no_duplicate():
    assert first_duplicate_pair(np.zeros(0, np.int32), np.zeros(0, np.int32)) is None
