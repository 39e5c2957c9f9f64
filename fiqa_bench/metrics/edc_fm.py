"""FM-EDC pAUC (ISO/IEC 29794-1): non-mated comparisons, threshold fixed at a starting FMR (default 1e-3)."""

from __future__ import annotations

from .base import Metric, MetricOptions, PairData
from .edc import edc, pair_quality_note, summary


def _compute(data: PairData, options: MetricOptions) -> dict:
    non_mated = data.labels == 0
    codes = data.quality_codes[non_mated] if data.quality_codes is not None else None
    curve = edc(data.scores[non_mated], data.quality[non_mated], "fm", start_error=options.fm_start,
                quality_codes=codes)
    return {**summary(curve), "start_target": options.fm_start, "pair_quality": options.pair_quality,
            "note": pair_quality_note}


def _columns(value: dict) -> list:
    p = value.get("pauc") or {}
    return list(p.items())


METRIC = Metric(
    label="FM-EDC pAUC", joiner="@",
    key="edc_fm", title="FM-EDC pAUC", needs=frozenset({"scores", "labels", "quality"}), higher_is_better=False,
    compute=_compute, columns=_columns, scale=1.0, digits=6, unit="",
    description="area under the FMR-vs-discard curve up to 20% / 30% discarded (lower is better); threshold "
                "fixed once at FMR 1e-3 on the non-mated scores",
)
