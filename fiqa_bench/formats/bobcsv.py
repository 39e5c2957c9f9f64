"""bob's CSV score files (bob.bio.base's CSV score writer): a header line, then one comparison per line::

    bio_ref_reference_id,bio_ref_subject_id,probe_reference_id,probe_subject_id,score[,...]

Further columns (bob writes the samples' metadata there) are ignored. A line is genuine exactly when the two subject
ids are equal. Quality comes from a per-sample quality file (``sample,quality``), keyed by the reference ids.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fiqa_bench.formats.base import (
    PairFormat,
    PairTable,
    check_labels_follow_subjects,
    number_text,
    parse_score,
    quality_path,
    read_rows,
    read_sample_quality,
    sample_quality_of,
    write_rows,
    write_sample_quality,
)

COLUMNS = ("bio_ref_reference_id", "bio_ref_subject_id", "probe_reference_id", "probe_subject_id", "score")


class BobCSV(PairFormat):
    name = "bobcsv"
    summary = "bob's CSV score file: bio_ref_reference_id,bio_ref_subject_id,probe_reference_id,probe_subject_id,score"
    suffix = ".csv"

    def read(self, path: Path, quality: Path | None = None) -> PairTable:
        cols, lines = read_rows(path, COLUMNS)
        scores = [parse_score(v, path, line) for v, line in zip(cols["score"], lines)]
        ref_s = np.asarray(cols["bio_ref_subject_id"], dtype=str)
        probe_s = np.asarray(cols["probe_subject_id"], dtype=str)
        table = PairTable(
            source=str(path),
            ref=np.asarray(cols["bio_ref_reference_id"], dtype=str),
            probe=np.asarray(cols["probe_reference_id"], dtype=str),
            ref_subject=ref_s,
            probe_subject=probe_s,
            scores=np.asarray(scores, dtype=np.float64),
            labels=(ref_s == probe_s).astype(np.int8),
            lines=np.asarray(lines, dtype=np.int64),
        )
        table.check()
        if quality is not None:
            known = read_sample_quality(quality)
            table.ref_quality = sample_quality_of(table.ref, table.lines, known, str(path), quality)
            table.probe_quality = sample_quality_of(table.probe, table.lines, known, str(path), quality)
        return table

    def write(self, table: PairTable, path: Path) -> list[Path]:
        check_labels_follow_subjects(table, "bob's CSV")
        rows = [
            [str(r), str(rs), str(p), str(ps), number_text(s)]
            for r, rs, p, ps, s in zip(table.ref, table.ref_subject, table.probe, table.probe_subject, table.scores)
        ]
        written = [write_rows(path, list(COLUMNS), rows)]
        if table.ref_quality is not None and table.probe_quality is not None:
            labels = np.concatenate([table.ref, table.probe])
            values = np.concatenate([table.ref_quality, table.probe_quality])
            written.append(write_sample_quality(quality_path(path), labels, values))
        return written


BOBCSV = BobCSV()
