"""The ``fiqa-bench`` command. A thin click layer: every command builds a config and calls library code."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from . import __version__, registry
from .errors import FiqaBenchError


def _command_path(ctx: click.Context | None) -> str:
    """``fiqa-bench`` + the sub-command names below the root group, however it was invoked (the console script,
    ``python -m fiqa_bench``, a test runner)."""
    names: list[str] = []
    c = ctx
    while c is not None and c.parent is not None:
        name = c.info_name or c.command.name
        assert name is not None  # click registers a sub-command by its name (add_command refuses one without)
        names.insert(0, name)
        c = c.parent
    if c is not None and c.command is not main:  # a sub-group invoked on its own (e.g. by a test runner)
        assert c.command.name is not None  # fiqa-bench's groups are all named (@main.group())
        names.insert(0, c.command.name)
    return " ".join(["fiqa-bench", *names])


def _first_sentence(text: str) -> str:
    """The first sentence of an option's help, without its full stop (``e.g.``, ``Eq. 1`` do not end one)."""
    import re

    return re.split(r"(?<=\.)\s+(?=[A-Z])", " ".join(text.split()))[0].rstrip(".")


def _usage_line(exc: click.UsageError) -> str:
    """The one line a usage error prints: ``error: fiqa-bench COMMAND: message`` (click's own text, its layout
    folded into one line; a missing option adds the first sentence of its help)."""
    message = " ".join(exc.format_message().split())
    param = getattr(exc, "param", None)
    if isinstance(exc, click.MissingParameter) and param is not None and getattr(param, "help", None):
        message = f"{message.rstrip('.')} ({_first_sentence(param.help)})."
    return f"error: {_command_path(exc.ctx)}: {message}"


