"""Re-threshold EDC (CR-FIQA / MagFace "ERC"): FNMR at FMR 1e-3, the threshold recomputed at every discard step."""

from __future__ import annotations

from fiqa_bench.metrics.base import Metric, MetricOptions, PairData
from fiqa_bench.metrics.edc import (
    PAIR_QUALITY,
    RETHRESHOLD_FMR,
    SUMMARY_FIELDS,
    pair_quality_note,
    pauc_values,
    rethreshold_edc,
    summary,
    weighted_rethreshold,
)
from fiqa_bench.results.fields import Num, Text


def _compute(data: PairData, options: MetricOptions) -> dict:
    mated = data.labels == 1
    codes = data.quality_codes
    curve = rethreshold_edc(
        data.scores[mated],
        data.quality[mated],
        data.scores[~mated],
        data.quality[~mated],
        fmr=options.rethreshold_fmr,
        genuine_codes=None if codes is None else codes[mated],
        impostor_codes=None if codes is None else codes[~mated],
    )
    out = summary(curve, subtract_best=False)
    return {
        **out,
        "fmr": options.rethreshold_fmr,
        "pair_quality": options.pair_quality,
        "grid": "discard fractions 0, 0.01, ..., 0.50 of all comparisons (ties together)",
        "note": pair_quality_note,
    }


def _replicate(draw, shorts: list, options: MetricOptions) -> dict:
    return pauc_values(weighted_rethreshold(draw.p, draw.w, options.rethreshold_fmr), shorts)


def _columns(value: dict) -> list:
    p = value.get("pauc") or {}
    return list(p.items())


METRIC = Metric(
    label="ERC pAUC",
    joiner="@",
    key="edc_fnm_rethreshold",
    title="Re-threshold EDC pAUC",
    needs=frozenset({"scores", "labels", "quality"}),
    higher_is_better=False,
    compute=_compute,
    columns=_columns,
    scale=1.0,
    digits=4,
    unit="",
    options=(PAIR_QUALITY, RETHRESHOLD_FMR),
    replicate=_replicate,
    tags=("edc",),  # shares the EDC family's LaTeX table (fiqa_bench.writers.latex)
    bounds=(0.0, 1.0),
    required=("pauc",),
    value_fields={**SUMMARY_FIELDS, "fmr": Num(0, 1), "pair_quality": Text(), "grid": Text(), "note": Text()},
    description="FNMR at FMR 1e-3 with the threshold recomputed on the remaining comparisons after each discard "
    "step (the variant of CR-FIQA and MagFace papers); not the ISO EDC",
)
