"""TPR at fixed FPRs (template 1:1 verification, the paper's Tables 3-4)."""

from __future__ import annotations

from .base import Metric, MetricOption, MetricOptions, PairData
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


METRIC = Metric(
    label="TPR@FPR", joiner="=",
    key="tpr_at_fpr", title="TPR (%) @ FPR", needs=frozenset({"scores", "labels"}), higher_is_better=True,
    compute=_compute, columns=_columns, options=(FPR_READING,),
    description="TPR at FPR 1e-1..1e-5 (1e-6 where measurable); null with a reason below 1/impostors "
                "(conservative reading) — see fiqa_bench.metrics.verification.tpr_at_fpr_detailed",
)