class _OneLineUsageError(click.ClickException):
    """A usage error already folded into its one line; shown as it is, exit code 2 (click would add usage lines)."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(self.message, file=file, err=True)


class _IntRange(click.IntRange):
    """An integer option with a range: a non-number reads "'x' is not a valid integer." (click's own says "integer
    range"), its help shows the range."""

    name = "integer"


class _FloatRange(click.FloatRange):
    """A number option with a range (see :class:`_IntRange`)."""

    name = "float"


class _AllOrCount(click.ParamType):
    """``all`` or a positive number (``prepare --impostors``)."""

    name = "all|N"

    def convert(self, value, param, ctx):
        text = str(value).strip()
        if text == "all":
            return text
        if text.isdigit() and int(text) >= 1:
            return int(text)
        self.fail(f"{value!r} is neither 'all' nor a positive integer.", param, ctx)

    def get_metavar(self, param, ctx=None) -> str:
        return "all|N"


class _CleanErrors(click.Group):
    """Print fiqa-bench errors as one clear line (file/line/adapter named) instead of a traceback, and click's usage
    errors (no arguments, a missing option, a malformed value) as one line naming the command, exit code 2."""

    def __init__(self, *args, **kwargs) -> None:
        # the group with no sub-command reaches invoke (below), which says so in one line, instead of click's help
        kwargs.setdefault("invoke_without_command", True)
        kwargs.setdefault("subcommand_metavar", "COMMAND [ARGS]...")  # a command is still needed (usage line)
        super().__init__(*args, **kwargs)

    def make_context(self, info_name, args, parent=None, **extra):
        try:  # the group's own options: `fiqa-bench --bogus`
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            raise _OneLineUsageError(_usage_line(exc)) from None

    def invoke(self, ctx):
        try:
            rv = super().invoke(ctx)
            if ctx.invoked_subcommand is None:  # `fiqa-bench`, `fiqa-bench -v`, `fiqa-bench train-baseline`
                names = ", ".join(self.list_commands(ctx))
                raise click.UsageError(
                    f"missing a command ({names}); `{_command_path(ctx)} --help` says what each does.", ctx=ctx
                )
            return rv
        except FiqaBenchError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except click.UsageError as exc:  # one line, like every other error (click would add usage lines)
            raise _OneLineUsageError(_usage_line(exc)) from None
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except OSError as exc:  # a safety net: an OS error not already named by the code that met it
            where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
            click.echo(f"error:{where} {exc.strerror or exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt as exc:  # an AdapterInterrupt says which adapter was running
            what = f" {exc}" if str(exc) else ""
            click.echo(f"interrupted{what}: finished work is cached; run the same command again to resume", err=True)
            sys.exit(130)


#: The registered face detectors (entry-point group ``fiqa_bench.detectors``), the choices of every --detector.
_DETECTORS = registry.names("detector")


@click.group(cls=_CleanErrors)
@click.version_option(__version__, prog_name="fiqa-bench")
@click.option("-v", "--verbose", count=True, help="Log what each stage does (-vv: debug details).")
@click.option("-q", "--quiet", is_flag=True, help="Log errors only.")
def main(verbose: int, quiet: bool) -> None:
    """Benchmark face image quality assessment methods by how much they help face recognition.

    Exit codes: 0 success, 1 a failed check (rescore disagreement, a plugin that failed to load), 2 a usage or data
    error (one line naming the file, line or adapter), 130 interrupted (finished work is cached: rerun to resume).
    """
    level = logging.ERROR if quiet else (logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)


class _Skips(list):
    """The store's ``on_bad`` for report, leaderboard and compare: a bad results file is one line on stderr
    (``skipped PATH: FIELD ...``) and is left out; leaving the block prints how many were, also when it ends in
    an error because nothing valid remained (then the exit code is 2, as for any data error)."""

    def __call__(self, skipped) -> None:
        click.echo(skipped.line(), err=True)
        self.append(skipped)

    def __enter__(self) -> _Skips:
        return self

    def __exit__(self, *exc) -> None:
        if self:
            click.echo(f"{len(self)} results file{'s' if len(self) != 1 else ''} skipped", err=True)


@main.command("list", short_help="List the registered methods, backbones and protocols.")
@click.option(
    "--kind", type=click.Choice(["method", "backbone", "protocol"]), default=None, help="Only this kind of plugin."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_cmd(kind: str | None, as_json: bool) -> None:
    """Every registered method, FR backbone and protocol with its card (loads no weights)."""
    from . import registry

    kinds = [kind] if kind else ["method", "backbone", "protocol"]
    payload: dict = {}
    failed = []
    for k in kinds:
        payload[k] = {}
        for name, entry in registry.entries(k).items():
            try:
                cls = registry.load_class(k, name)
                card = cls.card
                lines = list(card.lines())
                if k in ("method", "backbone"):
                    from .options import declared_options

                    opts = declared_options(cls)
                    if opts:
                        lines.append(("options", "; ".join(o.describe() for o in opts)))
                payload[k][entry.display_name(cls)] = {"distribution": entry.distribution, "card": lines}
            except FiqaBenchError as exc:
                failed.append((k, name, str(exc)))
    if as_json:
        click.echo(json.dumps({**payload, "failed": failed}, indent=2))
    else:
        for k in kinds:
            click.secho(f"{k}s", bold=True)
            for name, info in payload[k].items():
                click.echo(f"  {name}" + (f"  [{info['distribution']}]" if info["distribution"] else ""))
                for label, value in info["card"]:
                    click.echo(f"      {label:<9} {value}")
            click.echo()
        for k, name, msg in failed:
            click.secho(f"FAILED to load {k} {name!r}: {msg}", fg="red", err=True)
    if failed:
        sys.exit(1)


def _run_config_options(f):
    """Click options generated from :class:`fiqa_bench.runner.RunConfig`: one source of truth for names, types,
    choices, ranges, defaults and help."""
    from dataclasses import MISSING, fields

    from .runner import RunConfig, option_choices

    for fld in reversed(fields(RunConfig)):
        meta = fld.metadata
        if not meta.get("cli", True):
            continue
        flag = meta.get("flag") or "--" + fld.name.replace("_", "-")
        decls = [flag] + ([meta["short"]] if meta.get("short") else []) + [fld.name]
        kwargs: dict = {"help": meta.get("help", "")}
        required = fld.default is MISSING  # no default in RunConfig: a required option (no default=None given to
        default = None if required else fld.default  # click, which would count None as a value and pass it on)
        if meta.get("repeat"):
            kwargs.update(multiple=True, metavar=meta.get("metavar") or "KEY=VALUE")
        elif isinstance(default, bool):
            kwargs.update(is_flag=True, default=default)
        elif meta.get("choices"):
            kwargs.update(type=click.Choice(list(option_choices(meta))), default=default, show_default=True)
        elif isinstance(default, int) and fld.type in ("int", int):
            kwargs.update(type=_IntRange(meta.get("min"), meta.get("max")), default=default, show_default=True)
        elif isinstance(default, float):
            kwargs.update(type=_FloatRange(meta.get("min"), meta.get("max")), default=default, show_default=True)
        elif required:
            kwargs.update(required=True)
        else:
            kwargs.update(default=default, show_default=default is not None)
        f = click.option(*decls, **kwargs)(f)
    return f


def _pairs(items, hint: str) -> tuple:
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=hint)
        out.append((key, value))
    return tuple(out)


@main.command("run", short_help="Evaluate a quality method and write a results file.")
@_run_config_options
@click.option("--skip-bad-images", is_flag=True, help="Same as --on-bad-image skip.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the results record (JSON) instead of the summary.")
def run_cmd(skip_bad_images, no_progress, as_json, **options) -> None:
    """Score, select, embed and evaluate; write a results file (+ its .npz raw data) and refresh the report in OUT."""
    from .report import write_report
    from .runner import RunConfig, run

    options["backbone_options"] = _pairs(options["backbone_options"], "--fr-option")
    options["method_options"] = _pairs(options["method_options"], "--method-option")
    if skip_bad_images:
        options["on_bad_image"] = "skip"
    cfg = RunConfig(**options, progress=_progress_wanted(no_progress) and not as_json)
    path, record = run(cfg)
    if as_json:
        click.echo(json.dumps(record, indent=2))
    else:
        click.echo(_summary(record))
        click.echo(f"results: {path}")
    try:
        written = write_report(Path(cfg.out))
    except FiqaBenchError as exc:  # the run is done and its results file written; the folder's report cannot show it
        reason = str(exc).splitlines()[0].rstrip(":")
        click.echo(
            f"warning: the report in {cfg.out} was not refreshed: {reason}; put each set of results in its "
            f"own folder (`fiqa-bench report FOLDER` names the files)",
            err=True,
        )
        return
    for p in written:
        if not as_json:
            click.echo(f"report:  {p}")


def _summary(record: dict) -> str:
    from .metrics.base import get_metric

    m = record["metrics"]
    c = record["counts"]
    opts = record["method"].get("options") or {}
    method = record["method"]["name"] + (
        " [" + ", ".join(f"{k}={v}" for k, v in sorted(opts.items())) + "]" if opts else ""
    )
    head = f"{record['protocol']['name']} | {record['backbone']['name']} | {method} | {record['config']['selection']}"
    lines = [head]
    for key, value in m.items():
        metric = get_metric(key)
        if "unavailable" in value:
            lines.append(f"  {metric.title}: — ({value['unavailable']})")
            continue
        intervals = value.get("intervals") or {}

        # shown_value is only called within this iteration (by metric.summary and the join below), never kept
        def shown_value(short, v):
            text = f"{metric.format(v)}{metric.unit if v is not None else ''}"  # noqa: B023
            iv = intervals.get(short)  # noqa: B023
            return text + (f" [{metric.format(iv[0])}, {metric.format(iv[1])}]" if iv else "")  # noqa: B023

        if metric.summary is not None:  # the metric's own line (TPR marks a reading below 1/impostors)
            lines.append(f"  {metric.label}: {metric.summary(value, shown_value)}")
            continue
        lines.append(
            f"  {metric.label}: " + "  ".join(f"{short}={shown_value(short, v)}" for short, v in metric.columns(value))
        )
    lines.append(
        f"  images {c['images']}, templates {c['templates']}, pairs scored {c['pairs_scored']} "
        f"({c['genuine']} genuine, {c['impostor']} impostor), scored {c['images_scored']}, embedded "
        f"{c['images_embedded']} ({c['images_embedded_new']} new), skipped {c['skipped']}"
    )
    if c.get("skipped_reasons"):
        lines.append("  skipped: " + ", ".join(f"{r}: {n}" for r, n in c["skipped_reasons"].items()))
    boot = next((v["bootstrap"] for v in m.values() if isinstance(v, dict) and "bootstrap" in v), None)
    if boot:
        lines.append(
            f"  [intervals: {100 * boot['level']:.0f}% {boot['method']} bootstrap over {boot['unit']}s, "
            f"B={boot['B']}, seed {boot['seed']}]"
        )
    timing = _timing_line(record.get("timings") or {})
    if timing:
        lines.append(timing)
    return "\n".join(lines)


#: The steps of a run's ``timings`` the summary names, in order (a results file may lack any of them).
_STEPS = (
    ("load_protocol_s", "protocol"),
    ("quality_s", "quality"),
    ("embed_s", "embed"),
    ("pair_scores_s", "pair scores"),
    ("metrics_s", "metrics"),
    ("bootstrap_s", "bootstrap"),
)


def _timing_line(timings: dict) -> str:
    """``  time: 61.3 s (protocol 0.2 s, ..., bootstrap 58.1 s (computed))`` from a record's ``timings``."""
    steps = []
    for key, name in _STEPS:
        if isinstance(timings.get(key), (int, float)) and not isinstance(timings.get(key), bool):
            step = f"{name} {timings[key]:.1f} s"
            if key == "bootstrap_s" and isinstance(timings.get("bootstrap_reused"), bool):
                step += " (replicates reused from the cache)" if timings["bootstrap_reused"] else " (computed)"
            steps.append(step)
    total = timings.get("total_s")
    if not steps and total is None:
        return ""
    head = f"  time: {total:.1f} s" if isinstance(total, (int, float)) else "  time:"
    return head + (f" ({', '.join(steps)})" if steps else "")


def _progress_wanted(no_progress: bool) -> bool:
    """Progress bars unless ``--no-progress`` or the global ``-q`` (errors only) was given."""
    root = click.get_current_context().find_root()
    return not no_progress and not root.params.get("quiet", False)


@main.command("rescore", short_help="Check results files against their raw data.")
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--no-progress", is_flag=True, help="Hide the per-file lines and the bootstrap's progress bar.")
def rescore_cmd(results, no_progress) -> None:
    """Recompute every metric of RESULTS files from their .npz raw data alone and check they agree (exit 1 if not).

    Everything is recomputed, the bootstrap replicates too (B resamples: tens of seconds per file on a small
    machine, with a progress bar on stderr); the replicate store that `run` reuses is never read, so rescore stays
    an independent check of the file against its .npz. Each file's line gives its time.
    """
    import time

    from .rescore import rescore

    progress = _progress_wanted(no_progress)
    bad = 0
    started = time.perf_counter()
    for i, path in enumerate(results, start=1):
        if progress:
            click.echo(f"[{i}/{len(results)}] {path}: recomputing every metric and its bootstrap replicates", err=True)
        t = time.perf_counter()
        diffs = rescore(path, progress=progress)
        took = f"({time.perf_counter() - t:.1f} s)"
        if diffs:
            bad += 1
            click.echo(f"{path}: DIFFERS {took}")
            for line in diffs:
                click.echo(f"  {line}")
        else:
            click.echo(f"{path}: every metric agrees with its .npz {took}")
    if len(results) > 1:
        click.echo(
            f"{len(results)} files rescored in {time.perf_counter() - started:.1f} s"
            + (f", {bad} differ" if bad else "")
        )
    if bad:
        sys.exit(1)


@main.command("compare", short_help="Compare methods with paired bootstrap intervals.")
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def compare_cmd(results, as_json) -> None:
    """Paired bootstrap comparisons of the methods in RESULTS (files or folders): for runs on the same protocol,
    pair list, backbone and selection, each method's difference to random and to the best, with the interval of
    the difference (the same resamples for both methods) and which differences exclude zero. A malformed results
    file is named in one line on stderr and skipped (exit 2 only when nothing valid remains)."""
    from .compare import as_json as to_json
    from .compare import compare, load_runs, render_text

    with _Skips() as skips:
        groups = compare(load_runs(results, on_bad=skips))
        if not groups:
            raise FiqaBenchError("no results files with raw data (.npz) to compare")
    click.echo(json.dumps(to_json(groups), indent=2) if as_json else render_text(groups))


@main.command("report", short_help="Render report tables from a folder of results.")
@click.argument("results_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "-o", default=None, type=click.Path(file_okay=False), help="Default: RESULTS_DIR.")
def report_cmd(results_dir, out) -> None:
    """Render Markdown and HTML tables (laid out like the paper's) from a folder of results files (and its
    costs.json from benchmarks/bench_costs.py, if any: a Table 2 costs section). A malformed results file is named
    in one line on stderr and skipped (exit 2 only when nothing valid remains)."""
    from .report import write_report

    with _Skips() as skips:
        written = write_report(Path(results_dir), Path(out) if out else None, on_bad=skips)
    for p in written:
        click.echo(str(p))


@main.command("prepare", short_help="Turn folders of photos into a benchmark folder.")
@click.argument("paths", nargs=-1, required=True, metavar="SRC[:pad=F]... OUT")
@click.option("--name", required=True, help="Benchmark name (file prefix in meta/, protocol name in results).")
@click.option("--seed", default=0, show_default=True, type=_IntRange(min=0))
@click.option("--layout", type=click.Choice(["ijb", "ytf", "both"]), default="ijb", show_default=True)
@click.option("--templates-per-identity", default=2, show_default=True, type=_IntRange(min=2))
@click.option(
    "--min-images",
    default=4,
    show_default=True,
    type=_IntRange(min=1),
    help="Identities with fewer photos are excluded (listed).",
)
@click.option(
    "--impostors",
    default="all",
    show_default=True,
    type=_AllOrCount(),
    help="'all' or a number of sampled impostor pairs.",
)
@click.option(
    "--degrade",
    "degrade_fraction",
    default=0.0,
    show_default=True,
    type=_FloatRange(0, 1, max_open=True),
    help="Fraction of each template's photos to degrade (blur, downscale, JPEG, noise, occlusion).",
)
@click.option("--detector", type=click.Choice(_DETECTORS), default="yunet", show_default=True)
@click.option(
    "--part",
    type=click.Choice(["all", "train", "eval"]),
    default="all",
    show_default=True,
    help="Keep only identities of this part of the train/eval identity split (fiqa_bench.splits).",
)
@click.option("--no-progress", is_flag=True)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the whole record (counts, options, exclusions, files, the README text) as JSON instead of "
    "the short summary.",
)
def prepare_cmd(
    paths,
    name,
    seed,
    layout,
    templates_per_identity,
    min_images,
    impostors,
    degrade_fraction,
    detector,
    part,
    no_progress,
    as_json,
) -> None:
    """Turn folders of identity sub-folders of photos into an IJB- (and/or YTF-) layout benchmark.

    Several SRC make one benchmark (identity names distinct across them); ``SRC:pad=0.25`` pads that source's
    photos before detection (tight crops such as LFW's 150 px). Prints a short summary (identities, images,
    templates, pairs, degraded copies, where it wrote); ``--json`` prints the whole record."""
    from .protocols.prepare import Source, prepare_benchmark

    if len(paths) < 2:
        raise click.UsageError("give at least one SRC folder and the OUT folder")
    sources = [Source.parse(p) for p in paths[:-1]]
    summary = prepare_benchmark(
        sources if len(sources) > 1 else sources[0],
        Path(paths[-1]),
        name=name,
        seed=seed,
        layout=layout,
        templates_per_identity=templates_per_identity,
        min_images=min_images,
        impostor_pairs=int(impostors) if str(impostors).isdigit() else impostors,
        degrade_fraction=degrade_fraction,
        detector=detector,
        part=part,
        progress=_progress_wanted(no_progress),
    )
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
    else:
        click.echo(_prepare_summary(summary))


def _prepare_summary(summary: dict) -> str:
    """A few lines for people: what ``prepare`` found, what it made and where it wrote (``--json``: everything)."""
    from .protocols.prepare import REPORT_FILE

    c = summary["counts"]
    out = summary["out"]
    lines = [
        f"prepared {summary['name']!r} ({summary['layout']} layout, seed {summary['seed']}) in {out} "
        f"({summary['seconds']:.1f} s)"
    ]
    lines.append(
        f"  identities: {c['identities_used']} used of {c['identities_found']} found "
        f"({c['identities_excluded']} excluded); photos: {c['photos_found']} found, "
        f"{c['photos_no_face']} without a face, {c['photos_unreadable']} unreadable"
    )
    lines.append(
        f"  images: {c['images']} ({c['degraded_images']} degraded copies) in {c['templates']} templates; "
        f"pairs: {c['genuine_pairs']:,} genuine + {c['impostor_pairs']:,} impostor"
    )
    if "videos" in c:
        where = f" in {Path(out) / 'ytf'}" if summary["layout"] == "both" else ""
        lines.append(
            f"  ytf{where}: {c['videos']} videos, {c['ytf_pairs']:,} video pairs ({c['ytf_same_pairs']} same; "
            f"folds: {summary['ytf_folds']})"
        )
    removed = summary.get("removed_stale_files") or []
    lines.append(
        f"  wrote {len(summary['files'])} files and folders"
        + (f", removed {len(removed)} stale images" if removed else "")
        + f"; conventions: {Path(out) / 'README.md'}; exclusions and photos without a face: "
        + f"{Path(out) / REPORT_FILE}"
    )
    return "\n".join(lines)


@main.command("label", short_help="Label photos with Eq. 1 quality labels for training.")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option(
    "--fr",
    "backbone",
    required=True,
    multiple=True,
    help="FR backbone whose embeddings define the labels (Eq. 1). Repeat it to average over several: "
    "each backbone's own Eq. 1 label, then their mean.",
)
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Folder for the labelled set.")
@click.option(
    "--size",
    default=64,
    show_default=True,
    type=_IntRange(min=1),
    help="Side of the aligned crops stored for training.",
)
@click.option(
    "--min-images",
    default=2,
    show_default=True,
    type=_IntRange(min=1),
    help="Identities with fewer photos are left out.",
)
@click.option("--max-images", default=None, type=_IntRange(min=1), help="Identities with more photos are left out.")
@click.option(
    "--part",
    type=click.Choice(["all", "train", "eval"]),
    default="train",
    show_default=True,
    help="Identities of this part of the train/eval split (fiqa_bench.splits).",
)
@click.option(
    "--degraded-copies",
    default=1,
    show_default=True,
    type=_IntRange(min=0),
    help="Seeded degraded copies per photo, labelled by the same Eq. 1, so labels cover low quality.",
)
@click.option("--seed", default=0, show_default=True, type=_IntRange(min=0))
@click.option(
    "--pad",
    default=0.0,
    show_default=True,
    type=_FloatRange(min=0),
    help="Padding before detection (0.25 for tight crops like LFW).",
)
@click.option("--detector", type=click.Choice(_DETECTORS), default="yunet", show_default=True)
@click.option("--no-progress", is_flag=True)
def label_cmd(
    sources, backbone, out, size, min_images, max_images, part, degraded_copies, seed, pad, detector, no_progress
) -> None:
    """Recognition-oriented quality labels (Eq. 1) for folders of identity sub-folders of photos.

    The label of a photo is the cosine between its embedding and the centre of its identity's other embeddings.
    Writes the aligned crops, labels, identities and the degradation record of each copy to OUT.
    """
    from collections import Counter

    import numpy as np

    from .splits import in_part
    from .training.dataset import build_training_set, images_by_identity_folder

    paths, identities = [], []
    for src in sources:
        p, ids = images_by_identity_folder(src, min_images=min_images)
        counts = Counter(ids)
        keep = [
            i
            for i, ident in enumerate(ids)
            if in_part(ident, part) and (max_images is None or counts[ident] <= max_images)
        ]
        tag = "/".join(Path(src).resolve().parts[-2:])
        paths += [p[i] for i in keep]
        identities += [f"{tag}/{ids[i]}" for i in keep]  # identities from different sources never merge
    backbone = list(backbone) if len(backbone) > 1 else backbone[0]
    ts = build_training_set(
        paths,
        identities,
        backbone=backbone,
        detector=detector,
        size=size,
        degraded_copies=degraded_copies,
        seed=seed,
        pad=pad,
        progress=not no_progress,
    )
    ts.meta["command"] = _baseline_command(click.get_current_context())  # the training card repeats it
    ts.meta["part"] = part
    folder = ts.save(out)
    labels = np.asarray(ts.labels)
    click.echo(f"{len(labels)} labelled crops of {len(set(map(str, ts.identities)))} identities -> {folder}")


@main.command("train", short_help="Train a quality network and export it to ONNX.")
@click.argument("dataset", type=click.Path(exists=True, file_okay=False))
@click.option("--net", default="tinyfqnet", show_default=True, help="tinyfqnet or a Table 6 network name.")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="Exported ONNX file.")
@click.option("--epochs", default=17, show_default=True, type=_IntRange(min=1))
@click.option("--lr", default=0.01, show_default=True, type=_FloatRange(min=0, min_open=True))
@click.option("--lr-step", default=5, show_default=True, type=_IntRange(min=1))
@click.option("--batch-size", default=1024, show_default=True, type=_IntRange(min=1))
@click.option("--weight-decay", default=1e-4, show_default=True, type=_FloatRange(min=0))
@click.option("--loss", type=click.Choice(["l1", "mse"]), default="l1", show_default=True)
@click.option(
    "--optimizer",
    type=click.Choice(["sgd", "adam"]),
    default="sgd",
    show_default=True,
    help="SGD with momentum (the paper's) or Adam (--lr is then its step size, e.g. 0.003).",
)
@click.option("--sampling", type=click.Choice(["none", "random", "smooth"]), default="smooth", show_default=True)
@click.option(
    "--label-scaling",
    type=click.Choice(["minmax", "clip"]),
    default="minmax",
    show_default=True,
    help="Targets: labels mapped from the training range to [0, 1] (minmax) or clipped to [0, 1] (clip, "
    "the paper as written).",
)
@click.option(
    "--min-images",
    default=2,
    show_default=True,
    type=_IntRange(min=1),
    help="Identity filter of the balanced sampling.",
)
@click.option(
    "--val-fraction",
    default=0.1,
    show_default=True,
    type=_FloatRange(0, 1, max_open=True),
    help="Fraction of identities held out.",
)
@click.option("--hflip", is_flag=True, help="Mirror each training image with probability 1/2 (seeded).")
@click.option(
    "--pair-weight",
    default=0.0,
    show_default=True,
    type=_FloatRange(min=0),
    help="Weight of the within-photo difference term: each row is paired with another version of its "
    "photo and the difference of their predictions regresses the difference of their labels "
    "(0: the paper's loss alone).",
)
@click.option(
    "--pair-kinds",
    default=None,
    metavar="KIND,KIND",
    help="Restrict the pair term to copies of these degradation kinds (e.g. jpeg,gaussian_noise).",
)
@click.option(
    "--pair-loss",
    type=click.Choice(["gap", "hinge"]),
    default="gap",
    show_default=True,
    help="The pair term: the predicted difference regresses the label difference (gap), or only falling "
    "short of it in its direction costs (hinge: the order is enforced, a wider gap is free).",
)
@click.option(
    "--oversample",
    multiple=True,
    metavar="KIND=N",
    help="Repeat the training rows of a degradation kind (or kind/level, e.g. jpeg/strong) N times in "
    "all after the sampling; repeatable.",
)
@click.option("--channels-last", is_flag=True, help="NHWC memory layout while training (faster on CPU).")
@click.option("--seed", default=0, show_default=True, type=_IntRange(min=0))
@click.option(
    "--checkpoints",
    default=None,
    type=click.Path(file_okay=False),
    help="Checkpoint folder (default: beside OUT); an interrupted training resumes from it.",
)
@click.option("--max-steps", default=None, type=_IntRange(min=1), help="Stop after this many steps (resumable).")
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    default="cpu",
    show_default=True,
    help="Train on the CPU or on a CUDA GPU (torch.cuda); checked before any work.",
)
@click.option("--no-progress", is_flag=True)
def train_cmd(
    dataset,
    net,
    out,
    epochs,
    lr,
    lr_step,
    batch_size,
    weight_decay,
    loss,
    optimizer,
    sampling,
    label_scaling,
    min_images,
    val_fraction,
    hflip,
    pair_weight,
    pair_kinds,
    pair_loss,
    oversample,
    channels_last,
    seed,
    checkpoints,
    max_steps,
    no_progress,
    device,
) -> None:
    """Train a quality network on a labelled set (from `fiqa-bench label`) and export it to ONNX (needs torch)."""
    from .device import check_device
    from .training.dataset import TrainingSet
    from .training.export import save_trained
    from .training.train import train, training_card

    check_device(device, torch=True)  # one line without a GPU, before the dataset is read
    times = {}
    for item in oversample:
        key, sep, n = item.partition("=")
        if not sep or not key or not n.isdigit() or int(n) < 1:
            raise click.BadParameter(f"{item!r}: expected KIND=N with N >= 1 (e.g. jpeg=3)", param_hint="--oversample")
        times[key] = int(n)
    ts = TrainingSet.load(dataset)
    from .errors import OptionError
    from .training.nets import net_spec

    side = net_spec(net).input_size  # an unknown name: its one-line error
    if ts.size != side:
        raise OptionError(
            f"{dataset}: its crops are {ts.size}x{ts.size}, network {net} takes {side}x{side} "
            f"(label the photos with `fiqa-bench label ... --size {side}`)"
        )
    ckpt = Path(checkpoints) if checkpoints else Path(out).with_suffix(".checkpoints")
    result = train(
        ts,
        net=net,
        epochs=epochs,
        lr=lr,
        lr_step=lr_step,
        batch_size=batch_size,
        weight_decay=weight_decay,
        loss=loss,
        seed=seed,
        val_fraction=val_fraction,
        sampling=None if sampling == "none" else sampling,
        sampling_options={"min_images": min_images},
        label_scaling=label_scaling,
        hflip=hflip,
        channels_last=channels_last,
        checkpoint_dir=ckpt,
        progress=not no_progress,
        max_steps=max_steps,
        device=device,
        pair_weight=pair_weight,
        oversample=times,
        optimizer=optimizer,
        pair_kinds=tuple(k.strip() for k in pair_kinds.split(",") if k.strip()) if pair_kinds else None,
        pair_loss=pair_loss,
    )
    if not result["completed"]:
        click.echo(f"stopped at step {result['global_step']} (checkpoint {result['checkpoint']}); run again to resume")
        return
    card = training_card(
        result,
        command=_baseline_command(click.get_current_context()),
        data=str(dataset),
        backbone=str(ts.meta.get("backbone", "")) if hasattr(ts, "meta") else "",
    )
    if getattr(ts, "meta", {}).get("command"):
        card["data_command"] = ts.meta["command"]
    path = save_trained(result, out, card)
    if sampling != "none":  # Fig. 5: the label histogram before and after balanced sampling
        import numpy as np

        from .training.sampling import plot_histograms, sample_indices

        low, high = result["config"]["label_range"]  # the targets the network was trained on
        labels = np.clip((np.asarray(ts.labels, dtype=np.float64) - low) / (high - low), 0.0, 1.0)
        keep = sample_indices(labels, np.asarray(ts.identities), strategy=sampling, min_images=min_images, seed=seed)
        plot_histograms(labels, labels[keep], Path(out).with_suffix(".sampling.png"))
    click.echo(json.dumps({"onnx": str(path), "validation": result["val"]}, indent=2, default=str))


