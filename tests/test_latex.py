"""``fiqa-bench report --latex``: booktabs tables and vector PDF figures.

The table text is checked exactly against a separate loop over the results files and their ``.npz`` (values and
intervals formatted here, the best/tie marks recomputed here from the bootstrap replicates), on three real runs of the
committed celeba-eval report and one LFW pair of runs. The compile test typesets the written ``report.tex`` (tables
and figures) and tables with hostile method names with Debian's pdflatex, renders every page and every figure PDF to
PNG and checks that each has ink. Where pdflatex or pdftoppm is missing it FAILS when CI is set (``.ci/run`` installs
them) and skips, saying why, elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fiqa_bench.cli.main import main
from fiqa_bench.errors import FiqaBenchError
from fiqa_bench.writers.latex import escape, render_tables, write_latex
from test_report import ijb_marks, ijb_results, result

ROOT = Path(__file__).resolve().parents[1]
IJB = ROOT / "reports" / "celeba-eval" / "ijb"
LFW = ROOT / "reports" / "lfw"
METHODS = ("random", "jpeg", "tinyfq")  # three real dlib top-1 runs: separated bests and ties
#: How the test expects each metric's numbers to be written (scale, decimals): the paper's percent with two
#: decimals for TPR, the pAUCs as fractions.
FORMATS = {"tpr_at_fpr": (100, 2), "edc_fnm": (1, 4), "edc_fm": (1, 6), "edc_fnm_rethreshold": (1, 4)}
HIGHER = {"tpr_at_fpr": True, "edc_fnm": False, "edc_fm": False, "edc_fnm_rethreshold": False}
HOSTILE = ["a_b&c%", "x$y#z{w}", r"back\slash ~tilde^caret", "<less|more>", 'quote"d é—±', "中文"]


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        problem = (
            f"no {name} on PATH (Debian: apt-get install texlive-latex-base texlive-latex-recommended poppler-utils)"
        )
        if _in_ci():
            pytest.fail(f"the LaTeX compile test cannot run, and CI needs it: {problem}", pytrace=False)
        pytest.skip(f"{problem} (CI is not set, so skipped; in CI this fails)")
    return path


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The committed runs copied into a folder and ``fiqa-bench report FOLDER --latex`` run on it once."""
    folder = tmp_path_factory.mktemp("latex") / "results"
    folder.mkdir()
    for m in METHODS:
        for f in IJB.glob(f"celeba-lfw-eval__{m}__dlib__top1__*"):
            shutil.copy(f, folder / f.name)
    for f in LFW.glob("lfw__*"):
        if f.suffix in (".json", ".npz"):
            shutil.copy(f, folder / f.name)
    res = CliRunner().invoke(main, ["report", str(folder), "--latex"])
    assert res.exit_code == 0, res.output
    assert res.output.split() == [
        str(folder / name)
        for name in ("report.md", "report.html", "latex/tables.tex", "latex/figures.tex", "latex/report.tex")
    ]
    return folder


def _tables(tex: str) -> list[str]:
    return tex.split(r"\begin{table}")[1:]


def _body(table: str) -> list[str]:
    """The rows between the header's rule and the bottom rule (the rules between FR models left out)."""
    lines = table.splitlines()
    first = lines.index(r"\midrule")
    return [line for line in lines[first + 1 : lines.index(r"\bottomrule")] if line != r"\midrule"]


def _expected_marks(records: dict, raws: dict, key: str, j: int, short: str) -> dict[str, str]:
    """Best/tie marks of one column, recomputed from the replicates: the best by value in the metric's direction is
    bold when the paired 95% interval of its difference to the runner-up excludes zero; else it and every run whose
    interval to it includes zero get a dagger."""
    values = {}
    for m, rec in records.items():
        v = rec["metrics"][key]
        values[m] = (v.get("values") or v.get("pauc"))[short]
    ranked = sorted(values, key=values.__getitem__, reverse=HIGHER[key])
    best = ranked[0]

    def separated(m: str) -> bool:
        d = raws[best][f"boot_{key}"][:, j] - raws[m][f"boot_{key}"][:, j]
        lo, hi = np.percentile(d[np.isfinite(d)], [2.5, 97.5])
        return bool(lo > 0 or hi < 0)

    if separated(ranked[1]):
        return {best: "best"}
    return {m: "tie" for m in ranked if m == best or not separated(m)}


