"""Paper-ready output: the report's tables as LaTeX (booktabs) and its ROC and EDC figures as vector PDF.

``fiqa-bench report RESULTS --latex`` writes, beside ``report.md`` and ``report.html``, a folder ``latex/``:

* ``tables.tex``: one ``table`` float per report table and metric group, laid out like the paper's Tables 3-5 (rows
  grouped by FR model, then methods in the paper's order; the metric's title spanning its columns). A report table
  (protocol x selection) is split by the declared metrics (:class:`fiqa_bench.metrics.base.Metric`): the metrics
  that need no quality score share the first table (TPR@FPR, k-fold accuracy); a metric that needs one gets a table
  of its own, shared with the other metrics whose first ``tags`` entry is the same (the EDC pAUCs share one).
  Each cell is the value, its bootstrap interval below it in small type; **bold** only for a best separated from
  the runner-up by a paired bootstrap comparison, a dagger for every run tied with the best
  (:func:`fiqa_bench.writers.report.significance`); a value that could not be measured is a dash with a numbered note.
  Needs ``\\usepackage{booktabs}``.
* ``figures.tex`` and ``plots/*.pdf``: per table and FR model the ROC and the FNM-EDC with every method on one axis
  (:func:`fiqa_bench.writers.plots.draw_pdf`). Needs ``\\usepackage{graphicx}``.
* ``report.tex``: a standalone document that ``\\input``s both (``pdflatex report.tex`` in the folder).

The tables come from the report's own table model (:func:`fiqa_bench.writers.report._build_tables`), so the LaTeX
shows the
numbers, labels, order, marks and notes of ``report.md``. Every text from the results (method and FR model names,
labels, reasons) is escaped for LaTeX; characters pdflatex cannot typeset by default become ``?``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from fiqa_bench.data import atomic
from fiqa_bench.errors import FiqaBenchError
from fiqa_bench.results.store import LoadedRun, OnBad
from fiqa_bench.writers.report import (
    CAPTIONS,
    NULL,
    _build_tables,
    _Column,
    _load,
    _marks_legend,
    _Table,
    draw_figures,
    significance,
)

__all__ = ["escape", "render_tables", "render_figures", "render_document", "write_latex"]

FOLDER = "latex"  # under the report's folder
TABLES, FIGURES, DOCUMENT = "tables.tex", "figures.tex", "report.tex"
DAGGER = r"$^\dagger$"

_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"$\$$",  # math mode: the text-mode dollar comes from a bitmap font in pdflatex's default encoding
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    '"': '\\texttt{"}',
    NULL: "---",
    "–": "--",
    "±": r"$\pm$",
    "×": r"$\times$",
    "·": r"$\cdot$",
    "↑": r"$\uparrow$",
    "↓": r"$\downarrow$",
    "≤": r"$\leq$",
    "≥": r"$\geq$",
    "†": DAGGER,
    "…": r"\dots{}",
    "\N{NO-BREAK SPACE}": "~",
}


#: The Latin-1 letters pdflatex typesets in its default font encoding (OT1) with vector fonts: all but the Icelandic
#: eth and thorn (and the multiplication sign, written as math above).
_LATIN1 = frozenset(chr(c) for c in range(0xC0, 0x100)) - set("ÐÞðþ×")


def escape(text: object) -> str:
    """``text`` as LaTeX text that typesets as written in any document pdflatex compiles: the special characters
    escaped, the few symbols the suite writes as their LaTeX commands, line breaks as spaces, ASCII and the Latin-1
    letters of :data:`_LATIN1` as they are (pdflatex reads UTF-8), any other character as ``?``."""
    out = []
    for ch in str(text):
        if ch in _SPECIAL:
            out.append(_SPECIAL[ch])
        elif ch in "\r\n\t":
            out.append(" ")
        elif 32 <= ord(ch) < 127 or ch in _LATIN1:
            out.append(ch)
        else:
            out.append("?")
    return "".join(out)


def _key(*parts: str) -> str:
    """A ``\\label`` key from free text (letters, digits and dashes only)."""
    return "fiqa:" + ":".join(re.sub(r"[^A-Za-z0-9]+", "-", p).strip("-") or "x" for p in parts)


def _short(short: str) -> str:
    """A column's short name as a paper writes it: ``1e-3`` as :math:`10^{-3}`, anything else escaped."""
    m = re.fullmatch(r"1e-0*(\d+)", short)
    return rf"$10^{{-{m.group(1)}}}$" if m else escape(short)


