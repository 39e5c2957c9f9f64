"""The leaderboard: a static site built from results files alone (``fiqa-bench leaderboard RESULTS_DIR... --out SITE``).

Why static: it must open from disk (``file://``) and from any static host, offline — no server, no CDN, no
external asset. ``SITE/index.html`` embeds every number as JSON in a ``<script type="application/json">``
element; ``leaderboard.js`` (vanilla, in ``fiqa_bench/writers/leaderboard_assets/``) renders the boards, sorts and
filters them and keeps the view in the URL's hash so a view can be linked. Everything a row links to is copied
into the site: its results file and ``.npz`` (``results/``), its method card (``cards/``, from the results
file's ``method.card``) and the ``costs.json`` its ms/image came from (``costs/``).

One board per protocol x backbone x selection. Runs whose protocol versions, pair lists or face lists differ —
or whose backbones carry other weights — are never ranked together: they get separate, labelled boards.
Metric values are read only through the declared metrics (:func:`fiqa_bench.metrics.base.get_metric`).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fiqa_bench.data import atomic
from fiqa_bench.errors import FiqaBenchError
from fiqa_bench.results.groups_file import GROUPS_SUFFIX, read_groups
from fiqa_bench.results.record import RunRecord, raw_path, settings_digest
from fiqa_bench.results.store import LoadedRun, OnBad, Skipped, comparable_key, json_files, load_file, null_reason
from fiqa_bench.writers.costs import COSTS_FILE, fmt_ms, load_costs

ASSETS = Path(__file__).with_name("leaderboard_assets")
DATA_SCHEMA = 1  # of the embedded JSON (``leaderboard-data``)
MARKER = ".fiqa-bench-leaderboard"  # a folder holding this file was written by write_site and may be rewritten
OWNED = ("results", "cards", "costs")  # sub-folders write_site replaces on a rebuild
STATIC = ("leaderboard.js", "leaderboard.css")

__all__ = ["collect", "build_data", "write_site", "embed_json", "SiteRun"]


@dataclass
class SiteRun:
    """One run as the site shows it: the loaded run, where its copies go and the costs that apply to it."""

    run: LoadedRun
    site_name: str = ""  # its path under SITE/results/
    raw_path: Path | None = None  # its .npz, when present
    raw_site_name: str | None = None
    costs: dict | None = None  # the validated costs.json that applies to it
    costs_path: Path | None = None
    costs_site_name: str | None = None
    groups: list = field(default_factory=list)  # the validated groups files of this run (fiqa-bench groups)

    @property
    def path(self) -> Path:
        return self.run.path

    @property
    def record(self) -> RunRecord:
        return self.run.record


# ------------------------------------------------------------------------------------------ loading


def _costs_for(path: Path, root: Path, by_folder: dict[Path, Path]) -> Path | None:
    """The costs.json that applies to a results file: its own folder's, else the nearest ancestor's up to the
    RESULTS_DIR, else the first (by path) anywhere under that RESULTS_DIR (``reports/x/costs/costs.json``)."""
    folder = path.parent
    while True:
        if folder in by_folder:
            return by_folder[folder]
        if folder == root or root not in folder.parents:
            break
        folder = folder.parent
    return next(iter(sorted(by_folder.values())), None)


def collect(
    dirs: Iterable[str | Path], exclude: str | Path | None = None, on_bad: OnBad | None = None
) -> list[SiteRun]:
    """Every results file (``*.json`` searched recursively, hidden folders skipped) under ``dirs``, loaded by the
    store (:mod:`fiqa_bench.results.store`).

    JSON files that are not results files (no ``schema_version``/``metrics``) are skipped with a warning; a results
    file that breaks the schema raises :class:`FiqaBenchError` naming it and its field (given ``on_bad``, it is handed
    there and left out), as does a malformed ``costs.json``. Unlike a report, runs of different protocol versions may
    be mixed: they land on separate boards. A run's costs come from the nearest ``costs.json`` of its own
    RESULTS_DIR (see :func:`_costs_for`), else from the first one in the other RESULTS_DIRs, in the order given
    (``leaderboard runs/ reports/x/costs/``). ``exclude`` (the site being written, when it lies inside a
    RESULTS_DIR) is not searched; neither is anything but regular files."""
    runs: list[SiteRun] = []
    seen: set[Path] = set()
    contents: dict[str, Path] = {}  # sha256 -> first path: a copy of a run elsewhere is the same run
    trees = []
    group_files: list[Path] = []
    for d in dirs:
        root = Path(d)
        if not root.is_dir():
            raise FiqaBenchError(f"{root}: no such results folder")
        root = root.resolve()
        files = json_files(root, exclude=Path(exclude) if exclude is not None else None, on_bad=on_bad)
        costs_files = {p.parent: p for p in files if p.name == COSTS_FILE}
        group_files += [p for p in files if p.name.endswith(GROUPS_SUFFIX)]
        trees.append(
            (root, costs_files, [p for p in files if p.name != COSTS_FILE and not p.name.endswith(GROUPS_SUFFIX)])
        )
    costs = {}
    for _, by_folder, _ in trees:
        for p in list(by_folder.values()):
            try:
                costs[p] = load_costs(p.parent)
            except FiqaBenchError as exc:
                if on_bad is None:
                    raise
                on_bad(Skipped(p, str(exc).removeprefix(f"{p}: ")))  # one line; the runs go on without its costs
                del by_folder[p.parent]
    anywhere = next((p for _, files, _ in trees for p in sorted(files.values())), None)
    for root, costs_files, paths in trees:
        for path in paths:
            if path in seen:
                continue
            seen.add(path)
            loaded = load_file(path, on_bad=on_bad)
            if loaded is None:
                continue
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest in contents:
                warnings.warn(f"{path}: same bytes as {contents[digest]}; listed once", stacklevel=2)
                continue
            contents[digest] = path
            run = SiteRun(loaded)
            run.costs_path = _costs_for(path, root, costs_files) or anywhere
            if run.costs_path is not None:
                run.costs = costs[run.costs_path]
            runs.append(run)
    _attach_groups(runs, group_files, on_bad)
    return _one_per_settings(runs)


def _attach_groups(runs: list[SiteRun], files: list[Path], on_bad: OnBad | None) -> None:
    """Each groups file (validated) to the run whose results file it was computed from (by the file's sha256); a
    bad one is handed to ``on_bad`` (else raised), one of no listed run is left out with a warning."""
    by_sha = {hashlib.sha256(run.path.read_bytes()).hexdigest(): run for run in runs}
    for path in files:
        try:
            obj = read_groups(path)
        except FiqaBenchError as exc:
            if on_bad is None:
                raise
            on_bad(Skipped(path, str(exc).removeprefix(f"{path}: ")))
            continue
        run = by_sha.get(obj["results"]["sha256"])
        if run is None:
            warnings.warn(
                f"{path}: its results file ({obj['results']['file']}) is not among these runs; skipped", stacklevel=2
            )
            continue
        run.groups.append(obj)


def _group_cells(run: SiteRun) -> dict[str, dict]:
    """{``grouping=group``: the row's cells on that group's comparisons} (what the leaderboard's group filter shows)."""
    out = {}
    rec = run.record
    for obj in run.groups:
        for grouping in obj["groupings"]:
            for g in grouping["groups"]:
                counts = {**rec.counts, "genuine": g["genuine"], "impostor": g["impostor"], "pairs_scored": g["pairs"]}
                out[f"{grouping['name']}={g['name']}"] = _cells(replace(rec, metrics=g["metrics"], counts=counts))[1]
    return out


def _one_per_settings(runs: list[SiteRun]) -> list[SiteRun]:
    """One row per experiment: a second results file with the same board and the same settings (the same run made
    again, e.g. the default tinyfq kept both beside the Table 3 runs and beside the Table 7 variants) is dropped
    with a warning naming both, so a board never shows one experiment twice under one label. The method's identity
    (card and weights) is part of the experiment: the default ``tinyfq`` before and after its bundled weights
    changed has the same settings but is two models, two rows."""
    kept: dict[tuple, Path] = {}
    out = []
    for run in runs:
        record = run.record
        key = (comparable_key(record), settings_digest(record.settings), record.method.get("identity") or "")
        if key in kept:
            warnings.warn(f"{run.path}: same protocol, backbone and settings as {kept[key]}; listed once", stacklevel=3)
            continue
        kept[key] = run.path
        out.append(run)
    return out


# ------------------------------------------------------------------------------------------ boards


def _intervals(metric, value: dict, shorts_titles: list[tuple[str, str]]) -> dict[str, list | None]:
    """{column title: [low, high] or None} of a recorded value (None where it has no interval)."""
    got = metric.headline_intervals(value)
    return {title: None if got.get(title) is None else [float(x) for x in got[title]] for _, title in shorts_titles}


def _cells(record: RunRecord) -> tuple[list[dict], dict[str, dict]]:
    """The run's headline columns (declared metrics only) and its cell per column id (``key:short``)."""
    from fiqa_bench.metrics.base import get_metric

    columns, cells = [], {}
    for key in record.protocol.get("metrics") or list(record.metrics):
        m = get_metric(key)
        value = record.metrics.get(key)
        if not isinstance(value, dict):
            continue
        shorts = [str(s) for s, _ in m.columns(value)] if "unavailable" not in value else []
        heads = m.headline(value)
        titles = [(s, t) for s, (t, _) in zip(shorts, heads)]
        intervals = _intervals(m, value, titles)
        boot = value.get("bootstrap")
        for short, (title, v) in zip(shorts, heads):
            cid = f"{key}:{short}"
            columns.append(
                {
                    "id": cid,
                    "metric": key,
                    "title": title,
                    "short": short,
                    "label": m.label,
                    "higher_is_better": m.higher_is_better,
                    "unit": m.unit,
                }
            )
            number = None if v is None else float(v)
            iv = intervals.get(title)
            cell = {"v": number, "text": m.format(number)}
            if number is None:
                cell["reason"] = null_reason(record, key, short)
            if iv is not None:
                cell.update(lo=iv[0], hi=iv[1], lo_text=m.format(iv[0]), hi_text=m.format(iv[1]))
            if boot is not None:
                cell["bootstrap"] = boot
            cells[cid] = cell
        if not heads and "unavailable" in value:
            cells[f"{key}:"] = {"v": None, "text": "—", "reason": str(value["unavailable"]), "metric": key}
    return columns, cells


def _worth(columns: list[dict]) -> dict | None:
    """What one comparison is worth on a board (its first metric that declares it: "one genuine pair is 0.13 points
    of TPR"), for leaderboard.js: the counts summed, what one is called, what the points are of."""
    from fiqa_bench.metrics.base import pair_worth

    worth = pair_worth(dict.fromkeys(c["metric"] for c in columns))
    return worth.as_dict() if worth is not None else None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:80] or "x"


def _card_name(record: RunRecord) -> str:
    """One card page per method variant and FR backbone (the page shows both cards)."""
    m, b = record.method, record.backbone
    ident = json.dumps(
        [
            m["name"],
            m.get("version"),
            m.get("card_hash"),
            m.get("options"),
            m.get("options_sha256"),
            m.get("card"),
            b["name"],
            b.get("weights_sha256"),
            b.get("card"),
        ],
        sort_keys=True,
        default=str,
    )
    return f"{_slug(m['name'])}-{hashlib.sha256(ident.encode()).hexdigest()[:8]}.html"


def _cost(run: SiteRun) -> dict | None:
    """ms/image of the run's method from its costs.json: only for the method's default build (no options),
    which is what ``benchmarks/bench_costs.py`` measures."""
    if run.costs is None or run.record.method.get("options"):
        return None
    name = run.record.method["name"]
    row = next((r for r in run.costs["methods"] if r["name"] == name), None)
    if row is None:
        return None
    m, c = run.costs["machine"], run.costs["config"]
    out = {
        "ms_single": row.get("ms_single"),
        "ms_batch": row.get("ms_batch"),
        "text": fmt_ms(row.get("ms_single")) if row.get("ms_single") is not None else "—",
        "file": f"costs/{run.costs_site_name}",
        "machine": f"{m['cpu_model']}, {m['cores']} cores, onnxruntime {m['onnxruntime']} ({m['threads']} "
        f"threads), {m['date']}; batch of {c['batch_size']}: "
        + (fmt_ms(row["ms_batch"]) + " ms/image" if row.get("ms_batch") is not None else "—"),
    }
    if row.get("skipped"):
        out["skipped"] = row["skipped"]
    return out


def _board_label(key: tuple, variants: int) -> dict:
    protocol, version, pairs, faces, backbone, weights, selection = key
    title = f"{protocol} · {backbone} · {selection}"
    detail = f"protocol {protocol} version {version}, pairs {pairs[:8] or '?'}, faces {faces[:8] or '?'}"
    if variants > 1:
        title += f" (version {version}, pairs {pairs[:8] or '?'})"
    return {"title": title, "detail": detail}


def _assign_site_names(runs: list[SiteRun]) -> None:
    """Each results file keeps its own name under results/ (so its ``raw.file`` still names its .npz); two
    different files of one name go to results/<sha256 prefix>/."""
    taken: dict[str, str] = {}
    for run in runs:
        data = run.path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        name = run.path.name
        if name in taken and taken[name] != digest:
            name = f"{digest[:12]}/{run.path.name}"
        taken.setdefault(name, digest)
        run.site_name = name
        raw = raw_path(run.path)
        raw_file = run.record.raw.get("file")
        if (
            isinstance(raw_file, str) and raw_file.endswith(".npz") and "/" not in raw_file and "\\" not in raw_file
        ):  # a name beside the results file, never a path elsewhere
            raw = run.path.with_name(raw_file)
        run.raw_path = raw if raw.is_file() else None
        run.raw_site_name = str(Path(name).with_name(raw.name)) if run.raw_path else None


def _assign_costs_names(runs: list[SiteRun]) -> None:
    names: dict[Path, str] = {}
    for run in runs:
        if run.costs_path is not None:
            names.setdefault(run.costs_path, f"costs-{len(names) + 1}.json")
            run.costs_site_name = names[run.costs_path]


def _paired(members: list[SiteRun], rows: list[dict]) -> str | None:
    """Add :mod:`fiqa_bench.results.compare`'s verdicts to a board's cells: ``paired`` = {best, separated, tied,
    diff, lo,
    hi, significant} (the difference to the column's best with its paired bootstrap interval). Returns why the
    board has none (None when it has them): every run needs its .npz replicates, and one comparison group."""
    from fiqa_bench.metrics.base import get_metric
    from fiqa_bench.results.compare import compare

    if len(members) < 2:
        return None
    if any(run.raw_path is None for run in members):
        return "paired comparisons need every run's .npz"
    try:
        if not all(any(k.startswith("boot_") for k in m.run.raw) for m in members):
            return "no bootstrap replicates in these runs' .npz (made with --bootstrap 0 or before intervals)"
        groups = compare([m.run for m in members])
    except FiqaBenchError as exc:
        return f"no paired comparisons: {exc}"
    if len(groups) != 1:
        return "no paired comparisons: these runs differ in a setting besides the method"
    group = groups[0]
    row_of = {m.path: row for m, row in zip(members, rows)}  # rows were built in the order of members
    for col in group.columns:
        cid = f"{col.metric}:{col.short}"
        fmt = get_metric(col.metric).format
        for p in group.runs:
            label = p.label
            cell = row_of[p.path]["cells"].get(cid)
            if cell is None or cell.get("v") is None:
                continue
            mark: dict[str, Any] = {
                "best": label == col.best,
                "separated": col.best_separated,
                "tied": label in col.tied_with_best,
                "best_label": col.best,
            }
            d = col.vs_best.get(label)
            if d is not None and d.value is not None:
                mark.update(diff=d.value, diff_text=fmt(d.value))
                if d.interval is not None:
                    mark.update(
                        lo=d.interval[0],
                        hi=d.interval[1],
                        lo_text=fmt(d.interval[0]),
                        hi_text=fmt(d.interval[1]),
                        significant=d.significant,
                    )
            cell["paired"] = mark
    return None


def build_data(runs: list[SiteRun]) -> dict:
    """The embedded JSON: boards (sorted), their columns and rows, and the filter values."""
    _assign_site_names(runs)
    _assign_costs_names(runs)
    groups: dict[tuple, list[SiteRun]] = {}
    for run in runs:
        groups.setdefault(comparable_key(run.record), []).append(run)
    by_protocol: dict[str, set] = {}
    for key in groups:
        by_protocol.setdefault(key[0], set()).add(key[1:4])
    boards, used_ids = [], set()
    for key in sorted(groups):
        rows, columns = [], []
        seen_cols: set[str] = set()
        for run in sorted(groups[key], key=lambda r: (r.run.label, r.site_name)):
            cols, cells = _cells(run.record)
            for c in cols:
                if c["id"] not in seen_cols:
                    seen_cols.add(c["id"])
                    columns.append(c)
            rec = run.record
            rows.append(
                {
                    "id": run.site_name,
                    "method": rec.method["name"],
                    "label": run.run.label,
                    "options": dict(rec.method.get("options") or {}),
                    "file": f"results/{run.site_name}",
                    "raw": f"results/{run.raw_site_name}" if run.raw_site_name else None,
                    "card": f"cards/{_card_name(rec)}",
                    "cost": _cost(run),
                    "cells": cells,
                    "groups": _group_cells(run),
                    "settings_digest": hashlib.sha256(
                        json.dumps(rec.settings, sort_keys=True, default=str).encode()
                    ).hexdigest()[:8],
                    "model_digest": hashlib.sha256(str(rec.method.get("identity") or "").encode()).hexdigest()[:8],
                }
            )
        labels = [r["label"] for r in rows]
        # one method variant run twice with other settings, or with other weights under the same settings (a
        # bundled model replaced): tell the rows apart by what differs
        clashes = {lab: [r for r in rows if r["label"] == lab] for lab in set(labels) if labels.count(lab) > 1}
        for same in clashes.values():
            by_settings = len({r["settings_digest"] for r in same}) == len(same)
            for r in same:
                r["label"] += (
                    f" {{settings {r['settings_digest']}}}"
                    if by_settings
                    else f" {{settings {r['settings_digest']}, model {r['model_digest']}}}"
                )
        members = sorted(groups[key], key=lambda r: (r.run.label, r.site_name))
        no_pairs = _paired(members, rows)
        rec0 = groups[key][0].record
        counts = rec0.counts
        boot = next((c["bootstrap"] for r in rows for c in r["cells"].values() if c.get("bootstrap")), None)
        board_id = _slug("__".join([key[0], "v" + key[1], key[2][:8], key[4], key[5][:8], key[6]]))
        if board_id in used_ids:  # differs only beyond the hash prefixes (or the face list): still its own id
            board_id = _slug(f"{board_id}__{hashlib.sha256(repr(key).encode()).hexdigest()[:8]}")
        used_ids.add(board_id)
        boards.append(
            {
                "id": board_id,
                "protocol": key[0],
                "protocol_version": key[1],
                "pairs_sha256": key[2],
                "faces_sha256": key[3],
                "backbone": key[4],
                "backbone_sha256": key[5],
                "selection": key[6],
                **_board_label(key, len(by_protocol[key[0]])),
                "not_ranked_with": len(by_protocol[key[0]]) > 1,
                "counts": {k: counts.get(k) for k in ("genuine", "impostor", "subjects") if k in counts},
                "worth": _worth(columns),
                "bootstrap": boot,
                "paired": no_pairs is None and len(rows) > 1,
                "paired_note": no_pairs,
                "columns": columns,
                "rows": rows,
            }
        )
    metrics: list[dict[str, Any]] = []
    for b in boards:
        for c in b["columns"]:
            if c["metric"] not in [m["key"] for m in metrics]:
                metrics.append({"key": c["metric"], "label": c["label"], "higher_is_better": c["higher_is_better"]})
    values = {
        "protocol": sorted({b["protocol"] for b in boards}),
        "backbone": sorted({b["backbone"] for b in boards}),
        "selection": sorted({b["selection"] for b in boards}),
        "method": sorted({r["method"] for b in boards for r in b["rows"]}),
        "metric": [m["key"] for m in metrics],
        "group": sorted({g for b in boards for r in b["rows"] for g in r["groups"]}),
    }
    return {"schema": DATA_SCHEMA, "boards": boards, "metrics": metrics, "filters": values}


# ------------------------------------------------------------------------------------------ writing


def embed_json(data: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: ``<``, ``>`` and ``&`` escaped so no value can
    close the element or open a comment."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _env():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(ASSETS)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def _prepare_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise FiqaBenchError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise FiqaBenchError(
            f"{out}: folder is not empty and was not written by `fiqa-bench leaderboard` "
            f"(no {MARKER}); choose a new or empty folder"
        )
    atomic.check_writable(out, "leaderboard site folder (--out)")
    for sub in OWNED:  # stale copies of a previous build go; nothing else in the folder is touched
        if (out / sub).is_dir():
            shutil.rmtree(out / sub)


def _card_context(run: LoadedRun) -> dict:
    m, b = run.record.method, run.record.backbone
    return {
        "name": m["name"],
        "label": run.label,
        "version": m.get("version"),
        "card_hash": m.get("card_hash"),
        "options": dict(m.get("options") or {}),
        "options_sha256": dict(m.get("options_sha256") or {}),
        "card": m.get("card"),
        "backbone": b["name"],
        "backbone_card": b.get("card"),
    }


def write_site(dirs: Iterable[str | Path], out: str | Path, on_bad: OnBad | None = None) -> list[Path]:
    """Build the site in ``out`` from the results files under ``dirs``; returns the files written. ``on_bad``: bad
    results files are handed to it and left out (else the first one is an error naming it)."""
    dirs = list(dirs)
    runs = collect(dirs, exclude=out, on_bad=on_bad)
    if not runs:
        raise FiqaBenchError(f"no results files under {', '.join(str(d) for d in dirs)}")
    data = build_data(runs)
    out = Path(out)
    _prepare_out(out)
    env = _env()
    written = []
    page = env.get_template("index.html.j2").render(data_json=embed_json(data), boards=data["boards"], n_runs=len(runs))
    atomic.write_text(out / "index.html", page)
    written.append(out / "index.html")
    for name in STATIC:
        atomic.write_bytes(out / name, (ASSETS / name).read_bytes())
        written.append(out / name)
    for run in runs:
        target = out / "results" / run.site_name
        atomic.write_bytes(target, run.path.read_bytes())
        written.append(target)
        if run.raw_site_name:
            assert run.raw_path is not None  # raw_site_name is set only with raw_path (_assign_site_names)
            raw_target = out / "results" / run.raw_site_name
            atomic.write_bytes(raw_target, run.raw_path.read_bytes())
            written.append(raw_target)
        if run.costs_site_name and not (out / "costs" / run.costs_site_name).exists():
            assert run.costs_path is not None  # costs_site_name is set only with costs_path (_assign_costs_names)
            atomic.write_bytes(out / "costs" / run.costs_site_name, run.costs_path.read_bytes())
            written.append(out / "costs" / run.costs_site_name)
    card_tpl = env.get_template("card.html.j2")
    for run in runs:
        target = out / "cards" / _card_name(run.record)
        if not target.exists():
            atomic.write_text(target, card_tpl.render(**_card_context(run.run)))
            written.append(target)
    atomic.write_text(out / MARKER, "written by fiqa-bench leaderboard; rebuilt in place\n")
    return written