def test_tables_of_real_runs_bold_only_the_separated_best_dagger_ties_and_show_intervals(written):
    records = {m: json.loads(next(written.glob(f"celeba-lfw-eval__{m}__*.json")).read_text()) for m in METHODS}
    raws = {m: dict(np.load(next(written.glob(f"celeba-lfw-eval__{m}__*.npz")))) for m in METHODS}
    tex = (written / "latex" / "tables.tex").read_text()
    tables = _tables(tex)
    assert len(tables) == 3  # TPR (Table 3-4 layout), the EDC pAUCs, LFW accuracy (Table 5)
    groups = [["tpr_at_fpr"], ["edc_fnm", "edc_fm", "edc_fnm_rethreshold"]]
    n_bold = n_tie = 0
    for table, keys in zip(tables[:2], groups):
        rows = {m: ([], []) for m in METHODS}
        for key in keys:
            scale, digits = FORMATS[key]
            shorts = list(records["random"]["metrics"][key].get("values") or records["random"]["metrics"][key]["pauc"])
            for j, short in enumerate(shorts):
                marks = _expected_marks(records, raws, key, j, short)
                for m in METHODS:
                    v = records[m]["metrics"][key]
                    text = f"{scale * (v.get('values') or v.get('pauc'))[short]:.{digits}f}"
                    mark = marks.get(m)
                    text = rf"\textbf{{{text}}}" if mark == "best" else text + r"$^\dagger$" if mark == "tie" else text
                    n_bold += mark == "best"
                    n_tie += mark == "tie"
                    lo, hi = v["intervals"][short]
                    rows[m][0].append(text)
                    rows[m][1].append(rf"{{\scriptsize [{scale * lo:.{digits}f}, {scale * hi:.{digits}f}]}}")
        expected = []
        for i, m in enumerate(METHODS):  # the baseline first, then the paper's order
            expected.append(f"{'dlib' if i == 0 else ''} & {m} & " + " & ".join(rows[m][0]) + r" \\")
            expected.append(" & & " + " & ".join(rows[m][1]) + r" \\")
        assert _body(table) == expected
    assert n_bold >= 5 and n_tie >= 5  # the real runs exercise both marks
    # the header: the metric's title over its columns, FPRs as powers of ten; the notes say what the marks mean
    assert r"\multicolumn{5}{c}{TPR (\%) @ FPR $\uparrow$} \\" in tables[0]
    assert r"\cmidrule(lr){3-7}" in tables[0] and r"\multicolumn{1}{c}{$10^{-5}$}" in tables[0]
    assert r"\cmidrule(lr){3-4}\cmidrule(lr){5-6}\cmidrule(lr){7-8}" in tables[1]
    assert "[low, high]: 95\\% bootstrap over subjects, B=1000." in tables[0]
    assert r"$^\dagger$: tied for best" in tables[0]
    # k-fold accuracy like Table 5: mean ± std, one run per FR model, nothing marked
    assert _body(tables[2]) == [
        r"dlib & none & 98.93 $\pm$ 0.48 \\",
        r" & & {\scriptsize [98.32, 99.24]} \\",
        r"onnx:mobilefacenet.onnx & none & 99.07 $\pm$ 0.47 \\",
        r" & & {\scriptsize [98.60, 99.35]} \\",
    ]
    assert r"\textbf" not in tables[2] and r"$^\dagger$ " not in tables[2].split(r"\bottomrule")[0]


def test_handwritten_marks_are_shown_exactly_and_nothing_without_them():
    tex = render_tables(ijb_results(), marks=ijb_marks())
    body = _body(_tables(tex)[0])
    assert body == [
        r"mbf & random & 92.31 & 87.66 & 82.97 & 75.51 & 51.60 \\",
        r" & jpeg & \textbf{96.17} & \textbf{93.73} & \textbf{91.84} & \textbf{88.67} & \textbf{81.02} \\",
        r"r50 & random & 92.24 & 87.88 & 83.11 & 76.75 & 68.42 \\",
        r" & blur & 94.33 & 90.69 & 87.32 & 83.28 & ---\textsuperscript{1} \\",
        r" & rqs & 96.17 & 94.21 & 93.05$^\dagger$ & 89.72 & 85.36 \\",
        r" & tinyfqnet & \textbf{96.29} & \textbf{94.77} & 93.05$^\dagger$ & \textbf{91.12} & \textbf{87.68} \\",
    ]
    assert "\\textsuperscript{1}\\,TPR@FPR=1e-5 could not be measured in this run." in tex
    plain = render_tables(ijb_results())
    assert r"\textbf" not in plain and r"$^\dagger$ &" not in plain and "93.05$^" not in plain
    assert "No best is marked" in plain


