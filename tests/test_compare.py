"""Paired comparisons: the same resamples for both methods; the difference's interval; significance; ties."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from fiqa_bench.cli.main import main
from fiqa_bench.config import RunConfig
from fiqa_bench.pipeline.runner import run
from fiqa_bench.results.compare import compare, load_runs


@pytest.mark.shared
def test_compare_pairs_resamples_and_names_significant_differences(small_bench, mbf, tmp_path, isolated_cache):
    out = tmp_path / "out"
    paths = {}
    for m in ("random", "blur", "jpeg"):
        paths[m], _ = run(
            RunConfig(protocol=str(small_bench), backbone=mbf, method=m, out=str(out), progress=False, bootstrap=300)
        )
    (group,) = compare(load_runs([out]))
    assert group.genuine == 6 and group.impostor == 60 and group.B == 300
    col = next(c for c in group.columns if c.title == "FNM-EDC pAUC@0.20")
    runs = {r.label: r for r in group.runs}
    # the paired interval is the percentile interval of the per-resample differences of the stored replicates
    j = [s for s, _ in [("0.20", 0), ("0.30", 0)]].index("0.20")
    diff = runs["blur"].raw["boot_edc_fnm"][:, j] - runs["random"].raw["boot_edc_fnm"][:, j]
    ok = diff[np.isfinite(diff)]
    lo, hi = np.percentile(ok, [2.5, 97.5])
    assert col.vs_random["blur"].interval == [float(lo), float(hi)]
    assert col.vs_random["blur"].value == col.values["blur"] - col.values["random"]
    assert col.vs_random["blur"].significant == (lo > 0 or hi < 0)
    # best by point value in the metric's direction (lower pAUC is better); a tie unless separated
    best = min(col.values, key=col.values.get)
    assert col.best == best
    assert col.best_separated == col.vs_best[col.runner_up].significant
    res = CliRunner().invoke(main, ["compare", str(out)])
    assert res.exit_code == 0, res.output
    assert "one genuine pair = 16.67 TPR points" in res.output and "vs random" in res.output
    js = json.loads(CliRunner().invoke(main, ["compare", str(out), "--json"]).output)
    assert js[0]["genuine"] == 6 and {c["column"] for c in js[0]["columns"]} >= {"TPR@FPR=1e-1", "FNM-EDC pAUC@0.30"}


@pytest.mark.shared
def test_one_method_with_two_seeds_gets_two_labels(small_bench, mbf, tmp_path, isolated_cache):
    out = tmp_path / "out"
    run(
        RunConfig(protocol=str(small_bench), backbone=mbf, method="random", out=str(out), progress=False, bootstrap=200)
    )
    run(
        RunConfig(
            protocol=str(small_bench),
            backbone=mbf,
            method="random",
            out=str(out),
            progress=False,
            bootstrap=200,
            seed=1,
        )
    )
    (group,) = compare(load_runs([out]))
    assert sorted(r.label for r in group.runs) == ["random {seed=0}", "random {seed=1}"]
    col = next(c for c in group.columns if c.title == "TPR@FPR=1e-1")
    assert set(col.values) == {"random {seed=0}", "random {seed=1}"}
