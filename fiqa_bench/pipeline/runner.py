"""The runner: names and options in, a results file (and its raw ``.npz``) out.

A thin layer over :func:`fiqa_bench.pipeline.evaluation.evaluate`: it resolves the protocol, backbone and method names
through the registry, checks options before any work, runs the evaluation, and writes the results record with
the settings that change the numbers in its file name. Library code only; the CLI is generated from
:class:`RunConfig` (its fields' metadata give each option's help, choices and range).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from fiqa_bench import registry
from fiqa_bench.config import RunConfig, backbone_label, run_settings
from fiqa_bench.errors import FiqaBenchError, OptionError
from fiqa_bench.metrics.base import resolve_metrics
from fiqa_bench.pipeline.evaluation import evaluate
from fiqa_bench.resolve import (
    ConfigBuild,
    _accepts,
    _reserved_options,
    build_backbone,
    build_method,
    check_method_options,
    open_protocol,
    option_files_sha256,
    typed_backbone_options,
    typed_method_options,
)
from fiqa_bench.results.record import RunRecord, options_digest, suite_info, write_results

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------- run
def _scrub(obj: Any, roots: list[str]) -> Any:
    """Replace the absolute benchmark root in free text (protocol notes) by ``<data>``."""
    if isinstance(obj, str):
        for r in roots:
            if r and r != "." and r in obj:
                obj = obj.replace(r, "<data>")
        return obj
    if isinstance(obj, list):
        return [_scrub(x, roots) for x in obj]
    if isinstance(obj, dict):
        return {k: _scrub(v, roots) for k, v in obj.items()}
    return obj


def card_summary(card: Any) -> dict:
    """What a results file keeps of an adapter's card (leaderboards are built from results files alone): what it
    does, its paper, licence and weights source (a weights file by name, never a machine path)."""
    weights = getattr(card, "weights", None)
    described = None
    if weights is not None:
        described = weights.describe()
        name = str(getattr(weights, "filename", "") or "")
        if name and ("/" in name or "\\" in name):
            described = described.replace(name, Path(name).name)
    return {
        "summary": getattr(card, "summary", ""),
        "paper": getattr(card, "paper", ""),
        "licence": getattr(card, "licence", ""),
        "weights": described,
    }


def make_executor(cfg: RunConfig):
    """The executor of ``cfg``, by its registered name (entry-point group ``fiqa_bench.executors``: ``local``,
    ``ray`` and any a package registers); ``ray`` fails here, before any work, when Ray is not installed."""
    return registry.load_class("executor", cfg.executor).from_run(ConfigBuild(cfg), cfg)


def run(cfg: RunConfig) -> tuple[Path, dict[str, Any]]:
    """Run one evaluation and write its results file and raw data; returns (path, record as JSON)."""
    t0 = time.perf_counter()
    # fail fast on a mistyped name or option, before any data is read
    registry.load_class("backbone", cfg.backbone)
    unknown = [k for k in cfg.add_metrics if k not in registry.names("metric")]
    if unknown:
        known = ", ".join(registry.names("metric"))
        raise OptionError(f"--add-metric {unknown[0]}: no such metric; registered: {known}")
    typed_backbone_options(cfg)
    method_options = dict(cfg.method_options)
    mcls = None
    if cfg.method is not None:
        mcls = registry.load_class("method", cfg.method)
        check_method_options(cfg.method, method_options, _reserved_options(mcls))
        typed_method_options(cfg.method, method_options, mcls)
    from fiqa_bench.data.atomic import check_writable
    from fiqa_bench.data.paths import cache_dir

    check_writable(cfg.out, "results folder (--out)")  # before any work, not after the whole run
    check_writable(cache_dir(), "cache folder (FIQA_BENCH_CACHE)")
    from fiqa_bench import device

    device.check_device(cfg.device)
    executor = make_executor(cfg)
    with device.using(cfg.device):
        return _run(cfg, t0, method_options, mcls, executor)


def quality_identity(method: Any, method_options: dict[str, str]) -> tuple[str, dict[str, str]]:
    """(the identity the quality cache of ``method`` built with ``method_options`` is keyed on, the sha256 of every
    option naming a file). The method's identity may not reflect its options (a plugin's): the cache is keyed on
    them too, with a file's content (sha256) standing for its path, so two weights files never share scores."""
    ident = method.identity()
    if not method_options:
        return ident, {}
    options_sha256 = option_files_sha256(method_options)
    keyed = {
        k: f"sha256:{options_sha256[k]}" if k in options_sha256 else f"value:{v}" for k, v in method_options.items()
    }
    return ident + f"|options-{options_digest(keyed)}", options_sha256


