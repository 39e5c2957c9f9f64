"""The runner: names and options in, a results file (and its raw ``.npz``) out.

A thin layer over :func:`fiqa_bench.evaluation.evaluate`: it resolves the protocol, backbone and method names
through the registry, checks options before any work, runs the evaluation, and writes the results record with
the settings that change the numbers in its file name. Library code only; the CLI is generated from
:class:`RunConfig` (its fields' metadata give each option's help, choices and range).
"""

from __future__ import annotations

import logging
import time
from dataclasses import MISSING, dataclass, field, fields, make_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import registry
from .errors import FiqaBenchError, OptionError
from .evaluation import SELECTIONS, EvalOptions, evaluate
from .metrics.base import MetricOptions, declared_options, get_metric, resolve_metrics
from .resolve import (  # noqa: F401 - re-exported: the runner's public names before the resolver was split out
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
from .results import RunRecord, options_digest, suite_info, write_results

log = logging.getLogger(__name__)


def _opt(
    help: str,
    *,
    choices: tuple | str | None = None,
    min: float | None = None,
    max: float | None = None,
    flag: str | None = None,
    short: str | None = None,
    cli: bool = True,
    numbers: bool = False,
    metavar: str | None = None,
    repeat: bool = False,
    record: bool = True,
    metric: bool = False,
) -> dict:
    """Field metadata the CLI is built from: help text, choices, range, the option's flag spelling; ``numbers``:
    the setting can change a number of the run, so the results file name's digest and ``rescore`` must honour it
    (tests/test_digest_and_settings.py and tests/test_mutations_rescore.py loop over the fields that say so)."""
    return {
        "help": help,
        "choices": choices,
        "min": min,
        "max": max,
        "flag": flag,
        "short": short,
        "cli": cli,
        "numbers": numbers,
        "metavar": metavar,
        "repeat": repeat,
        "record": record,
        "metric": metric,
    }


def option_choices(meta) -> tuple | None:
    """The values a setting takes: its ``choices``, or, where ``choices`` names a registry kind (``"detector"``,
    ``"executor"``), the names registered for that kind (a plugin's included)."""
    choices = meta.get("choices")
    if isinstance(choices, str):
        return tuple(registry.names(choices))
    return choices


@dataclass(frozen=True)
class _RunSettings:
    """Everything that defines one run, declared once: each field's type, default, help, command-line spelling
    (``fiqa-bench run`` is generated from them: fiqa_bench.cli), whether it changes the numbers (``numbers``: the
    results file name's digest and ``rescore`` honour it) and whether the results file records it (``record``).
    The settings of the metrics are not written here: :data:`RunConfig` adds one field per option the registered
    metrics declare (:class:`fiqa_bench.metrics.base.MetricOption`), so a metric's option is a setting of every run."""

    protocol: str = field(
        metadata=_opt(
            "Protocol name (lfw, lfw-templates, ijbb, ijbc, ytf), NAME:ARG, or a folder written by `prepare`.",
            short="-p",
        )
    )
    backbone: str = field(metadata=_opt("FR backbone: dlib, r50, r100, mbf or onnx:PATH.", flag="--fr", numbers=True))
    backbone_options: tuple = field(
        default=(),
        metadata=_opt(
            "Backbone constructor option, e.g. normalisation=mobilefacenet for onnx:PATH (repeatable).",
            flag="--fr-option",
            metavar="KEY=VALUE",
            repeat=True,
            numbers=True,
        ),
    )
    method: str | None = field(
        default=None, metadata=_opt("Quality method (see `fiqa-bench list`).", short="-m", numbers=True)
    )
    method_options: tuple = field(
        default=(),
        metadata=_opt(
            "Method option, e.g. weights=PATH for tinyfq, faceqnet or rqs, model=PATH for svm (repeatable). Typed and "
            "checked against the options the method declares (`fiqa-bench list`).",
            flag="--method-option",
            metavar="KEY=VALUE",
            repeat=True,
            numbers=True,
        ),
    )
    add_metrics: tuple = field(
        default=(),
        metadata=_opt(
            "Also report this registered metric beyond the protocol's own (repeatable), e.g. reject_curve.",
            flag="--add-metric",
            metavar="KEY",
            repeat=True,
            numbers=True,
        ),
    )
    data: str | None = field(
        default=None,
        metadata=_opt(
            "Dataset root (default: downloaded/cached where the protocol allows; $FIQA_SHARED/data/lfw for LFW).",
            short="-d",
        ),
    )
    selection: str = field(
        default="top1",
        metadata=_opt(
            "top1 = the paper: keep the best image per template/video; topk: the mean of the k best; weighted: every "
            "image weighted by quality rank; all: insightface pooling (quality ignored).",
            choices=SELECTIONS,
            numbers=True,
        ),
    )
    k: int = field(default=3, metadata=_opt("Images kept per template for --selection topk.", min=1, numbers=True))
    seed: int = field(default=0, metadata=_opt("Seed for stochastic methods (random).", min=0, numbers=True))
    flip: bool = field(default=False, metadata=_opt("Flip test: add the features of the mirrored image.", numbers=True))
    detector: str = field(
        default="yunet",
        metadata=_opt("Face detector used where the protocol gives no landmarks.", choices="detector", numbers=True),
    )
    on_bad_image: str = field(
        default="error",
        metadata=_opt(
            "A missing/corrupt image: stop (error) or skip it (counted in the results).",
            choices=("error", "skip"),
            numbers=True,
        ),
    )
    on_no_face: str = field(
        default="error",
        metadata=_opt(
            "An image with no usable face: stop, skip (counted) or align on a centred template (counted).",
            choices=("error", "skip", "center"),
            numbers=True,
        ),
    )
    bootstrap: int = field(
        default=1000,
        metadata=_opt(
            "Bootstrap resamples (over subjects) for the confidence interval of every metric; 0: none.",
            min=0,
            max=1_000_000,
            numbers=True,
        ),
    )
    bootstrap_level: float = field(
        default=0.95,
        metadata=_opt(
            "Confidence level of the percentile intervals.", min=0.5, max=0.999, flag="--level", numbers=True
        ),
    )
    bootstrap_seed: int = field(default=0, metadata=_opt("Seed of the bootstrap resamples.", min=0, numbers=True))
    follow_symlinks: bool = field(
        default=False, metadata=_opt("Allow images that are symlinks leaving the benchmark folder.", numbers=True)
    )
    max_image_bytes: int = field(
        default=64 * 2**20,
        metadata=_opt("Largest image file read (bytes); larger files are bad images.", min=1, numbers=True),
    )
    batch_size: int = field(default=32, metadata=_opt("Images per adapter call.", min=1, max=65536, record=False))
    workers: int = field(
        default=2,
        metadata=_opt(
            "Threads decoding/detecting images; with --executor local, a stage of 8,192 images or more runs on this "
            "many worker processes (at most the CPUs; 1: in this process).",
            min=1,
            max=256,
            record=False,
        ),
    )
    executor: str = field(
        default="local",
        metadata=_opt(
            "Where the score and embed stages run: local (this machine: this process, or worker processes for large "
            "stages) or ray (Ray actors over shards of images; needs fiqa-bench[ray]). Same numbers either way.",
            choices="executor",
            record=False,
        ),
    )
    ray_address: str | None = field(
        default=None,
        metadata=_opt(
            "Ray cluster to use with --executor ray (e.g. HEAD:6379 or auto); default: start a local Ray instance.",
            metavar="ADDR",
            record=False,
        ),
    )
    ray_actors: int = field(
        default=0,
        metadata=_opt(
            "Ray actors (each one model session) with --executor ray; 0: one per CPU of the cluster.",
            min=0,
            max=100_000,
            record=False,
        ),
    )
    device: str = field(
        default="cpu",
        metadata=_opt(
            "Where onnxruntime models run: cpu, or cuda (CUDAExecutionProvider; needs fiqa-bench[gpu] and a GPU).",
            choices=("cpu", "cuda"),
            numbers=True,
            record=False,
        ),
    )
    out: str = field(
        default="results", metadata=_opt("Folder for results files and the report.", short="-o", record=False)
    )
    progress: bool = field(default=True, metadata=_opt("Progress bars.", cli=False, record=False))

    def __post_init__(self) -> None:
        for f in fields(self):
            meta = f.metadata
            value = getattr(self, f.name)
            if value is None and f.default is MISSING:  # protocol, backbone: the CLI makes them required options
                raise OptionError(f"{meta.get('flag') or '--' + f.name.replace('_', '-')} is required: {meta['help']}")
            choices = option_choices(meta)
            if choices and value not in choices:
                raise OptionError(f"{f.name} must be one of {', '.join(choices)}, got {value!r}")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if meta.get("min") is not None and value < meta["min"]:
                    raise OptionError(
                        f"{meta.get('flag') or '--' + f.name.replace('_', '-')} must be >= {meta['min']}, got {value}"
                    )
                if meta.get("max") is not None and value > meta["max"]:
                    raise OptionError(
                        f"{meta.get('flag') or '--' + f.name.replace('_', '-')} must be <= {meta['max']}, got {value}"
                    )
        items = self.method_options.items() if isinstance(self.method_options, dict) else self.method_options
        options = tuple(sorted((str(k), str(v)) for k, v in items))
        keys = [k for k, _ in options]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise OptionError(f"method option {', '.join(map(repr, twice))} given more than once")
        if any(not k or "=" in k for k in keys):
            raise OptionError(f"method option names must be non-empty and contain no '=': {keys}")
        if options and self.method is None:
            raise OptionError("method options (--method-option) need a quality method (--method)")
        object.__setattr__(self, "method_options", options)
        object.__setattr__(self, "add_metrics", tuple(dict.fromkeys(str(k) for k in self.add_metrics)))
        b_items = self.backbone_options.items() if isinstance(self.backbone_options, dict) else self.backbone_options
        object.__setattr__(self, "backbone_options", tuple(sorted((str(k), str(v)) for k, v in b_items)))

    def metric_options(self) -> MetricOptions:
        """The values of the metrics' options (the fields the metrics declare)."""
        return MetricOptions(**{f.name: getattr(self, f.name) for f in fields(self) if f.metadata.get("metric")})

    def record(self) -> dict[str, Any]:
        """The settings a results file records in ``config`` (every declared field with ``record``), by name;
        option lists as mappings."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.metadata.get("record", True):
                value = getattr(self, f.name)
                pairs = f.metadata.get("metavar") == "KEY=VALUE"
                out[f.name] = (dict(value) if pairs else list(value)) if f.metadata.get("repeat") else value
        return out

    def eval_options(self) -> EvalOptions:
        from .uncertainty import BootstrapOptions

        return EvalOptions(
            bootstrap=BootstrapOptions(B=self.bootstrap, level=self.bootstrap_level, seed=self.bootstrap_seed),
            selection=self.selection,
            k=self.k,
            detector=self.detector,
            on_bad_image=self.on_bad_image,
            on_no_face=self.on_no_face,
            batch_size=self.batch_size,
            workers=self.workers,
            progress=self.progress,
            follow_symlinks=self.follow_symlinks,
            max_image_bytes=self.max_image_bytes,
            metric_options=self.metric_options(),
        )


def _with_metric_options(base: type) -> type:
    """``base`` plus one field per option the registered metrics declare (type, default, help, flag and range from
    the declaration; each changes the numbers)."""
    taken = {f.name for f in fields(base)}
    extra = [
        (
            o.name,
            o.type,
            field(
                default=o.default,
                metadata=_opt(
                    o.help, choices=o.choices, min=o.min, max=o.max, flag=o.cli_flag, numbers=True, metric=True
                ),
            ),
        )
        for o in declared_options().values()
        if o.name not in taken
    ]
    cls = make_dataclass("RunConfig", extra, bases=(base,), frozen=True)
    cls.__module__ = __name__  # pickled by reference (workers rebuild their adapters from it)
    cls.__qualname__ = "RunConfig"
    cls.__doc__ = base.__doc__
    return cls


if TYPE_CHECKING:
    RunConfig = _RunSettings
else:
    #: The run configuration: the declared settings plus the registered metrics' options (one field each).
    RunConfig = _with_metric_options(_RunSettings)


# ----------------------------------------------------------------------------------------------- run
def _backbone_label(spec: str) -> str:
    """The backbone as results name it: ``onnx:<file name>`` for a path (never the machine's path)."""
    return spec if not spec.startswith("onnx:") else f"onnx:{Path(spec[5:]).name}"


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


def run_settings(
    cfg: RunConfig,
    method_ran: bool,
    method_takes_seed: bool,
    detection_used: bool,
    options_sha256: dict[str, str],
    backbone_sha256: str | None,
    protocol: dict,
) -> dict:
    """The normalised settings that can change a number of this run (the file name's digest covers them):
    settings that cannot matter for this run (k outside topk, the seed of a method without one, the detector where
    every landmark is given, the option of a metric the protocol does not report) are left out, so equal runs get
    equal names."""
    settings: dict[str, Any] = {
        "protocol": protocol["name"],
        "pairs_sha256": protocol.get("pairs_sha256"),
        "method": cfg.method if method_ran else None,
        "method_options": {
            k: (f"sha256:{options_sha256[k]}" if k in options_sha256 else v) for k, v in cfg.method_options
        },
        "backbone": _backbone_label(cfg.backbone),
        "backbone_sha256": backbone_sha256,
        "backbone_options": dict(cfg.backbone_options),
        "flip": cfg.flip,
        "selection": cfg.selection,
        "on_bad_image": cfg.on_bad_image,
        "on_no_face": cfg.on_no_face,
        "bootstrap": {"B": cfg.bootstrap, "level": cfg.bootstrap_level, "seed": cfg.bootstrap_seed},
    }
    declared = declared_options()
    # the options of the metrics this run reports (and those declared for every run), each at the place its
    # declaration names: a metric the protocol does not report cannot change a number of the run
    reported = {option.name for key in protocol.get("metrics") or () for option in get_metric(key).options}
    for name, value in cfg.metric_options().as_dict().items():
        if not (declared[name].every_run or name in reported):
            continue
        *parents, leaf = declared[name].digest_path
        node = settings
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    if cfg.add_metrics:
        settings["add_metrics"] = list(cfg.add_metrics)
    if cfg.selection == "topk":
        settings["k"] = cfg.k
    if method_ran and method_takes_seed:
        settings["seed"] = cfg.seed
    if detection_used:
        settings["detector"] = cfg.detector
    if cfg.follow_symlinks:
        settings["follow_symlinks"] = True
    if cfg.max_image_bytes != 64 * 2**20:
        settings["max_image_bytes"] = cfg.max_image_bytes
    if cfg.device != "cpu":  # GPU kernels may change the last bits of a score; where the run was is recorded
        settings["device"] = cfg.device
    return settings


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
    from .atomic import check_writable
    from .paths import cache_dir

    check_writable(cfg.out, "results folder (--out)")  # before any work, not after the whole run
    check_writable(cache_dir(), "cache folder (FIQA_BENCH_CACHE)")
    from . import device

    device.check_device(cfg.device)
    executor = make_executor(cfg)
    with device.using(cfg.device):
        return _run(cfg, t0, method_options, mcls, executor)


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
    options_sha256: dict[str, str] = {}
    q_identity = None
    if method is not None:
        q_identity = method.identity()
        if method_options:
            # the method's identity may not reflect its options (a plugin's): key the cache on them too, with
            # a file's content (sha256) standing for its path, so two weights files never share scores
            options_sha256 = option_files_sha256(method_options)
            keyed = {
                k: f"sha256:{options_sha256[k]}" if k in options_sha256 else f"value:{v}"
                for k, v in method_options.items()
            }
            q_identity += f"|options-{options_digest(keyed)}"
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
        "name": _backbone_label(cfg.backbone),
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
    path = write_results(Path(cfg.out), record, result.raw)
    log.info("results: %s (+ %s)", path, path.with_suffix(".npz").name)
    return path, record.to_json()