def test_escape_writes_every_special_character_as_text():
    assert escape("a_b&c%") == r"a\_b\&c\%"
    assert escape("x$y#z{w}") == r"x$\$$y\#z\{w\}"
    assert (
        escape(r"back\slash ~tilde^caret") == r"back\textbackslash{}slash \textasciitilde{}tilde\textasciicircum{}caret"
    )
    assert escape('<less|more> "q" é—±†') == (
        r"\textless{}less\textbar{}more\textgreater{} \texttt{" + '"' + r"}q\texttt{" + '"' + r"} é---$\pm$$^\dagger$"
    )
    assert escape("中\nð") == "? ?"


def test_write_latex_needs_results(tmp_path):
    with pytest.raises(FiqaBenchError, match="no results files"):
        write_latex(tmp_path)


def test_figures_are_vector_pdfs_with_embedded_fonts_and_the_same_bytes_when_written_again(written):
    latex = written / "latex"
    pdfs = sorted((latex / "plots").glob("*.pdf"))
    # celeba-eval: ROC and EDC; LFW (no quality method): ROC only, for each FR model
    assert [p.name for p in pdfs] == [
        "celeba-lfw-eval__dlib__top1__edc.pdf",
        "celeba-lfw-eval__dlib__top1__roc.pdf",
        "lfw__dlib__top1__roc.pdf",
        "lfw__onnx-mobilefacenet.onnx__top1__roc.pdf",
    ]
    for p in pdfs:
        data = p.read_bytes()
        assert data.startswith(b"%PDF-")
        assert b"/FontFile2" in data  # TrueType fonts embedded
        assert b"/Subtype /Image" not in data  # nothing rasterised
        assert b"CreationDate" not in data
    figures = (latex / "figures.tex").read_text()
    assert r"\includegraphics[width=0.49\linewidth]{plots/celeba-lfw-eval__dlib__top1__roc.pdf}" in figures
    assert r"\includegraphics[width=0.8\linewidth]{plots/lfw__dlib__top1__roc.pdf}" in figures
    # every method of the board on one axis: the legend names each of them
    roc = (
        subprocess.run(
            ["pdftotext", str(latex / "plots" / "celeba-lfw-eval__dlib__top1__roc.pdf"), "-"],
            capture_output=True,
            text=True,
        )
        if shutil.which("pdftotext")
        else None
    )
    if roc is not None:
        assert all(m in roc.stdout for m in METHODS)

    def digest():
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(latex.rglob("*")) if p.is_file()}

    before = digest()
    write_latex(written)
    assert digest() == before


def _ink(png: Path) -> float:
    """The fraction of dark pixels of a rendered page."""
    from PIL import Image

    grey = np.asarray(Image.open(png).convert("L"))
    return float((grey < 128).mean())


def _render(pdftoppm: str, pdf: Path, out: Path) -> list[Path]:
    prefix = out / pdf.stem
    subprocess.run([pdftoppm, "-r", "50", "-png", str(pdf), str(prefix)], check=True, capture_output=True)
    return sorted(out.glob(f"{pdf.stem}*.png"))