# --------------------------------------------------------------------------------------------- tables


def _groups(columns: list[_Column]) -> list[list[int]]:
    """Column indices of a report table, split into the LaTeX tables they go to (see the module docstring), in the
    report's column order."""
    from fiqa_bench.metrics.base import get_metric

    order: dict[str, list[int]] = {}
    for i, col in enumerate(columns):
        metric = get_metric(col.metric)
        if "quality" not in metric.needs:
            group = ""
        else:
            group = "tag:" + metric.tags[0] if metric.tags else "key:" + metric.key
        order.setdefault(group, []).append(i)
    return list(order.values())


def _header(columns: list[_Column]) -> list[str]:
    """The header rows: one metric title spanning its columns over a row of short names (``10^{-3}``, ``0.20``), or
    one row of full headings where every metric has a single column (accuracy)."""
    from fiqa_bench.metrics.base import get_metric

    runs: list[tuple[str, int, int]] = []  # (metric key, first column, count) in order
    for i, col in enumerate(columns):
        if runs and runs[-1][0] == col.metric:
            runs[-1] = (col.metric, runs[-1][1], runs[-1][2] + 1)
        else:
            runs.append((col.metric, i, 1))

    def arrow(metric) -> str:
        return r"$\uparrow$" if metric.higher_is_better else r"$\downarrow$"

    if all(n == 1 for _, _, n in runs):
        cells = []
        for key, first, _ in runs:
            metric = get_metric(key)
            heading = metric.table_header(columns[first].short)
            cells.append(rf"\multicolumn{{1}}{{c}}{{{escape(heading.rstrip(' ↑↓'))} {arrow(metric)}}}")
        return ["FR model & Method & " + " & ".join(cells) + r" \\"]
    top, rules = [], []
    for key, first, n in runs:
        metric = get_metric(key)
        top.append(rf"\multicolumn{{{n}}}{{c}}{{{escape(metric.title)} {arrow(metric)}}}")
        rules.append(rf"\cmidrule(lr){{{first + 3}-{first + 2 + n}}}")
    sub = " & ".join(rf"\multicolumn{{1}}{{c}}{{{_short(c.short)}}}" for c in columns)
    return ["FR model & Method & " + " & ".join(top) + r" \\", "".join(rules), r" & & " + sub + r" \\"]


def _cell(cell) -> str:
    """A value as the table shows it: bold when it is a separated best, a dagger when tied for best, a dash with
    its note number when null."""
    if cell.note is not None:
        return rf"---\textsuperscript{{{cell.note}}}"
    text = escape(cell.text)
    if cell.bold:
        return rf"\textbf{{{text}}}"
    return text + DAGGER if cell.tie else text


def _interval(cell) -> str:
    return rf"{{\scriptsize {escape(cell.interval)}}}" if cell.interval else ""


def _caption(t: _Table, columns: list[_Column]) -> str:
    from fiqa_bench.metrics.base import get_metric

    titles = []
    for c in columns:
        title = get_metric(c.metric).title
        if title not in titles:
            titles.append(title)
    return f"{t.protocol}, selection {t.selection}: {', '.join(titles)}"


