"""Reading and writing a CSV of comparisons with named columns (bob's CSV scores and the plain CSV share it)."""

from __future__ import annotations

import csv
from pathlib import Path

from ..atomic import atomic_path
from .base import bad_line


def read_rows(
    path: Path, required: tuple[str, ...], optional: tuple[str, ...] = (), what: str = "score file"
) -> tuple[dict, list[int]]:
    """{column: [values]} of the ``required`` and present ``optional`` columns (a header names them; others are
    ignored) and each row's line; a missing column, a short row or an empty field is an error naming the line."""
    try:
        handle = open(path, newline="", encoding="utf-8")
    except OSError as exc:
        raise bad_line(path, None, f"cannot read the {what} ({exc.strerror})") from None
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise bad_line(path, None, "empty file (expected a header line)")
        names = [h.strip() for h in header]
        missing = [c for c in required if c not in names]
        if missing:
            raise bad_line(path, 1, f"the header lacks the column(s) {', '.join(missing)} (it has {', '.join(names)})")
        twice = sorted({c for c in names if names.count(c) > 1})
        if twice:
            raise bad_line(path, 1, f"the header names {', '.join(twice)} twice")
        wanted = [c for c in (*required, *optional) if c in names]
        index = {c: names.index(c) for c in wanted}
        out: dict[str, list[str]] = {c: [] for c in wanted}
        lines: list[int] = []
        previous = reader.line_num
        for row in reader:
            line = previous + 1
            previous = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != len(names):
                raise bad_line(path, line, f"expected {len(names)} fields like the header, got {len(row)}")
            for c in wanted:
                value = row[index[c]].strip()
                if value == "":
                    raise bad_line(path, line, f"{c} is empty")
                out[c].append(value)
            lines.append(line)
    return out, lines


def write_rows(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path
