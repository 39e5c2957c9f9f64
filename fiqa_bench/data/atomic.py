"""Atomic file writes: a reader (or a resumed run) never sees a half-written file.

Files are created with the user's umask like any other program's (``tempfile.mkstemp`` would make them 0600,
so a colleague could not read a prepared benchmark or a results file): the temporary file is opened with mode
0666 and the kernel applies the umask. Every OS error while writing becomes a :class:`FileAccessError` naming
the path, and :func:`check_writable` lets a command fail before any work instead of after it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fiqa_bench.errors import FileAccessError


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def _make_dirs(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise FileAccessError(folder, "exists and is not a folder") from None
    except OSError as exc:
        raise FileAccessError(folder, f"cannot create folder: {_reason(exc)}") from None


def _create_temp(target: Path, suffix: str) -> Path:
    """A new empty file beside ``target``, created O_EXCL with mode 0666 & ~umask."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}{suffix}.tmp"
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise FileAccessError(target.parent, f"cannot write here: {_reason(exc)}") from None
        os.close(fd)
        return tmp
    raise FileAccessError(target.parent, "cannot create a temporary file (100 names taken)")


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is fsynced and renamed over ``target``.

    On any exception the temporary file is removed and ``target`` is left untouched; an ``OSError`` (in the
    caller's writing too) is raised as :class:`FileAccessError` naming ``target``.
    """
    target = Path(target)
    _make_dirs(target.parent)
    tmp_path = _create_temp(target, suffix)
    try:
        try:
            yield tmp_path
            with open(tmp_path, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp_path, target)
        except FileAccessError:
            raise
        except OSError as exc:
            raise FileAccessError(target, f"cannot write: {_reason(exc)}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | os.PathLike, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_json(target: str | os.PathLike, obj: Any) -> None:
    write_text(target, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")


def check_writable(folder: str | os.PathLike, what: str) -> Path:
    """Create ``folder`` if needed and prove a file can be written in it, before any work starts.

    ``what`` says which folder it is in the message (``"results folder (--out)"``, ``"cache folder
    (FIQA_BENCH_CACHE)"``). Raises :class:`FileAccessError` with one line naming the folder."""
    folder = Path(folder).expanduser()
    try:
        _make_dirs(folder)
    except FileAccessError as exc:
        raise FileAccessError(folder, f"{what}: {exc.reason}") from None
    if not folder.is_dir():
        raise FileAccessError(folder, f"{what}: not a folder")
    try:
        probe = _create_temp(folder / "write-test", "")
    except FileAccessError as exc:
        raise FileAccessError(folder, f"{what}: {exc.reason}") from None
    with contextlib.suppress(OSError):
        probe.unlink()
    return folder
