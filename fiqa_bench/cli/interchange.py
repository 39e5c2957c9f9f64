"""``fiqa-bench import`` and ``fiqa-bench export``: score files and per-image arrays in and out
(:mod:`fiqa_bench.results.interchange`; the formats are plugins, entry-point group ``fiqa_bench.formats``). A thin click
layer: :mod:`fiqa_bench.cli.main` adds :data:`COMMANDS` to its group."""

from __future__ import annotations

import json

import click

from fiqa_bench import registry
from fiqa_bench.cli.common import _FloatRange, _IntRange

_FORMATS = registry.names("format")


def _metric_options(f):
    """One option per option the registered metrics declare (``--pair-quality``, ``--fpr-reading``, ...), as on
    ``fiqa-bench run``."""
    from fiqa_bench.metrics.base import declared_options

    for option in reversed(list(declared_options().values())):
        kwargs: dict = {"help": option.help, "default": None, "show_default": str(option.default)}
        if option.choices:
            kwargs["type"] = click.Choice([str(c) for c in option.choices])
        elif option.type is bool:
            kwargs = {"help": option.help, "is_flag": True, "default": None}
        elif option.type is int:
            kwargs["type"] = _IntRange(option.min, option.max)
        elif option.type is float:
            kwargs["type"] = _FloatRange(option.min, option.max)
        f = click.option(option.cli_flag, "metric_" + option.name, **kwargs)(f)
    return f


@click.command("import", short_help="Turn scores or embeddings computed elsewhere into a results file.")
@click.argument("input_file", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(_FORMATS), required=True, help="The format of INPUT.")
@click.option(
    "--quality",
    type=click.Path(dir_okay=False),
    default=None,
    help="Quality file: per-sample 'sample,quality' CSV (bob4, bob5, bobcsv) or a (N,) .npy (insightface).",
)
@click.option(
    "--protocol",
    "-p",
    default=None,
    help="insightface: the protocol (or prepared folder) whose face list the rows follow, e.g. ijbc or a folder.",
)
@click.option("--data", "-d", default=None, help="insightface: the protocol's dataset root (as for `run`).")
@click.option(
    "--selection",
    type=click.Choice(["top1", "topk", "weighted", "all"]),
    default="top1",
    show_default=True,
    help="insightface: images kept per template, exactly as `run --selection`.",
)
@click.option("--k", type=_IntRange(1, None), default=3, show_default=True, help="Images kept per template for topk.")
@click.option(
    "--like",
    default="ijb-layout",
    show_default=True,
    help="Score formats: the registered protocol whose metrics measure the comparisons (ytf-layout: k-fold).",
)
@click.option("--benchmark", default=None, help="Score formats: the name of the comparisons (default: INPUT's stem).")
@click.option("--method", "-m", default="imported", show_default=True, help="Name of the quality method in results.")
@click.option("--fr", default="imported", show_default=True, help="Name of the FR model that made INPUT, in results.")
@click.option("--bootstrap", type=_IntRange(0, 1_000_000), default=1000, show_default=True, help="Bootstrap resamples.")
@click.option("--level", type=_FloatRange(0.5, 0.999), default=0.95, show_default=True, help="Interval level.")
@click.option("--bootstrap-seed", type=_IntRange(0, None), default=0, show_default=True, help="Bootstrap seed.")
@click.option("--keep-embeddings", is_flag=True, help="insightface: keep the kept images' embeddings in the .npz.")
@_metric_options
@click.option("--out", "-o", default="results", show_default=True, help="Folder for the results file.")
@click.option("--json", "as_json", is_flag=True, help="Print the results record (JSON).")
def import_cmd(input_file, fmt, quality, protocol, data, selection, k, like, benchmark, method, fr, bootstrap, level,
               bootstrap_seed, keep_embeddings, out, as_json, **given) -> None:  # fmt: skip
    """Import INPUT (scores or per-image arrays computed elsewhere) as a results file (+ .npz) in OUT, which
    rescore, compare, report and leaderboard read like any run's. The file records the format, INPUT as typed
    and its sha256."""
    from fiqa_bench.results.interchange import ImportRequest, import_data

    options = {name[len("metric_") :]: v for name, v in given.items() if v is not None}
    path, record = import_data(
        ImportRequest(
            input=input_file,
            format=fmt,
            quality=quality,
            protocol=protocol,
            data=data,
            like=like,
            benchmark=benchmark,
            method=method,
            fr=fr,
            selection=selection,
            k=k,
            bootstrap=bootstrap,
            bootstrap_level=level,
            bootstrap_seed=bootstrap_seed,
            metric_options=options,
            keep_embeddings=keep_embeddings,
            out=out,
        )
    )
    if as_json:
        click.echo(json.dumps(record, indent=2))
    else:
        from fiqa_bench.metrics.base import get_metric

        for key in record["protocol"]["metrics"]:
            metric = get_metric(key)
            value = record["metrics"].get(key) or {}
            shown = ", ".join(f"{metric.short_of(t)}={metric.format(v)}" for t, v in metric.headline(value))
            click.echo(f"{metric.title}: {shown or value.get('unavailable', '-')}")
        click.echo(f"results: {path}")


@click.command("export", short_help="Write a run's raw data as bob, CSV or insightface files.")
@click.argument("results", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(_FORMATS), required=True, help="The format to write.")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="The file to write.")
def export_cmd(results, fmt, out) -> None:
    """Write the raw data (the .npz beside RESULTS) to OUT in a format: its comparisons (bob4, bob5, bobcsv, csv; a
    per-sample quality file beside OUT where the format has no quality field) or every image's embedding and
    quality (insightface: from a run with --selection all --keep-embeddings)."""
    from fiqa_bench.results.interchange import export_run

    for path in export_run(results, fmt, out):
        click.echo(str(path))


#: The commands :mod:`fiqa_bench.cli.main` adds to its group.
COMMANDS = (import_cmd, export_cmd)
