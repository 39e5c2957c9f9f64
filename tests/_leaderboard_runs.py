"""Real runs for the leaderboard tests: methods run on the small real-face benchmark, made once per session.

Both tests/test_leaderboard.py and tests/test_browser.py build sites from these results files (and hand-edited
copies of them for the edge cases), so the runs are made once and shared.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: Methods whose runs the leaderboard tests rank (each takes seconds on the small benchmark); None: no method.
METHODS = ("blur", "random", "jpeg", "pose", None)
_DONE: dict[str, Path] = {}


def real_runs(small_bench: Path, backbone: str, root: Path) -> Path:
    """A folder holding one results file (+ .npz) per method of METHODS on ``small_bench``."""
    from fiqa_bench.config import RunConfig
    from fiqa_bench.pipeline.runner import run

    key = f"{small_bench}|{backbone}"
    if key in _DONE:
        return _DONE[key]
    out = root / "runs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FIQA_BENCH_CACHE", str(root / "cache"))
        for method in METHODS:
            run(
                RunConfig(
                    protocol=str(small_bench),
                    backbone=backbone,
                    method=method,
                    selection="top1" if method else "all",
                    out=str(out),
                    progress=False,
                )
            )
    assert len(list(out.glob("*.json"))) == len(METHODS), os.listdir(out)
    _DONE[key] = out
    return out
