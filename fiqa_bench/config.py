"""The run configuration, declared once: every setting of ``fiqa-bench run`` with its type, default, help, command-line
spelling, range, whether it changes the numbers and where the results file name's digest holds it. The CLI
(:mod:`fiqa_bench.cli.main`), the results file's ``config`` (:meth:`RunConfig.record`), the digest
(:func:`run_settings`), ``rescore`` and the workers' recipe (:class:`fiqa_bench.resolve.ConfigBuild`) all derive from
it; the registered metrics add their own options (:class:`fiqa_bench.metrics.base.MetricOption`)."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields, make_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fiqa_bench import registry
from fiqa_bench.errors import OptionError
from fiqa_bench.metrics.base import MetricOptions, declared_options, get_metric
from fiqa_bench.pipeline.evaluation import SELECTIONS, EvalOptions


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
    identity: bool = False,
    digest: tuple | None = None,
    when: str | tuple | None = None,
) -> dict:
    """Field metadata the CLI is built from: help text, choices, range, the option's flag spelling; ``numbers``:
    the setting can change a number of the run, so the results file name's digest and ``rescore`` must honour it
    (tests/test_digest_and_settings.py and tests/test_mutations_rescore.py loop over the fields that say so).

    Where a setting that changes the numbers sits in the digested settings (:func:`run_settings`): ``digest``, its
    path (default: its name); ``when``, the runs it can matter for (None: every run; ``"not_default"``: only when
    set to another value than its default, so older results keep their names; ``(SETTING, VALUE)``: only when
    another setting has that value; ``"method_seeded"`` / ``"detection_used"``: only when the run's method takes a
    seed / some landmarks were detected); ``identity``: the setting names a plugin, and the digest records what
    resolution found (the protocol's pair-list hash, the backbone's weights hash, option files' hashes)."""
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
        "identity": identity,
        "digest": digest,
        "when": when,
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
    (``fiqa-bench run`` is generated from them: fiqa_bench.cli.main), whether it changes the numbers (``numbers``: the
    results file name's digest and ``rescore`` honour it) and whether the results file records it (``record``).
    The settings of the metrics are not written here: :data:`RunConfig` adds one field per option the registered
    metrics declare (:class:`fiqa_bench.metrics.base.MetricOption`), so a metric's option is a setting of every run."""

    protocol: str = field(
        metadata=_opt(
            "Protocol name (lfw, lfw-templates, ijbb, ijbc, ytf), NAME:ARG, or a folder written by `prepare`.",
            short="-p",
            identity=True,
        )
    )
    backbone: str = field(
        metadata=_opt("FR backbone: dlib, r50, r100, mbf or onnx:PATH.", flag="--fr", numbers=True, identity=True),
    )
    backbone_options: tuple = field(
        default=(),
        metadata=_opt(
            "Backbone constructor option, e.g. normalisation=mobilefacenet for onnx:PATH (repeatable).",
            flag="--fr-option",
            metavar="KEY=VALUE",
            repeat=True,
            numbers=True,
            identity=True,
        ),
    )
    method: str | None = field(
        default=None, metadata=_opt("Quality method (see `fiqa-bench list`).", short="-m", numbers=True, identity=True)
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
            identity=True,
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
            when="not_default",
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
    k: int = field(
        default=3,
        metadata=_opt(
            "Images kept per template for --selection topk.", min=1, numbers=True, when=("selection", "topk")
        ),
    )
    seed: int = field(
        default=0, metadata=_opt("Seed for stochastic methods (random).", min=0, numbers=True, when="method_seeded")
    )
    flip: bool = field(default=False, metadata=_opt("Flip test: add the features of the mirrored image.", numbers=True))
    detector: str = field(
        default="yunet",
        metadata=_opt(
            "Face detector used where the protocol gives no landmarks.",
            choices="detector",
            numbers=True,
            when="detection_used",
        ),
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
            digest=("bootstrap", "B"),
        ),
    )
    bootstrap_level: float = field(
        default=0.95,
        metadata=_opt(
            "Confidence level of the percentile intervals.",
            min=0.5,
            max=0.999,
            flag="--level",
            numbers=True,
            digest=("bootstrap", "level"),
        ),
    )
    bootstrap_seed: int = field(
        default=0, metadata=_opt("Seed of the bootstrap resamples.", min=0, numbers=True, digest=("bootstrap", "seed"))
    )
    follow_symlinks: bool = field(
        default=False,
        metadata=_opt("Allow images that are symlinks leaving the benchmark folder.", numbers=True, when="not_default"),
    )
    max_image_bytes: int = field(
        default=64 * 2**20,
        metadata=_opt(
            "Largest image file read (bytes); larger files are bad images.", min=1, numbers=True, when="not_default"
        ),
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
            when="not_default",  # GPU kernels may change the last bits of a score: where the run was is recorded
        ),
    )
    out: str = field(
        default="results", metadata=_opt("Folder for results files and the report.", short="-o", record=False)
    )
    keep_embeddings: bool = field(
        default=False,
        metadata=_opt(
            "Keep the kept images' embeddings in the .npz (with --selection all: every image's, what `export --format "
            "insightface` writes).",
            record=False,
        ),
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
        from fiqa_bench.pipeline.uncertainty import BootstrapOptions

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


def backbone_label(spec: str) -> str:
    """The backbone as results name it: ``onnx:<file name>`` for a path (never the machine's path)."""
    return spec if not spec.startswith("onnx:") else f"onnx:{Path(spec[5:]).name}"


def run_settings(
    cfg: RunConfig,
    method_ran: bool,
    method_takes_seed: bool,
    detection_used: bool,
    options_sha256: dict[str, str],
    backbone_sha256: str | None,
    protocol: dict,
) -> dict:
    """The normalised settings that can change a number of this run (the file name's digest covers them), derived
    from the declaration: every field with ``numbers`` at its ``digest`` path, where its ``when`` says it can matter
    for this run (k outside topk, the seed of a method without one, the detector where every landmark is given,
    the option of a metric the protocol does not report are left out, so equal runs get equal names). The settings
    that name a plugin (``identity``) are recorded as resolution found them."""
    settings: dict[str, Any] = {
        "protocol": protocol["name"],
        "pairs_sha256": protocol.get("pairs_sha256"),
        "method": cfg.method if method_ran else None,
        "method_options": {
            k: (f"sha256:{options_sha256[k]}" if k in options_sha256 else v) for k, v in cfg.method_options
        },
        "backbone": backbone_label(cfg.backbone),
        "backbone_sha256": backbone_sha256,
        "backbone_options": dict(cfg.backbone_options),
    }
    context = {"method_seeded": method_ran and method_takes_seed, "detection_used": detection_used}
    for f in fields(cfg):
        meta = f.metadata
        if not meta.get("numbers") or meta.get("identity") or meta.get("metric"):
            continue
        value, when = getattr(cfg, f.name), meta.get("when")
        if when == "not_default" and value == f.default:
            continue
        if isinstance(when, tuple) and getattr(cfg, when[0]) != when[1]:
            continue
        if isinstance(when, str) and when in context and not context[when]:
            continue
        _place(settings, tuple(meta.get("digest") or (f.name,)), list(value) if meta.get("repeat") else value)
    # the options of the metrics this run reports (and those declared for every run), each at the place its
    # declaration names (every registered metric's, by its value here or its default): a metric the protocol does
    # not report cannot change a number of the run
    declared = declared_options()
    reported = {option.name for key in protocol.get("metrics") or () for option in get_metric(key).options}
    for name, value in cfg.metric_options().as_dict().items():
        if declared[name].every_run or name in reported:
            _place(settings, declared[name].digest_path, value)
    return settings


def _place(settings: dict, path: tuple, value: Any) -> None:
    *parents, leaf = path
    node = settings
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
