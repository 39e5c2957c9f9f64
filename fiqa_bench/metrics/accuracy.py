"""k-fold verification accuracy (LFW / YTF, the paper's Table 5)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fiqa_bench.metrics.base import Metric, MetricOptions, PairData, PairWorth
from fiqa_bench.metrics.verification import kfold_accuracy
from fiqa_bench.results.fields import List, Num


def _compute(data: PairData, options: MetricOptions) -> dict:
    acc = kfold_accuracy(data.scores, data.labels, data.folds)
    return {"mean": acc["mean"], "std": acc["std"], "folds": acc["folds"], "thresholds": acc["thresholds"]}


def _columns(value: dict) -> list:
    return [("mean", value.get("mean"))]


def _summary(value: dict, shown: Callable[[str, Any], str]) -> str:
    return f"{shown('mean', value['mean'])} ± {100 * value['std']:.2f} ({len(value['folds'])} folds)"


METRIC = Metric(
    label="accuracy",
    joiner=" ",
    key="accuracy",
    title="Accuracy (%)",
    needs=frozenset({"scores", "labels", "folds"}),
    higher_is_better=True,
    compute=_compute,
    columns=_columns,
    summary=_summary,
    bounds=(0.0, 1.0),
    required=("mean",),
    header="Accuracy (%) mean ± std",
    spread="std",
    worth=PairWorth(("genuine", "impostor"), "pair", "accuracy", digits=3),
    value_fields={
        "mean": Num(0, 1, null=True),
        "std": Num(0, 1, null=True),
        "folds": List(Num(0, 1)),
        "thresholds": List(Num()),
    },
    description="k-fold accuracy: threshold chosen on k-1 folds, applied to the held-out fold; mean and "
    "population std over folds",
)
