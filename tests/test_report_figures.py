"""The report of real runs: intervals in every cell, best/tie marks from paired comparisons, figures (ROC, EDC,
score and quality histograms) as PNG and SVG referenced from the HTML page, the same bytes when written again."""

from __future__ import annotations

import hashlib

import pytest

from fiqa_bench.report import load_results, significance, write_report
from fiqa_bench.runner import RunConfig, run


@pytest.mark.shared
def test_report_of_real_runs_has_intervals_marks_and_figures(small_bench, mbf, tmp_path, isolated_cache):
    out = tmp_path / "out"
    for m in ("random", "blur", "jpeg"):
        run(RunConfig(protocol=str(small_bench), backbone=mbf, method=m, out=str(out), progress=False, bootstrap=200))
    md_path, html_path = write_report(out)
    html = html_path.read_text()
    md = md_path.read_text()
    stem = "mini__onnx-mobilefacenet.onnx__top1"
    for fig in ("roc", "edc", "scores", "quality"):
        for ext in ("png", "svg"):
            f = out / "plots" / f"{stem}__{fig}.{ext}"
            assert f.is_file() and f.stat().st_size > 1000
        assert f'src="plots/{stem}__{fig}.png"' in html
    assert (out / "plots" / f"{stem}__roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<small>[" in html and "95% bootstrap over subjects, B=200" in md
    assert "6 genuine / 60 impostor pairs" in md and "one genuine pair = 16.67 TPR points" in md
    marks = significance(load_results(out))
    assert marks  # every run has replicates: comparisons made
    assert all(v in ("best", "tie") for m in marks.values() for v in m.values())
    # nothing marked best unless separated: on 6 genuine pairs no TPR difference is significant
    assert not any(v == "best" for m in marks.values() for k, v in m.items() if k.startswith("TPR@FPR"))

    def digest():
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.rglob("*")) if p.is_file()}

    before = digest()
    write_report(out)
    assert digest() == before
