"""Memory and computation costs of the quality methods (the paper's Table 2, and Table 6's networks).

``benchmarks/bench_costs.py`` measures them and writes ``costs.json`` (schema below) plus ``costs.md``;
``fiqa-bench report DIR`` renders a "Costs (Table 2 layout)" section when ``DIR/costs.json`` exists. This module
holds the schema's validation and the rendering, so both outputs show the same table.

``costs.json`` schema, version 1 (``null`` where a value does not apply; unknown keys are allowed and ignored)::

    {
      "costs_schema_version": 1,
      "machine": {                      # where and when it was measured
        "cpu_model": str, "cores": int,          # os.cpu_count()
        "onnxruntime": str,                      # onnxruntime version
        "threads": int,                          # onnxruntime intra-op threads of every session timed
        "opencv": str, "opencv_threads": int, "numpy": str, "python": str, "platform": str,
        "torch": str | null,                     # only used to build the Table 6 networks
        "load_average_start": [1 min, 5 min, 15 min],
        "date": str                              # ISO 8601, UTC
      },
      "config": {"data": str, "images": int,     # distinct real faces timed (decoded, detected, aligned before)
                 "repeats": int, "batch_size": int, "detector": str, "fr": str | null, "command": str},
      "methods": [{                     # one row per quality method, Table 2 layout
        "name": str, "need_aligning": str, "input": str,
        "parameters": int | null,                # numbers in the method's model; null: no model ("—")
        "parameters_note": str,                  # how they were counted
        "macs": int | null, "macs_note": str,    # multiply-adds per image (not 2x: one MAC = one multiply-add)
        "ms_single": float | null,               # ms per image, one image per call (median of the repeats)
        "ms_batch": float | null,                # ms per image, batch_size images per call (median)
        "skipped": str | null,                   # why the row was not measured (then ms may be null)
        "paper": {"need_aligning": str, "parameters": str, "computation": str} | null,  # Table 2's row
        "notes": [str],
        "components": [{"what": str, "parameters": int | null, "macs": int | null, "flops_estimate": int | null,
                        "ms_single": float | null, "ms_batch": float | null, "note": str}]
                                                 # parts costed separately (SVM: the FR embedding it needs)
      }],
      "tinyfq_throughput": {            # optional
        "skipped": str | null,
        "model_images_per_s": {"single": float, "batch": float},       # network alone on aligned crops
        "pipeline_images_per_s": {"single": float, "batch": float},    # from the JPEG: decode+detect+align+model
        "stages_ms": {"decode": float, "detect": float, "align": float, "model": float},  # per image, single
        "paper": str
      },
      "networks": {                     # optional: Table 6's networks, untrained, exported to ONNX
        "skipped": str | null,
        "rows": [{"name": str, "input_size": int,
                  "parameters": int,              # counted in the ONNX initializers (fiqa_bench.models.onnx_info)
                  "parameters_torch": int | null, # nets.count_parameters of the torch network
                  "initializer_values": int,      # + BN running statistics and constants
                  "macs": int | null,             # per image, from the ONNX graph
                  "macs_torch": int | null,       # fiqa_bench.training.flops.count_flops (FlopCounterMode)
                  "norm_outputs": int | null,
                  "ms_single": float, "ms_batch": float,
                  "paper": {"network": str, "input_size": str, "parameters": str, "mflops": float} | null}]
      },
      "detectors": [{                   # optional: the face detectors every aligned input passes through
        "name": str, "input_size": int,           # multiply-adds are counted at input_size x input_size
        "file": str | null, "parameters": int | null, "macs": int | null,   # from the ONNX graph
        "ms_single": float | null,                # ms per decoded photo (median of the repeats)
        "skipped": str | null, "note": str}]
    }

A malformed file is an error naming it (:class:`fiqa_bench.errors.FiqaBenchError`), never a silently shorter
report.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

from fiqa_bench.errors import FiqaBenchError
from fiqa_bench.writers.markdown import md_cell

COSTS_SCHEMA_VERSION = 1
COSTS_FILE = "costs.json"
NULL = "—"
SECTION_TITLE = "Costs (Table 2 layout)"

__all__ = ["COSTS_FILE", "COSTS_SCHEMA_VERSION", "load_costs", "validate_costs", "costs_markdown", "costs_html"]


# ------------------------------------------------------------------------------------------ validation
class _Bad(Exception):
    pass


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _need(obj: dict, key: str, where: str, check, what: str, optional: bool = False) -> Any:
    if key not in obj:
        if optional:
            return None
        raise _Bad(f"{where}.{key} is missing")
    value = obj[key]
    if value is None and optional:
        return None
    if not check(value):
        raise _Bad(f"{where}.{key} = {value!r} is not {what}")
    return value


def _str(x: Any) -> bool:
    return isinstance(x, str)


def _count(x: Any) -> bool:
    return _is_int(x) and x >= 0


def _positive_int(x: Any) -> bool:
    return _is_int(x) and x > 0


def _ms(x: Any) -> bool:
    return _is_num(x) and x > 0


def _nullable(obj: dict, key: str, where: str, check, what: str) -> Any:
    return _need(obj, key, where, check, what, optional=True)


def _validate_component(c: Any, where: str) -> None:
    if not isinstance(c, dict):
        raise _Bad(f"{where} is not an object")
    _need(c, "what", where, lambda v: _str(v) and v != "", "a non-empty string")
    for key in ("parameters", "macs", "flops_estimate"):
        _nullable(c, key, where, _count, "a non-negative integer or null")
    for key in ("ms_single", "ms_batch"):
        _nullable(c, key, where, _ms, "a positive number of ms or null")
    _nullable(c, "note", where, _str, "a string")


def _validate_method(row: Any, where: str) -> None:
    if not isinstance(row, dict):
        raise _Bad(f"{where} is not an object")
    _need(row, "name", where, lambda v: _str(v) and v != "", "a non-empty string")
    _need(row, "need_aligning", where, _str, "a string")
    skipped = _nullable(row, "skipped", where, lambda v: _str(v) and v != "", "a non-empty reason or null")
    for key in ("parameters", "macs"):
        _nullable(row, key, where, _count, "a non-negative integer or null")
    for key in ("parameters_note", "macs_note", "input"):
        _nullable(row, key, where, _str, "a string")
    for key in ("ms_single", "ms_batch"):
        if skipped is None:
            _need(row, key, where, _ms, "a positive number of ms (the row is not skipped)")
        else:
            _nullable(row, key, where, _ms, "a positive number of ms or null")
    paper = _nullable(row, "paper", where, lambda v: isinstance(v, dict), "an object or null")
    if paper is not None:
        for key in ("need_aligning", "parameters", "computation"):
            _need(paper, key, where + ".paper", _str, "a string")
    _nullable(row, "notes", where, lambda v: isinstance(v, list) and all(_str(x) for x in v), "a list of strings")
    comps = _nullable(row, "components", where, lambda v: isinstance(v, list), "a list")
    for i, c in enumerate(comps or []):
        _validate_component(c, f"{where}.components[{i}]")


def _validate_throughput(t: Any, where: str) -> None:
    if not isinstance(t, dict):
        raise _Bad(f"{where} is not an object")
    skipped = _nullable(t, "skipped", where, lambda v: _str(v) and v != "", "a non-empty reason or null")
    if skipped is not None:
        return
    for group in ("model_images_per_s", "pipeline_images_per_s"):
        g = _need(t, group, where, lambda v: isinstance(v, dict), "an object")
        for key in ("single", "batch"):
            _need(g, key, f"{where}.{group}", _ms, "a positive number of images/s")
    stages = _need(t, "stages_ms", where, lambda v: isinstance(v, dict), "an object")
    for key in ("decode", "detect", "align", "model"):
        _need(stages, key, f"{where}.stages_ms", _ms, "a positive number of ms")
    _nullable(t, "paper", where, _str, "a string")


def _validate_networks(nets: Any, where: str) -> None:
    if not isinstance(nets, dict):
        raise _Bad(f"{where} is not an object")
    _nullable(nets, "skipped", where, lambda v: _str(v) and v != "", "a non-empty reason or null")
    rows = _need(nets, "rows", where, lambda v: isinstance(v, list), "a list")
    for i, row in enumerate(rows):
        w = f"{where}.rows[{i}]"
        if not isinstance(row, dict):
            raise _Bad(f"{w} is not an object")
        _need(row, "name", w, lambda v: _str(v) and v != "", "a non-empty string")
        _need(row, "input_size", w, _positive_int, "a positive integer")
        _need(row, "parameters", w, _count, "a non-negative integer")
        for key in ("parameters_torch", "initializer_values", "macs", "macs_torch", "norm_outputs"):
            _nullable(row, key, w, _count, "a non-negative integer or null")
        for key in ("ms_single", "ms_batch"):
            _need(row, key, w, _ms, "a positive number of ms")
        paper = _nullable(row, "paper", w, lambda v: isinstance(v, dict), "an object or null")
        if paper is not None:
            _need(paper, "parameters", w + ".paper", _str, "a string")
            _need(paper, "mflops", w + ".paper", _is_num, "a number")


def _validate_detectors(rows: Any, where: str) -> None:
    if not isinstance(rows, list):
        raise _Bad(f"{where} is not a list")
    for i, row in enumerate(rows):
        w = f"{where}[{i}]"
        if not isinstance(row, dict):
            raise _Bad(f"{w} is not an object")
        _need(row, "name", w, lambda v: _str(v) and v != "", "a non-empty string")
        _need(row, "input_size", w, _positive_int, "a positive integer")
        for key in ("parameters", "macs"):
            _nullable(row, key, w, _count, "a non-negative integer or null")
        _nullable(row, "ms_single", w, _ms, "a positive number of ms or null")
        for key in ("file", "skipped", "note"):
            _nullable(row, key, w, _str, "a string or null")


def validate_costs(data: Any, where: str = COSTS_FILE) -> dict:
    """``data`` if it follows the schema of the module docstring, else :class:`FiqaBenchError` naming ``where``."""
    try:
        if not isinstance(data, dict):
            raise _Bad("the top level is not a JSON object")
        if data.get("costs_schema_version") != COSTS_SCHEMA_VERSION:
            raise _Bad(
                f"costs_schema_version {data.get('costs_schema_version')!r} is not supported "
                f"(this fiqa-bench reads version {COSTS_SCHEMA_VERSION})"
            )
        m = _need(data, "machine", "costs", lambda v: isinstance(v, dict), "an object")
        _need(m, "cpu_model", "machine", _str, "a string")
        _need(m, "cores", "machine", _positive_int, "a positive integer")
        _need(m, "onnxruntime", "machine", _str, "a string")
        _need(m, "threads", "machine", _positive_int, "a positive integer")
        _need(m, "date", "machine", _str, "a string")
        _need(
            m,
            "load_average_start",
            "machine",
            lambda v: isinstance(v, list) and len(v) == 3 and all(_is_num(x) and x >= 0 for x in v),
            "three non-negative numbers",
        )
        for key in ("opencv", "numpy", "python", "platform", "torch"):
            _nullable(m, key, "machine", _str, "a string or null")
        _nullable(m, "opencv_threads", "machine", _is_int, "an integer or null")
        c = _need(data, "config", "costs", lambda v: isinstance(v, dict), "an object")
        _need(c, "images", "config", _positive_int, "a positive integer")
        _need(c, "repeats", "config", _positive_int, "a positive integer")
        _need(c, "batch_size", "config", _positive_int, "a positive integer")
        for key in ("data", "detector", "fr", "command"):
            _nullable(c, key, "config", _str, "a string or null")
        methods = _need(data, "methods", "costs", lambda v: isinstance(v, list) and len(v) > 0, "a non-empty list")
        names = set()
        for i, row in enumerate(methods):
            _validate_method(row, f"methods[{i}]")
            if row["name"] in names:
                raise _Bad(f"methods[{i}]: method {row['name']!r} appears twice")
            names.add(row["name"])
        if data.get("tinyfq_throughput") is not None:
            _validate_throughput(data["tinyfq_throughput"], "tinyfq_throughput")
        if data.get("networks") is not None:
            _validate_networks(data["networks"], "networks")
        if data.get("detectors") is not None:
            _validate_detectors(data["detectors"], "detectors")
    except _Bad as exc:
        raise FiqaBenchError(f"{where}: malformed costs file: {exc}") from None
    return data


def load_costs(folder: str | Path) -> dict | None:
    """``folder/costs.json`` validated, or None when the folder has none."""
    path = Path(folder) / COSTS_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FiqaBenchError(f"{path}: malformed costs file: not readable as JSON ({exc})") from None
    return validate_costs(data, str(path))


# ------------------------------------------------------------------------------------------ formatting
def fmt_count(n: int | None) -> str:
    """13366 -> '13,366 (0.013 M)'; None -> '—'."""
    if n is None:
        return NULL
    return f"{n:,} ({n / 1e6:.3g} M)" if n >= 1000 else f"{n:,}"


def fmt_mmacs(n: int | None) -> str:
    """Multiply-adds in millions, 4 significant digits (small values keep their digits)."""
    if n is None:
        return NULL
    m = n / 1e6
    if m == 0:
        return "0"
    if m >= 100:
        return f"{m:,.1f}"
    return f"{m:.4g}"


def fmt_ms(x: float | None) -> str:
    if x is None:
        return NULL
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    if x >= 0.1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def _machine_line(data: dict) -> str:
    m, c = data["machine"], data["config"]
    load = ", ".join(f"{x:.2f}" for x in m["load_average_start"])
    parts = [
        f"{m['cpu_model']}, {m['cores']} cores",
        f"onnxruntime {m['onnxruntime']} (CPU, {m['threads']} intra-op threads)",
    ]
    if m.get("opencv"):
        parts.append(f"OpenCV {m['opencv']} ({m.get('opencv_threads')} threads)")
    parts.append(f"load average at start {load}")
    parts.append(str(m["date"]))
    faces = f"{c['images']} real faces" + (f" from {c['data']}" if c.get("data") else "")
    if c.get("detector"):
        faces += f" (decoded, {c['detector']}, aligned beforehand)"
    return (
        f"Measured on {'; '.join(parts)}. {faces}; ms per image, median of {c['repeats']} repeats; "
        f"'single' = one image per call, 'batch' = {c['batch_size']} images per call."
    )


def _paper_cell(row: dict) -> str:
    p = row.get("paper")
    if not p:
        return ""
    return f"{p['need_aligning']} · {p['parameters']} · {p['computation']}"


def _table2_rows(data: dict) -> list[list[str]]:
    """[method, need aligning?, parameters, M multiply-adds, ms single, ms batch, paper] per row and component."""
    rows = []
    for r in data["methods"]:
        if r.get("skipped"):
            rows.append(
                [
                    r["name"],
                    r["need_aligning"],
                    fmt_count(r.get("parameters")),
                    fmt_mmacs(r.get("macs")),
                    NULL,
                    NULL,
                    _paper_cell(r),
                ]
            )
        else:
            rows.append(
                [
                    r["name"],
                    r["need_aligning"],
                    fmt_count(r.get("parameters")),
                    fmt_mmacs(r.get("macs")),
                    fmt_ms(r.get("ms_single")),
                    fmt_ms(r.get("ms_batch")),
                    _paper_cell(r),
                ]
            )
        for comp in r.get("components") or []:
            macs = fmt_mmacs(comp.get("macs"))
            if comp.get("macs") is None and comp.get("flops_estimate") is not None:
                macs = f"≈{comp['flops_estimate'] / 1e6:.3g} M flops"
            rows.append(
                [
                    f"↳ {r['name']}: {comp['what']}",
                    "",
                    fmt_count(comp.get("parameters")),
                    macs,
                    fmt_ms(comp.get("ms_single")),
                    fmt_ms(comp.get("ms_batch")),
                    "",
                ]
            )
    return rows


TABLE2_HEADER = [
    "method",
    "need aligning?",
    "parameters",
    "computation (M multiply-adds)",
    "ms/image single",
    "ms/image batch",
    "paper Table 2 (aligning · parameters (MB) · Gflops)",
]
TABLE6_HEADER = [
    "network",
    "input size",
    "parameters",
    "M multiply-adds",
    "ms/image single",
    "ms/image batch",
    "paper Table 6 (parameters · Mflops)",
]


def _method_notes(data: dict) -> list[str]:
    out = []
    for r in data["methods"]:
        bits = []
        if r.get("skipped"):
            bits.append(f"not measured: {r['skipped']}")
        for key in ("parameters_note", "macs_note"):
            if r.get(key):
                bits.append(r[key])
        bits += list(r.get("notes") or [])
        for comp in r.get("components") or []:
            if comp.get("note"):
                bits.append(f"{comp['what']}: {comp['note']}")
        if bits:
            out.append(f"{r['name']}: " + "; ".join(bits))
    return out


def _table6_rows(data: dict) -> list[list[str]]:
    rows = []
    for r in data["networks"]["rows"]:
        p = r.get("paper")
        paper = ""
        if p:
            label = " ".join(str(x) for x in (p.get("network"), p.get("input_size")) if x)
            paper = (f"{label}: " if label else "") + f"{p['parameters']} · {p['mflops']:g}"
        rows.append(
            [
                r["name"],
                f"{r['input_size']}x{r['input_size']}",
                fmt_count(r["parameters"]),
                fmt_mmacs(r.get("macs")),
                fmt_ms(r["ms_single"]),
                fmt_ms(r["ms_batch"]),
                paper,
            ]
        )
    return rows


def _network_notes(data: dict) -> list[str]:
    out = []
    for r in data["networks"]["rows"]:
        checks = []
        if r.get("parameters_torch") is not None:
            ok = "equal" if r["parameters_torch"] == r["parameters"] else "DIFFERENT"
            checks.append(
                f"parameters: ONNX initializers {r['parameters']:,}, nets.py {r['parameters_torch']:,} ({ok})"
            )
        if r.get("macs_torch") is not None and r.get("macs") is not None:
            ok = "equal" if r["macs_torch"] == r["macs"] else "DIFFERENT"
            checks.append(f"multiply-adds: ONNX graph {r['macs']:,}, flops.py {r['macs_torch']:,} ({ok})")
        if r.get("norm_outputs"):
            checks.append(
                f"+{r['norm_outputs']:,} BN outputs = {(r['macs'] + r['norm_outputs']) / 1e6:.4g} M if BN is counted"
            )
        if checks:
            out.append(f"{r['name']}: " + "; ".join(checks))
    return out


DETECTORS_TITLE = "Face detectors (every aligned input passes through one)"
DETECTORS_HEADER = ["detector", "multiply-adds counted at", "parameters", "M multiply-adds", "ms/image single"]


def _detector_rows(data: dict) -> list[list[str]]:
    return [
        [
            r["name"],
            f"{r['input_size']}x{r['input_size']}",
            fmt_count(r.get("parameters")),
            fmt_mmacs(r.get("macs")),
            fmt_ms(r.get("ms_single")),
        ]
        for r in data["detectors"]
    ]


def _detector_notes(data: dict) -> list[str]:
    return [
        f"{r['name']}: " + (f"not measured: {r['skipped']}" if r.get("skipped") else r.get("note") or "")
        for r in data["detectors"]
        if r.get("skipped") or r.get("note")
    ]


def _throughput_rows(t: dict) -> list[list[str]]:
    return [
        [
            "model alone (aligned 64x64 crops in memory)",
            f"{t['model_images_per_s']['single']:,.0f}",
            f"{t['model_images_per_s']['batch']:,.0f}",
        ],
        [
            "from the JPEG file (decode + detect + align + model)",
            f"{t['pipeline_images_per_s']['single']:,.0f}",
            f"{t['pipeline_images_per_s']['batch']:,.0f}",
        ],
    ]


def _stages_line(t: dict) -> str:
    s = t["stages_ms"]
    line = (
        f"Per image, one at a time: decode {fmt_ms(s['decode'])} ms, detect {fmt_ms(s['detect'])} ms, "
        f"align {fmt_ms(s['align'])} ms, model {fmt_ms(s['model'])} ms."
    )
    if t.get("paper"):
        line += f" Paper: {t['paper']}."
    return line


# ------------------------------------------------------------------------------------------ Markdown
_md = md_cell


def _md_table(header: list[str], rows: list[list[str]], numeric: set[int]) -> list[str]:
    lines = [
        "| " + " | ".join(_md(h) for h in header) + " |",
        "|" + "|".join("---:" if i in numeric else "---" for i in range(len(header))) + "|",
    ]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return lines


def costs_markdown(data: dict, level: int = 2) -> str:
    """The costs section as Markdown (heading at ``level``), from a validated costs dict."""
    h = "#" * level
    lines = [f"{h} {SECTION_TITLE}", "", _md(_machine_line(data)), ""]
    lines += _md_table(TABLE2_HEADER, _table2_rows(data), {2, 3, 4, 5})
    lines.append("")
    notes = _method_notes(data)
    if notes:
        lines += [f"- {_md(n)}" for n in notes] + [""]
    t = data.get("tinyfq_throughput")
    if t is not None:
        lines += [f"{h}# tinyfq throughput (images/s)", ""]
        if t.get("skipped"):
            lines += [f"Not measured: {_md(t['skipped'])}", ""]
        else:
            lines += _md_table(["", "single (images/s)", "batch (images/s)"], _throughput_rows(t), {1, 2})
            lines += ["", _md(_stages_line(t)), ""]
    nets = data.get("networks")
    if nets is not None:
        lines += [f"{h}# Table 6 networks (untrained instances exported to ONNX; costs do not depend on weights)", ""]
        if nets.get("skipped"):
            lines += [f"Not measured: {_md(nets['skipped'])}", ""]
        if nets["rows"]:
            lines += _md_table(TABLE6_HEADER, _table6_rows(data), {2, 3, 4, 5})
            lines.append("")
            lines += [f"- {_md(n)}" for n in _network_notes(data)] + [""]
    if data.get("detectors"):
        lines += [f"{h}# {DETECTORS_TITLE}", ""]
        lines += _md_table(DETECTORS_HEADER, _detector_rows(data), {2, 3, 4})
        lines += [""] + [f"- {_md(n)}" for n in _detector_notes(data)] + [""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ HTML
def _h(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _html_table(header: list[str], rows: list[list[str]], numeric: set[int]) -> list[str]:
    out = ["<table>", "<thead><tr>" + "".join(f"<th>{_h(x)}</th>" for x in header) + "</tr></thead>", "<tbody>"]
    for row in rows:
        tds = "".join(
            f'<td class="num">{_h(c)}</td>' if i in numeric else f"<td>{_h(c)}</td>" for i, c in enumerate(row)
        )
        out.append(f"<tr>{tds}</tr>")
    out += ["</tbody>", "</table>"]
    return out


def costs_html(data: dict) -> str:
    """The costs section as an HTML ``<section>`` (uses the report's CSS classes)."""
    out = ['<section id="costs">', f"<h2>{_h(SECTION_TITLE)}</h2>", f'<p class="meta">{_h(_machine_line(data))}</p>']
    out += _html_table(TABLE2_HEADER, _table2_rows(data), {2, 3, 4, 5})
    notes = _method_notes(data)
    if notes:
        out.append('<ul class="notes">' + "".join(f"<li>{_h(n)}</li>" for n in notes) + "</ul>")
    t = data.get("tinyfq_throughput")
    if t is not None:
        out.append("<h3>tinyfq throughput (images/s)</h3>")
        if t.get("skipped"):
            out.append(f"<p>Not measured: {_h(t['skipped'])}</p>")
        else:
            out += _html_table(["", "single (images/s)", "batch (images/s)"], _throughput_rows(t), {1, 2})
            out.append(f'<p class="meta">{_h(_stages_line(t))}</p>')
    nets = data.get("networks")
    if nets is not None:
        out.append("<h3>Table 6 networks (untrained instances exported to ONNX; costs do not depend on weights)</h3>")
        if nets.get("skipped"):
            out.append(f"<p>Not measured: {_h(nets['skipped'])}</p>")
        if nets["rows"]:
            out += _html_table(TABLE6_HEADER, _table6_rows(data), {2, 3, 4, 5})
            out.append('<ul class="notes">' + "".join(f"<li>{_h(n)}</li>" for n in _network_notes(data)) + "</ul>")
    if data.get("detectors"):
        out.append(f"<h3>{_h(DETECTORS_TITLE)}</h3>")
        out += _html_table(DETECTORS_HEADER, _detector_rows(data), {2, 3, 4})
        out.append('<ul class="notes">' + "".join(f"<li>{_h(n)}</li>" for n in _detector_notes(data)) + "</ul>")
    out.append("</section>")
    return "\n".join(out)
