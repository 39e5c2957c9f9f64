"""Fetching and finding pinned files (weights, datasets) so results are reproducible and offline use is easy.

Two rules hold everywhere: nothing partial or corrupt ever sits at a final path (downloads stream into a
temporary file beside the target, are checked against the pinned sha256, then renamed), and when a file cannot
be fetched the error says exactly which URL to fetch by hand and where to put the result.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import urllib.error
import urllib.request
from pathlib import Path

from fiqa_bench.api.cards import Weights
from fiqa_bench.data import atomic, paths
from fiqa_bench.errors import ChecksumError, DownloadError

CHUNK = 1 << 20
MODELS_ENV = "FIQA_BENCH_MODELS"


def sha256_of(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def download(
    url: str, dest: str | os.PathLike, sha256: str | None, *, progress: bool = True, timeout: float = 60
) -> Path:
    """Stream ``url`` to ``dest``; verify ``sha256`` (when given) before the file appears at ``dest``.

    Raises :class:`DownloadError` (HTTP error, no connection, transfer shorter than Content-Length) or
    :class:`ChecksumError`; in both cases the temporary file is removed and ``dest`` is untouched.
    """
    from tqdm.auto import tqdm

    dest = Path(dest)
    expected = sha256.lower() if sha256 else None
    with atomic.atomic_path(dest, suffix=".part") as tmp:
        digest = hashlib.sha256()
        received = 0
        try:
            request = urllib.request.Request(url, headers={"User-Agent": "fiqa-bench"})
            with urllib.request.urlopen(request, timeout=timeout) as response:
                header = response.headers.get("Content-Length")
                total = int(header) if header and header.isdigit() else None
                with (
                    open(tmp, "wb") as out,
                    tqdm(
                        total=total,
                        unit="B",
                        unit_scale=True,
                        unit_divisor=1024,
                        desc=dest.name,
                        disable=not progress,
                        leave=False,
                    ) as bar,
                ):
                    while True:
                        block = response.read(CHUNK)
                        if not block:
                            break
                        out.write(block)
                        digest.update(block)
                        received += len(block)
                        bar.update(len(block))
        except urllib.error.HTTPError as exc:
            raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
        except urllib.error.URLError as exc:
            raise DownloadError(f"{url}: cannot connect ({exc.reason})") from exc
        except (http.client.HTTPException, TimeoutError, ConnectionError, OSError) as exc:
            raise DownloadError(f"{url}: transfer failed after {received} bytes ({type(exc).__name__}: {exc})") from exc
        if total is not None and received != total:
            raise DownloadError(f"{url}: transfer interrupted: got {received} of {total} bytes")
        got = digest.hexdigest()
        if expected is not None and got != expected:
            raise ChecksumError(f"{url}: sha256 mismatch: expected {expected}, got {got} ({received} bytes)")
    return dest


# -- finding weights -----------------------------------------------------------------------------------------


def _stamp_path(path: Path) -> Path:
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:24]
    return paths.cache_dir() / "weights" / ".verified" / f"{key}.json"


def _file_key(path: Path) -> dict:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _remember(path: Path, sha256: str) -> None:
    try:
        atomic.write_json(_stamp_path(path), {**_file_key(path), "sha256": sha256.lower()})
    except OSError:  # a read-only cache only costs a re-hash next time
        pass


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a local file, hashed only when its size or mtime changed since the last time.

    The hash is remembered in a small stamp under the cache (the file itself may live in a read-only folder),
    keyed by absolute path, size and mtime, so a 250 MB model is not re-hashed on every run.
    """
    path = Path(path)
    key = _file_key(path)
    try:
        stamp = json.loads(_stamp_path(path).read_text())
        if {k: stamp.get(k) for k in key} == key and isinstance(stamp.get("sha256"), str):
            return stamp["sha256"]
    except (OSError, ValueError, AttributeError):
        pass
    digest = sha256_of(path)
    _remember(path, digest)
    return digest


def verify_local(path: str | os.PathLike, sha256: str | None) -> Path:
    """Check a local file against its pinned sha256 (see :func:`file_sha256` for when it is re-hashed)."""
    path = Path(path)
    if not sha256:
        return path
    got = file_sha256(path)
    if got != sha256.lower():
        raise ChecksumError(
            f"{path}: sha256 mismatch: expected {sha256.lower()}, got {got}. The file is corrupt or a different "
            f"version; delete or replace it (it will be downloaded again if it is in the cache)."
        )
    return path


def _candidates(filename: str) -> list[Path]:
    found: list[Path] = []
    for d in filter(None, os.environ.get(MODELS_ENV, "").split(os.pathsep)):
        p = Path(d).expanduser() / filename
        if p.is_file():
            found.append(p)
    shared = paths.shared_dir()
    if shared is not None and (shared / "models").is_dir():
        found.extend(sorted(p for p in (shared / "models").rglob(filename) if p.is_file()))
    return found


def weights_cache_path(weights: Weights) -> Path:
    return paths.cache_dir() / "weights" / weights.filename


def manual_instructions(weights: Weights) -> str:
    """Where to get ``weights`` by hand and where to put it (used in every 'cannot find' error)."""
    target = weights_cache_path(weights)
    lines = []
    if weights.url:
        lines.append(f"Fetch {weights.url} by hand and save it as {target}")
    else:
        lines.append(f"Place {weights.filename} at {target}")
    if weights.note:
        lines.append(weights.note)
    lines.append(f"or put {weights.filename} in a folder listed in ${MODELS_ENV} (separated by {os.pathsep!r}).")
    if weights.sha256:
        lines.append(f"Expected sha256: {weights.sha256}")
    return "\n".join(lines)


def resolve_weights(weights: Weights, *, progress: bool = True) -> Path:
    """Path to a verified local copy of ``weights``.

    Search order: ``$FIQA_BENCH_MODELS`` folders, ``$FIQA_SHARED/models/**``, the cache
    (``cache_dir()/weights``); else download into the cache.
    """
    if weights.bundled:
        raise ValueError(f"{weights.filename} is bundled with its adapter; resolve it with importlib.resources")
    for p in _candidates(weights.filename):
        return verify_local(p, weights.sha256)
    cached = weights_cache_path(weights)
    if cached.is_file():
        return verify_local(cached, weights.sha256)
    if not weights.url:
        raise DownloadError(
            f"{weights.filename} is not available locally and has no download URL.\n" + manual_instructions(weights)
        )
    try:
        download(weights.url, cached, weights.sha256, progress=progress)
    except (DownloadError, ChecksumError) as exc:
        raise type(exc)(f"could not download {weights.filename}: {exc}\n" + manual_instructions(weights)) from exc
    if weights.sha256:  # hashed while streaming: remember it so the next run does not re-hash
        _remember(cached, weights.sha256)
    return cached
