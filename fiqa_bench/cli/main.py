"""The ``fiqa-bench`` command. A thin click layer: every command builds a config and calls library code."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from fiqa_bench import __version__, registry
from fiqa_bench.cli.common import _DETECTORS, _AllOrCount, _CleanErrors, _FloatRange, _IntRange, config_options
from fiqa_bench.cli.groups import COMMANDS as GROUPS_COMMANDS
from fiqa_bench.cli.interchange import COMMANDS as INTERCHANGE_COMMANDS
from fiqa_bench.cli.sensitivity import COMMANDS as SENSITIVITY_COMMANDS
from fiqa_bench.cli.training import COMMANDS as TRAINING_COMMANDS
from fiqa_bench.errors import FiqaBenchError


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
                    from fiqa_bench.api.options import declared_options

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


def _pairs(items, hint: str) -> tuple:
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=hint)
        out.append((key, value))
    return tuple(out)


@main.command("run", short_help="Evaluate a quality method and write a results file.")
@config_options()
@click.option("--skip-bad-images", is_flag=True, help="Same as --on-bad-image skip.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the results record (JSON) instead of the summary.")
def run_cmd(skip_bad_images, no_progress, as_json, **options) -> None:
    """Score, select, embed and evaluate; write a results file (+ its .npz raw data) and refresh the report in OUT."""
    from fiqa_bench.config import RunConfig
    from fiqa_bench.pipeline.runner import run
    from fiqa_bench.writers.report import write_report

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
    from fiqa_bench.metrics.base import get_metric

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

    from fiqa_bench.results.rescore import rescore

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
    from fiqa_bench.results.compare import as_json as to_json
    from fiqa_bench.results.compare import compare, load_runs, render_text

    with _Skips() as skips:
        groups = compare(load_runs(results, on_bad=skips))
        if not groups:
            raise FiqaBenchError("no results files with raw data (.npz) to compare")
    click.echo(json.dumps(to_json(groups), indent=2) if as_json else render_text(groups))


@main.command("report", short_help="Render report tables from a folder of results.")
@click.argument("results_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "-o", default=None, type=click.Path(file_okay=False), help="Default: RESULTS_DIR.")
@click.option("--latex", is_flag=True, help="Also write LaTeX tables (booktabs) and vector PDF figures into OUT/latex.")
def report_cmd(results_dir, out, latex) -> None:
    """Render Markdown and HTML tables (laid out like the paper's) from a folder of results files (and its
    costs.json from benchmarks/bench_costs.py, if any: a Table 2 costs section). A malformed results file is named
    in one line on stderr and skipped (exit 2 only when nothing valid remains)."""
    from fiqa_bench.writers.report import write_report

    with _Skips() as skips:
        written = write_report(Path(results_dir), Path(out) if out else None, on_bad=skips)
        if latex:
            from fiqa_bench.writers.latex import write_latex

            written += write_latex(Path(results_dir), Path(out) if out else None, on_bad=lambda skipped: None)
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
    help="Keep only identities of this part of the train/eval identity split (fiqa_bench.data.splits).",
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
    from fiqa_bench.data.prepare import Source, prepare_benchmark

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
    from fiqa_bench.data.prepare import REPORT_FILE

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
    from fiqa_bench.writers.leaderboard import write_site

    with _Skips() as skips:
        written = write_site([Path(d) for d in results_dirs], Path(out), on_bad=skips)
    click.echo(f"leaderboard: {Path(out) / 'index.html'} ({len(written)} files)")


if __name__ == "__main__":  # pragma: no cover
    main()


# label, train, train-baseline (cli/training.py); sensitivity; import, export (cli/interchange.py); groups
for _command in TRAINING_COMMANDS + SENSITIVITY_COMMANDS + INTERCHANGE_COMMANDS + GROUPS_COMMANDS:
    main.add_command(_command)
