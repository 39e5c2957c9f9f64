"""FNM-EDC pAUC (ISO/IEC 29794-1): mated comparisons, threshold fixed at a starting FNMR (default 0.05)."""

from __future__ import annotations

from .base import Metric, MetricOptions, PairData
from .edc import edc, pair_quality_note, summary


def _compute(data: PairData, options: MetricOptions) -> dict:
    mated = data.labels == 1
    codes = data.quality_codes[mated] if data.quality_codes is not None else None
    curve = edc(data.scores[mated], data.quality[mated], "fnm", start_error=options.fnm_start, quality_codes=codes)
    return {**summary(curve), "start_target": options.fnm_start, "pair_quality": options.pair_quality,
            "note": pair_quality_note}


def _columns(value: dict) -> list:
    p = value.get("pauc") or {}
    return list(p.items())


METRIC = Metric(
    label="FNM-EDC pAUC", joiner="@",
    key="edc_fnm", title="FNM-EDC pAUC", needs=frozenset({"scores", "labels", "quality"}), higher_is_better=False,
    compute=_compute, columns=_columns, scale=1.0, digits=4, unit="",
    description="area under the FNMR-vs-discard curve up to 20% / 30% discarded (lower is better); threshold "
                "fixed once at FNMR 0.05 on the mated scores",
)
