"""The NIST-style reject curve (fiqa_bench.metrics.reject, the declared metric ``reject_curve``), each number against
an independent plain-Python loop over the pairs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from fiqa_bench.metrics.base import MetricOptions, PairData, get_metric
from fiqa_bench.metrics.reject import halving_fraction, ideal_curve, ideal_halving_fraction, reject_curve
from fiqa_bench.metrics.resample import Draw, Prepared
from fiqa_bench.metrics.verification import fpr_key
from fiqa_bench.pipeline.uncertainty import _materialised, replicate_values, subject_counts

METRIC = get_metric("reject_curve")


def synthetic(seed: int, n_subjects: int = 40, templates: int = 3, ties: bool = False) -> PairData:
    """Templates of subjects, all pairs of templates; genuine scores higher on average; pair quality = min."""
    rng = np.random.default_rng(seed)
    subj = np.repeat(np.arange(n_subjects), templates)
    ia, ib = np.triu_indices(subj.shape[0], 1)
    labels = (subj[ia] == subj[ib]).astype(np.int8)
    scores = np.where(labels == 1, rng.normal(0.5, 0.2, ia.shape[0]), rng.normal(0.1, 0.12, ia.shape[0]))
    tq = rng.random(subj.shape[0])
    if ties:
        scores, tq = np.round(scores, 2), np.round(tq, 1)
    return PairData(
        scores=scores.astype(np.float32),
        labels=labels,
        folds=np.full(ia.shape[0], -1),
        quality=np.minimum(tq[ia], tq[ib]),
        a=ia,
        b=ib,
        subject_a=subj[ia],
        subject_b=subj[ib],
    )


def loop_reference(scores, labels, quality, fmr: float):
    """The reject curve by plain loops: the threshold from the sorted impostor scores (at most floor(fmr * N)
    impostors accepted, the cut below the next one and every score equal to it), then, for each distinct mated pair
    quality q in ascending order, the FNMR of the mated pairs of quality >= q. Returns (points, halving) or None
    when fewer than 1 / fmr impostors."""
    s = [float(x) for x in scores]
    y = [int(x) for x in labels]
    q = [float(x) for x in quality]
    impostors = sorted((s[i] for i in range(len(s)) if y[i] == 0), reverse=True)
    if fmr * len(impostors) * (1 + 1e-12) < 1:
        return None
    allowed = math.floor(fmr * len(impostors) * (1 + 1e-12))
    cut = impostors[allowed] if allowed < len(impostors) else -math.inf  # rejected: score <= cut
    mated = [(q[i], s[i] <= cut) for i in range(len(s)) if y[i] == 1]
    n = len(mated)
    points = []
    for level in sorted({m[0] for m in mated}):
        kept = [m for m in mated if m[0] >= level]
        points.append(((n - len(kept)) / n, sum(1 for m in kept if m[1]) / len(kept)))
    points.append((1.0, 0.0))
    start = points[0][1]
    halving = None if start == 0 else next(x for x, f in points if f <= start / 2)
    return points, halving


@pytest.mark.parametrize("fmr", [1e-2, 1e-3, 0.05])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metric_equals_an_independent_loop(seed, ties, fmr):
    data = synthetic(seed, ties=ties)
    value = METRIC.compute(data, MetricOptions(reject_fmr=fmr))
    points, halving = loop_reference(data.scores, data.labels, data.quality, fmr)
    curve = reject_curve(data.scores, data.labels, data.quality, fmr)
    assert [(float(x), float(f)) for x, f in zip(curve.curve.discard_fractions, curve.curve.error_fractions)] == points
    assert value["values"] == {fpr_key(fmr): halving}
    assert value["start_fnmr"] == points[0][1] and value["points"] == len(points)
    assert value["halved_before_all"] == (halving is not None and halving < 1.0)


def test_the_value_follows_the_quality_order_not_its_inverse():
    """A quality that ranks the false non-matches lowest halves the FNMR at the ideal fraction; its inverse needs
    far more (the metric is not symmetric in the quality's direction)."""
    data = synthetic(4)
    curve = reject_curve(data.scores, data.labels, data.quality, 1e-2)
    genuine = data.labels == 1
    unique = np.arange(data.scores.shape[0]) / data.scores.shape[0] * 1e-3  # no ties: one rejection at a time
    oracle = np.where(data.scores.astype(np.float64) < curve.threshold, 0.0, 1.0) + unique
    good = METRIC.compute(PairData(data.scores, data.labels, data.folds, oracle), MetricOptions(reject_fmr=1e-2))
    bad = METRIC.compute(PairData(data.scores, data.labels, data.folds, -oracle), MetricOptions(reject_fmr=1e-2))
    e, n = good["false_non_matches"], int(genuine.sum())
    assert e > 2 and good["ideal"] == ideal_halving_fraction(e, n)
    assert good["values"]["1e-2"] == good["ideal"]  # rejecting exactly the failures first is the ideal curve
    assert bad["values"]["1e-2"] > 0.5 > good["values"]["1e-2"]


def test_the_ideal_curve_rejects_the_failures_first():
    for e, n in [(0, 5), (1, 1), (3, 10), (7, 19), (50, 1000), (999, 1000)]:
        x, f = ideal_curve(e, n)
        expected = [(r / n, (e - r) / (n - r) if n > r else 0.0) for r in range(e + 1)] + [(1.0, 0.0)]
        assert list(zip(x.tolist(), f.tolist())) == expected
        if e == 0:
            assert ideal_halving_fraction(e, n) is None
            continue
        brute = next(r for r in range(n + 1) if (r == n) or (e - min(r, e)) * 2 * n <= e * (n - r))
        assert ideal_halving_fraction(e, n) == brute / n
    with pytest.raises(ValueError):
        ideal_curve(3, 2)


def test_ties_in_pair_quality_are_rejected_together():
    # five mated pairs: two of quality 1 (one a false non-match), three of quality 2 (one); one impostor pair list
    # long enough for FMR 0.1: ten impostors, the highest at 0.9, so at most one accepted: cut at the 2nd (0.8)
    scores = [0.1, 0.9, 0.95, 0.5, 0.92] + [0.9, 0.8] + [0.0] * 8
    labels = [1, 1, 1, 1, 1] + [0] * 10
    quality = [1.0, 1.0, 2.0, 2.0, 2.0] + [0.5] * 10
    data = PairData(np.asarray(scores, np.float32), np.asarray(labels), np.full(15, -1), np.asarray(quality))
    value = METRIC.compute(data, MetricOptions(reject_fmr=0.1))
    curve = reject_curve(data.scores, data.labels, data.quality, 0.1)
    # threshold just above 0.8: 0.1 and 0.5 rejected; FNMR 2/5; both quality-1 pairs go at once: 1/3 left
    assert curve.curve.discard_fractions.tolist() == [0.0, 0.4, 1.0]
    assert curve.curve.error_fractions.tolist() == [0.4, 1 / 3, 0.0]
    assert value["values"] == {"1e-1": 1.0} and value["halved_before_all"] is False
    assert value["false_non_matches"] == 2 and value["ideal"] == ideal_halving_fraction(2, 5) == 0.4


def test_an_fmr_the_impostors_cannot_support_is_flagged_never_extrapolated():
    data = synthetic(0, n_subjects=10)  # 30 templates: 435 pairs, 405 impostors
    n_imp = data.n_impostor
    assert n_imp < 1000
    value = METRIC.compute(data, MetricOptions(reject_fmr=1e-3))
    assert value["values"] == {"1e-3": None}
    need = "FMR 1e-3 needs at least 1000 impostor pairs to be measurable"
    assert value["reason"] == f"{need}; this pair list has {n_imp}"
    assert METRIC.null_reason(value, "1e-3", {}) == value["reason"]
    assert METRIC.summary is not None
    assert METRIC.summary(value, lambda short, v: "—") == f"at FMR=1e-3: — ({value['reason']})"
    assert METRIC.check(json.loads(json.dumps(value)), "metrics.reject_curve") == []
    supported = METRIC.compute(data, MetricOptions(reject_fmr=1 / n_imp))
    assert next(iter(supported["values"].values())) is not None
    assert halving_fraction(reject_curve(data.scores, data.labels, data.quality, 1 / n_imp).curve) is not None


def test_no_false_non_match_leaves_nothing_to_halve():
    data = synthetic(0)
    value = METRIC.compute(data, MetricOptions(reject_fmr=1.0))  # every comparison accepted
    assert value["start_fnmr"] == 0.0 and value["values"] == {"1e0": None}
    assert value["reason"] == "no false non-match at the threshold: no FNMR to halve"


@pytest.mark.parametrize("ties", [False, True])
def test_the_bootstrap_fast_path_equals_the_written_out_resample(ties):
    data = synthetic(3, ties=ties)
    options = MetricOptions(reject_fmr=1e-2)
    value = METRIC.compute(data, options)
    p = Prepared(data, options)
    counts = subject_counts(40, 30, seed=7)
    compared = 0
    for b in range(30):
        draw = Draw(p, counts[b])
        fast = replicate_values("reject_curve", p, draw, value)
        assert METRIC.replicate is not None
        ref = METRIC.compute(_materialised(data, draw.w), options)["values"]["1e-2"]
        if ref is None:
            assert math.isnan(fast["1e-2"])
        else:
            assert fast["1e-2"] == ref
            compared += 1
    assert compared >= 20


def test_a_plain_run_keeps_its_settings(tmp_path):
    """Without --add-metric nothing of the reject curve enters a template run's settings: results file names stay."""
    from fiqa_bench.config import RunConfig, run_settings

    protocol = {"name": "bench", "pairs_sha256": "0" * 64, "metrics": ["tpr_at_fpr", "edc_fnm", "edc_fm"]}
    args = dict(method_ran=True, method_takes_seed=False, detection_used=False, options_sha256={}, backbone_sha256=None)
    plain = run_settings(RunConfig(protocol="p", backbone="mbf"), protocol=protocol, **args)
    assert "metric_options" not in plain and "add_metrics" not in plain
    added = run_settings(
        RunConfig(protocol="p", backbone="mbf", add_metrics=("reject_curve",)),
        protocol={**protocol, "metrics": protocol["metrics"] + ["reject_curve"]},
        **args,
    )
    assert added["metric_options"] == {"reject_fmr": 1e-3} and added["add_metrics"] == ["reject_curve"]


def test_an_unknown_added_metric_is_one_usage_line(tmp_path):
    from click.testing import CliRunner

    from fiqa_bench.cli.main import main

    res = CliRunner().invoke(main, ["run", "-p", "lfw", "--fr", "mbf", "--add-metric", "nope", "-o", str(tmp_path)])
    assert res.exit_code == 2
    assert res.output.strip().splitlines()[-1].startswith("error: --add-metric nope: no such metric; registered:")


@pytest.mark.shared
def test_a_real_run_reports_it_with_an_interval_a_figure_and_rescores(copy_identities, mbf, tmp_path, isolated_cache):
    """20 celeba-wild identities x 6 photos in IJB layout (40 templates: 20 mated, 760 non-mated comparisons), two
    quality methods, FMR 1e-2: the value equals the loop on the run's .npz, its interval holds it, rescore agrees,
    the report has its column and figure."""
    from fiqa_bench.data.prepare import prepare_benchmark
    from fiqa_bench.pipeline.runner import RunConfig, run
    from fiqa_bench.results.record import load_record, read_raw
    from fiqa_bench.results.rescore import rescore
    from fiqa_bench.writers.report import write_report

    bench = tmp_path / "bench"
    prepare_benchmark(copy_identities(tmp_path / "src", 20, 6), bench, name="rc", seed=0, layout="ijb", progress=False)
    out = tmp_path / "res"
    for method in ("jpeg", "random"):
        cfg = RunConfig(
            protocol=str(bench),
            backbone=mbf,
            method=method,
            out=str(out),
            progress=False,
            bootstrap=200,
            add_metrics=("reject_curve",),
            reject_fmr=0.01,
        )
        path, record = run(cfg)
        value = record["metrics"]["reject_curve"]
        raw = read_raw(path, load_record(path))
        ref = loop_reference(raw["pair_scores"], raw["pair_labels"], raw["pair_quality"], 0.01)
        assert ref is not None and ref[1] is not None and 0 < ref[1] < 1
        assert value["values"] == {"1e-2": ref[1]}
        assert record["protocol"]["metrics"][-1] == "reject_curve" and record["config"]["reject_fmr"] == 0.01
        assert record["settings"]["metric_options"] == {"reject_fmr": 0.01}
        lo, hi = value["intervals"]["1e-2"]
        assert lo <= ref[1] <= hi and lo < hi
        assert rescore(path) == []
    written = write_report(out)
    md = written[0].read_text()
    assert "Reject to halve FNMR@FMR=1e-2 (%) ↓" in md
    figures = sorted(p.name for p in (out / "plots").glob("*__reject_curve.*"))
    assert len(figures) == 2 and all((out / "plots" / f).stat().st_size > 1000 for f in figures)
    assert "reject_curve](plots/" in md
    assert Path(written[1]).read_text().count("__reject_curve.png") >= 1