def _compile(pdflatex: str, folder: Path, name: str) -> Path:
    proc = subprocess.run(
        [pdflatex, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", name],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    log = (folder / name).with_suffix(".log")
    assert proc.returncode == 0, log.read_text(errors="replace")[-3000:] if log.exists() else proc.stdout[-3000:]
    return (folder / name).with_suffix(".pdf")


def test_tables_and_figures_compile_with_pdflatex_and_render_with_ink(written, tmp_path):
    pdflatex, pdftoppm, pdffonts, pdftotext = (_tool(t) for t in ("pdflatex", "pdftoppm", "pdffonts", "pdftotext"))
    latex = tmp_path / "latex"
    shutil.copytree(written / "latex", latex)
    # tables with hostile method and FR model names, in a standalone document that \input's them
    hostile = [result(name, "r50&co_1", [0.9 - i / 100, 0.8, 0.7, 0.6, None]) for i, name in enumerate(HOSTILE)]
    (latex / "hostile.tex").write_text(render_tables(hostile))
    (latex / "standalone.tex").write_text(
        "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n\\input{hostile}\n\\end{document}\n"
    )
    (latex / "blank.tex").write_text(
        "\\documentclass{article}\n\\pagestyle{empty}\n\\begin{document}\n\\null\n\\end{document}\n"
    )
    renders = tmp_path / "png"
    renders.mkdir()
    pages = []
    for name in ("report.tex", "standalone.tex"):
        pdf = _compile(pdflatex, latex, name)
        fonts = subprocess.run([pdffonts, str(pdf)], capture_output=True, text=True, check=True).stdout
        assert "Type 3" not in fonts  # every font a vector font (no bitmap font made on the fly)
        pages += _render(pdftoppm, pdf, renders)
    assert len(pages) >= 4  # report.tex: three tables and the figures; the hostile table
    text = subprocess.run([pdftotext, str(latex / "standalone.pdf"), "-"], capture_output=True, text=True).stdout
    text = unicodedata.normalize("NFC", text)  # accented letters come out of the PDF as letter + accent
    # as typeset (the underscore is drawn as a rule, which text extraction reads as a space; ~ and ^ as accents)
    for shown in ("a b&c%", "x$y#z{w}", "<less|more>", "r50&co 1", "back\\slash ˜tildeˆcaret", 'quote"d é—±', "??"):
        assert shown in text, (shown, text)
    figures = [p for pdf in sorted((latex / "plots").glob("*.pdf")) for p in _render(pdftoppm, pdf, renders)]
    assert len(figures) == 4
    for png in pages + figures:
        assert _ink(png) > 0.002, png.name
    # the check tells a blank page from a typeset one
    blank = _render(pdftoppm, _compile(pdflatex, latex, "blank.tex"), renders)
    assert blank and all(_ink(png) == 0 for png in blank)
    assert re.search(r"\\input\{tables\}.*\\input\{figures\}", (latex / "report.tex").read_text(), re.S)


def test_tables_split_by_declared_metric_the_edc_family_together_another_quality_metric_alone(monkeypatch):
    """A metric that needs quality scores and declares no tag (a reject-curve metric from another package) gets a
    table of its own; the EDC pAUCs (tag ``edc``) share one; TPR (no quality needed) keeps the paper's table."""
    import sys

    from fiqa_bench.metrics import base
    from fiqa_bench.results.fields import Map, Num

    reject = base.Metric(
        key="test_reject_to_halve",
        title="Rejected to halve FNMR (%)",
        label="reject",
        joiner="@",
        needs=frozenset({"scores", "labels", "quality"}),
        higher_is_better=False,
        compute=lambda data, options: {},
        columns=lambda value: list(value["at"].items()),
        bounds=(0.0, 1.0),
        required=("at",),
        value_fields={"at": Map(Num(0, 1))},
    )
    monkeypatch.setitem(base._resolved, (reject.key, tuple(sys.path)), reject)
    runs = []
    for name, tpr, edc, rej in (("random", 0.8, 0.012, 0.31), ("tinyfq", 0.9, 0.008, 0.12)):
        r = result(name, "r50", [tpr] * 5)
        r["metrics"]["edc_fnm"] = {"pauc": {"0.20": edc, "0.30": edc + 0.001}}
        r["metrics"]["edc_fm"] = {"pauc": {"0.20": edc / 10, "0.30": edc / 10}}
        r["metrics"][reject.key] = {"at": {"1e-3": rej}}
        r["protocol"]["metrics"] = ["tpr_at_fpr", "edc_fnm", "edc_fm", reject.key]
        runs.append(r)
    tables = _tables(render_tables(runs))
    assert len(tables) == 3
    assert (
        r"\multicolumn{5}{c}{TPR (\%) @ FPR $\uparrow$}" in tables[0]
        and "EDC" not in tables[0].split("\\end{tabular}")[0]
    )
    assert (
        r"\multicolumn{2}{c}{FNM-EDC pAUC $\downarrow$} & \multicolumn{2}{c}{FM-EDC pAUC $\downarrow$} \\" in tables[1]
    )
    assert _body(tables[1]) == [
        r"r50 & random & 0.0120 & 0.0130 & 0.001200 & 0.001200 \\",
        r" & tinyfq & 0.0080 & 0.0090 & 0.000800 & 0.000800 \\",
    ]
    assert r"FR model & Method & \multicolumn{1}{c}{reject@1e-3 (\%) $\downarrow$} \\" in tables[2]
    assert _body(tables[2]) == [r"r50 & random & 31.00 \\", r" & tinyfq & 12.00 \\"]
