"""bob's 4- and 5-column score files (bob.measure / bob.bio.base), one comparison per line, fields split by
whitespace, empty lines and lines starting with ``#`` ignored (as bob's own loaders do)::

    4 columns:  claimed_id real_id test_label score
    5 columns:  claimed_id model_label real_id test_label score

``claimed_id`` is the subject of the reference (bob's model), ``real_id`` the subject of the probe, ``test_label`` the
probe sample and, in 5 columns, ``model_label`` the reference sample. A line is genuine exactly when
``claimed_id == real_id``. Neither format has a quality field: qualities come from a per-sample quality file
(``sample,quality``, keyed by the sample label). With 4 columns the reference has no label of its own, so it is
keyed (and counted as one sample, labelled ``model:<claimed_id>``) by its ``claimed_id``.

Reference for the layouts: bob.bio.base's score loaders (``bob/bio/base/score/load.py``: ``four_column``,
``five_column``, ``split_four_column``, ``split_five_column``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fiqa_bench.formats.base import (
    PairFormat,
    PairTable,
    bad_line,
    check_labels_follow_subjects,
    check_token,
    number_text,
    parse_score,
    quality_path,
    read_sample_quality,
    sample_quality_of,
    write_sample_quality,
)

#: How the reference of a 4-column line is labelled as a sample: its subject, marked apart from probe labels.
MODEL_PREFIX = "model:"


class _Columns(PairFormat):
    columns = 4
    suffix = ".txt"

    def read(self, path: Path, quality: Path | None = None) -> PairTable:
        five = self.columns == 5
        fields = _fast_columns(path, self.columns)
        if fields is not None:  # every line a comparison: line i + 1 is row i
            *names, scores_a = fields
            if five:
                claimed, model, real, test = names
            else:
                claimed, real, test = names
                model = np.char.add(MODEL_PREFIX, claimed)
            table = self._table(path, model, test, claimed, real, scores_a, np.arange(1, len(scores_a) + 1))
        else:
            table = self._read_lines(path)
        if not five:
            table.check = lambda: _check_four(table)  # type: ignore[method-assign]
        table.check()
        if quality is not None:
            known = read_sample_quality(quality)
            keys = table.ref if five else table.ref_subject
            table.ref_quality = sample_quality_of(keys, table.lines, known, str(path), quality)
            table.probe_quality = sample_quality_of(table.probe, table.lines, known, str(path), quality)
        return table

    @staticmethod
    def _table(path, ref, probe, ref_subject, probe_subject, scores, lines) -> PairTable:
        ref_s, probe_s = np.asarray(ref_subject, dtype=str), np.asarray(probe_subject, dtype=str)
        return PairTable(
            source=str(path),
            ref=np.asarray(ref, dtype=str),
            probe=np.asarray(probe, dtype=str),
            ref_subject=ref_s,
            probe_subject=probe_s,
            scores=np.asarray(scores, dtype=np.float64),
            labels=(ref_s == probe_s).astype(np.int8),
            lines=np.asarray(lines, dtype=np.int64),
        )

    def _read_lines(self, path: Path) -> PairTable:
        """Line by line, as bob's loaders read: what names the line of any problem."""
        refs, probes, ref_subj, probe_subj, scores, lines = [], [], [], [], [], []
        five = self.columns == 5
        try:
            handle = open(path, encoding="utf-8")
        except OSError as exc:
            raise bad_line(path, None, f"cannot read the score file ({exc.strerror})") from None
        with handle:
            for line, text in enumerate(handle, start=1):
                s = text.strip()
                if not s or s.startswith("#"):
                    continue
                fields = s.split()
                if len(fields) != self.columns:
                    raise bad_line(path, line, f"expected {self.columns} fields ({self.layout}), got {len(fields)}")
                if five:
                    claimed, model, real, test, score = fields
                else:
                    claimed, real, test, score = fields
                    model = MODEL_PREFIX + claimed  # the reference, one per subject: never the same as a probe label
                refs.append(model)
                probes.append(test)
                ref_subj.append(claimed)
                probe_subj.append(real)
                scores.append(parse_score(score, path, line))
                lines.append(line)
        return self._table(path, refs, probes, ref_subj, probe_subj, scores, lines)

    @property
    def layout(self) -> str:
        return (
            "claimed_id model_label real_id test_label score"
            if self.columns == 5
            else "claimed_id real_id test_label score"
        )

    def write(self, table: PairTable, path: Path) -> list[Path]:
        from fiqa_bench.data.atomic import atomic_path
        from fiqa_bench.errors import FiqaBenchError

        check_labels_follow_subjects(table, f"bob's {self.columns}-column file")
        if self.columns == 4:
            seen: dict[tuple[str, str], int] = {}
            for i, key in enumerate(zip(table.ref_subject.tolist(), table.probe.tolist())):
                if key in seen:
                    j = seen[key]
                    raise FiqaBenchError(
                        f"comparisons {j + 1} ({table.ref[j]} vs {key[1]}) and {i + 1} ({table.ref[i]} vs {key[1]}) "
                        f"would be one line: bob's 4-column files name the reference by its subject ({key[0]}) only; "
                        f"export --format bob5, bobcsv or csv"
                    )
                seen[key] = i
        rows = []
        for i in range(len(table)):
            claimed = check_token(str(table.ref_subject[i]), "subject")
            real = check_token(str(table.probe_subject[i]), "subject")
            test = check_token(str(table.probe[i]), "sample label")
            score = number_text(table.scores[i])
            if self.columns == 5:
                rows.append(f"{claimed} {check_token(str(table.ref[i]), 'sample label')} {real} {test} {score}\n")
            else:
                rows.append(f"{claimed} {real} {test} {score}\n")
        with atomic_path(path) as tmp:
            tmp.write_text("".join(rows), encoding="utf-8")
        written = [path]
        if self.columns == 5 and table.ref_quality is not None and table.probe_quality is not None:
            labels = np.concatenate([table.ref, table.probe])
            values = np.concatenate([table.ref_quality, table.probe_quality])
            written.append(write_sample_quality(quality_path(path), labels, values))
        return written


