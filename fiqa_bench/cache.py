"""Disk caches for per-image arrays (detections, quality scores, embeddings).

A cache is a folder named by the producer's identity (detector, method or backbone: name, version, weights
sha256, preprocessing) and the dataset. Inside, values are stored in shard files, each written atomically, so a
run that is interrupted (Ctrl-C, kill) loses at most the shard it was filling and the next run resumes from the
rest. Keys are image identities (see :func:`image_key`); a changed file, crop or landmark set yields a new key,
so stale values are never served.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Iterable

import numpy as np

from .atomic import atomic_path
from .paths import cache_dir


def safe_name(text: str, limit: int = 80) -> str:
    """A readable, filesystem-safe folder name with a hash suffix so distinct identities never collide."""
    clean = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)[:limit]
    return f"{clean}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def image_key(root: Path, rel_path: str, extra: bytes | str = b"") -> str:
    """Identity of one image as an input: its path relative to the dataset root, size and mtime, plus ``extra``
    (e.g. the landmarks used to crop it). Reading the file content would cost as much as decoding it."""
    st = os.stat(Path(root) / rel_path)
    h = hashlib.sha1()
    h.update(rel_path.encode())
    h.update(f"|{st.st_size}|{st.st_mtime_ns}|".encode())
    h.update(extra.encode() if isinstance(extra, str) else extra)
    return h.hexdigest()


class ArrayCache:
    """Key -> float32 vector store of fixed width, persisted as atomic ``.npz`` shards."""

    def __init__(self, folder: Path, width: int, flush_every: int = 2048, flush_seconds: float = 30.0):
        self.folder = Path(folder)
        self.width = int(width)
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self._index: dict[str, np.ndarray] = {}
        self._pending_keys: list[str] = []
        self._pending_vals: list[np.ndarray] = []
        self._last_flush = time.monotonic()
        self._load()

    @classmethod
    def for_producer(cls, kind: str, producer_identity: str, dataset: str, width: int) -> "ArrayCache":
        folder = cache_dir() / kind / safe_name(producer_identity) / safe_name(dataset)
        return cls(folder, width)

    def _load(self) -> None:
        if not self.folder.is_dir():
            return
        for shard in sorted(self.folder.glob("shard-*.npz")):
            try:
                with np.load(shard, allow_pickle=False) as z:
                    keys, vals = z["keys"], z["values"]
            except Exception:  # a shard that cannot be read is ignored (and will be recomputed)
                continue
            if vals.ndim != 2 or vals.shape[1] != self.width:
                continue
            for k, v in zip(keys.tolist(), vals):
                self._index[k] = v

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def get(self, key: str) -> np.ndarray | None:
        return self._index.get(key)

    def get_many(self, keys: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """(found mask, values) with NaN rows where not found."""
        keys = list(keys)
        out = np.full((len(keys), self.width), np.nan, dtype=np.float32)
        found = np.zeros(len(keys), dtype=bool)
        for i, k in enumerate(keys):
            v = self._index.get(k)
            if v is not None:
                out[i] = v
                found[i] = True
        return found, out

    def put_many(self, keys: Iterable[str], values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float32).reshape(-1, self.width)
        for k, v in zip(keys, values):
            self._index[k] = v
            self._pending_keys.append(k)
            self._pending_vals.append(v)
        if len(self._pending_keys) >= self.flush_every or time.monotonic() - self._last_flush > self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Write pending values as a new shard (atomically)."""
        if not self._pending_keys:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"shard-{time.time_ns():020d}-{os.getpid()}.npz"
        with atomic_path(self.folder / name) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, keys=np.array(self._pending_keys), values=np.stack(self._pending_vals))
        self._pending_keys.clear()
        self._pending_vals.clear()
        self._last_flush = time.monotonic()

    def compact(self) -> None:
        """Merge all shards into one (keeps load time low after many resumed runs)."""
        self.flush()
        shards = sorted(self.folder.glob("shard-*.npz"))
        if len(shards) <= 1:
            return
        keys = list(self._index)
        self._pending_keys = keys
        self._pending_vals = [self._index[k] for k in keys]
        self.flush()
        newest = sorted(self.folder.glob("shard-*.npz"))[-1]
        for s in shards:
            if s != newest:
                s.unlink(missing_ok=True)
