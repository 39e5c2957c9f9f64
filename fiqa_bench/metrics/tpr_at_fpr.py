"""TPR at fixed FPRs (template 1:1 verification, the paper's Tables 3-4)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypedDict

from fiqa_bench.metrics.base import Metric, MetricOption, MetricOptions, PairData, PairWorth, fraction_key
from fiqa_bench.metrics.resample import weighted_tpr
from fiqa_bench.metrics.verification import TPR_MODES, reported_fpr_targets, tpr_at_fpr_detailed
from fiqa_bench.results.fields import ANY, Flag, Map, Num, Obj, Text

FPR_READING = MetricOption(
    "fpr_reading",
    "conservative",
    "How TPR@FPR is read off the ROC: conservative (FPR at most the target) or nearest (insightface's, exactly).",
    choices=TPR_MODES,
    digest=("fpr_reading",),
    every_run=True,
)


def _compute(data: PairData, options: MetricOptions) -> dict:
    targets = reported_fpr_targets(data.n_impostor)
    detail = tpr_at_fpr_detailed(data.scores, data.labels, targets, mode=options.fpr_reading)
    return {"values": {k: v["tpr"] for k, v in detail.items()}, "detail": detail, "reading": options.fpr_reading}


def _columns(value: dict) -> list:
    return list((value.get("values") or {}).items())


def _summary(value: dict, shown: Callable[[str, Any], str]) -> str:
    """Every FPR as ``1e-3=97.04% [95.22, 98.63]``; a TPR read below 1/impostors (insightface's nearest reading)
    marked ``*`` and explained."""
    detail = value.get("detail") or {}
    flagged = [
        short
        for short, _ in _columns(value)
        if isinstance(detail.get(short), dict) and detail[short].get("measurable") is False
    ]
    text = "  ".join(f"{short}={shown(short, v)}{'*' if short in flagged else ''}" for short, v in _columns(value))
    if flagged:
        text += "  (*: below 1/impostors: insightface's reading, not a measurement)"
    return text


def _reading_note(configs: list) -> str | None:
    """How the TPRs of a report table were read off the ROC (the runs' recorded ``fpr_reading``)."""
    readings = sorted({c["fpr_reading"] for c in configs if c.get("fpr_reading")})
    return "TPR read " + " / ".join(readings) if readings else None


def _replicate(draw, shorts: list, options: MetricOptions) -> dict | None:
    """The bootstrap's weighted fast path, for the conservative reading (the nearest one is written out)."""
    return weighted_tpr(draw.p, draw, shorts) if options.fpr_reading == "conservative" else None


def _why_null(value: dict, short: str, counts) -> str | None:
    """The reading's own reason, else why this FPR could not be read off this protocol's impostors."""
    reason = ((value.get("detail") or {}).get(short) or {}).get("reason")
    if reason:
        return str(reason)
    if short not in (value.get("values") or {}):
        return f"FPR {short} was not computed in this run"
    n_imp = counts.get("impostor")
    if isinstance(n_imp, int) and n_imp * float(short) < 1:
        return (
            f"FPR {short} needs at least {math.ceil(1 / float(short) - 1e-9)} impostor pairs; this protocol has {n_imp}"
        )
    return None


class _KeyTest(TypedDict):
    """Map's key arguments, spread into it."""

    key: Callable[[str], bool]
    key_expected: str


_FPR: _KeyTest = {"key": fraction_key, "key_expected": "an FPR like '1e-3'"}

METRIC = Metric(
    label="TPR@FPR",
    joiner="=",
    key="tpr_at_fpr",
    title="TPR (%) @ FPR",
    needs=frozenset({"scores", "labels"}),
    higher_is_better=True,
    compute=_compute,
    columns=_columns,
    options=(FPR_READING,),
    bounds=(0.0, 1.0),
    why_null=_why_null,
    required=("values",),
    summary=_summary,
    header="TPR (%) @ FPR={short}",
    column_order=lambda short: -float(short),
    worth=PairWorth(("genuine",), "genuine pair", "TPR", digits=2),
    table_note=_reading_note,
    replicate=_replicate,
    value_fields={
        "values": Map(ANY, **_FPR),  # each value is a headline column, checked in bounds
        "detail": Map(
            Obj(
                {
                    "tpr": Num(0, 1, null=True),
                    "fpr_achieved": Num(0, 1, null=True),
                    "threshold": Num(null=True),
                    "reason": Text(null=True),
                    "measurable": Flag(),
                }
            ),
            **_FPR,
        ),
        "reading": Text(),
    },
    description="TPR at FPR 1e-1..1e-5 (1e-6 where measurable); null with a reason below 1/impostors "
    "(conservative reading) — see fiqa_bench.metrics.verification.tpr_at_fpr_detailed",
)