def _run(cfg: RunConfig, t0: float, method_options: dict, mcls, executor) -> tuple[Path, dict[str, Any]]:
    protocol = open_protocol(cfg.protocol, cfg.data)
    bench = protocol.load()
    bench.metrics = tuple(dict.fromkeys((*bench.metrics, *cfg.add_metrics)))  # --add-metric: after the card's
    load_s = time.perf_counter() - t0
    log.info(
        "protocol %s: %d images, %d pairs (read in %.1f s)", bench.name, len(bench.faces), len(bench.pairs), load_s
    )
    groups = bench.faces["group"].to_numpy(np.int64)
    max_group = int(np.bincount(np.unique(groups, return_inverse=True)[1]).max()) if len(groups) else 0
    if cfg.method is None and cfg.selection in ("top1", "topk", "weighted") and max_group > 1:
        raise FiqaBenchError(
            f"protocol {bench.name!r} has templates of several images: choose a quality method with --method "
            f"(or --selection all to pool every image)"
        )
    backbone = build_backbone(cfg)
    method = build_method(cfg, backbone)
    q_identity, options_sha256 = quality_identity(method, method_options) if method is not None else (None, {})
    resolve_metrics(bench.metrics)  # the evaluation measures and resamples with these objects, never the registry
    result = evaluate(
        bench,
        backbone,
        method,
        cfg.eval_options(),
        backbone_name=cfg.backbone,
        method_name=cfg.method or "none",
        method_cache_identity=q_identity,
        executor=executor,
        device=cfg.device,
    )
    fp = bench.fingerprint()
    protocol_info = {
        "name": bench.name,
        "spec": cfg.protocol,
        "data": cfg.data,
        "version": bench.version,
        "metric": bench.metric,
        "metrics": list(bench.metrics),
        **fp,
    }
    backbone_sha = getattr(backbone.card.weights, "sha256", None) if backbone.card.weights else None
    detection_used = not np.isfinite(bench.landmarks()).all()
    settings = run_settings(
        cfg,
        method is not None,
        mcls is not None and _accepts(mcls, "seed"),
        detection_used,
        options_sha256,
        backbone_sha,
        protocol_info,
    )
    config = {**cfg.record(), "method_options": method_options}
    method_info = (
        {
            "name": cfg.method,
            "version": method.card.version,
            "card_hash": method.card.card_hash(),
            "identity": method.identity(),
            "options": method_options,
            "options_sha256": options_sha256,
            "card": card_summary(method.card),
        }
        if method is not None
        else {"name": "none", "version": None, "card_hash": None, "identity": None, "options": {}, "options_sha256": {}}
    )
    backbone_info = {
        "name": backbone_label(cfg.backbone),
        "spec": cfg.backbone,
        "version": backbone.card.version,
        "weights_sha256": backbone_sha,
        "card_hash": backbone.card.card_hash(),
        "identity": backbone.identity(),
        "card": card_summary(backbone.card),
    }
    timings = {"load_protocol_s": load_s, **result.timings, "total_s": time.perf_counter() - t0}
    roots = sorted({str(bench.root), str(Path(bench.root).resolve())}, key=len, reverse=True)
    record = RunRecord(
        suite=suite_info(),
        method=method_info,
        backbone=_scrub(backbone_info, roots),
        protocol=protocol_info,
        config=config,
        settings=settings,
        counts=result.counts,
        timings={k: v if isinstance(v, bool) else round(v, 3) for k, v in timings.items()},
        metrics=result.metrics,
        detector=result.detector,
        notes=_scrub(list(bench.notes), roots),
    )
    raw = result.raw if cfg.keep_embeddings else {k: v for k, v in result.raw.items() if k != "kept_embeddings"}
    path = write_results(Path(cfg.out), record, raw)
    log.info("results: %s (+ %s)", path, path.with_suffix(".npz").name)
    return path, record.to_json()