# ------------------------------------------------------------------------------------------ train-baseline
def _baseline_command(ctx: click.Context) -> str:
    """The command as a card records it: ``fiqa-bench [GROUP] SUB`` + the arguments + the options given
    (not those left at their defaults), however it was invoked (the console script, a test runner)."""
    import shlex

    from click.core import ParameterSource

    args: list[str] = []
    opts: list[str] = []
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if isinstance(param, click.Argument):
            args += [str(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
            continue
        if ctx.get_parameter_source(param.name) in (None, ParameterSource.DEFAULT) or param.name == "no_progress":
            continue
        flag = max(param.opts, key=len)
        if getattr(param, "is_flag", False):
            opts += [flag] if value else []
        elif getattr(param, "multiple", False):
            assert value is not None  # click gives a multiple option given on the command line a tuple
            for v in value:
                opts += [flag, str(v)]
        else:
            opts += [flag, str(value)]
    return " ".join([_command_path(ctx)] + [shlex.quote(a) for a in args + opts])


def _key_values(items, hint: str) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=hint)
        out[key] = value
    return out


def _check_sources(ctx, param, value):
    from .training.baselines import Source

    for text in value:
        try:
            Source.parse(text)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--source") from None
    return value


def _load_set(path: str):
    from .training.baselines import BaselineSet, describe_set

    data = BaselineSet.load(path)
    return data, describe_set(path, data)


@main.group("train-baseline", cls=_CleanErrors, short_help="Train and evaluate the svm, rqs and faceqnet baselines.")
def train_baseline() -> None:
    """Train and evaluate the learned baselines svm (Best-Rowden & Jain 2018), rqs (Chen et al. 2015) and faceqnet
    (Hernandez-Ortega et al. 2019) on one labelled set (fiqa_bench.training.baselines).

    `data` builds the set (each photo + a light/medium/strong degradation ladder: 112x112 crops, embeddings, Eq. 1
    labels); `svm`, `rqs`, `faceqnet` (needs torch) train on it and write weights + a JSON card recording the
    command; `evaluate` scores a set with registered methods.
    """


def _training_options(f):
    f = click.option(
        "--val-fraction",
        default=0.2,
        show_default=True,
        type=_FloatRange(0, 1, max_open=True),
        help="Fraction of the set's identities held out for the card's validation numbers.",
    )(f)
    f = click.option("--seed", default=0, show_default=True, type=_IntRange(min=0))(f)
    f = click.option(
        "--out",
        "-o",
        required=True,
        type=click.Path(dir_okay=False),
        help="Weights file to write (its card goes beside it, .json).",
    )(f)
    return click.argument("data", type=click.Path(exists=True, file_okay=False))(f)


@train_baseline.command("data", short_help="Build a labelled set from photos.")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--fr", required=True, help="Labelling FR backbone (registered name or onnx:PATH).")
@click.option("--fr-option", "fr_options", multiple=True, metavar="KEY=VALUE", help="Backbone option (repeatable).")
@click.option(
    "--source",
    "sources",
    multiple=True,
    required=True,
    callback=_check_sources,
    metavar="DIR[:min_images=N,max_images=N,per_identity=N,pad=F]",
    help="A folder of identity folders of photos, with which of them to use (repeatable).",
)
@click.option(
    "--part",
    type=click.Choice(["train", "eval", "all"]),
    default="train",
    show_default=True,
    help="Identities of this part of the train/eval split (fiqa_bench.splits).",
)
@click.option("--no-ladder", is_flag=True, help="Keep the undegraded photos only.")
@click.option("--detector", type=click.Choice(_DETECTORS), default="yunet", show_default=True)
@click.option("--seed", default=0, show_default=True, type=_IntRange(min=0))
@click.option("--no-progress", is_flag=True)
@click.pass_context
def baseline_data_cmd(ctx, out, fr, fr_options, sources, part, no_ladder, detector, seed, no_progress) -> None:
    """Build a labelled set (BaselineSet folder OUT) from photos."""
    import numpy as np

    from .training.baselines import make_baseline_set

    data, folder = make_baseline_set(
        out,
        fr=fr,
        fr_options=_key_values(fr_options, "--fr-option"),
        sources=list(sources),
        part=part,
        ladder=not no_ladder,
        detector=detector,
        seed=seed,
        command=_baseline_command(ctx),
        progress=not no_progress,
    )
    click.echo(
        f"{len(data)} rows ({data.meta['photos']} photos, {len(data.meta['skipped'])} without a face) of "
        f"{np.unique(data.data.identities).size} identities -> {folder}"
    )


@train_baseline.command("svm", short_help="Fit an SVR from a set's embeddings to its Eq. 1 labels.")
@_training_options
@click.option("--C", "C", default=0.3, show_default=True, type=_FloatRange(min=0, min_open=True), help="SVR C.")
@click.option(
    "--gamma",
    default=1.0,
    show_default=True,
    type=_FloatRange(min=0, min_open=True),
    help="RBF gamma (on L2-normalised embeddings).",
)
@click.option("--epsilon", default=0.05, show_default=True, type=_FloatRange(min=0))
@click.option(
    "--max-rows",
    default=2500,
    show_default=True,
    type=_IntRange(min=1),
    help="Rows fitted at most (drawn with the seed).",
)
@click.option("--search", is_flag=True, help="Pick C and gamma on the held-out identities first.")
@click.pass_context
def baseline_svm_cmd(ctx, data, out, seed, val_fraction, C, gamma, epsilon, max_rows, search) -> None:
    """SVR (RBF) from the set's embeddings to its Eq. 1 labels (methods/svm.py; one model per backbone)."""
    from .training.baselines import train_baseline_svm

    dataset, desc = _load_set(data)
    card = train_baseline_svm(
        dataset,
        out,
        C=C,
        gamma=gamma,
        epsilon=epsilon,
        max_rows=max_rows,
        val_fraction=val_fraction,
        seed=seed,
        search=search,
        command=_baseline_command(ctx),
        data_desc=desc,
    )
    click.echo(json.dumps(card["validation"], indent=2, default=str))


@train_baseline.command("rqs", short_help="Train a two-stage RankSVM on hand-crafted features.")
@_training_options
@click.option(
    "--C",
    "C",
    default=None,
    type=_FloatRange(min=0, min_open=True),
    help="Stage-1 RankSVM C (default: chosen on the held-out identities from 0.001, 0.01, 0.1).",
)
@click.option(
    "--C2", "C2", default=1.0, show_default=True, type=_FloatRange(min=0, min_open=True), help="Stage-2 RankSVM C."
)
@click.option(
    "--margin",
    default=0.1,
    show_default=True,
    type=_FloatRange(min=0),
    help="Eq. 1 label gap making two photos an ordered pair.",
)
@click.option(
    "--per-identity", default=30, show_default=True, type=_IntRange(min=1), help="Eq. 1 pairs per identity at most."
)
@click.option(
    "--features-cache",
    default=None,
    type=click.Path(dir_okay=False),
    help=".npz keeping the set's hand-crafted features between runs.",
)
@click.pass_context
def baseline_rqs_cmd(ctx, data, out, seed, val_fraction, C, C2, margin, per_identity, features_cache) -> None:
    """Two-stage linear RankSVM on HoG, Gabor, Gist and LBP features (methods/rqs.py)."""
    from .training.baselines import train_baseline_rqs

    dataset, desc = _load_set(data)
    card = train_baseline_rqs(
        dataset,
        out,
        C=C,
        C2=C2,
        margin=margin,
        per_identity=per_identity,
        val_fraction=val_fraction,
        seed=seed,
        features_cache=features_cache,
        command=_baseline_command(ctx),
        data_desc=desc,
    )
    click.echo(json.dumps(card["validation"], indent=2, default=str))


@train_baseline.command("faceqnet", short_help="Train a FaceQnet CNN and export it to ONNX (needs torch).")
@_training_options
@click.option("--net", default="mbv2-t4-w0.35-112", show_default=True)
@click.option("--epochs", default=18, show_default=True, type=_IntRange(min=1))
@click.option("--lr", default=0.01, show_default=True, type=_FloatRange(min=0, min_open=True))
@click.option("--lr-step", default=6, show_default=True, type=_IntRange(min=1))
@click.option("--batch-size", default=64, show_default=True, type=_IntRange(min=1))
@click.option("--loss", type=click.Choice(["l1", "mse"]), default="l1", show_default=True)
@click.option("--no-hflip", is_flag=True, help="No mirror augmentation.")
@click.option("--threads", default=1, show_default=True, type=_IntRange(min=1), help="torch threads.")
@click.option(
    "--checkpoints",
    default=None,
    type=click.Path(file_okay=False),
    help="Checkpoint folder; an interrupted training resumes from it.",
)
@click.option("--no-progress", is_flag=True)
@click.pass_context
def baseline_faceqnet_cmd(
    ctx,
    data,
    out,
    seed,
    val_fraction,
    net,
    epochs,
    lr,
    lr_step,
    batch_size,
    loss,
    no_hflip,
    threads,
    checkpoints,
    no_progress,
) -> None:
    """CNN regressing FaceQnet labels, exported to ONNX (methods/faceqnet.py); needs torch."""
    from .training.baselines import train_baseline_faceqnet

    dataset, desc = _load_set(data)
    card = train_baseline_faceqnet(
        dataset,
        out,
        net=net,
        epochs=epochs,
        lr=lr,
        lr_step=lr_step,
        batch_size=batch_size,
        loss=loss,
        hflip=not no_hflip,
        val_fraction=val_fraction,
        seed=seed,
        threads=threads,
        checkpoint_dir=checkpoints,
        progress=not no_progress,
        command=_baseline_command(ctx),
        data_desc=desc,
    )
    click.echo(json.dumps(card["validation"], indent=2, default=str))


@train_baseline.command("evaluate", short_help="Measure methods on a set: Spearman and ladder order.")
@click.argument("data", type=click.Path(exists=True, file_okay=False))
@click.option("--methods", default="all", show_default=True, help="Comma-separated registered method names, or 'all'.")
@click.option(
    "--svm",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="SVM model (default: the bundled one for the set's backbone).",
)
@click.option("--rqs", default=None, type=click.Path(exists=True, dir_okay=False), help="RQS weights.")
@click.option("--faceqnet", default=None, type=click.Path(exists=True, dir_okay=False), help="FaceQnet ONNX.")
@click.option(
    "--tinyfq",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="tinyFQnet ONNX (default: the bundled weights/tinyfq.onnx; skipped while it is absent).",
)
@click.option("--out", "-o", default=None, type=click.Path(dir_okay=False), help="Write the results as JSON.")
@click.option("--no-progress", is_flag=True)
@click.pass_context
def baseline_evaluate_cmd(ctx, data, methods, svm, rqs, faceqnet, tinyfq, out, no_progress) -> None:
    """Spearman with the Eq. 1 labels and ladder order (clean > light > medium > strong) of methods on a set.

    Inputs: svm scores the set's stored embeddings (its model must be for the set's backbone); methods taking
    112x112 RGB aligned crops (blur, rqs, faceqnet) the stored crops; every other method (jpeg, pose, combination
    take the decoded photo with its landmarks; tinyfq 64x64 crops) scores faces rebuilt from the set's source photos
    (decoded, the row's degradation replayed, landmarks stored in the set or, for older sets, detected again),
    checked against the stored crops, so each method sees what `fiqa-bench run` would give it. jpeg needs the
    photo's own 8x8 JPEG grid and pose the landmarks, which the aligned crops do not keep. Methods whose weights are
    absent (tinyfq before weights/tinyfq.onnx is trained) or whose source photos are missing are skipped, with
    the reason.
    """
    from .atomic import write_json
    from .training.baselines import evaluate, evaluation_methods
    from .training.export import json_safe

    dataset, desc = _load_set(data)
    weights = {k: v for k, v in (("svm", svm), ("rqs", rqs), ("faceqnet", faceqnet), ("tinyfq", tinyfq)) if v}
    chosen, skipped = evaluation_methods(dataset, methods, weights)
    for name, why in skipped.items():
        hint = (
            f" (evaluate: --{name} PATH)"
            if name in ("svm", "rqs", "faceqnet", "tinyfq") and "weights" in why or name == "svm" and "model" in why
            else ""
        )
        click.echo(f"skipped {name}: {why}{hint}", err=True)
    results = evaluate(dataset, chosen, progress=not no_progress)
    click.echo(f"{'method':<12} {'spearman':>8} {'clean':>7} {'ladder':>7} {'photos':>7}  input")
    for name, r in results.items():
        click.echo(
            f"{name:<12} {r['spearman_eq1_all']:>8.3f} {r['spearman_eq1_clean']:>7.3f} "
            f"{r['ladder']['pairs']:>7.3f} {r['ladder']['photos']:>7.3f}  {r['input']}"
        )
    if out:
        write_json(
            out,
            json_safe(
                {
                    "command": _baseline_command(ctx),
                    "data": desc,
                    "rows": len(dataset),
                    "results": results,
                    "skipped": skipped,
                }
            ),
        )
        click.echo(f"results: {out}")


@main.command("leaderboard", short_help="Build a static leaderboard site from results.")
@click.argument("results_dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder for the static site (new, empty, or a previous leaderboard build).",
)
def leaderboard_cmd(results_dirs, out) -> None:
    """A static leaderboard site from results files: open OUT/index.html from disk or any static host (offline).

    One board per protocol x FR backbone x selection (other protocol versions or pair lists: separate boards),
    sortable and filterable, the view kept in the link; rows link to a copy of their results file, their method
    card and their cost (ms/image from a costs.json under RESULTS_DIRS). A malformed results file is named in one
    line on stderr and skipped (exit 2 only when nothing valid remains).
    """
    from .leaderboard import write_site

    with _Skips() as skips:
        written = write_site([Path(d) for d in results_dirs], Path(out), on_bad=skips)
    click.echo(f"leaderboard: {Path(out) / 'index.html'} ({len(written)} files)")


if __name__ == "__main__":  # pragma: no cover
    main()
