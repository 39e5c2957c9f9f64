"""Where things live: the user cache, and the read-only development data (``FIQA_SHARED``)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Root of everything fiqa-bench caches (weights, datasets, embeddings, quality scores).

    ``FIQA_BENCH_CACHE`` wins; else ``$XDG_CACHE_HOME/fiqa-bench``; else ``~/.cache/fiqa-bench``.
    """
    env = os.environ.get("FIQA_BENCH_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "fiqa-bench"


def shared_dir() -> Path | None:
    """The development data folder (``FIQA_SHARED``), or ``None`` when it is not present."""
    env = os.environ.get("FIQA_SHARED")
    if env:
        p = Path(env).expanduser()
        return p if p.is_dir() else None
    return None