def _render_table(t: _Table, idx: list[int]) -> list[str]:
    columns = [t.columns[i] for i in idx]
    lines = [
        r"\begin{table}[htbp]",
        r"\centering",
        r"\small",
        rf"\caption{{{escape(_caption(t, columns))}.}}",
        rf"\label{{tab:{_key(t.protocol, t.selection, *(c.metric for c in columns[:1]))}}}",
        r"\begin{tabular}{@{}ll" + "r" * len(columns) + "@{}}",
        r"\toprule",
        *_header(columns),
        r"\midrule",
    ]
    notes: set[int] = set()
    for b, block in enumerate(t.blocks):
        if b:
            lines.append(r"\midrule")
        for i, row in enumerate(block.rows):
            cells = [row.cells[j] for j in idx]
            notes |= {c.note for c in cells if c.note is not None}
            first = escape(block.backbone) if i == 0 else ""
            lines.append(f"{first} & {escape(row.method)} & " + " & ".join(_cell(c) for c in cells) + r" \\")
            if any(c.interval for c in cells):
                lines.append(" & & " + " & ".join(_interval(c) for c in cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\par\smallskip", r"\parbox{\linewidth}{\footnotesize"]
    lines.append(escape(_marks_legend(t)))
    lines.append(escape("; ".join(t.meta)) + ".")
    for num, reason in t.notes:
        if num in notes:
            lines.append(rf"\textsuperscript{{{num}}}\,{escape(reason.rstrip('.'))}.")
    lines += ["}", r"\end{table}", ""]
    return lines


def render_tables(results: Iterable[LoadedRun | dict], marks: dict | None = None) -> str:
    """Every table of the report as booktabs ``table`` floats (``marks`` as for
    :func:`fiqa_bench.writers.report.render_markdown`: without them nothing is bold and nothing has a dagger)."""
    lines = [
        "% fiqa-bench tables: \\input{tables} in a document with \\usepackage{booktabs}.",
        "% Bold: a best separated from the runner-up by a paired bootstrap comparison; \\dag: tied for best.",
        "",
    ]
    for t in _build_tables(results, marks):
        for idx in _groups(t.columns):
            lines += _render_table(t, idx)
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------- figures


def _draw_pdf(runs, folder: Path, stem: str) -> dict[str, list[Path]]:
    from fiqa_bench.writers import plots

    return {name: [path] for name, path in plots.draw_pdf(runs, folder, stem).items()}


def render_figures(figures: dict) -> str:
    """``figure`` floats of the vector figures (``figures`` from :func:`fiqa_bench.writers.report.draw_figures`
    with the PDF
    drawer: {(protocol, FR model, selection): {figure: [pdf path relative to the LaTeX folder]}})."""
    lines = ["% fiqa-bench figures: \\input{figures} in a document with \\usepackage{graphicx}.", ""]
    for (protocol, backbone, selection), figs in sorted(figures.items()):
        names = list(figs)  # as drawn: the ROC, then the EDC where there is one
        if not names:
            continue
        lines += [r"\begin{figure}[htbp]", r"\centering"]
        width = 0.49 if len(names) > 1 else 0.8
        lines.append(r"\hfill".join(rf"\includegraphics[width={width}\linewidth]{{{figs[n][0]}}}" for n in names))
        sides = ["left: ", "right: "] if len(names) == 2 else [""] * len(names)
        caption = f"{protocol}, FR model {backbone}, selection {selection}: " + "; ".join(
            side + CAPTIONS.get(n, n) for side, n in zip(sides, names)
        )
        lines += [rf"\caption{{{escape(caption)}.}}", rf"\label{{fig:{_key(protocol, backbone, selection)}}}"]
        lines += [r"\end{figure}", ""]
    return "\n".join(lines)


def render_document(with_figures: bool) -> str:
    """A standalone document that typesets the tables (and the figures): what ``pdflatex report.tex`` compiles."""
    return "\n".join(
        [
            r"\documentclass[10pt]{article}",
            r"\usepackage[a4paper,landscape,margin=1.5cm]{geometry}",
            r"\usepackage{booktabs}",
            r"\usepackage{graphicx}",
            r"\begin{document}",
            r"\input{tables}",
            *([r"\clearpage", r"\input{figures}"] if with_figures else []),
            r"\end{document}",
            "",
        ]
    )


def write_latex(folder: str | Path, out_dir: str | Path | None = None, on_bad: OnBad | None = None) -> list[Path]:
    """Read the results in ``folder`` and write ``latex/tables.tex``, ``latex/figures.tex`` with the PDF figures in
    ``latex/plots/``, and ``latex/report.tex`` into ``out_dir`` (default: ``folder``), each atomically. Returns the
    three ``.tex`` paths. ``on_bad`` as for :func:`fiqa_bench.writers.report.write_report`."""
    runs = _load(folder, on_bad)
    if not runs:
        raise FiqaBenchError(
            f"{folder}: no results files to write LaTeX tables from (looked for *.json with schema_version)"
        )
    target = (Path(out_dir) if out_dir is not None else Path(folder)) / FOLDER
    marks = significance(runs)
    figures = draw_figures(runs, target, draw=_draw_pdf)
    paths = [target / TABLES, target / FIGURES, target / DOCUMENT]
    atomic.write_text(paths[0], render_tables(runs, marks))
    atomic.write_text(paths[1], render_figures(figures))
    atomic.write_text(paths[2], render_document(bool(figures)))
    return paths
