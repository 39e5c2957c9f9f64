"""TPR at fixed FPRs (template 1:1 verification, the paper's Tables 3-4)."""

from __future__ import annotations

import math

from ..fields import ANY, Flag, Map, Num, Obj, Text
from .base import Metric, MetricOption, MetricOptions, PairData, fraction_key
from .verification import TPR_MODES, reported_fpr_targets, tpr_at_fpr_detailed

FPR_READING = MetricOption(
    "fpr_reading", "conservative",
    "How TPR@FPR is read off the ROC: conservative (FPR at most the target) or nearest (insightface's, exactly).",
    choices=TPR_MODES, digest=("fpr_reading",))


def _compute(data: PairData, options: MetricOptions) -> dict:
    targets = reported_fpr_targets(data.n_impostor)
    detail = tpr_at_fpr_detailed(data.scores, data.labels, targets, mode=options.fpr_reading)
    return {"values": {k: v["tpr"] for k, v in detail.items()}, "detail": detail, "reading": options.fpr_reading}


def _columns(value: dict) -> list:
    return list((value.get("values") or {}).items())


def _why_null(value: dict, short: str, counts) -> str | None:
    """The reading's own reason, else why this FPR could not be read off this protocol's impostors."""
    reason = ((value.get("detail") or {}).get(short) or {}).get("reason")
    if reason:
        return str(reason)
    if short not in (value.get("values") or {}):
        return f"FPR {short} was not computed in this run"
    n_imp = counts.get("impostor")
    if isinstance(n_imp, int) and n_imp * float(short) < 1:
        return (f"FPR {short} needs at least {math.ceil(1 / float(short) - 1e-9)} impostor pairs; this protocol "
                f"has {n_imp}")
    return None


_FPR = {"key": fraction_key, "key_expected": "an FPR like '1e-3'"}

METRIC = Metric(
    label="TPR@FPR", joiner="=",
    key="tpr_at_fpr", title="TPR (%) @ FPR", needs=frozenset({"scores", "labels"}), higher_is_better=True,
    compute=_compute, columns=_columns, options=(FPR_READING,), bounds=(0.0, 1.0), why_null=_why_null, required=("values",),
    value_fields={"values": Map(ANY, **_FPR),  # each value is a headline column, checked in bounds
                  "detail": Map(Obj({"tpr": Num(0, 1, null=True), "fpr_achieved": Num(0, 1, null=True),
                                     "threshold": Num(null=True), "reason": Text(null=True), "measurable": Flag()}),
                                **_FPR),
                  "reading": Text()},
    description="TPR at FPR 1e-1..1e-5 (1e-6 where measurable); null with a reason below 1/impostors "
                "(conservative reading) — see fiqa_bench.metrics.verification.tpr_at_fpr_detailed",
)
