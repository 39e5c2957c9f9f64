"""Reports: Markdown and HTML tables laid out like the paper's, as a pure function of results files.

One results file per (method, backbone, protocol) run (see ``docs``/design "Results file"). Tables are built
per protocol and selection strategy; rows are grouped by FR model, then method. The columns are the headline
columns of the declared metrics the protocol reports (:class:`fiqa_bench.metrics.base.Metric`), laid out as each
metric declares: TPR in percent at each FPR for template 1:1 protocols, like the paper's Tables 3-4; accuracy
``mean ± std`` in percent for k-fold protocols, like Table 5; the EDC pAUCs; any other registered metric's columns.

A method appearing in several variants (``--method-option``, e.g. its own trained weights) gets one row per
variant, labelled by the options that differ (``tinyfq [weights=tinyfq-none.onnx]``: files by base name), else by
version/card hash or weights sha256; the Runs table lists every run's options.

Within each FR-model block the best value of each column is bold (every row that shows it, when at least
two rows have a value). A missing value (``null``) shows as "—" with a footnote giving the reason. The
output depends on the results only (no clock, no paths outside the folder), so re-running gives the same
bytes. Results of one protocol name made with different protocol versions or pair lists are refused.

When the folder holds ``costs.json`` (written by ``benchmarks/bench_costs.py``; schema in
:mod:`fiqa_bench.writers.costs`), the report gains a "Costs (Table 2 layout)" section: parameters, multiply-adds and
ms per image of each quality method, tinyfq's throughput and the Table 6 networks. A malformed ``costs.json``
is an error naming it. A folder with only ``costs.json`` gives a report with only that section.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fiqa_bench.data import atomic
from fiqa_bench.errors import FiqaBenchError
from fiqa_bench.results.record import SCHEMA_VERSION, RunRecord
from fiqa_bench.results.store import (
    LoadedRun,
    OnBad,
    comparable_key,
    load_runs,
    method_label,
    null_reason,
    options_text,
    pairing_key,
)
from fiqa_bench.writers.costs import COSTS_FILE, costs_html, costs_markdown, load_costs

SOURCE_KEY = "_source"  # added by load_results: the file a result came from (not part of the schema)
BASELINE_METHODS = ("none", "random")  # listed first in every block, in this order
#: Then the paper's methods in the order of its Tables 3-5 (perceptual, then learned, tinyFQnet last); other
#: methods follow them alphabetically.
PAPER_METHODS = ("blur", "pose", "jpeg", "combination", "svm", "rqs", "faceqnet", "tinyfq")
NULL = "—"

__all__ = ["SCHEMA_VERSION", "load_results", "render_markdown", "render_html", "write_report"]


# ------------------------------------------------------------------------------------------ loading


def _as_runs(results: Iterable[LoadedRun | dict]) -> list[LoadedRun]:
    """What the renderers are given, as loaded runs: runs from the store as they are, results dicts (``"_source"``:
    the file each came from) validated like a file is (:class:`~fiqa_bench.errors.BadResultsFile` naming it)."""
    runs = []
    for r in results:
        if not isinstance(r, LoadedRun):
            source = r.get(SOURCE_KEY, "<results dict>")
            r = LoadedRun.from_json({k: v for k, v in r.items() if k != SOURCE_KEY}, source)
        runs.append(r)
    return runs


def _check_comparable(runs: list[LoadedRun]) -> None:
    """Refuse one protocol name with several versions / pair lists, and two results for one table cell."""
    by_protocol: dict[str, dict[tuple, list[str]]] = {}
    for r in runs:
        key = comparable_key(r.record)
        by_protocol.setdefault(key[0], {}).setdefault(key[1:4], []).append(r.source)
    for name, variants in sorted(by_protocol.items()):
        if len(variants) > 1:
            lines = [
                f"  version {v}, pairs {(p or '?')[:12]}, faces {(f or '?')[:12]}: {len(files)} file(s), "
                + ", ".join(sorted(files)[:3])
                + (f" and {len(files) - 3} more" if len(files) > 3 else "")
                for (v, p, f), files in sorted(variants.items(), key=lambda kv: str(kv[0]))
            ]
            raise FiqaBenchError(
                f"results for protocol {name!r} come from different protocol versions or pair/face lists and "
                "cannot share a table:\n" + "\n".join(lines) + "\nput each set in its own folder"
            )
    cells: dict[tuple, str] = {}
    for r in runs:
        cell = (r.record.protocol["name"], _selection(r), _backbone_key(r), _method_key(r), _settings_key(r))
        if cell in cells:
            raise FiqaBenchError(
                f"two results for the same table cell (protocol {cell[0]!r}, selection {cell[1]!r}, "
                f"FR model {cell[2][0]!r}, method {cell[3][0]!r}): {cells[cell]} and {r.source}"
            )
        cells[cell] = r.source


def _load(folder: str | Path, on_bad: OnBad | None) -> list[LoadedRun]:
    root = Path(folder)
    if not root.is_dir():
        raise FiqaBenchError(f"{root}: no such results folder")
    runs = load_runs([root], on_bad=on_bad)
    _check_comparable(runs)
    return runs


def load_results(folder: str | Path, on_bad: OnBad | None = None) -> list[dict]:
    """Every results file (``*.json``, searched recursively) in ``folder``, sorted by path, as dicts.

    Loaded by :func:`fiqa_bench.results.store.load_runs`: JSON files that are not results files are skipped with a
    warning; a results file that breaks the schema raises :class:`FiqaBenchError` naming it and its field (given
    ``on_bad``, it is handed there and left out); results that cannot share a table (see module docstring) raise.
    Each dict gets ``"_source"``: the path it was read from.
    """
    return [{**r.record.to_json(), SOURCE_KEY: r.source} for r in _load(folder, on_bad)]


# ------------------------------------------------------------------------------------ table model


def _selection(run: LoadedRun) -> str:
    return run.record.config["selection"]


def _backbone_key(run: LoadedRun) -> tuple:
    return (run.record.backbone["name"], run.record.backbone.get("weights_sha256") or "")


#: Settings a row label shows when they differ between runs of one method in one table (short names).
SETTING_LABELS = (
    ("k", "k"),
    ("flip", "flip"),
    ("fpr_reading", "reading"),
    ("detector", "detector"),
    ("seed", "seed"),
    ("on_no_face", "no-face"),
    ("on_bad_image", "bad-image"),
    ("backbone_options", "fr-options"),
    ("edc", "edc"),
    ("follow_symlinks", "follow-symlinks"),
    ("max_image_bytes", "max-bytes"),
    ("bootstrap", "bootstrap"),
    ("metric_options", "metric"),
)  # the options of metrics declared elsewhere (their digest's default place)


def _settings_key(run: LoadedRun) -> str:
    return json.dumps(
        {
            k: v
            for k, v in run.record.settings.items()
            if k
            not in ("protocol", "pairs_sha256", "method", "method_options", "backbone", "backbone_sha256", "selection")
        },
        sort_keys=True,
        default=str,
    )


def _settings_text(run: LoadedRun) -> str:
    """The settings of a run that change numbers, as the Runs table shows them."""
    s = run.record.settings
    parts = []
    for key, label in SETTING_LABELS:
        if key in s and s[key] not in (None, {}, False):
            value = s[key]
            if isinstance(value, dict):
                value = ",".join(f"{k}={v}" for k, v in sorted(value.items()))
            parts.append(f"{label}={value}")
    return ", ".join(parts)


def _method_key(run: LoadedRun) -> tuple:
    """(name, version, card hash, options as given, sha256 of the options' files): one key per method variant."""
    m = run.record.method
    return (
        m["name"],
        m.get("version") or "",
        m.get("card_hash") or "",
        tuple(sorted((m.get("options") or {}).items())),
        tuple(sorted((m.get("options_sha256") or {}).items())),
    )


def _method_variant_labels(name: str, group: list[tuple], records: dict[tuple, RunRecord]) -> dict[tuple, str]:
    """Labels of several variants of one method: version (and card hash) when those differ, then the options
    that differ between the variants (``tinyfq [weights=tinyfq-none.onnx]``), then, where labels still
    coincide, the sha256 of the options' files or of the options."""
    import hashlib

    labels = {}
    versions = {(k[1], k[2]) for k in group}
    by_version = len({k[1] for k in group}) == len(versions)
    option_dicts = {k: dict(k[3]) for k in group}
    differing = sorted(
        {o for d in option_dicts.values() for o in d if len({d2.get(o) for d2 in option_dicts.values()}) > 1}
    )
    for k in group:
        tag = ""
        if len(versions) > 1:
            tag = f" v{k[1]}" if by_version else f" v{k[1]} (card {k[2][:8]})"
        labels[k] = method_label(records[k], keys=differing, tag=tag)
    counts: dict[str, int] = {}
    for label in labels.values():
        counts[label] = counts.get(label, 0) + 1
    for k, label in list(labels.items()):
        if counts[label] > 1:  # same base names, or the same path holding other weights
            files = dict(k[4])
            if files:
                labels[k] = label + " (" + ", ".join(f"{o} {sha[:8]}" for o, sha in sorted(files.items())) + ")"
            else:
                digest = hashlib.sha256(repr(k[3:]).encode()).hexdigest()[:8]
                labels[k] = label + f" (options {digest})"
    return labels


def _labels(keys: Iterable[tuple], kind: str, records: dict[tuple, RunRecord] | None = None) -> dict[tuple, str]:
    """Display names: the plain name unless one name stands for several identities in the report (``records``: a
    run's record per method key, whose options label a method variant)."""
    keys = sorted(set(keys))
    by_name: dict[str, list[tuple]] = {}
    for k in keys:
        by_name.setdefault(k[0], []).append(k)
    labels = {}
    for name, group in by_name.items():
        if len(group) == 1:
            labels[group[0]] = name
        elif kind == "method":
            labels.update(_method_variant_labels(name, group, records or {}))
        else:
            for k in group:
                labels[k] = f"{name} (weights {k[1][:8] or '?'})"
    return labels


def _method_order(label: str, name: str) -> tuple:
    order = BASELINE_METHODS + PAPER_METHODS
    base = order.index(name) if name in order else len(order)
    return (base, label.casefold(), label)


@dataclass
class _Cell:
    text: str  # plain text, e.g. "93.21" or "97.02 ± 0.51" or NULL
    value: float | None  # what "best" compares (rounded as shown)
    bold: bool = False
    tie: bool = False  # tied for best: the paired interval of its difference to the best includes zero
    interval: str = ""  # "[low, high]" of the bootstrap interval, when the run has one

    @property
    def full(self) -> str:
        return f"{self.text} {self.interval}" if self.interval else self.text

    note: int | None = None  # footnote number for a null


@dataclass
class _Row:
    method: str
    cells: list[_Cell]
    result: LoadedRun


@dataclass
class _Block:
    backbone: str
    rows: list[_Row]


@dataclass
class _Column:
    metric: str  # declared metric key
    title: str  # headline title, e.g. "TPR@FPR=1e-3"
    index: int  # position among the metric's headline columns
    higher_is_better: bool
    short: str = ""  # the column's short name, e.g. "1e-3"


@dataclass
class _Table:
    protocol: str
    selection: str
    kind: str  # the protocol kind (its card's ``metric``, a label): one table never mixes two
    columns: list[_Column]
    blocks: list[_Block]
    meta: list[str]
    notes: list[tuple[int, str]] = field(default_factory=list)
    marked: bool = False  # best/tie marks come from paired bootstrap comparisons
    figures: dict = field(default_factory=dict)  # backbone label -> {figure: [png path, svg path]} (relative)


def _metric_keys(run: LoadedRun) -> list[str]:
    return list(run.record.protocol.get("metrics") or run.record.metrics)


def _headline(run: LoadedRun, key: str) -> list[tuple[str, Any]]:
    from fiqa_bench.metrics.base import get_metric

    return get_metric(key).headline(run.record.metrics.get(key))


def _row_labels(rows: list[tuple[str, LoadedRun]]) -> list[str]:
    """Row labels: the method label, plus the settings that differ between rows of the same method label."""
    by_label: dict[str, list[int]] = {}
    for i, (label, _) in enumerate(rows):
        by_label.setdefault(label, []).append(i)
    out = [label for label, _ in rows]
    for label, idx in by_label.items():
        if len(idx) < 2:
            continue
        settings = [rows[i][1].record.settings for i in idx]
        differing = [(k, short) for k, short in SETTING_LABELS if len({repr(s.get(k)) for s in settings}) > 1]
        for i, st in zip(idx, settings):
            shown = []
            for k, short in differing:
                v = st.get(k)
                if isinstance(v, dict):
                    v = ",".join(f"{a}={b}" for a, b in sorted(v.items()))
                shown.append(f"{short}={'—' if v is None else v}")
            if shown:
                out[i] = f"{label} {{{', '.join(shown)}}}"
    return out


def _build_tables(results: Iterable[LoadedRun | dict], marks: dict | None = None) -> list[_Table]:
    """The tables of a report. ``marks`` (from :func:`significance`): per results file and column title, "best" (the
    best, separated from the runner-up by a paired bootstrap interval excluding zero) or "tie" (tied for best).
    Without marks nothing is marked best: a best that may be noise is not shown as one."""
    from fiqa_bench.metrics.base import get_metric, pair_worth

    marks = marks or {}

    results = _as_runs(results)
    _check_comparable(results)
    backbone_labels = _labels((_backbone_key(r) for r in results), "backbone")
    method_labels = _labels((_method_key(r) for r in results), "method", {_method_key(r): r.record for r in results})
    groups: dict[tuple, list[LoadedRun]] = {}
    for r in results:
        groups.setdefault((r.record.protocol["name"], _selection(r)), []).append(r)

    tables: list[_Table] = []
    note_texts: dict[str, int] = {}  # footnote numbers are global to the report, one per distinct reason
    for (protocol, selection), rs in sorted(groups.items(), key=lambda kv: (kv[0][0].casefold(), kv[0][0], kv[0][1])):
        kinds = {r.record.protocol["metric"] for r in rs}
        if len(kinds) > 1:
            raise FiqaBenchError(
                f"protocol {protocol!r} has results of several metric kinds {sorted(kinds)}: "
                + ", ".join(r.source for r in rs)
            )
        kind = kinds.pop()
        keys: list[str] = []
        for r in rs:
            keys += [k for k in _metric_keys(r) if k not in keys]
        columns: list[_Column] = []
        for key in keys:
            metric = get_metric(key)
            titles: list[str] = []
            for r in rs:
                titles += [t for t, _ in _headline(r, key) if t not in titles]
            order = metric.column_order
            if order is not None:  # runs with different columns (an FPR measurable in some only): declared order
                titles.sort(key=lambda t: order(metric.short_of(t)))
            columns += [_Column(key, t, i, metric.higher_is_better, metric.short_of(t)) for i, t in enumerate(titles)]
        version, pairs_sha = comparable_key(rs[0].record)[1:3]
        meta = [f"protocol version {version}"]
        if pairs_sha:
            meta.append(f"pairs sha256 {pairs_sha[:12]}")
        for key in keys:  # what a metric says of the whole table (how TPR was read off the ROC)
            note = get_metric(key).table_note
            text = note([r.record.config for r in rs]) if note is not None else None
            if text:
                meta.append(text)
        meta.append(f"{len(rs)} result{'s' if len(rs) != 1 else ''}")
        gen = sorted({r.record.counts["genuine"] for r in rs if "genuine" in r.record.counts})
        imp = sorted({r.record.counts["impostor"] for r in rs if "impostor" in r.record.counts})
        if gen and imp:
            g_text = "/".join(f"{g:,}" for g in gen)
            meta.append(f"{g_text} genuine / {'/'.join(f'{i:,}' for i in imp)} impostor pairs")
            worth = pair_worth(keys)
            text = worth.text({"genuine": gen[0], "impostor": imp[0]}) if worth is not None else None
            if text:
                meta.append(text)
        boots = {(r.record.config.get("bootstrap"), r.record.config.get("bootstrap_level")) for r in rs}
        boots.discard((None, None))
        if len(boots) == 1:
            B, level = boots.pop()
            if B and level is not None:
                meta.append(f"[low, high]: {100 * float(level):.0f}% bootstrap over subjects, B={B}")
        table = _Table(protocol, selection, kind, columns, [], meta)

        by_backbone: dict[str, list[LoadedRun]] = {}
        for r in rs:
            by_backbone.setdefault(backbone_labels[_backbone_key(r)], []).append(r)
        for backbone in sorted(by_backbone, key=lambda b: (b.casefold(), b)):
            members = by_backbone[backbone]
            labels = _row_labels([(method_labels[_method_key(r)], r) for r in members])
            rows = []
            for r, label in zip(members, labels):
                cells = []
                for col in columns:
                    metric = get_metric(col.metric)
                    values = dict(_headline(r, col.metric))
                    v = values.get(col.title)
                    if v is None:
                        reason = null_reason(r.record, col.metric, col.short)
                        num = note_texts.setdefault(reason, len(note_texts) + 1)
                        cells.append(_Cell(NULL, None, note=num))
                        if (num, reason) not in table.notes:
                            table.notes.append((num, reason))
                        continue
                    shown = metric.format(v)
                    text = metric.table_cell(r.record.metrics[col.metric], v)
                    interval = metric.headline_intervals(r.record.metrics.get(col.metric)).get(col.title)
                    shown_interval = f"[{metric.format(interval[0])}, {metric.format(interval[1])}]" if interval else ""
                    mark = (marks.get(r.source) or {}).get(col.title)
                    cells.append(
                        _Cell(text, float(shown), bold=mark == "best", tie=mark == "tie", interval=shown_interval)
                    )
                rows.append(_Row(label, cells, r))
            rows.sort(key=lambda row: _method_order(row.method, row.result.record.method["name"]))
            table.marked |= any(r.source in marks for r in members)
            table.blocks.append(_Block(backbone, rows))
        table.notes.sort()
        tables.append(table)
    return tables


def _column_title(col: _Column) -> str:
    """A column's heading, as its metric declares it (:meth:`fiqa_bench.metrics.base.Metric.table_header`)."""
    from fiqa_bench.metrics.base import get_metric

    return get_metric(col.metric).table_header(col.short)


def _provenance(runs: list[LoadedRun]) -> list[str]:
    suites = sorted(
        {(str(r.record.suite.get("version") or "?"), str(r.record.suite.get("git_commit") or "?")[:12]) for r in runs}
    )
    return [f"fiqa-bench {v} (commit {c})" for v, c in suites]


def _run_rows(runs: list[LoadedRun]) -> list[list[str]]:
    rows = []
    for r in runs:
        rec = r.record
        rows.append(
            [
                rec.protocol["name"],
                _selection(r),
                rec.backbone["name"],
                (rec.backbone.get("weights_sha256") or "")[:12],
                rec.method["name"],
                rec.method.get("version") or "",
                (rec.method.get("card_hash") or "")[:12],
                options_text(rec.method.get("options") or {}, rec.method.get("options_sha256") or {}, with_sha256=True),
                _settings_text(r),
                (rec.suite.get("git_commit") or "")[:12],
                r.path.name,
            ]
        )
    rows.sort()
    return rows


RUN_COLUMNS = [
    "Protocol",
    "Selection",
    "FR model",
    "Weights sha256",
    "Method",
    "Version",
    "Card hash",
    "Options",
    "Settings",
    "Commit",
    "File",
]


# ---------------------------------------------------------------------------------------- Markdown


from fiqa_bench.writers.markdown import md_cell as _md  # noqa: E402  (one escaper for every Markdown renderer)


def _marks_legend(t: _Table) -> str:
    if t.marked:
        return (
            "Bold: the best in the column within its FR model, separated from the runner-up (the paired bootstrap "
            "interval of their difference excludes zero). †: tied for best (that interval includes zero); no mark "
            "in a column means the best is not separated (↑ higher is better, ↓ lower)."
        )
    if all(len(b.rows) < 2 for b in t.blocks):
        return "One run per FR model: nothing to compare, so no best is marked (↑ higher is better, ↓ lower)."
    return (
        "No best is marked: these results have no bootstrap replicates (.npz) to tell the best apart from the "
        "runner-up (↑ higher is better, ↓ lower)."
    )


def render_markdown(
    results: Iterable[LoadedRun | dict],
    costs: dict | None = None,
    marks: dict | None = None,
    figures: dict | None = None,
) -> str:
    """The report as GitHub-flavoured Markdown (bold best values, "—" nulls with footnotes); ``costs``: a
    validated :mod:`fiqa_bench.writers.costs` dict, rendered as the "Costs (Table 2 layout)" section."""
    results = _as_runs(results)
    tables = _build_tables(results, marks)
    _attach_figures(tables, figures)
    lines = ["# fiqa-bench report", ""]
    if not results:
        if costs is not None:
            return "\n".join(lines + ["No results files; costs only.", "", costs_markdown(costs)])
        return "\n".join(lines + ["No results.", ""])
    lines += [
        f"Made from {len(results)} results file{'s' if len(results) != 1 else ''}; "
        + "; ".join(_md(p) for p in _provenance(results))
        + ".",
        "",
    ]
    for t in tables:
        lines += [f"## {_md(t.protocol)} — selection: {_md(t.selection)}", "", " · ".join(_md(m) for m in t.meta), ""]
        header = ["FR model", "Method"] + [_column_title(c) for c in t.columns]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join(["---", "---"] + ["---:"] * len(t.columns)) + "|")
        for block in t.blocks:
            for i, row in enumerate(block.rows):
                cells = []
                for c in row.cells:
                    if c.note is not None:
                        cells.append(f"{NULL}[^{c.note}]")
                    else:
                        cells.append(f"**{c.full}**" if c.bold else (c.full + " †" if c.tie else c.full))
                lines.append("| " + " | ".join([_md(block.backbone) if i == 0 else "", _md(row.method)] + cells) + " |")
        lines += ["", _marks_legend(t), ""]
        for backbone, figs in t.figures.items():
            lines.append(
                f"Figures ({_md(backbone)}): "
                + " · ".join(f"[{name}]({paths[0]}) ([svg]({paths[1]}))" for name, paths in figs.items())
            )
            lines.append("")
        for num, reason in t.notes:
            lines.append(f"[^{num}]: {NULL} {_md(reason)}")
        if t.notes:
            lines.append("")
    if costs is not None:
        lines.append(costs_markdown(costs))
    lines += ["## Runs", "", "| " + " | ".join(RUN_COLUMNS) + " |", "|" + "|".join(["---"] * len(RUN_COLUMNS)) + "|"]
    for run_row in _run_rows(results):
        lines.append("| " + " | ".join(_md(x) for x in run_row) + " |")
    lines.append("")
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------- HTML

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #1b1b1b; line-height: 1.4; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2.2rem; }
p.meta { color: #555; margin: 0.2rem 0 0.8rem; }
table { border-collapse: collapse; margin: 0.5rem 0; font-variant-numeric: tabular-nums; }
th, td { padding: 0.25rem 0.7rem; border-bottom: 1px solid #ddd; text-align: left; }
th { background: #f3f3f3; border-bottom: 2px solid #999; }
td.num { text-align: right; }
tbody + tbody { border-top: 2px solid #999; }
td.fr { font-weight: 600; vertical-align: top; }
sup { font-size: 0.7em; }
ol.notes, ul.notes { color: #555; font-size: 0.9rem; }
h3 { font-size: 1.05rem; margin-top: 1.4rem; }
table.runs td, table.runs th { font-size: 0.85rem; }
""".strip()


def _h(text: Any) -> str:
    return html.escape(str(text), quote=True)


CAPTIONS = {
    "roc": "ROC, log FPR axis, FPR targets dotted",
    "edc": "FNM-EDC with the theoretical best (dashed) and the pAUC limits (dotted)",
    "scores": "genuine / impostor comparison scores",
    "quality": "quality scores of every image",
}


def render_html(
    results: Iterable[LoadedRun | dict],
    costs: dict | None = None,
    marks: dict | None = None,
    figures: dict | None = None,
) -> str:
    """The report as one HTML page rendered from a jinja2 template (inline CSS, no scripts, no external assets;
    figures as image files beside it, linked relatively); ``costs`` as in :func:`render_markdown`."""
    import jinja2

    results = _as_runs(results)
    tables = _build_tables(results, marks)
    _attach_figures(tables, figures)
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("fiqa_bench.writers", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    page = env.get_template("report.html.j2").render(
        css=_CSS + "\n" + _CSS_EXTRA,
        tables=tables,
        n_results=len(results),
        provenance=_provenance(results),
        column_title=_column_title,
        legend=_marks_legend,
        null=NULL,
        captions=CAPTIONS,
        costs_html=costs_html(costs) if costs is not None else "",
        run_columns=RUN_COLUMNS,
        run_rows=_run_rows(results) if results else [],
    )
    return page


_CSS_EXTRA = """
td.tie { color: #444; }
div.figures { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; max-width: 34rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85rem; color: #555; }
""".strip()


def _attach_figures(tables: list[_Table], figures: dict | None) -> None:
    """Give each table its figures: ``figures`` maps (protocol, backbone label, selection) to {name: [png, svg]}."""
    if not figures:
        return
    for t in tables:
        for block in t.blocks:
            figs = figures.get((t.protocol, block.backbone, t.selection))
            if figs:
                t.figures[block.backbone] = figs


def significance(results: Iterable[LoadedRun | dict]) -> dict:
    """Best/tie marks per results file and column from paired bootstrap comparisons of the runs' ``.npz``: "best"
    where the best is separated from the runner-up, "tie" for every run tied with the best where it is not.
    Runs without raw data, or groups that cannot be paired, get no marks."""
    from fiqa_bench.results.compare import compare

    by_group: dict[tuple, list[LoadedRun]] = {}
    for run in _as_runs(results):
        if not run.has_raw:
            continue
        try:
            raw = run.raw
        except FiqaBenchError:
            continue
        if any(k.startswith("boot_") for k in raw):  # the methods of one table, whatever their seeds
            by_group.setdefault(pairing_key(run.record), []).append(run)
    marks: dict[str, dict] = {}
    for runs in by_group.values():
        if len(runs) < 2:
            continue
        try:
            groups = compare(runs)
        except FiqaBenchError:
            continue
        for g in groups:
            label_to_src = {run.label: run.source for run in g.runs}
            for col in g.columns:
                if col.best is None or col.runner_up is None:
                    continue
                if col.best_separated:
                    marks.setdefault(label_to_src[col.best], {})[col.title] = "best"
                else:
                    for label in [col.best] + col.tied_with_best:
                        marks.setdefault(label_to_src[label], {})[col.title] = "tie"
    return marks


def draw_figures(results: Iterable[LoadedRun | dict], out_dir: Path, draw=None) -> dict:
    """Figures of every table (from the runs' ``.npz``), written under ``out_dir/plots``; returns
    {(protocol, backbone label, selection): {figure: [png path, svg path] relative to out_dir}}. ``draw``: another
    drawer with :func:`fiqa_bench.writers.plots.draw_reusing`'s signature (the LaTeX writer's vector PDFs)."""
    from fiqa_bench.writers import plots

    out: dict = {}
    for t in _build_tables(results):
        for block in t.blocks:
            runs = []
            for row in block.rows:
                if not row.result.has_raw:
                    continue
                try:
                    runs.append((row.method, row.result.raw))
                except FiqaBenchError:
                    continue
            if not runs:
                continue
            stem = plots.stem_for(t.protocol, block.backbone, t.selection)
            paths = (draw or plots.draw_reusing)(runs, out_dir / "plots", stem)  # reused: same inputs, not redrawn
            if draw is None:  # the PNG/SVG report (the LaTeX writer draws its own vector figures)
                paths.update(_metric_figures(block.rows, runs, out_dir / "plots", stem))
            out[(t.protocol, block.backbone, t.selection)] = {
                name: [p.relative_to(out_dir).as_posix() for p in files] for name, files in paths.items()
            }
    return out


def _metric_figures(rows, runs: list, folder: Path, stem: str) -> dict:
    """The figures the rows' reported metrics declare (:attr:`fiqa_bench.metrics.base.Metric.figure`), each from
    the runs that report it: {metric key: [png, svg]}."""
    from fiqa_bench.metrics.base import get_metric

    out: dict = {}
    raw_of = dict(runs)
    keys = dict.fromkeys(k for row in rows for k in row.result.record.protocol.get("metrics") or ())
    for key in keys:
        try:
            metric = get_metric(key)
        except KeyError:
            continue
        if metric.figure is None:
            continue
        chosen = [
            (row.method, raw_of[row.method], row.result.record.metrics.get(key))
            for row in rows
            if row.method in raw_of and key in (row.result.record.protocol.get("metrics") or ())
        ]
        if chosen:
            out[key] = metric.figure(chosen, folder, f"{stem}__{key}")
    return out


# ------------------------------------------------------------------------------------------ writing


def write_report(folder: str | Path, out_dir: str | Path | None = None, on_bad: OnBad | None = None) -> list[Path]:
    """Read the results in ``folder`` and write ``report.md`` and ``report.html`` (atomically) into
    ``out_dir`` (default: ``folder``). Returns the two paths. ``on_bad``: bad results files are handed to it and
    left out (else the first one is an error naming it)."""
    results = _load(folder, on_bad)
    costs = load_costs(folder)
    if not results and costs is None:
        raise FiqaBenchError(
            f"{folder}: no results files found (looked for *.json with schema_version, and for {COSTS_FILE})"
        )
    target = Path(out_dir) if out_dir is not None else Path(folder)
    marks = significance(results) if results else {}
    figures = draw_figures(results, target) if results else {}
    md_path, html_path = target / "report.md", target / "report.html"
    atomic.write_text(md_path, render_markdown(results, costs, marks, figures))
    atomic.write_text(html_path, render_html(results, costs, marks, figures))
    return [md_path, html_path]
