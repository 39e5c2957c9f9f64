"""``fiqa-bench sensitivity``: how often a quality method scores degraded copies below their source photo, per
degradation kind and strength, with intervals over subjects (:mod:`fiqa_bench.analyses.sensitivity`)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import click

from fiqa_bench.cli.common import _FloatRange, _IntRange
from fiqa_bench.cli.training import _key_values
from fiqa_bench.errors import FiqaBenchError


def _is_labelled_set(path: Path) -> bool:
    return (path / "meta.json").is_file() and (path / "embeddings.npy").is_file()


@click.command("sensitivity", short_help="Share of degraded copies scored below their photo, per kind and strength.")
@click.argument("data", type=click.Path(exists=True, file_okay=False))
@click.option("--method", "-m", required=True, help="Quality method (registered name).")
@click.option("--method-option", "method_options", multiple=True, metavar="KEY=VALUE", help="Method option.")
@click.option("--fr", default=None, help="FR backbone, for a method that needs one (e.g. svm, serfiq).")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Folder for the table and figure.")
@click.option(
    "--degrade",
    "strengths",
    multiple=True,
    metavar="KIND:STRENGTH",
    help="With a labelled set: a degradation to apply (repeatable), e.g. jpeg:10, gaussian_noise:strong, blur:all; "
    "all: every kind at every strength.",
)
@click.option(
    "--source-root",
    "source_roots",
    multiple=True,
    metavar="DIR[:pad=F]",
    help="With a benchmark: a folder the source photos are in (repeatable); default: those benchmark.json records.",
)
@click.option("--skip-missing-sources", is_flag=True, help="Count source photos that cannot be scored as skipped.")
@click.option("--limit", default=0, show_default=True, type=_IntRange(min=0), help="Labelled set: first N photos.")
@click.option("--bootstrap", "B", default=1000, show_default=True, type=_IntRange(min=0), help="Resamples (0: none).")
@click.option("--bootstrap-level", default=0.95, show_default=True, type=_FloatRange(0.5, 0.999))
@click.option("--bootstrap-seed", default=0, show_default=True, type=_IntRange(min=0))
@click.option("--seed", default=0, show_default=True, type=_IntRange(min=0), help="The method's seed, if it takes one.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def sensitivity_cmd(
    data,
    method,
    method_options,
    fr,
    out,
    strengths,
    source_roots,
    skip_missing_sources,
    limit,
    B,
    bootstrap_level,
    bootstrap_seed,
    seed,
    no_progress,
) -> None:
    """For DATA, a benchmark prepared with `prepare --degrade F` (its degradations.csv) or a labelled set of
    `train-baseline data` (with --degrade KIND:STRENGTH ...): the share of degraded copies METHOD scores below
    their source photo, per kind and strength, with bootstrap intervals over subjects; writes sensitivity.md,
    .json, .csv, copies.csv and a heatmap (sensitivity.png, .svg) into OUT."""
    from fiqa_bench import __version__, registry
    from fiqa_bench.analyses import sensitivity
    from fiqa_bench.pipeline.runner import quality_identity
    from fiqa_bench.pipeline.uncertainty import BootstrapOptions
    from fiqa_bench.resolve import build_backbone, build_method, check_method_options, open_protocol

    folder = Path(data)
    opts = _key_values(method_options, "--method-option")
    labelled = _is_labelled_set(folder)
    if labelled and source_roots:
        raise click.BadParameter("a labelled set has no source folders to give", param_hint="--source-root")
    if not labelled and strengths:
        raise click.BadParameter(
            f"{folder} is a benchmark: its copies are those of its degradations.csv", param_hint="--degrade"
        )
    if labelled and not strengths:
        raise click.BadParameter("a labelled set needs the degradations to apply", param_hint="--degrade")
    parsed = sensitivity.parse_strengths(strengths)
    roots = []
    if source_roots:
        from fiqa_bench.data.prepare import Source

        for text in source_roots:
            src = Source.parse(text)
            if not src.root.is_dir():
                raise click.BadParameter(f"{src.root} is not a folder", param_hint="--source-root")
            roots.append(sensitivity.SourceRoot(src.root, src.pad, "--source-root"))

    mcls = registry.load_class("method", method)
    check_method_options(method, opts)
    backbone = None
    if getattr(mcls.card, "needs_backbone", False):
        if fr is None:
            raise click.BadParameter(f"method {method!r} needs an FR backbone", param_hint="--fr")
        backbone = build_backbone(SimpleNamespace(backbone=fr, backbone_options=(), flip=False))
    q = build_method(SimpleNamespace(method=method, seed=seed, method_options=tuple(opts.items())), backbone)
    who = f"quality method {method!r}"
    ident, options_sha256 = quality_identity(q, opts)
    boot = BootstrapOptions(B=B, level=bootstrap_level, seed=bootstrap_seed)
    hib = bool(getattr(q.card, "higher_is_better", True))
    progress = not no_progress
    record: dict = {
        "fiqa_bench_version": __version__,
        "method": {
            "name": method,
            "options": opts,
            "options_sha256": options_sha256,
            "identity": ident,
            "higher_is_better": hib,
        },
    }
    if labelled:
        from fiqa_bench.training.baselines.sensitivity import set_copies

        copies, photos = set_copies(str(folder), parsed, q, who, limit)
        record["data"] = {"labelled_set": data, "photos": photos, "limit": limit, "strengths": list(strengths)}
        title = f"{method}: degraded copies scored below their photo ({Path(data).name}, {photos} photos)"
    else:
        bench = open_protocol(str(folder)).load()
        copies, found = sensitivity.benchmark_copies(
            bench,
            q,
            quality_identity=ident,
            who=who,
            roots=roots,
            skip_missing=skip_missing_sources,
            progress=progress,
            on_line=lambda line: click.echo(line, err=True),
        )
        record["data"] = {"benchmark": data, "name": bench.name, **bench.fingerprint(), **found}
        title = f"{method}: degraded copies scored below their source photo ({bench.name})"
    if not len(copies):
        raise FiqaBenchError(f"{data}: no degraded copy could be scored")
    table = sensitivity.sensitivity(copies, higher_is_better=hib, boot=boot)
    direction = "below" if hib else "above (lower is better)"
    lines = [
        f"Share of degraded copies that {method} scores strictly {direction} their source photo; a tie is not "
        "penalised. Intervals: percentile bootstrap over subjects"
        + (f" (B = {B}, seed {bootstrap_seed})." if B else " (none: --bootstrap 0)."),
        "",
        f"Command: `fiqa-bench sensitivity {data} --method {method} --out {out}`"
        + "".join(f" --degrade {s}" for s in strengths),
    ]
    written = sensitivity.write_outputs(out, table, copies, record, title, lines)
    click.echo(sensitivity.markdown(table, title).split("\n", 2)[2].strip())
    if table["unscored"]:
        click.echo(f"{table['unscored']} copies without a score were left out", err=True)
    for p in written:
        click.echo(f"wrote {p}")


#: The commands this module adds to ``fiqa-bench``.
COMMANDS = (sensitivity_cmd,)
