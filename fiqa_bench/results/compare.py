"""Paired comparisons of methods run on the same protocol, pair list, backbone and selection.

Each run's ``.npz`` keeps its bootstrap replicates (``boot_<metric>``: one row per resample of subjects). Runs on
the same pairs with the same subjects, B and seed were resampled identically, so the difference of two methods is
read resample by resample: its percentile interval is a **paired** interval (the same resamples for both), much
tighter than comparing two separate intervals. A difference is *significant* when its interval excludes zero.

For every group of comparable runs and every headline column this gives each method's difference to ``random``
and to the best method (the best by point value, in the metric's direction), and whether the best is separated
from the runner-up (otherwise the column's best is a tie).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from fiqa_bench.errors import FiqaBenchError
from fiqa_bench.metrics.base import get_metric, pair_worth
from fiqa_bench.pipeline.uncertainty import percentile_interval
from fiqa_bench.results.store import LoadedRun, OnBad, pairing_key
from fiqa_bench.results.store import load_runs as _load_runs

#: A run as compare reads it: the store's loaded run (its ``.npz`` arrays in ``raw``, its ``label``).
Run = LoadedRun


@dataclass
class Difference:
    value: float | None
    interval: list[float] | None

    @property
    def significant(self) -> bool:
        return self.interval is not None and (self.interval[0] > 0 or self.interval[1] < 0)

    def as_dict(self) -> dict:
        return {"difference": self.value, "interval": self.interval, "significant": self.significant}


@dataclass
class Column:
    metric: str
    short: str
    title: str
    higher_is_better: bool
    values: dict[str, float | None] = field(default_factory=dict)  # run label -> value
    vs_random: dict[str, Difference] = field(default_factory=dict)
    vs_best: dict[str, Difference] = field(default_factory=dict)
    best: str | None = None
    runner_up: str | None = None
    best_separated: bool = False
    tied_with_best: list[str] = field(default_factory=list)


@dataclass
class Group:
    protocol: str
    backbone: str
    selection: str
    runs: list[Run]
    columns: list[Column]
    genuine: int
    impostor: int
    B: int
    level: float

    def header(self) -> str:
        """The group's line: its runs, pairs and what one pair is worth in its protocol's first metric that declares
        it (:attr:`fiqa_bench.metrics.base.Metric.worth`), and the bootstrap."""
        worth = pair_worth(self.runs[0].record.protocol.get("metrics") or []) if self.runs else None
        said = ""
        if worth is not None:
            said = f" ({worth.text({'genuine': self.genuine, 'impostor': self.impostor}) or f'no {worth.pair}s'})"
        return (
            f"{self.protocol} | {self.backbone} | {self.selection}: {len(self.runs)} runs, {self.genuine} genuine / "
            f"{self.impostor} impostor pairs{said}; paired {100 * self.level:.0f}% bootstrap over subjects, "
            f"B={self.B}"
        )


def _paired(a: Run, b: Run) -> str | None:
    """Why two runs cannot be compared resample by resample (None when they can)."""
    for key in ("pair_a", "pair_b", "pair_labels", "template_subject", "template_ids"):
        if not np.array_equal(a.raw[key], b.raw[key]):
            return f"{a.path.name} and {b.path.name} scored different pairs or subjects ({key} differs)"
    ba, bb = a.record.config, b.record.config
    if (ba.get("bootstrap"), ba.get("bootstrap_seed")) != (bb.get("bootstrap"), bb.get("bootstrap_seed")):
        return f"{a.path.name} and {b.path.name} used different bootstrap settings"
    return None


def load_runs(paths, on_bad: OnBad | None = None) -> list[Run]:
    """Results files (or folders of them, searched recursively) with their raw data
    (:func:`fiqa_bench.results.store.load_runs`;
    ``on_bad``: bad files are handed to it and left out, else the first is an error naming it)."""
    return _load_runs(paths, on_bad=on_bad, require_raw=True)


def compare(runs: list[Run]) -> list[Group]:
    """Paired comparisons within every group of comparable runs (same protocol and pair list, backbone, selection
    and settings but the method)."""
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        groups.setdefault(pairing_key(run.record), []).append(replace(run, suffix=""))  # copies: labels are ours
    out = []
    for _key, members in sorted(groups.items(), key=lambda kv: kv[0][:-1]):
        members = sorted(members, key=lambda r: (r.record.method["name"] != "random", r.label, r.path.name))
        seen: dict[str, int] = {}
        for r in members:
            seen[r.label] = seen.get(r.label, 0) + 1
        for r in members:  # one method twice in a group (another seed): tell the runs apart
            if seen[r.label] > 1:
                r.suffix = f" {{seed={r.record.config.get('seed')}}}"
        first = members[0]
        for other in members[1:]:
            why = _paired(first, other)
            if why is not None:
                raise FiqaBenchError(f"cannot pair runs: {why}")
        level = float(first.record.config.get("bootstrap_level", 0.95))
        columns: list[Column] = []
        for mkey in first.record.protocol.get("metrics") or []:
            metric = get_metric(mkey)
            value0 = first.record.metrics.get(mkey)
            if not isinstance(value0, dict) or "unavailable" in value0:
                continue
            for j, (short, _) in enumerate(metric.columns(value0)):
                col = Column(mkey, short, f"{metric.label}{metric.joiner}{short}", metric.higher_is_better)
                reps = {}
                for run in members:
                    v = (
                        dict(metric.columns(run.record.metrics.get(mkey) or {})).get(short)
                        if "unavailable" not in (run.record.metrics.get(mkey) or {"unavailable": 1})
                        else None
                    )
                    col.values[run.label] = v
                    boot = run.raw.get(f"boot_{mkey}")
                    reps[run.label] = boot[:, j] if boot is not None and boot.shape[1] > j else None
                _fill(col, reps, level)
                columns.append(col)
        rec = first.record
        out.append(
            Group(
                rec.protocol["name"],
                rec.backbone["name"],
                rec.config["selection"],
                members,
                columns,
                int(rec.counts.get("genuine", 0)),
                int(rec.counts.get("impostor", 0)),
                int(rec.config.get("bootstrap", 0)),
                level,
            )
        )
    return out


def _difference(reps: dict, a: str, b: str, values: dict, level: float) -> Difference:
    va, vb = values.get(a), values.get(b)
    value = None if va is None or vb is None else float(va) - float(vb)
    ra, rb = reps.get(a), reps.get(b)
    interval = None
    if ra is not None and rb is not None:
        interval = percentile_interval(ra - rb, level)
    return Difference(value, interval)


def _fill(col: Column, reps: dict, level: float) -> None:
    present = {k: v for k, v in col.values.items() if v is not None}
    ranked = sorted(present, key=present.__getitem__, reverse=col.higher_is_better)
    if not ranked:
        return
    col.best = ranked[0]
    for label in col.values:
        if "random" in col.values and label != "random" and not label.startswith("random {"):
            col.vs_random[label] = _difference(reps, label, "random", col.values, level)
        if label != col.best:
            col.vs_best[label] = _difference(reps, label, col.best, col.values, level)
    if len(ranked) > 1:
        col.runner_up = ranked[1]
        col.best_separated = col.vs_best[col.runner_up].significant
        col.tied_with_best = [k for k in ranked[1:] if not col.vs_best[k].significant]


def render_text(groups: list[Group]) -> str:
    """What ``fiqa-bench compare`` prints: per group and column, each method's value and its paired differences
    to random and to the best, with the significant ones marked ``*``."""
    lines = []
    for g in groups:
        lines.append(g.header())
        for col in g.columns:
            metric = get_metric(col.metric)
            arrow = "higher" if col.higher_is_better else "lower"
            verdict = (
                "one run: nothing to compare"
                if col.best and col.runner_up is None
                else f"best {col.best}, separated from the runner-up {col.runner_up}"
                if col.best_separated
                else f"best: a tie of {', '.join([col.best] + col.tied_with_best)}"
                if col.best
                else "no values"
            )
            lines.append(f"  {col.title} ({arrow} is better): {verdict}")
            for label in sorted(
                col.values,
                key=lambda k: (
                    col.values[k] is None,
                    -(col.values[k] or 0) if col.higher_is_better else (col.values[k] or 0),
                ),
            ):
                v = col.values[label]
                parts = [f"    {label:<28s} {metric.format(v):>8s}"]
                for name, diffs in (("vs random", col.vs_random), ("vs best", col.vs_best)):
                    d = diffs.get(label)
                    if d is None or d.value is None:
                        continue
                    iv = (
                        ""
                        if d.interval is None
                        else (f" [{metric.format(d.interval[0])}, {metric.format(d.interval[1])}]")
                    )
                    parts.append(
                        f"{name} {'+' if d.value >= 0 else ''}{metric.format(d.value)}{iv}"
                        f"{' *' if d.significant else ''}"
                    )
                lines.append("  ".join(parts))
        lines.append("")
    lines.append("* the paired interval of the difference excludes zero (significant at the stated level)")
    return "\n".join(lines)


def as_json(groups: list[Group]) -> list[dict[str, Any]]:
    out = []
    for g in groups:
        out.append(
            {
                "protocol": g.protocol,
                "backbone": g.backbone,
                "selection": g.selection,
                "genuine": g.genuine,
                "impostor": g.impostor,
                "B": g.B,
                "level": g.level,
                "runs": [str(r.path) for r in g.runs],
                "columns": [
                    {
                        "metric": c.metric,
                        "column": c.title,
                        "higher_is_better": c.higher_is_better,
                        "values": c.values,
                        "best": c.best,
                        "runner_up": c.runner_up,
                        "best_separated": c.best_separated,
                        "tied_with_best": c.tied_with_best,
                        "vs_random": {k: d.as_dict() for k, d in c.vs_random.items()},
                        "vs_best": {k: d.as_dict() for k, d in c.vs_best.items()},
                    }
                    for c in g.columns
                ],
            }
        )
    return out


def significance_marks(groups: list[Group]) -> dict[tuple, dict]:
    """For the report: (protocol, backbone, selection, column title) -> {best, separated, tied}."""
    marks = {}
    for g in groups:
        for c in g.columns:
            marks[(g.protocol, g.backbone, g.selection, c.title)] = {
                "best": c.best,
                "separated": c.best_separated,
                "tied": c.tied_with_best,
            }
    return marks


def _finite(x) -> bool:
    return x is not None and math.isfinite(x)
