"""``rescore`` notices: a results file recording a non-default setting is rescored with that setting, and a metric
tampered with by one part in a billion is reported.

The settings come from the run configuration's declaration (``numbers=True`` in :class:`RunConfig`'s metadata):
those that change what the metrics are computed with (the metric options and the bootstrap; the others change the
``.npz`` itself) are each run once with a non-default value read off the declaration, so a new metric setting is
covered as soon as it is declared. Each such run must get a results file of its own (the file name's digest), other
numbers than the default run, and rescore to exactly its own numbers.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import replace

import pytest

from _settings import NUMBERS, other_value
from fiqa_bench import registry
from fiqa_bench.config import RunConfig
from fiqa_bench.errors import BadResultsFile
from fiqa_bench.metrics.base import get_metric
from fiqa_bench.pipeline.runner import run
from fiqa_bench.results.fields import field_path
from fiqa_bench.results.rescore import rescore

BASE = RunConfig(protocol="bench", backbone="onnx:/models/one.onnx", method="blur", progress=False)


def _changes_what_metrics_read(f) -> bool:
    """Whether the setting reaches the metrics and the bootstrap (what rescore recomputes from the .npz)."""
    changed = replace(BASE, **{f.name: other_value(f, getattr(BASE, f.name))})
    a, b = BASE.eval_options(), changed.eval_options()
    return a.metric_options != b.metric_options or a.bootstrap != b.bootstrap


RESCORED = [f for f in NUMBERS if _changes_what_metrics_read(f)]


def test_the_declaration_gives_the_metric_and_bootstrap_settings():
    assert {f.name for f in RESCORED} == {
        "fpr_reading",
        "pair_quality",
        "fnm_start",
        "fm_start",
        "rethreshold_fmr",
        "bootstrap",
        "bootstrap_level",
        "bootstrap_seed",
        "reject_fmr",
    }


def _metrics_declaring(name: str, reported) -> tuple:
    """The registered metrics that declare the option ``name``, where none of ``reported`` does (an option of a
    metric the protocol does not report: a run must add one for the option to count)."""
    declaring = tuple(k for k in registry.names("metric") if any(o.name == name for o in get_metric(k).options))
    return () if set(declaring) & set(reported) else declaring


@pytest.fixture(scope="module")
def default_run(small_bench, shared, tmp_path_factory):
    """One run of blur with every setting at its declared default but 100 bootstrap resamples (for speed), in a
    cache of this module's own."""
    tmp = tmp_path_factory.mktemp("rescore")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FIQA_BENCH_CACHE", str(tmp / "cache"))
        mbf = f"onnx:{shared / 'models/mobilefacenet/mobilefacenet.onnx'}"
        cfg = RunConfig(
            protocol=str(small_bench), backbone=mbf, method="blur", out=str(tmp / "out"), progress=False, bootstrap=100
        )
        path, rec = run(cfg)
        yield cfg, path, rec, mp


@pytest.mark.shared
@pytest.mark.parametrize("f", RESCORED, ids=lambda f: f.name)
def test_rescore_honours_a_recorded_non_default_setting(default_run, f):
    cfg, default_path, default_rec, _ = default_run
    value = other_value(f, getattr(cfg, f.name))
    added = _metrics_declaring(f.name, default_rec["protocol"]["metrics"])
    if added:  # compared with the default run that adds the same metrics
        cfg = replace(cfg, add_metrics=added)
        default_path, default_rec = run(cfg)
    path, rec = run(replace(cfg, **{f.name: value}))
    assert path != default_path, f"{f.name} is not in the file name's digest"
    assert rec["metrics"] != default_rec["metrics"], f"{f.name}={value!r} changes no number here: pick another"
    assert rescore(path) == []


@pytest.mark.shared
def test_the_default_run_rescores_to_its_numbers(default_run):
    assert rescore(default_run[1]) == []


def _leaves(obj, path="metrics", keys=()):
    """(path as rescore names it, keys to reach it, value) of every number in a metrics record."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, f"{path}.{k}", keys + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, f"{path}[{i}]", keys + (i,))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool) and math.isfinite(obj):
        yield path, keys, obj


@pytest.mark.shared
def test_a_metric_tampered_by_one_part_in_a_billion_fails_rescore(default_run, tmp_path):
    cfg, _, _, _ = default_run
    path, _ = run(replace(cfg, bootstrap=20, out=str(tmp_path / "out")))
    original = path.read_text()
    record = json.loads(original)
    leaves = list(_leaves(record["metrics"]))
    # every kind of number: values, thresholds, pAUCs, counts, interval bounds, per-fold entries where present
    assert len(leaves) > 40
    assert any(".intervals." in p for p, _, _ in leaves) and any(".pauc." in p for p, _, _ in leaves)
    for leaf, keys, value in leaves:
        tampered = json.loads(original)
        new = value * (1 - 1e-9) if value != 0 else 1e-12  # towards zero: a fraction stays in [0, 1]
        assert new != value
        parent = tampered["metrics"]
        for k in keys[:-1]:
            parent = parent[k]
        parent[keys[-1]] = new
        path.write_text(json.dumps(tampered))
        try:
            diff = rescore(path)
        except BadResultsFile as exc:
            # the tampered value no longer validates (an integer made fractional, an interval's bound moved past
            # the other): refused where the file is loaded, naming that field (or the interval holding it)
            named = [functools.reduce(field_path, keys[:n], "metrics") for n in (len(keys), len(keys) - 1)]
            assert any(f": {p} " in str(exc) for p in named), (leaf, named, str(exc))
            continue
        assert len(diff) == 1 and diff[0].startswith(f"{leaf}:"), (leaf, diff)
    path.write_text(original)
    assert rescore(path) == []
