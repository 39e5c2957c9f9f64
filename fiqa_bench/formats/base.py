"""The score-format seam: what a format reads and writes, and the checks every format shares.

A :class:`PairFormat` reads a file of comparisons into a :class:`PairTable` (one row per comparison: the two
samples' labels and subjects, the score, the label, and quality where the format carries it) and writes one back;
an :class:`ImageFormat` reads per-image arrays aligned with a protocol's face list into :class:`ImageArrays`.
Every problem with an input is one :class:`~fiqa_bench.errors.FiqaBenchError` naming the file and its line.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fiqa_bench.errors import FiqaBenchError

__all__ = [
    "PairTable",
    "ImageArrays",
    "PairFormat",
    "ImageFormat",
    "bad_line",
    "parse_score",
    "read_sample_quality",
    "write_sample_quality",
    "number_text",
    "check_token",
    "check_labels_follow_subjects",
    "read_rows",
    "write_rows",
]


def bad_line(path: str | Path, line: int | None, problem: str) -> FiqaBenchError:
    """``FILE:LINE: problem`` (``FILE: problem`` without a line): the one line a bad input prints."""
    return FiqaBenchError(f"{path}:{line}: {problem}" if line is not None else f"{path}: {problem}")


def parse_score(text: str, path: str | Path, line: int, what: str = "score") -> float:
    """A finite number read from ``text`` (else an error naming the file and line)."""
    try:
        value = float(text)
    except ValueError:
        raise bad_line(path, line, f"{what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise bad_line(path, line, f"{what} is {text} (must be a finite number)")
    return value


def number_text(value: float) -> str:
    """A number as text that reads back to the same float64 (and so to the same float32)."""
    return repr(float(value))


def check_labels_follow_subjects(table: PairTable, fmt: str) -> None:
    """bob's formats derive a comparison's label from its subjects: a table whose labels say otherwise cannot be
    written in them."""
    wrong = np.flatnonzero((table.ref_subject == table.probe_subject) != (table.labels == 1))
    if wrong.size:
        i = int(wrong[0])
        raise FiqaBenchError(
            f"comparison {i + 1} ({table.ref[i]} vs {table.probe[i]}) is labelled "
            f"{'genuine' if table.labels[i] == 1 else 'impostor'} but its subjects are {table.ref_subject[i]!r} and "
            f"{table.probe_subject[i]!r}: {fmt} derives the label from the subjects (export --format csv keeps labels "
            f"as they are)"
        )


def check_token(value: str, what: str) -> str:
    """A label written into a whitespace-separated file must hold no whitespace (it would split the line)."""
    if not value or any(ch.isspace() for ch in value):
        raise FiqaBenchError(f"{what} {value!r} is empty or holds whitespace: it cannot be written as one field")
    return value


@dataclass
class PairTable:
    """Comparisons as a score file holds them, one row each (``lines``: the line of each row in ``source``).

    ``ref``/``probe`` label the two samples (a template, an image, a bob model or probe), ``ref_subject`` and
    ``probe_subject`` their subjects (what the bootstrap resamples), ``labels`` 1 genuine and 0 impostor. Quality is
    either per side (``ref_quality``, ``probe_quality``: the pair quality is combined from them as a run combines its
    templates', :func:`fiqa_bench.metrics.edc.pair_quality`) or per pair (``pair_quality``), or absent."""

    source: str
    ref: np.ndarray
    probe: np.ndarray
    ref_subject: np.ndarray
    probe_subject: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    lines: np.ndarray
    ref_quality: np.ndarray | None = None
    probe_quality: np.ndarray | None = None
    pair_quality: np.ndarray | None = None
    folds: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def check(self) -> None:
        """No repeated comparison (it would count twice), no sample compared with itself, at least one row."""
        if len(self) == 0:
            raise bad_line(self.source, None, "no comparisons")
        seen: dict[tuple[str, str], int] = {}
        for r, p, line in zip(self.ref.tolist(), self.probe.tolist(), self.lines.tolist()):
            if r == p:
                raise bad_line(self.source, line, f"sample {r} is compared with itself")
            key = (r, p) if r <= p else (p, r)
            if key in seen:
                raise bad_line(self.source, line, f"{r} and {p} are already compared on line {seen[key]}")
            seen[key] = line


@dataclass
class ImageArrays:
    """Per-image arrays in the order of a protocol's face list: ``embeddings`` (N, D) float32 and ``quality`` (N,)
    (None: no quality). ``sources`` names the file each came from (for the results file and messages)."""

    embeddings: np.ndarray
    quality: np.ndarray | None
    sources: dict[str, str]


class PairFormat:
    """A format of comparisons. ``quality`` of :meth:`read`: a per-sample quality file keyed by the sample label
    (:func:`read_sample_quality`), where the format's own lines carry none."""

    name = ""
    kind = "pairs"
    summary = ""
    suffix = ".txt"

    def read(self, path: Path, quality: Path | None = None) -> PairTable:
        raise NotImplementedError

    def write(self, table: PairTable, path: Path) -> list[Path]:
        """Write ``table`` to ``path`` (and any side file); returns every file written."""
        raise NotImplementedError


class ImageFormat:
    """A format of per-image arrays aligned with a protocol's face list."""

    name = ""
    kind = "images"
    summary = ""
    suffix = ".npz"

    def read(self, path: Path, n_faces: int, faces_file: str, quality: Path | None = None) -> ImageArrays:
        raise NotImplementedError

    def write(self, arrays: ImageArrays, path: Path) -> list[Path]:
        raise NotImplementedError


# ------------------------------------------------------------------------------------- CSV with named columns
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
    from fiqa_bench.data.atomic import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


# ------------------------------------------------------------------------------------- per-sample quality
QUALITY_HEADER = ("sample", "quality")


def quality_path(path: Path) -> Path:
    """Where an export puts the per-sample quality of a score file: ``scores.txt`` -> ``scores.quality.csv``."""
    return path.with_name(path.stem + ".quality.csv")


def read_sample_quality(path: Path) -> dict[str, tuple[float, int]]:
    """``sample,quality`` lines (a header line first) -> {sample label: (quality, line)}; a repeated label, a missing
    field or a value that is no finite number is an error naming the line."""
    cols, lines = read_rows(path, QUALITY_HEADER, what="quality file")
    out: dict[str, tuple[float, int]] = {}
    for label, value, line in zip(cols["sample"], cols["quality"], lines):
        if label in out:
            raise bad_line(path, line, f"sample {label} already has a quality on line {out[label][1]}")
        out[label] = (parse_score(value, path, line, "quality"), line)
    return out


def sample_quality_of(
    samples: np.ndarray, lines: np.ndarray, table: dict[str, tuple[float, int]], scores_file: str, quality_file: Path
) -> np.ndarray:
    """The quality of each sample of a score file, from a per-sample quality file (every sample must have one)."""
    out = np.empty(samples.shape[0], dtype=np.float64)
    for i, (label, line) in enumerate(zip(samples.tolist(), lines.tolist())):
        hit = table.get(label)
        if hit is None:
            raise bad_line(scores_file, line, f"sample {label} has no quality in {quality_file}")
        out[i] = hit[0]
    return out


def write_sample_quality(path: Path, labels: np.ndarray, quality: np.ndarray) -> Path:
    """One ``sample,quality`` line per distinct sample (first occurrence order); a sample with two qualities or a
    NaN quality is refused."""
    from fiqa_bench.data.atomic import atomic_path

    seen: dict[str, float] = {}
    for label, q in zip(labels.tolist(), np.asarray(quality, dtype=np.float64).tolist()):
        if not math.isfinite(q):
            raise FiqaBenchError(f"sample {label} has no finite quality ({q}): nothing to write to {path}")
        if label in seen and seen[label] != q:
            raise FiqaBenchError(f"sample {label} has two qualities ({seen[label]!r} and {q!r}); cannot key them")
        seen[label] = q
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(QUALITY_HEADER)
        for label, q in seen.items():
            writer.writerow([label, number_text(q)])
    return path
