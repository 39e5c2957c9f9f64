"""Bring your own scores: ``fiqa-bench import`` and ``fiqa-bench export``.

**Import** turns data computed elsewhere into a regular results file and ``.npz`` (so ``rescore``, ``compare``,
``report`` and ``leaderboard`` read it unchanged):

* per-image embeddings and quality aligned with a protocol's face list (:class:`~fiqa_bench.formats.base.ImageFormat`)
  go through the evaluation core itself -- :func:`fiqa_bench.pipeline.evaluation.evaluate` with an executor that
  serves the
  given arrays (:class:`ImportedArrays`) instead of computing them -- so selection (``top1``, ``topk``, ``all``...),
  pooling, pair scores, metrics and the bootstrap are exactly those of a run;
* comparisons with their scores (:class:`~fiqa_bench.formats.base.PairFormat`) become the run's pair data: labels,
  pair quality (combined from the two samples' qualities as a run combines its templates'), and subjects, which the
  bootstrap resamples; they are measured with the metrics of the protocol named by ``like``.

The results file says where its numbers came from: ``config.imported`` (the format, each input as the user typed
it, and its sha256) and a note; method and backbone are named as the user names them and never claim that
fiqa-bench computed their values.

**Export** writes a run's raw data (the ``.npz`` beside its results file) in a format: its comparisons, or, for
insightface's layout, every image's embedding and quality (a run keeps them with ``run --keep-embeddings`` and
``--selection all``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fiqa_bench import registry
from fiqa_bench.errors import FiqaBenchError
from fiqa_bench.executors.base import Executor, SourceReport
from fiqa_bench.formats.base import ImageArrays, ImageFormat, PairFormat, PairTable, bad_line
from fiqa_bench.metrics.base import MetricOptions, PairData

__all__ = ["ImportRequest", "ImportedArrays", "import_data", "export_run", "get_format", "pair_table_of_run"]

#: Arrays of a run's ``.npz`` kept only by some runs: the sample labels of imported comparisons, and the kept
#: images' embeddings (``run --keep-embeddings``), in the order of ``kept_rows``.
TEMPLATE_LABELS = "template_labels"
KEPT_EMBEDDINGS = "kept_embeddings"


def get_format(name: str) -> PairFormat | ImageFormat:
    """The format registered as ``name`` (entry-point group ``fiqa_bench.formats``)."""
    fmt = registry.load_class("format", name)
    if not isinstance(fmt, (PairFormat, ImageFormat)):
        raise FiqaBenchError(f"format {name!r} is registered as {type(fmt).__name__}, not a PairFormat/ImageFormat")
    return fmt


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                h.update(block)
    except OSError as exc:
        raise bad_line(path, None, f"cannot read ({exc.strerror})") from None
    return h.hexdigest()


@dataclass(frozen=True)
class ImportRequest:
    """One import: the input, its format, and the settings of the evaluation that reads it.

    ``protocol``/``data``: the protocol whose face list the per-image arrays follow (image formats); ``like``: the
    registered protocol whose metrics measure imported comparisons (pair formats); ``method``/``fr``: how the quality
    and the FR model that made the input are named in results (labels only); ``benchmark``: what the imported
    comparisons are called (default: the input's file name without suffix); ``metric_options``: the registered
    metrics' options by name (the defaults where not given)."""

    input: str
    format: str
    quality: str | None = None
    protocol: str | None = None
    data: str | None = None
    like: str = "ijb-layout"
    benchmark: str | None = None
    method: str = "imported"
    fr: str = "imported"
    selection: str = "top1"
    k: int = 3
    bootstrap: int = 1000
    bootstrap_level: float = 0.95
    bootstrap_seed: int = 0
    metric_options: dict = field(default_factory=dict)
    keep_embeddings: bool = False
    out: str = "results"
    progress: bool = False


def _config(req: ImportRequest, protocol: str, method: str | None):
    """The run configuration of an import (the same declared settings a run records and names its file by)."""
    from fiqa_bench.pipeline.runner import RunConfig

    return RunConfig(
        protocol=protocol,
        backbone=req.fr,
        method=method,
        data=req.data,
        selection=req.selection,
        k=req.k,
        bootstrap=req.bootstrap,
        bootstrap_level=req.bootstrap_level,
        bootstrap_seed=req.bootstrap_seed,
        out=req.out,
        progress=req.progress,
        **req.metric_options,
    )


def _provenance(req: ImportRequest, fmt: Any, files: dict[str, str]) -> dict:
    return {
        "format": fmt.name,
        "files": dict(files),  # as the user typed them
        "sha256": {role: sha256_of(Path(path)) for role, path in files.items()},
    }


def _named(name: str, what: str, imported: dict) -> dict:
    """The method or backbone section of an imported run: its name, and a card saying the values came from outside."""
    files = ", ".join(f"{Path(p).name} (sha256 {imported['sha256'][r][:12]})" for r, p in imported["files"].items())
    return {
        "name": name,
        "version": None,
        "card_hash": None,
        "identity": f"imported:{imported['format']}:" + hashlib.sha256(repr(imported["sha256"]).encode()).hexdigest(),
        "card": {
            "summary": f"{what} computed outside fiqa-bench, imported from {files} ({imported['format']} format)",
            "paper": "",
            "licence": "",
            "weights": None,
        },
    }


def _write(
    req: ImportRequest,
    cfg,
    imported: dict,
    *,
    method_ran: bool,
    what: str,
    protocol: dict,
    counts: dict,
    timings: dict,
    metrics: dict,
    notes: list[str],
    raw: dict,
    values_sha256: str,
    quality_sha256: str | None,
) -> tuple[Path, dict]:
    """The results file of an import: the sections every run has, with the import's provenance in ``config``;
    ``what`` the backbone produced (``embeddings``...).

    The settings (the file name's digest, and what ``compare`` pairs runs by) hold the hash of the imported values
    (``values_sha256``: embeddings or scores) and, as the method's option, that of the quality (``quality_sha256``):
    two imports of the same embeddings with two methods' quality are compared like two methods' runs."""
    from fiqa_bench.pipeline.runner import run_settings
    from fiqa_bench.results.record import RunRecord, suite_info, write_results

    settings = run_settings(cfg, method_ran, False, False, {}, None, protocol)
    settings["imported"] = {"format": imported["format"], "values_sha256": values_sha256}
    if method_ran and quality_sha256 is not None:
        settings["method_options"] = {"quality": f"sha256:{quality_sha256}"}
    method = (
        {**_named(req.method, "quality", imported), "options": {}, "options_sha256": {}}
        if method_ran
        else {"name": "none", "version": None, "card_hash": None, "identity": None, "options": {}, "options_sha256": {}}
    )
    record = RunRecord(
        suite=suite_info(),
        method=method,
        backbone={**_named(req.fr, what, imported), "spec": None, "weights_sha256": None},
        protocol=protocol,
        config={**cfg.record(), "detector": None, "imported": imported},  # nothing was detected here
        settings=settings,
        counts=counts,
        timings={k: v if isinstance(v, bool) else round(v, 3) for k, v in timings.items()},
        metrics=metrics,
        detector=None,
        notes=[*notes, _note(imported)],
    )
    if not req.keep_embeddings:
        raw = {k: v for k, v in raw.items() if k != KEPT_EMBEDDINGS}
    path = write_results(Path(req.out), record, raw)
    return path, record.to_json()


def _note(imported: dict) -> str:
    return (
        f"imported ({imported['format']}): the "
        + ("embeddings and quality" if imported["format"] == "insightface" else "comparison scores")
        + " were computed outside fiqa-bench; fiqa-bench evaluated them"
    )


# ------------------------------------------------------------------------------------------ per-image arrays
class ImportedArrays(Executor):
    """An executor whose stages serve per-image arrays given in advance (an import) instead of computing them:
    :func:`fiqa_bench.pipeline.evaluation.evaluate` then selects, pools, compares and measures them as it does a
    run's."""

    name = "imported"

    def __init__(self, arrays: ImageArrays):
        self.arrays = arrays

    def open(self, bench, backbone, method, ctx) -> None:
        pass

    def stage(self, stage: str, rows: np.ndarray, skipped) -> tuple[np.ndarray, int]:
        rows = np.asarray(rows, dtype=np.int64)
        if stage == "embed":
            return self.arrays.embeddings[rows], 0
        if stage == "quality" and self.arrays.quality is not None:
            return self.arrays.quality[rows][:, None], 0
        raise ValueError(f"no imported values for the {stage} stage")

    def report(self) -> SourceReport:
        return SourceReport()

    def describe(self) -> str:
        return "imported arrays"


@dataclass(frozen=True)
class _Imported:
    """The producer of imported values as the evaluation names it (a label; it computes nothing)."""

    name: str


def _faces_file(bench) -> str:
    files = list(getattr(bench, "source_files", []) or [])
    return Path(files[0]).name if files else "the protocol's face list"


def import_images(req: ImportRequest, fmt: ImageFormat) -> tuple[Path, dict]:
    from fiqa_bench.pipeline.evaluation import evaluate
    from fiqa_bench.resolve import open_protocol

    t0 = time.perf_counter()
    if not req.protocol:
        raise FiqaBenchError(f"--format {fmt.name} needs --protocol: the protocol whose face list the rows follow")
    bench = open_protocol(req.protocol, req.data).load()
    faces_file = _faces_file(bench)
    arrays = fmt.read(Path(req.input), len(bench.faces), faces_file, Path(req.quality) if req.quality else None)
    groups = bench.faces["group"].to_numpy(np.int64)
    several = len(groups) > 0 and int(np.unique(groups, return_counts=True)[1].max()) > 1
    if arrays.quality is None and req.selection != "all" and several:
        raise FiqaBenchError(
            f"{req.input}: no quality array, and --selection {req.selection} chooses images by quality in templates "
            f"of several images: give the quality (--quality FILE, or a 'quality' array in the .npz) or use "
            f"--selection all"
        )
    files = {"embeddings": req.input}  # as typed (a Path would drop a leading ./)
    if arrays.quality is not None:
        files["quality"] = req.quality or req.input
    imported = _provenance(req, fmt, files)
    method = req.method if arrays.quality is not None else None
    cfg = _config(req, req.protocol, method)
    options = dataclasses.replace(cfg.eval_options(), reuse_bootstrap=False)
    result = evaluate(
        bench,
        _Imported(req.fr),
        _Imported(req.method) if arrays.quality is not None else None,
        options,
        backbone_name=req.fr,
        method_name=req.method,
        executor=ImportedArrays(arrays),
    )
    protocol_info = {
        "name": bench.name,
        "spec": req.protocol,
        "data": req.data,
        "version": bench.version,
        "metric": bench.metric,
        "metrics": list(bench.metrics),
        **bench.fingerprint(),
    }
    return _write(
        req,
        cfg,
        imported,
        method_ran=method is not None,
        what="embeddings",
        protocol=protocol_info,
        counts=result.counts,
        timings={**result.timings, "total_s": time.perf_counter() - t0},
        metrics=result.metrics,
        notes=list(map(str, bench.notes)),
        raw=result.raw,
        values_sha256=array_sha256(arrays.embeddings),
        quality_sha256=array_sha256(arrays.quality) if arrays.quality is not None else None,
    )


# ------------------------------------------------------------------------------------------ comparisons
def _codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, the code of each value): the numbering of samples and subjects of an import. Subjects
    are numbered in the sorted order of their ids as text (the order `fiqa-bench prepare` gives its identities), so
    the bootstrap's resamples depend on the subjects alone, not on the order of the file's lines."""
    distinct, codes = np.unique(values, return_inverse=True)
    return distinct, codes.reshape(-1).astype(np.int64)


def _per_sample(
    table: PairTable, samples: np.ndarray, a: np.ndarray, b: np.ndarray, ref: np.ndarray, probe: np.ndarray, what: str
) -> np.ndarray:
    """One value per sample from the two sides' per-row values; a sample given two values is an error at its line."""
    n = samples.shape[0]
    out = np.empty(n, dtype=object)
    seen = np.zeros(n, dtype=bool)
    first = np.zeros(n, dtype=np.int64)
    rows = zip(a.tolist(), ref.tolist(), b.tolist(), probe.tolist(), table.lines.tolist())
    for code_a, value_a, code_b, value_b, line in rows:  # in the file's order: the later line is the one named
        for code, value in ((code_a, value_a), (code_b, value_b)):
            if not seen[code]:
                out[code], seen[code], first[code] = value, True, line
            elif out[code] != value:
                raise bad_line(
                    table.source,
                    line,
                    f"sample {samples[code]} has {what} {value!r} here but {out[code]!r} on line {first[code]}",
                )
    return out


