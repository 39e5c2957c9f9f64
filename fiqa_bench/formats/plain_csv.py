"""A plain CSV of comparisons: a header line, then one comparison per line::

    ref_id,probe_id,ref_subject,probe_subject,label,score[,ref_quality,probe_quality | ,quality][,fold]

``label`` is 1 (genuine) or 0 (impostor), as given (not derived from the subjects); quality is either each side's
(``ref_quality`` and ``probe_quality``, combined into the pair's as a run combines its templates') or the pair's own
(``quality``); ``fold`` (0, 1, ...) makes the comparisons a k-fold protocol. The subjects feed the bootstrap.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fiqa_bench.errors import FiqaBenchError
from fiqa_bench.formats.base import PairFormat, PairTable, bad_line, number_text, parse_score, read_rows, write_rows

REQUIRED = ("ref_id", "probe_id", "ref_subject", "probe_subject", "label", "score")
OPTIONAL = ("ref_quality", "probe_quality", "quality", "fold")


class PlainCSV(PairFormat):
    name = "csv"
    summary = (
        "plain CSV: ref_id,probe_id,ref_subject,probe_subject,label,score[,ref_quality,probe_quality|quality][,fold]"
    )
    suffix = ".csv"

    def read(self, path: Path, quality: Path | None = None) -> PairTable:
        if quality is not None:
            raise FiqaBenchError(f"{quality}: --quality is for bob's formats; a plain CSV carries its quality columns")
        cols, lines = read_rows(path, REQUIRED, OPTIONAL)
        has = set(cols)
        if ("ref_quality" in has) != ("probe_quality" in has):
            raise bad_line(path, 1, "give both ref_quality and probe_quality (or quality, the pair's)")
        if "quality" in has and "ref_quality" in has:
            raise bad_line(
                path, 1, "give either the sides' quality (ref_quality, probe_quality) or the pair's (quality)"
            )
        labels = []
        for value, line in zip(cols["label"], lines):
            if value not in ("0", "1"):
                raise bad_line(path, line, f"label must be 0 or 1, got {value!r}")
            labels.append(int(value))

        def numbers(column: str) -> np.ndarray:
            return np.asarray([parse_score(v, path, ln, column) for v, ln in zip(cols[column], lines)], np.float64)

        folds = None
        if "fold" in has:
            out = []
            for value, line in zip(cols["fold"], lines):
                if not value.isdigit():
                    raise bad_line(path, line, f"fold must be an integer >= 0, got {value!r}")
                out.append(int(value))
            folds = np.asarray(out, dtype=np.int64)
        table = PairTable(
            source=str(path),
            ref=np.asarray(cols["ref_id"], dtype=str),
            probe=np.asarray(cols["probe_id"], dtype=str),
            ref_subject=np.asarray(cols["ref_subject"], dtype=str),
            probe_subject=np.asarray(cols["probe_subject"], dtype=str),
            scores=numbers("score"),
            labels=np.asarray(labels, dtype=np.int8),
            lines=np.asarray(lines, dtype=np.int64),
            ref_quality=numbers("ref_quality") if "ref_quality" in has else None,
            probe_quality=numbers("probe_quality") if "probe_quality" in has else None,
            pair_quality=numbers("quality") if "quality" in has else None,
            folds=folds,
        )
        table.check()
        return table

    def write(self, table: PairTable, path: Path) -> list[Path]:
        header = list(REQUIRED)
        extra: list[np.ndarray] = []
        if table.ref_quality is not None and table.probe_quality is not None:
            header += ["ref_quality", "probe_quality"]
            extra += [table.ref_quality, table.probe_quality]
        elif table.pair_quality is not None:
            header.append("quality")
            extra.append(table.pair_quality)
        rows = []
        for i in range(len(table)):
            row = [
                str(table.ref[i]),
                str(table.probe[i]),
                str(table.ref_subject[i]),
                str(table.probe_subject[i]),
                str(int(table.labels[i])),
                number_text(table.scores[i]),
            ]
            rows.append(row + [number_text(col[i]) for col in extra])
        if table.folds is not None and (table.folds >= 0).all():
            header.append("fold")
            for row, fold in zip(rows, table.folds.tolist()):
                row.append(str(int(fold)))
        return [write_rows(path, header, rows)]


CSV = PlainCSV()
