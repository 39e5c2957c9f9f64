"""Disk caches for per-image arrays (detections, quality scores, embeddings).

A cache is a folder named by the producer's identity (detector, method or backbone: name, version, weights
sha256, preprocessing) and the dataset. Inside, values are stored in shard files, each written atomically, so a
run that is interrupted (Ctrl-C, kill) loses at most the shard it was filling and the next run resumes from the
rest. Keys are image identities (see :func:`image_key`); a changed file, crop or landmark set yields a new key,
so stale values are never served.

A shard is trusted only after checks on load: it names its producer (the identity the folder stands for) and
width, carries the sha256 of its keys and values, and its values are finite (detections may hold all-NaN rows:
no face). A shard that fails any check is not used; it is counted (:attr:`ArrayCache.rejected_shards`), set
aside as ``rejected-shard-*.npz``, and its values are recomputed like missing ones. Finished work is written at
least every ``FLUSH_EVERY`` values or ``FLUSH_SECONDS`` seconds, so a kill loses little; the shards a run wrote
are merged into one when its stage ends (:meth:`ArrayCache.consolidate`), so resumed runs leave few files.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from fiqa_bench.data.atomic import atomic_path
from fiqa_bench.data.paths import cache_dir
from fiqa_bench.errors import FileAccessError


def safe_name(text: str, limit: int = 80) -> str:
    """A readable, filesystem-safe folder name with a hash suffix so distinct identities never collide."""
    clean = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)[:limit]
    return f"{clean}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def image_key(root: Path, rel_path: str, extra: bytes | str = b"", stat: tuple[int, int] | None = None) -> str:
    """Identity of one image as an input: its path relative to the dataset root, size and mtime, plus ``extra``
    (e.g. the landmarks used to crop it). Reading the file content would cost as much as decoding it.
    ``stat``: (size, mtime_ns) of the bytes that were read (see :func:`fiqa_bench.data.safepath.read_regular_stat`),
    else the file is stat'ed now."""
    if stat is None:
        try:
            st = os.stat(Path(root) / rel_path)
        except OSError as exc:  # removed or made unreadable since it was decoded
            raise FileAccessError(Path(root) / rel_path, f"cannot stat: {exc.strerror or exc}") from None
        stat = (st.st_size, st.st_mtime_ns)
    h = hashlib.sha1()
    h.update(rel_path.encode())
    h.update(f"|{stat[0]}|{stat[1]}|".encode())
    h.update(extra.encode() if isinstance(extra, str) else extra)
    return h.hexdigest()


FLUSH_EVERY = 256  # values; issue 11: persisted at least every 256 images or 5 s (cost: benchmarks/bench_resume.py)
FLUSH_SECONDS = 5.0
SHARD_FORMAT = 2


def shard_checksum(producer: str, width: int, keys: np.ndarray, values: np.ndarray) -> str:
    """sha256 over what a shard claims: producer, width, keys (in order) and the float32 values' bytes."""
    h = hashlib.sha256()
    h.update(f"{SHARD_FORMAT}|{producer}|{width}|{len(keys)}|".encode())
    h.update("\n".join(keys.tolist()).encode())
    h.update(np.ascontiguousarray(values, dtype="<f4").tobytes())
    return h.hexdigest()


