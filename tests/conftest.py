"""Shared fixtures. Tests that need the real data/models under ../shared skip with a reason when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _find_shared() -> Path | None:
    env = os.environ.get("FIQA_SHARED")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / "shared")
    for c in candidates:
        if (c / "data").is_dir() and (c / "models").is_dir():
            return c
    return None


SHARED = _find_shared()


@pytest.fixture(scope="session")
def shared() -> Path:
    """Root of the read-only development data (``FIQA_SHARED``, default ``../shared``)."""
    if SHARED is None:
        pytest.skip("real data not present: set FIQA_SHARED to the shared/ folder (data + models)")
    os.environ.setdefault("FIQA_SHARED", str(SHARED))
    return SHARED


@pytest.fixture()
def isolated_cache(tmp_path, monkeypatch) -> Path:
    """A fresh user cache folder so tests never touch ~/.cache."""
    d = tmp_path / "cache"
    monkeypatch.setenv("FIQA_BENCH_CACHE", str(d))
    return d
