"""``fiqa-bench import`` and ``fiqa-bench export``: score files and per-image arrays in and out
(:mod:`fiqa_bench.results.interchange`; the formats are plugins, entry-point group ``fiqa_bench.formats``). A thin click
layer: :mod:`fiqa_bench.cli.main` adds :data:`COMMANDS` to its group."""

from __future__ import annotations

import json

import click

from fiqa_bench import registry
from fiqa_bench.cli.common import config_options

_FORMATS = registry.names("format")
#: The run settings an import takes, declared (type, default, help, spelling) once in fiqa_bench.config.RunConfig;
#: with every registered metric's options.
IMPORT_SETTINGS = ("selection", "k", "bootstrap", "bootstrap_level", "bootstrap_seed", "keep_embeddings", "out")


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
    "--like",
    default="ijb-layout",
    show_default=True,
    help="Score formats: the registered protocol whose metrics measure the comparisons (ytf-layout: k-fold).",
)
@click.option("--benchmark", default=None, help="Score formats: the name of the comparisons (default: INPUT's stem).")
@click.option("--method", "-m", default="imported", show_default=True, help="Name of the quality method in results.")
@click.option("--fr", default="imported", show_default=True, help="Name of the FR model that made INPUT, in results.")
@config_options(IMPORT_SETTINGS, metrics=True)
@click.option("--json", "as_json", is_flag=True, help="Print the results record (JSON).")
def import_cmd(input_file, fmt, quality, protocol, data, like, benchmark, method, fr, as_json, **settings) -> None:
    """Import INPUT (scores or per-image arrays computed elsewhere) as a results file (+ .npz) in OUT, which
    rescore, compare, report and leaderboard read like any run's. The file records the format, INPUT as typed
    and its sha256."""
    from fiqa_bench.metrics.base import declared_options
    from fiqa_bench.results.interchange import ImportRequest, import_data

    declared = declared_options()
    metric_options = {name: settings.pop(name) for name in list(settings) if name in declared}
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
            metric_options=metric_options,
            **settings,
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