class ArrayCache:
    """Key -> float32 vector store of fixed width, persisted as atomic, checksummed ``.npz`` shards.

    ``producer``: the identity whose values these are (checked on every shard); ``nan_rows``: whether an all-NaN
    row is a legitimate value (a detection that found no face) rather than damage."""

    def __init__(
        self,
        folder: Path,
        width: int,
        flush_every: int = FLUSH_EVERY,
        flush_seconds: float = FLUSH_SECONDS,
        *,
        producer: str = "",
        nan_rows: bool = False,
        track_run: str | None = None,
    ):
        self.folder = Path(folder)
        self.width = int(width)
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self.producer = str(producer)
        self.nan_rows = bool(nan_rows)
        self.rejected_shards = 0  # shards not used: unreadable, wrong producer/width, bad checksum or values
        self.rejected_reasons: dict[str, str] = {}  # shard file name -> why
        self._index: dict[str, np.ndarray] = {}
        self._pending_keys: list[str] = []
        self._pending_vals: list[np.ndarray] = []
        self._written: list[Path] = []  # shards this instance wrote (merged by consolidate())
        self._last_flush = time.monotonic()
        # Units of work (see :meth:`view`): shards carry the tag of the unit that wrote them ("RUN/STAGE/SHARD");
        # on load, the keys of the units whose tag starts with ``track_run`` + "/" (one stage of one run) are kept
        # by tag, so a unit sent again after its worker died knows which of its hits its own lost attempt
        # computed (:attr:`reused`: counted as computed now).
        self.track_run = track_run
        self.work: str | None = None  # the tag written into this instance's shards
        self.work_keys: dict[str, set[str]] = {}
        self.reused: set[str] = set()
        self._load()

    @classmethod
    def for_producer(
        cls, kind: str, producer_identity: str, dataset: str, width: int, track_run: str | None = None
    ) -> ArrayCache:
        folder = cache_dir() / kind / safe_name(producer_identity) / safe_name(dataset)
        return cls(
            folder,
            width,
            producer=f"{kind}|{producer_identity}|{dataset}",
            nan_rows=kind == "detections",
            track_run=track_run,
        )

    # -- loading ---------------------------------------------------------------------------------
    def _reject(self, shard: Path, reason: str, set_aside: bool = True) -> None:
        """Count a shard that is not used; set it aside (``rejected-*``, kept for inspection) so the next run
        neither trusts nor counts it again, its values being recomputed into a new shard."""
        self.rejected_shards += 1
        self.rejected_reasons[shard.name] = reason
        if set_aside:
            try:
                shard.rename(shard.with_name("rejected-" + shard.name))
            except OSError:
                pass

    def _check(self, keys: np.ndarray, vals: np.ndarray, meta: dict) -> str | None:
        """Why a shard's content cannot be trusted, or None."""
        if meta.get("format") != SHARD_FORMAT:
            return f"shard format {meta.get('format')!r}, expected {SHARD_FORMAT} (written by another version)"
        if meta.get("producer") != self.producer:
            return f"written by producer {meta.get('producer')!r}, not {self.producer!r}"
        if (
            vals.dtype != np.float32
            or vals.ndim != 2
            or vals.shape[1] != self.width
            or keys.ndim != 1
            or keys.shape[0] != vals.shape[0]
            or keys.dtype.kind != "U"
        ):
            return (
                f"keys {keys.dtype}{keys.shape} / values {vals.dtype}{vals.shape}, "
                f"expected (N,) str / (N, {self.width}) float32"
            )
        if meta.get("sha256") != shard_checksum(self.producer, self.width, keys, vals):
            return "checksum mismatch (the shard was changed or damaged after it was written)"
        finite = np.isfinite(vals)
        ok = finite.all(axis=1)
        if self.nan_rows:
            ok |= np.isnan(vals).all(axis=1)
        if not ok.all():
            return f"{int((~ok).sum())} row(s) with NaN/inf values"
        return None

    def _load(self) -> None:
        if not self.folder.is_dir():
            return
        try:
            shards = sorted(self.folder.glob("shard-*.npz"))
        except OSError as exc:
            raise FileAccessError(self.folder, f"cannot list cache folder: {exc.strerror or exc}") from None
        for shard in shards:
            try:
                with np.load(shard, allow_pickle=False) as z:
                    keys, vals = z["keys"], z["values"]
                    meta = json.loads(str(z["meta"])) if "meta" in z.files else {}
            except Exception as exc:  # noqa: BLE001 - a shard that cannot be read is not used (and recomputed)
                self._reject(shard, f"unreadable: {type(exc).__name__}")
                continue
            meta = meta if isinstance(meta, dict) else {}
            if meta.get("width") not in (None, self.width):  # another reader's width: not damage, leave it
                self._reject(shard, f"width {meta.get('width')}, not {self.width}", set_aside=False)
                continue
            problem = self._check(keys, vals, meta)
            if problem is not None:
                self._reject(shard, problem)
                continue
            keys = keys.tolist()
            for k, v in zip(keys, vals):
                self._index[k] = v
            work = meta.get("work")
            if self.track_run and isinstance(work, str) and work.startswith(self.track_run + "/"):
                self.work_keys.setdefault(work, set()).update(keys)

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
        mine = self.work_keys.get(self.work) if self.work is not None else None
        for i, k in enumerate(keys):
            v = self._index.get(k)
            if v is not None:
                out[i] = v
                found[i] = True
                if mine and k in mine:
                    self.reused.add(k)
        return found, out

    # -- writing ---------------------------------------------------------------------------------
    def put_many(self, keys: Iterable[str], values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float32).reshape(-1, self.width)
        for k, v in zip(keys, values):
            self._index[k] = v
            self._pending_keys.append(k)
            self._pending_vals.append(v)
        if len(self._pending_keys) >= self.flush_every or time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def _write_shard(self, keys: list[str], vals: list[np.ndarray]) -> Path:
        karr = np.array(keys, dtype=str)
        varr = np.stack(vals).astype(np.float32)
        meta = {
            "format": SHARD_FORMAT,
            "producer": self.producer,
            "width": self.width,
            "n": len(keys),
            "sha256": shard_checksum(self.producer, self.width, karr, varr),
        }
        if self.work is not None:
            meta["work"] = self.work
        name = f"shard-{time.time_ns():020d}-{os.getpid()}.npz"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.folder / name) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(fh, keys=karr, values=varr, meta=np.array(json.dumps(meta)))
        except FileAccessError:
            raise
        except OSError as exc:
            raise FileAccessError(
                self.folder,
                f"cannot write the cache: {exc.strerror or exc} (set FIQA_BENCH_CACHE to a writable folder)",
            ) from None
        return self.folder / name

    def flush(self) -> None:
        """Write pending values as a new shard (atomically)."""
        if not self._pending_keys:
            return
        self._written.append(self._write_shard(self._pending_keys, self._pending_vals))
        self._pending_keys.clear()
        self._pending_vals.clear()
        self._last_flush = time.monotonic()

    def view(self, work: str | None = None) -> ArrayCache:
        """This cache for one unit of work (a shard on a Ray worker): the same in-memory index, so values found or
        computed before stay found, but its own pending values and written shards, so :meth:`consolidate` merges
        this unit's values only, never the whole history of a long-lived worker. The folder is not read again.
        ``work``: the unit's tag, written into its shards; its hits on values an earlier attempt of the same unit
        wrote (a worker that died after flushing them) are collected in :attr:`reused`."""
        import copy

        view = copy.copy(self)  # shallow: the index dict is shared
        view.work, view.reused = work, set()
        view._pending_keys, view._pending_vals, view._written = [], [], []
        view.rejected_shards, view.rejected_reasons = 0, {}
        view._last_flush = time.monotonic()
        return view

    def forget_written(self) -> None:
        """Shards written so far stay on disk but are no longer this instance's to merge (see :meth:`view`)."""
        self._written = []

    def consolidate(self) -> None:
        """Flush, then merge the shards this instance wrote into one (kill-safe: the merged shard is written
        before the parts are removed, and duplicate keys carry the same values)."""
        self.flush()
        parts = [p for p in self._written if p.exists()]
        if len(parts) <= 1:
            return
        keys, vals = [], []
        for p in parts:
            with np.load(p, allow_pickle=False) as z:
                keys.extend(z["keys"].tolist())
                vals.extend(z["values"])
        merged = self._write_shard(keys, vals)
        for p in parts:
            p.unlink(missing_ok=True)
        self._written = [merged]

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
