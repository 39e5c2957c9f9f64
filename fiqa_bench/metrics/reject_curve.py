"""NIST-style reject curve: the fraction of mated comparisons to reject (lowest pair quality first) to halve the FNMR
at a threshold fixed at a target FMR (default 1e-3) before any rejection; see :mod:`fiqa_bench.metrics.reject`.

Not on the built-in protocols' cards (adding it would rename every template run's results file, since its FMR
option enters the settings digest): a run asks for it with ``fiqa-bench run --add-metric reject_curve``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fiqa_bench.metrics.base import Metric, MetricOption, MetricOptions, PairData, fraction_key
from fiqa_bench.metrics.edc import PAIR_QUALITY, pair_quality_note
from fiqa_bench.metrics.reject import RejectCurve, ideal_curve, reject_curve, weighted_halving
from fiqa_bench.metrics.verification import fpr_key
from fiqa_bench.results.fields import ANY, Flag, Map, Num, Text

REJECT_FMR = MetricOption(
    "reject_fmr",
    1e-3,
    "Reject curve: the FMR that fixes the threshold on all comparisons before any rejection.",
    min=1e-9,
    max=1.0,
)

RULE = (
    "threshold fixed at the FMR on all comparisons before any rejection (conservative: FMR at most the target); "
    "mated comparisons rejected in ascending pair quality, ties together; x: fraction of mated comparisons rejected; "
    "value: the first point with FNMR <= half the starting FNMR (1.0: only rejecting everything halves it)"
)


def _compute(data: PairData, options: MetricOptions) -> dict:
    fmr = options.reject_fmr
    key = fpr_key(fmr)
    got = reject_curve(data.scores, data.labels, data.quality, fmr, quality_codes=data.quality_codes)
    common = {"fmr": fmr, "pair_quality": options.pair_quality, "rule": RULE, "note": pair_quality_note}
    if not isinstance(got, RejectCurve):
        return {"values": {key: None}, "reason": got, **common}
    halving = got.halving
    return {
        "values": {key: halving},
        "reason": None if halving is not None else "no false non-match at the threshold: no FNMR to halve",
        "halved_before_all": halving is not None and halving < 1.0,
        "ideal": got.ideal_halving,
        "start_fnmr": got.start_fnmr,
        "threshold": got.threshold,
        "fmr_achieved": got.fmr_achieved,
        "genuine": got.genuine,
        "false_non_matches": got.false_non_matches,
        "points": int(got.curve.discard_fractions.shape[0]),
        **common,
    }


def _replicate(draw, shorts: list, options: MetricOptions) -> dict:
    value = weighted_halving(draw.p, draw, options.reject_fmr)
    return {s: value for s in shorts}


def _summary(value: dict, shown) -> str:
    """``at FMR=1e-3: 46.01% [11.61, 88.15] (ideal 1.59%; FNMR at the start 2.96%)``, or the reason."""
    parts = []
    for short, number in METRIC.columns(value):
        text = f"at FMR={short}: {shown(short, number)}"
        if number is None and value.get("reason"):
            text += f" ({value['reason']})"
        elif value.get("start_fnmr") is not None:
            ideal = value.get("ideal")
            ideal_text = f"ideal {100 * ideal:.2f}%; " if ideal is not None else ""
            text += f" ({ideal_text}FNMR at the start {100 * value['start_fnmr']:.2f}%)"
        parts.append(text)
    return "  ".join(parts)


def _why_null(value: dict, short: str, counts) -> str | None:
    reason = value.get("reason")
    return str(reason) if reason else None


def _draw(runs: list, folder: Path, stem: str) -> list[Path]:
    """FNMR against the fraction of mated comparisons rejected, one curve per run at its recorded threshold, each
    with its ideal curve (dashed) and the half of its starting FNMR (dotted); ``runs``: (label, raw arrays, recorded
    value)."""
    from fiqa_bench.metrics.edc import edc
    from fiqa_bench.writers.plots import _COLOURS, _figure, _save

    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    drew = False
    fmrs = set()
    for i, (label, raw, value) in enumerate(runs):
        if not isinstance(value, dict) or value.get("threshold") is None:
            continue
        y = raw["pair_labels"] == 1
        genuine = raw["pair_scores"][y].astype(np.float64)
        curve = edc(genuine, raw["pair_quality"][y], "fnm", threshold=float(value["threshold"]))
        colour = _COLOURS[i % len(_COLOURS)]
        ax.step(curve.discard_fractions, curve.error_fractions, where="post", label=label, color=colour, linewidth=1.2)
        ix, iy = ideal_curve(int(value["false_non_matches"]), int(value["genuine"]))
        ax.plot(ix, iy, color=colour, linewidth=0.6, linestyle="--")
        ax.axhline(curve.start_error / 2.0, color=colour, linewidth=0.5, linestyle=":")
        fmrs.add(fpr_key(float(value["fmr"])))
        drew = True
    ax.set_xlim(0, 1)
    ax.set_xlabel("fraction of mated comparisons rejected (lowest pair quality first)")
    ax.set_ylabel("FNMR at the threshold fixed before rejection")
    at = f" at FMR={', '.join(sorted(fmrs))}" if fmrs else ""
    ax.set_title(f"Reject curve{at} (dashed: ideal; dotted: half the start)" if drew else "Reject curve: no values")
    ax.grid(True, linewidth=0.3)
    if drew:
        ax.legend(fontsize=7, loc="upper right")
    return _save(fig, folder, stem)


METRIC = Metric(
    label="Reject to halve FNMR",
    joiner="@FMR=",
    key="reject_curve",
    title="Fraction rejected to halve FNMR",
    needs=frozenset({"scores", "labels", "quality"}),
    higher_is_better=False,
    compute=_compute,
    columns=lambda value: list((value.get("values") or {}).items()),
    options=(PAIR_QUALITY, REJECT_FMR),
    replicate=_replicate,
    bounds=(0.0, 1.0),
    why_null=_why_null,
    summary=_summary,
    required=("values",),
    value_fields={
        "values": Map(ANY, key=fraction_key, key_expected="an FMR like '1e-3'"),
        "reason": Text(null=True),
        "halved_before_all": Flag(),
        "ideal": Num(0, 1, null=True),
        "start_fnmr": Num(0, 1),
        "threshold": Num(),
        "fmr_achieved": Num(0, 1),
        "genuine": Num(0, integer=True),
        "false_non_matches": Num(0, integer=True),
        "points": Num(0, integer=True),
        "fmr": Num(0, 1),
        "pair_quality": Text(),
        "rule": Text(),
        "note": Text(),
    },
    figure=_draw,
    description="fraction of mated comparisons rejected (lowest pair quality first) until the FNMR at a threshold "
    "fixed at FMR 1e-3 before any rejection is halved (NIST FATE Quality's reject curve); lower is better",
)
