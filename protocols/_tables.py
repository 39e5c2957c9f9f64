"""Space-separated protocol tables (the IJB meta files): fast to read, exact about where they are wrong.

The fast path is pandas' C parser with one explicit dtype per column and no NA guessing, which reads IJB-C's
15.7M template pairs in seconds. Anything it refuses (a short or long line, a non-number, tabs, repeated or
trailing spaces, a literal ``nan``) sends the file through a line-by-line pass that either names the first bad
line or, when the file is merely written loosely, returns the same columns. Checks on the parsed values are
vectorised by the callers; :func:`fail_at_row` turns a bad row back into its 1-based line only then.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fiqa_bench.errors import ProtocolFormatError

Column = tuple[str, str]  # (name shown in messages, kind: "str" | "int" | "int32" | "float")

# "int32" halves the parser's memory traffic for huge integer tables (IJB-C pairs); a value that does not fit
# makes the fast path fail over to the exact pass, which returns int64, so callers must not rely on the width.
_PANDAS_DTYPES = {"str": object, "int": "int64", "int32": "int32", "float": "float64"}
_INT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def read_table(path: str | Path, columns: Sequence[Column]) -> list[np.ndarray]:
    """Read a whitespace-separated file with exactly ``len(columns)`` fields per non-blank line.

    Returns one array per column (object for ``str``, int64, float64). Raises :class:`ProtocolFormatError`
    naming the file and line for a wrong field count or a field that is not of its column's kind.
    """
    path = Path(path)
    if not path.is_file():
        raise ProtocolFormatError(path, None, "file not found")
    for _, kind in columns:
        if kind not in _PANDAS_DTYPES:
            raise ValueError(f"unknown column kind {kind!r}")
    try:
        frame = pd.read_csv(
            path,
            sep=" ",
            header=None,
            dtype={i: _PANDAS_DTYPES[kind] for i, (_, kind) in enumerate(columns)},
            engine="c",
            na_filter=False,
            quoting=csv.QUOTE_NONE,
            index_col=False,
            encoding="utf-8",
        )
    except Exception:  # noqa: BLE001 - any refusal means: look line by line
        return _scan(path, columns)
    if frame.shape[1] != len(columns) or frame.shape[0] == 0:
        return _scan(path, columns)
    arrays = [_column_array(frame[i], kind) for i, (_, kind) in enumerate(columns)]
    if any(kind == "float" and np.isinf(a).any() for a, (_, kind) in zip(arrays, columns)):
        return _scan(path, columns)  # names the line with the infinite value
    return arrays


def _column_array(series: pd.Series, kind: str) -> np.ndarray:
    if kind == "str":
        return series.to_numpy(dtype=object)
    return series.to_numpy(dtype={"int": np.int64, "int32": np.int32, "float": np.float64}[kind])


def _scan(path: Path, columns: Sequence[Column]) -> list[np.ndarray]:
    """The exact pass: split on any whitespace, check each field, name the first bad line."""
    n = len(columns)
    expected = " ".join(name for name, _ in columns)
    values: list[list] = [[] for _ in columns]
    with open_meta(path) as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ProtocolFormatError(path, lineno, "not UTF-8 text") from None
            fields = line.split()
            if not fields:
                continue
            if len(fields) != n:
                raise ProtocolFormatError(
                    path, lineno, f"expected {n} fields ({expected}), found {len(fields)}: {line.strip()!r}"
                )
            for i, ((name, kind), field) in enumerate(zip(columns, fields)):
                if kind in ("int", "int32"):
                    if not _INT.fullmatch(field):
                        raise ProtocolFormatError(path, lineno, f"field {i + 1} ({name}) is not an integer: {field!r}")
                    number: int | float = int(field)
                    if not _INT64_MIN <= number <= _INT64_MAX:
                        raise ProtocolFormatError(
                            path, lineno, f"field {i + 1} ({name}) is outside the 64-bit integer range: {field}"
                        )
                    values[i].append(number)
                elif kind == "float":
                    try:
                        number = float(field)
                    except ValueError:
                        raise ProtocolFormatError(
                            path, lineno, f"field {i + 1} ({name}) is not a number: {field!r}"
                        ) from None
                    if math.isinf(number):
                        raise ProtocolFormatError(path, lineno, f"field {i + 1} ({name}) is infinite: {field!r}")
                    values[i].append(number)
                else:
                    values[i].append(field)
    if not values[0]:
        raise ProtocolFormatError(path, None, "file has no rows")
    out = []
    for (_, kind), vals in zip(columns, values):
        if kind in ("int", "int32"):
            out.append(np.array(vals, dtype=np.int64))
        elif kind == "float":
            out.append(np.array(vals, dtype=np.float64))
        else:
            arr = np.empty(len(vals), dtype=object)
            arr[:] = vals
            out.append(arr)
    return out


def line_of_row(path: str | Path, row: int) -> int:
    """1-based line number of the ``row``-th (0-based) non-blank line: blank lines are not rows."""
    seen = -1
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if raw.strip():
                seen += 1
                if seen == row:
                    return lineno
    raise IndexError(f"{path} has no row {row}")


def fail_at_row(path: str | Path, row: int, reason: str) -> ProtocolFormatError:
    """The error for a row found bad after parsing (the caller raises it)."""
    return ProtocolFormatError(path, line_of_row(path, int(row)), reason)


def first_true(mask: np.ndarray) -> int | None:
    """Index of the first True in a boolean array, or None."""
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


def first_duplicate_pair(a: np.ndarray, b: np.ndarray) -> tuple[int, int] | None:
    """(row, earlier row) of the first pair that repeats an earlier one in either order, or None.

    A repeated pair counts twice in the metric (a duplicated genuine row inflates TPR), whichever way round. The
    common case (no repeat) costs one sort of one key per pair (~0.5 s for IJB-C's 15.7M pairs; none when the
    file lists them in template order); hashing them was 10x slower."""

    def pair_keys() -> np.ndarray:
        """One integer per unordered pair: uint32 (lo << 16 | hi) for ids below 2^16 (IJB's), else int64."""
        lo_min = min(int(a.min()), int(b.min())) if a.size else 0
        hi_max = max(int(a.max()), int(b.max())) if a.size else 0
        if lo_min >= 0 and hi_max < 2**16:
            keys = np.empty(a.size, np.uint32)
            np.minimum(a, b, out=keys, casting="unsafe")  # in range: the cast is exact
            keys <<= 16
            keys |= np.maximum(a, b).astype(np.uint32)
            return keys
        if lo_min >= 0 and hi_max < 2**31:
            keys = np.empty(a.size, np.int64)
            np.minimum(a, b, out=keys)
            keys <<= 31
            keys |= np.maximum(a, b)
            return keys
        # ids beyond 31 bits: rank them first, so each pair still fits in one int64
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        ids, inverse = np.unique(np.concatenate([lo, hi]), return_inverse=True)
        return (inverse[: lo.size].astype(np.int64) << 32) | inverse[lo.size :].astype(np.int64)

    ordered = pair_keys()
    if (ordered[1:] > ordered[:-1]).all():  # listed in template order: all distinct, no sort
        return None
    ordered.sort()
    if not (ordered[1:] == ordered[:-1]).any():
        return None
    keys = pair_keys()
    order = np.argsort(keys, kind="stable")
    same = np.flatnonzero(keys[order][1:] == keys[order][:-1])  # order[same + 1] repeats an earlier row
    later = order[same + 1]
    i = int(np.argmin(later))
    row = int(later[i])
    earlier = int(order[np.searchsorted(keys[order], keys[row], side="left")])
    return row, earlier


def first_unsafe_name(names: np.ndarray) -> int | None:
    """Row of the first file name that is absolute or climbs out with ``..`` (see fiqa_bench.data.safepath).

    One substring scan of all names joined (0.1-0.3 s for IJB-C's 469k; a regex: 1.7 s) clears the usual file; only
    when it finds a suspect is each name judged by :func:`fiqa_bench.data.safepath.name_problem`."""
    from fiqa_bench.data.safepath import name_problem

    if not len(names):
        return None
    joined = "\n" + "\n".join(map(str, names))
    if not any(token in joined for token in ("..", "\x00", "\n/", "\n\\", ":", "\n\n")) and joined[-1] != "\n":
        return None
    for row, name in enumerate(names):
        if name_problem(str(name)) is not None:
            return row
    return None


def open_meta(path: str | Path):
    """``open(path, "rb")`` with an OS error (permissions, a folder, I/O) as a one-line ProtocolFormatError."""
    try:
        return open(path, "rb")
    except OSError as exc:
        raise ProtocolFormatError(path, None, f"cannot read: {exc.strerror or exc}") from None


def text_lines(path: Path):
    """(line number, stripped text) of every non-empty line of a UTF-8 text file (gzip read transparently by
    :func:`open_meta`); a line that is not UTF-8 is a :class:`ProtocolFormatError` naming it."""
    with open_meta(path) as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                raise ProtocolFormatError(path, lineno, "not UTF-8 text") from None
            if line:
                yield lineno, line
