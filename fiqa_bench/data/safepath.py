"""Containment of the files a benchmark names: every image is resolved here, relative to the benchmark root.

A protocol's meta files are input like any other, written carelessly or on purpose to read elsewhere. So a
name is refused when it is absolute, escapes the root with ``..``, reaches outside the root through a symbolic
link (unless the user allows it: ``follow_symlinks``), or names anything but a regular file (a directory, a
named pipe that would block forever, a device that never ends). The type and size are checked with ``stat``
*before* the file is opened, and again on the open descriptor (``fstat``), so a FIFO is never opened for reading
and a file swapped in between is caught; at most ``max_bytes`` are read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from fiqa_bench.errors import ImageError, UnsafePathError

DEFAULT_MAX_IMAGE_BYTES = 64 * 2**20  # the largest IJB-C frame is ~7 MB; 64 MiB leaves room, stops a runaway read


def name_problem(rel: str) -> str | None:
    """Why a relative name from a meta file may not be used (None when it may): lexical checks only, so readers
    can run them on millions of names without touching the disk."""
    if not isinstance(rel, str) or not rel:
        return "empty file name"
    if "\x00" in rel:
        return "file name contains a NUL byte"
    if rel.startswith(("/", "\\")) or (len(rel) > 1 and rel[1] == ":" and rel[0].isalpha()):
        return f"absolute file name {rel!r}: names must be relative to the benchmark folder"
    parts = rel.replace("\\", "/").split("/")
    if ".." in parts:
        return f"file name {rel!r} goes up with '..': names must stay inside the benchmark folder"
    return None


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _inside(real_root: str, real: str) -> bool:
    """Whether the resolved path ``real`` is ``real_root`` or under it (both as ``os.path.realpath`` gives them:
    absolute and normalised, so a prefix test on whole components is exact)."""
    return real == real_root or real.startswith(real_root if real_root.endswith(os.sep) else real_root + os.sep)


def _realpath(full: Path, real_dirs: dict[str, str] | None) -> str:
    """``os.path.realpath(full)``. With ``real_dirs`` (folder -> its resolved path, filled as it goes), a file that
    is not itself a link costs one ``lstat``: its resolved path is its folder's, resolved once per folder
    instead of one ``lstat`` per path component per image."""
    if real_dirs is None:
        return os.path.realpath(full)
    folder, name = os.path.split(str(full))
    try:
        if stat.S_ISLNK(os.lstat(full).st_mode):
            return os.path.realpath(full)
    except OSError:  # missing or unreadable: resolved the slow way, reported by the read that follows
        return os.path.realpath(full)
    real_folder = real_dirs.get(folder)
    if real_folder is None:
        real_folder = real_dirs[folder] = os.path.realpath(folder)
    return os.path.join(real_folder, name)


def resolve(
    root: str | os.PathLike,
    rel: str,
    *,
    follow_symlinks: bool = False,
    real_root: str | None = None,
    real_dirs: dict[str, str] | None = None,
) -> Path:
    """``root / rel`` once it is known to stay inside ``root``; raises :class:`UnsafePathError` otherwise.

    With ``follow_symlinks`` a link may point anywhere (the user said so); without, the fully resolved path
    (every link on the way followed) must still be under the resolved root (``real_root``: that, computed once
    by a caller resolving many names; ``real_dirs``: a dict the caller keeps for the resolved folders, see
    :func:`_realpath`).
    """
    root = Path(root)
    full = root / rel
    problem = name_problem(rel)
    if problem is not None:
        raise UnsafePathError(full, problem)
    if not follow_symlinks:
        real_root = real_root or os.path.realpath(root)
        real = _realpath(full, real_dirs)
        if not _inside(real_root, real):
            raise UnsafePathError(
                full,
                f"a symbolic link leads outside the benchmark folder {root} (to {real}); "
                f"pass --follow-symlinks to allow it",
            )
    return full


def read_regular(path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; :class:`ImageError` naming the file otherwise."""
    return read_regular_stat(path, max_bytes)[0]


def read_regular_stat(
    path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES
) -> tuple[bytes, os.stat_result]:
    """:func:`read_regular`, with the ``fstat`` of the descriptor read: the identity (size, mtime) of exactly the
    bytes returned, so a cache key needs no second ``stat``."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ImageError(path, "file not found") from None
    except PermissionError:
        raise ImageError(path, "permission denied") from None
    except OSError as exc:
        raise ImageError(path, f"cannot read file: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        if stat.S_ISDIR(st.st_mode):
            raise ImageError(path, "is a directory, not an image file")
        raise ImageError(path, f"is {_kind(st.st_mode)}, not a regular file: not read")
    if st.st_size > max_bytes:
        raise ImageError(
            path, f"file is {st.st_size} bytes, over the {max_bytes}-byte limit per image (--max-image-bytes)"
        )
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except PermissionError:
        raise ImageError(path, "permission denied") from None
    except OSError as exc:
        raise ImageError(path, f"cannot read file: {exc.strerror or exc}") from None
    try:
        fst = os.fstat(fd)
        if not stat.S_ISREG(fst.st_mode) or (fst.st_dev, fst.st_ino) != (st.st_dev, st.st_ino):
            raise ImageError(path, "file was replaced while being opened: not read")
        chunks, left = [], max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise ImageError(path, f"cannot read file: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > max_bytes:
        raise ImageError(path, f"file grew past the {max_bytes}-byte limit per image while being read")
    return data, fst