def _fast_columns(path: Path, columns: int) -> list[np.ndarray] | None:
    """The fields of a file in which every line is one well-formed comparison, read at once (pandas), the scores
    parsed as Python parses them; None when any line is not (a comment, an empty line, a field too many or too few,
    a score that is no finite number): the file is then read line by line, which names the line."""
    import io

    import pandas as pd

    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise bad_line(path, None, f"cannot read the score file ({exc.strerror})") from None
    if not blob or b"#" in blob or b"\r" in blob:
        return None
    n_lines = blob.count(b"\n") + (0 if blob.endswith(b"\n") else 1)
    try:
        frame = pd.read_csv(
            io.BytesIO(blob),
            sep=r"\s+",
            header=None,
            names=list(range(columns + 1)),
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            skip_blank_lines=True,
            encoding="utf-8",
        )
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError):
        return None
    if len(frame) != n_lines or frame[columns].notna().any() or frame[columns - 1].isna().any():
        return None
    try:  # numpy parses text as Python does: the float a line's text means, to the last bit
        scores = frame[columns - 1].to_numpy(dtype=str).astype(np.float64)
    except ValueError:
        return None
    if not np.isfinite(scores).all():
        return None
    return [frame[c].to_numpy(dtype=str) for c in range(columns - 1)] + [scores]


def _check_four(table: PairTable) -> None:
    """4 columns name the reference by its subject only: a line repeated exactly is the one thing to refuse."""
    if len(table) == 0:
        raise bad_line(table.source, None, "no comparisons")
    seen: dict[tuple[str, str], int] = {}
    for r, p, line in zip(table.ref.tolist(), table.probe.tolist(), table.lines.tolist()):
        if (r, p) in seen:
            raise bad_line(table.source, line, f"{r} and {p} are already compared on line {seen[(r, p)]}")
        seen[(r, p)] = line


class Bob4(_Columns):
    name = "bob4"
    columns = 4
    summary = "bob's 4-column score file: claimed_id real_id test_label score"


class Bob5(_Columns):
    name = "bob5"
    columns = 5
    summary = "bob's 5-column score file: claimed_id model_label real_id test_label score"


BOB4 = Bob4()
BOB5 = Bob5()
