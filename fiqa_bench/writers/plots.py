"""Figures of a report, drawn from the runs' ``.npz`` raw data with matplotlib's object API (Agg canvas, no pyplot
global state), each written as PNG and SVG with fixed metadata so a report is the same bytes every time; ROC and EDC
also as vector PDF for LaTeX (:func:`draw_pdf`).

Per table (protocol x FR model x selection): ROC on a log FPR axis with the FPR targets marked; FNM-EDC curves with
each method's theoretical best line and the pAUC limits; genuine/impostor score histograms; quality histograms.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from fiqa_bench.data.atomic import atomic_path
from fiqa_bench.metrics.edc import PAUC_LIMITS, edc
from fiqa_bench.metrics.verification import FPR_TARGETS, roc

FIGURES = ("roc", "edc", "scores", "quality")
_COLOURS = [
    "#4c72b0",
    "#dd8452",
    "#55a868",
    "#c44e52",
    "#8172b3",
    "#937860",
    "#da8bc3",
    "#8c8c8c",
    "#ccb974",
    "#64b5cd",
    "#1b1b1b",
    "#a1c9f4",
]


def _figure(width: float = 6.4, height: float = 4.2):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, folder: Path, stem: str) -> list[Path]:
    import matplotlib

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    with matplotlib.rc_context({"svg.hashsalt": "fiqa-bench", "svg.fonttype": "none"}):
        for ext, meta in (("png", {"Software": None}), ("svg", {"Date": None, "Creator": None})):
            target = folder / f"{stem}.{ext}"
            with atomic_path(target) as tmp:
                fig.savefig(tmp, format=ext, metadata=meta, bbox_inches="tight")
            out.append(target)
    return out


def stem_for(protocol: str, backbone: str, selection: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{protocol}__{backbone}__{selection}").strip("-")


def _roc_points(scores: np.ndarray, labels: np.ndarray, max_points: int = 4000):
    fpr, tpr, _ = roc(scores, labels)
    keep = fpr > 0
    fpr, tpr = fpr[keep], tpr[keep]
    if fpr.shape[0] > max_points:  # thin on the log axis: the last point of each log bin
        bins = np.floor(np.log10(fpr) * (max_points / 8)).astype(np.int64)
        last = np.r_[bins[1:] != bins[:-1], True]
        fpr, tpr = fpr[last], tpr[last]
    return fpr, tpr


def _colours(runs: list[tuple[str, dict]]) -> dict[str, str]:
    return {label: _COLOURS[i % len(_COLOURS)] for i, (label, _) in enumerate(runs)}


def _roc_figure(runs: list[tuple[str, dict]], colours: dict[str, str]):
    """ROC of every run on one log FPR axis, the FPR targets marked."""
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    n_imp = 0
    for label, raw in runs:
        y = raw["pair_labels"] == 1
        if y.all() or not y.any():
            continue
        n_imp = max(n_imp, int((~y).sum()))
        fpr, tpr = _roc_points(raw["pair_scores"], y)
        ax.step(fpr, 100 * tpr, where="post", label=label, color=colours[label], linewidth=1.2)
    for t in FPR_TARGETS:
        if n_imp and t * n_imp >= 1:
            ax.axvline(t, color="#999999", linewidth=0.6, linestyle=":")
    ax.set_xscale("log")
    ax.set_xlabel("FPR (log)")
    ax.set_ylabel("TPR (%)")
    ax.set_title("ROC (dotted: the FPR targets)")
    ax.grid(True, which="major", linewidth=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return fig


def _edc_figure(runs: list[tuple[str, dict]], colours: dict[str, str]):
    """FNM-EDC of every run with a quality score on one axis, each with its theoretical best; the pAUC limits."""
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    drew = False
    for label, raw in runs:
        q = raw["pair_quality"]
        y = raw["pair_labels"] == 1
        if not (y.any() and np.isfinite(q[y]).all()):
            continue
        curve = edc(raw["pair_scores"][y], q[y], "fnm", start_error=0.05)
        ax.step(
            curve.discard_fractions,
            curve.error_fractions,
            where="post",
            label=label,
            color=colours[label],
            linewidth=1.2,
        )
        e0 = curve.start_error
        ax.plot([0, e0], [e0, 0], color=colours[label], linewidth=0.6, linestyle="--")
        drew = True
    for limit in PAUC_LIMITS:
        ax.axvline(limit, color="#999999", linewidth=0.6, linestyle=":")
    ax.set_xlim(0, 0.5)
    ax.set_xlabel("fraction of comparisons discarded (lowest quality first)")
    ax.set_ylabel("FNMR at the fixed threshold")
    ax.set_title("FNM-EDC (dashed: theoretical best; dotted: pAUC limits)" if drew else "FNM-EDC: no quality scores")
    ax.grid(True, linewidth=0.3)
    if drew:
        ax.legend(fontsize=7, loc="upper right")
    return fig


#: The figures :func:`draw_pdf` writes as vector PDF (the ones with every method of a table on one axis).
VECTOR_FIGURES = {"roc": _roc_figure, "edc": _edc_figure}


def draw_pdf(runs: Iterable[tuple[str, dict]], folder: Path, stem: str) -> dict[str, Path]:
    """ROC and FNM-EDC of one table as vector PDF, for papers: every run on one axis, drawn as in :func:`draw`
    through matplotlib's PDF backend, lines as paths (nothing rasterised), fonts embedded as TrueType subsets,
    no creation date (the same bytes every time); the EDC only where a run has quality scores. ``runs`` as in
    :func:`draw`; returns {figure: pdf path}."""
    import matplotlib

    runs = [(label, raw) for label, raw in runs]
    colours = _colours(runs)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, make in VECTOR_FIGURES.items():
        if name == "edc" and not any(np.isfinite(raw["pair_quality"]).any() for _, raw in runs):
            continue  # no quality method in the table: no EDC to draw
        fig = make(runs, colours)
        target = folder / f"{stem}__{name}.pdf"
        with matplotlib.rc_context({"pdf.fonttype": 42}), atomic_path(target) as tmp:
            fig.savefig(
                tmp,
                format="pdf",
                metadata={"Creator": None, "Producer": None, "CreationDate": None},
                bbox_inches="tight",
            )
        out[name] = target
    return out


def draw(runs: Iterable[tuple[str, dict]], folder: Path, stem: str) -> dict[str, list[Path]]:
    """Every figure of one table: ``runs`` = (row label, raw arrays of its .npz). Returns {figure: [png, svg]}."""
    runs = [(label, raw) for label, raw in runs]
    out: dict[str, list[Path]] = {}
    colours = _colours(runs)
    out["roc"] = _save(_roc_figure(runs, colours), folder, f"{stem}__roc")
    out["edc"] = _save(_edc_figure(runs, colours), folder, f"{stem}__edc")

    # genuine / impostor score histograms, one panel per run
    out["scores"] = _small_multiples(runs, folder, f"{stem}__scores", "comparison score (cosine)", _scores_panel)
    # quality histograms, one panel per run with a quality method
    with_q = [(label, raw) for label, raw in runs if np.isfinite(raw["image_quality"]).any()]
    out["quality"] = _small_multiples(with_q, folder, f"{stem}__quality", "quality score", _quality_panel)
    return out


STAMP_SUFFIX = ".sha256"


def inputs_digest(runs: list[tuple[str, dict]], stem: str) -> str:
    """sha256 of everything :func:`draw` reads: the stem, each run's label (in order: it sets the colours) and
    raw arrays (name, dtype, shape, bytes), the source of this module and of the metric code it calls, and the
    matplotlib and numpy versions."""
    import hashlib
    from importlib import metadata

    package = Path(__file__).resolve().parents[1]
    h = hashlib.sha256(f"figures 1|{stem}|".encode())
    for dist in ("matplotlib", "numpy"):
        try:
            h.update(f"{dist} {metadata.version(dist)}|".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{dist} -|".encode())
    for source in (
        package / "writers" / "plots.py",
        package / "metrics" / "edc.py",
        package / "metrics" / "verification.py",
    ):
        h.update(hashlib.sha256(source.read_bytes()).digest())
    for label, raw in runs:
        h.update(f"|run {label}|{len(raw)}|".encode())
        for name in sorted(raw):
            arr = np.ascontiguousarray(raw[name])
            h.update(f"{name}:{arr.dtype.str}:{arr.shape}|".encode())
            h.update(arr.tobytes())
    return h.hexdigest()


def _stamped(stamp: Path, digest: str, folder: Path, stem: str) -> dict[str, list[Path]] | None:
    """The figures a stamp lists when it was written for ``digest`` and every file still has its sha256."""
    import hashlib

    try:
        lines = stamp.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    if not lines or lines[0] != f"# inputs {digest}":
        return None
    out: dict[str, list[Path]] = {}
    for line in lines[1:]:
        sha, sep, name = line.partition("  ")
        path = folder / name
        if not sep or "/" in name or not name.startswith(f"{stem}__"):
            return None
        try:
            if hashlib.sha256(path.read_bytes()).hexdigest() != sha:
                return None
        except OSError:
            return None
        out.setdefault(name[len(stem) + 2 :].rsplit(".", 1)[0], []).append(path)
    return out or None


def draw_reusing(runs: Iterable[tuple[str, dict]], folder: Path, stem: str) -> dict[str, list[Path]]:
    """:func:`draw`, skipped when the figures in ``folder`` were drawn from the same inputs (:func:`inputs_digest`)
    and are unchanged since: ``<stem>.sha256`` records the inputs' digest and each file's sha256 (sha256sum's
    format after a first ``# inputs`` line). Drawing is byte-stable, so a skipped figure is the same bytes a
    redraw would write; a missing or edited file, or any other input, draws them all again."""
    import hashlib

    runs = [(label, raw) for label, raw in runs]
    digest = inputs_digest(runs, stem)
    stamp = folder / f"{stem}{STAMP_SUFFIX}"
    done = _stamped(stamp, digest, folder, stem)
    if done is not None:
        return done
    out = draw(runs, folder, stem)
    lines = [f"# inputs {digest}"]
    for files in out.values():
        lines += [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}" for p in files]
    with atomic_path(stamp) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def _small_multiples(runs, folder: Path, stem: str, xlabel: str, panel) -> list[Path]:
    n = max(1, len(runs))
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig = _figure(3.2 * cols, 2.4 * rows)
    if not runs:
        ax = fig.add_subplot(1, 1, 1)
        ax.text(0.5, 0.5, "no data", ha="center", va="center")
        ax.set_axis_off()
    for i, (label, raw) in enumerate(runs):
        ax = fig.add_subplot(rows, cols, i + 1)
        panel(ax, raw)
        ax.set_title(label, fontsize=8)
        ax.set_xlabel(xlabel, fontsize=7)
        ax.tick_params(labelsize=6)
    fig.tight_layout()
    return _save(fig, folder, stem)


def _scores_panel(ax, raw) -> None:
    s = raw["pair_scores"].astype(np.float64)
    y = raw["pair_labels"] == 1
    bins = np.linspace(min(s.min(), -0.2), max(s.max(), 1.0), 60)
    if (~y).any():
        ax.hist(s[~y], bins=bins, density=True, histtype="step", color="#c44e52", label="impostor")
    if y.any():
        ax.hist(s[y], bins=bins, density=True, histtype="step", color="#4c72b0", label="genuine")
    ax.legend(fontsize=6)


def _quality_panel(ax, raw) -> None:
    q = raw["image_quality"].astype(np.float64)
    q = q[np.isfinite(q)]
    ax.hist(q, bins=40, color="#55a868")
