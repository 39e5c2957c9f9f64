"""The report of real runs: intervals in every cell, best/tie marks from paired comparisons, figures (ROC, EDC,
score and quality histograms) as PNG and SVG referenced from the HTML page, the same bytes when written again."""

from __future__ import annotations

import hashlib

import pytest

from fiqa_bench.config import RunConfig
from fiqa_bench.pipeline.runner import run
from fiqa_bench.writers.report import load_results, significance, write_report


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


@pytest.mark.shared
def test_figures_are_not_redrawn_from_the_same_inputs_and_a_redraw_gives_the_same_bytes(
    small_bench, mbf, tmp_path, isolated_cache
):
    out = tmp_path / "out"
    for m in ("random", "blur"):
        run(RunConfig(protocol=str(small_bench), backbone=mbf, method=m, out=str(out), progress=False, bootstrap=50))
    write_report(out)
    plots = out / "plots"
    stem = "mini__onnx-mobilefacenet.onnx__top1"
    stamp = plots / f"{stem}.sha256"
    figures = sorted(p for p in plots.iterdir() if p.suffix in (".png", ".svg"))
    assert len(figures) == 8 and stamp.is_file()
    assert {line.split("  ")[1] for line in stamp.read_text().splitlines()[1:]} == {p.name for p in figures}

    def state():
        return {
            p.name: (p.stat().st_ino, p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(plots.iterdir())
        }

    before = state()
    write_report(out)
    assert state() == before  # same inputs: not one figure written again
    # drawn again from scratch (no stamp): the same bytes
    stamp.unlink()
    write_report(out)
    assert {k: v[2] for k, v in state().items()} == {k: v[2] for k, v in before.items()}
    # an edited figure is drawn again, whole
    roc = plots / f"{stem}__roc.png"
    roc.write_bytes(roc.read_bytes()[:100])
    write_report(out)
    assert {k: v[2] for k, v in state().items()} == {k: v[2] for k, v in before.items()}
    # another run in the table: other inputs, other figures
    run(RunConfig(protocol=str(small_bench), backbone=mbf, method="jpeg", out=str(out), progress=False, bootstrap=50))
    write_report(out)
    after = state()
    assert after[stamp.name][2] != before[stamp.name][2] and after[roc.name][2] != before[roc.name][2]