def array_sha256(*arrays: np.ndarray) -> str:
    """The hash of arrays' values (dtype, shape and bytes), whatever file they were read from."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def pairs_sha256(table: PairTable) -> str:
    """What was compared (the sample pairs and labels): two imports of the same comparisons share it."""
    h = hashlib.sha256()
    for r, p, label in zip(table.ref.tolist(), table.probe.tolist(), table.labels.tolist()):
        h.update(f"{r}\t{p}\t{label}\n".encode())
    return h.hexdigest()


def import_pairs(req: ImportRequest, fmt: PairFormat) -> tuple[Path, dict]:
    from fiqa_bench.metrics.base import resolve_metrics
    from fiqa_bench.metrics.edc import pair_quality as combine
    from fiqa_bench.pipeline.evaluation import measure

    t0 = time.perf_counter()
    if req.protocol:
        raise FiqaBenchError(
            f"--protocol is for per-image arrays; --format {fmt.name} reads comparisons (measured like --like)"
        )
    if req.selection != "top1" or req.k != 3:
        raise FiqaBenchError(f"--selection/--k choose images per template; --format {fmt.name} reads comparisons")
    table = fmt.read(Path(req.input), Path(req.quality) if req.quality else None)
    samples, both = _codes(np.concatenate([table.ref, table.probe]))
    n = len(table)
    a, b = both[:n], both[n:]
    sample_subject = _per_sample(table, samples, a, b, table.ref_subject, table.probe_subject, "subject")
    subjects, t_subject = _codes(np.asarray(sample_subject.tolist(), dtype=str))
    options = MetricOptions(**req.metric_options)
    t_quality = np.full(samples.shape[0], np.nan)
    if table.ref_quality is not None and table.probe_quality is not None:
        t_quality = _per_sample(table, samples, a, b, table.ref_quality, table.probe_quality, "quality").astype(float)
        pq = combine(t_quality[a], t_quality[b], options.pair_quality)
    elif table.pair_quality is not None:
        pq = np.asarray(table.pair_quality, dtype=np.float64)
    else:
        pq = np.full(n, np.nan)
    has_quality = bool(np.isfinite(pq).all())
    cfg = _config(req, req.benchmark or Path(req.input).stem, req.method if has_quality else None)
    data = PairData(
        scores=np.asarray(table.scores, dtype=np.float64),
        labels=np.asarray(table.labels, dtype=np.int8),
        folds=table.folds if table.folds is not None else np.full(n, -1, dtype=np.int64),
        quality=pq,
        a=a,
        b=b,
        subject_a=t_subject[a],
        subject_b=t_subject[b],
    )
    card = registry.load_class("protocol", req.like).card
    keys = list(card.metrics)
    resolve_metrics(keys)
    metrics = measure(data, keys, options)
    boot_raw: dict[str, np.ndarray] = {}
    if req.bootstrap > 0:
        from fiqa_bench.pipeline.uncertainty import BootstrapOptions, bootstrap

        boot = BootstrapOptions(B=req.bootstrap, level=req.bootstrap_level, seed=req.bootstrap_seed)
        metrics, reps = bootstrap(data, metrics, options, boot, progress=req.progress)
        boot_raw = {f"boot_{k}": v for k, v in reps.items()}
    files = {"scores": req.input}
    if req.quality:
        files["quality"] = req.quality
    imported = _provenance(req, fmt, files)
    protocol_info = {
        "name": req.benchmark or Path(req.input).stem,
        "spec": None,
        "data": None,
        "version": f"imported-{fmt.name}",
        "metric": card.metric,
        "metrics": keys,
        "faces_sha256": None,
        "pairs_sha256": pairs_sha256(table),
    }
    n_subjects = int(np.unique(np.r_[data.subject_a, data.subject_b]).size)
    counts = {
        "images": 0,
        "templates": int(samples.shape[0]),
        "pairs": n,
        "pairs_scored": n,
        "pairs_dropped": 0,
        "genuine": data.n_genuine,
        "impostor": data.n_impostor,
        "subjects": n_subjects,
    }
    empty_i = np.zeros(0, dtype=np.int64)
    raw = {
        "pair_a": a,
        "pair_b": b,
        "pair_scores": data.scores,
        "pair_labels": data.labels,
        "pair_folds": data.folds,
        "pair_quality": pq,
        "template_ids": np.arange(samples.shape[0], dtype=np.int64),
        "template_quality": t_quality,
        "template_subject": t_subject,
        "subjects": np.asarray(subjects, dtype=str),
        TEMPLATE_LABELS: np.asarray(samples, dtype=str),
        "kept_rows": empty_i,
        "kept_group": empty_i,
        "kept_quality": np.zeros(0, dtype=np.float32),
        "kept_paths": np.zeros(0, dtype=str),
        "image_quality": np.zeros(0, dtype=np.float32),
        "image_group": empty_i,
        **boot_raw,
    }
    return _write(
        req,
        cfg,
        imported,
        method_ran=has_quality,
        what="comparison scores",
        protocol=protocol_info,
        counts=counts,
        timings={"total_s": time.perf_counter() - t0},
        metrics=metrics,
        notes=[f"{n} comparisons of {samples.shape[0]} samples ({data.n_genuine} genuine)"],
        raw=raw,
        values_sha256=array_sha256(np.asarray(protocol_info["pairs_sha256"]), data.scores),
        quality_sha256=array_sha256(pq) if has_quality else None,
    )


def import_data(req: ImportRequest) -> tuple[Path, dict]:
    """Import ``req.input`` into a results file (+ ``.npz``) in ``req.out``; returns (path, record as JSON)."""
    from fiqa_bench.data.atomic import check_writable

    fmt = get_format(req.format)
    if not Path(req.input).is_file():
        raise bad_line(req.input, None, "no such file")
    if req.quality and not Path(req.quality).is_file():
        raise bad_line(req.quality, None, "no such file")
    check_writable(req.out, "results folder (--out)")
    if isinstance(fmt, ImageFormat):
        return import_images(req, fmt)
    return import_pairs(req, fmt)


# ------------------------------------------------------------------------------------------ export
def pair_table_of_run(raw: dict[str, np.ndarray], source: str) -> PairTable:
    """A run's comparisons (its ``.npz``) as a :class:`PairTable`: samples labelled by their template ids (an imported
    run's by the labels it was imported with), subjects by name, quality per side where the run had it."""
    from fiqa_bench.pipeline.evaluation import template_rows

    t_ids = raw["template_ids"]
    pos_a, pos_b = template_rows(t_ids, raw["pair_a"]), template_rows(t_ids, raw["pair_b"])
    labels = raw[TEMPLATE_LABELS] if TEMPLATE_LABELS in raw else t_ids.astype(str)
    names = raw["subjects"].astype(str)
    subject = names[raw["template_subject"]]
    tq = raw["template_quality"].astype(np.float64)
    has_sides = bool(np.isfinite(tq[pos_a]).all() and np.isfinite(tq[pos_b]).all()) and pos_a.size > 0
    pq = raw["pair_quality"].astype(np.float64)
    folds = raw["pair_folds"].astype(np.int64)
    return PairTable(
        source=source,
        ref=labels[pos_a].astype(str),
        probe=labels[pos_b].astype(str),
        ref_subject=subject[pos_a].astype(str),
        probe_subject=subject[pos_b].astype(str),
        scores=raw["pair_scores"],
        labels=raw["pair_labels"].astype(np.int8),
        lines=np.arange(1, pos_a.size + 1),
        ref_quality=tq[pos_a] if has_sides else None,
        probe_quality=tq[pos_b] if has_sides else None,
        pair_quality=pq if (not has_sides and pq.size and np.isfinite(pq).all()) else None,
        folds=folds if folds.size and (folds >= 0).all() else None,
    )


def image_arrays_of_run(raw: dict[str, np.ndarray], npz: Path, record) -> ImageArrays:
    """Every image's embedding and quality in face-list order (insightface's layout), from a run that kept them."""
    n = int(raw["image_group"].shape[0])
    rows = raw["kept_rows"]
    if KEPT_EMBEDDINGS not in raw:
        raise FiqaBenchError(
            f"{npz}: holds no per-image embeddings (array {KEPT_EMBEDDINGS}): rerun with --selection all "
            f"--keep-embeddings to export --format insightface"
        )
    if rows.shape[0] != n or not np.array_equal(np.sort(rows), np.arange(n)):
        raise FiqaBenchError(
            f"{npz}: keeps the embeddings of {rows.shape[0]} of {n} images (selection {record.config['selection']}, "
            f"{record.counts.get('skipped', 0)} skipped): --format insightface needs every image's; rerun with "
            f"--selection all --keep-embeddings"
        )
    emb = np.empty((n, raw[KEPT_EMBEDDINGS].shape[1]), dtype=np.float32)
    emb[rows] = raw[KEPT_EMBEDDINGS]
    q = raw["image_quality"]
    quality = None
    if np.isfinite(q).all():
        quality = q.astype(np.float32)
    elif np.isfinite(q).any():
        raise FiqaBenchError(f"{npz}: image_quality is NaN for some images: no quality array to write")
    return ImageArrays(embeddings=emb, quality=quality, sources={})


def export_run(results: str | Path, format: str, out: str | Path) -> list[Path]:
    """Write the raw data of the run in ``results`` to ``out`` in ``format``; returns every file written."""
    from fiqa_bench.results.record import load_record, raw_path, read_raw

    fmt = get_format(format)
    record = load_record(results)
    raw = read_raw(results, record)
    out = Path(out)
    if isinstance(fmt, ImageFormat):
        return fmt.write(image_arrays_of_run(raw, raw_path(results), record), out)
    if raw["pair_scores"].shape[0] == 0:
        raise FiqaBenchError(f"{raw_path(results)}: no comparisons to export")
    return fmt.write(pair_table_of_run(raw, str(raw_path(results))), out)
