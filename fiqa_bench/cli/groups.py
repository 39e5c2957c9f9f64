"""The ``fiqa-bench groups`` command: per-group metrics of a finished run (:mod:`fiqa_bench.analyses.groups`),
apart from the
other evaluation commands of :mod:`fiqa_bench.cli.main`, which adds it to its group (:data:`COMMANDS`)."""

from __future__ import annotations

from pathlib import Path

import click

from fiqa_bench.cli.common import _IntRange


@click.command("groups", short_help="Per-group metrics of a run (degradations, demographics) with intervals.")
@click.argument("results", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--by",
    required=True,
    help="degradation (the kinds and strengths `prepare --degrade` recorded; undegraded images: none), or "
    "FILE.csv[:COLUMN] (an image column keyed by image path and group columns; COLUMN: only that one).",
)
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Folder for the groups file.")
@click.option(
    "--bench",
    default=None,
    type=click.Path(exists=True, file_okay=False),
    help="The benchmark folder the run evaluated (default: the protocol the results file records).",
)
@click.option(
    "--bootstrap",
    default=None,
    type=_IntRange(min=0),
    help="Subject resamples for the intervals (default: the run's own, else 1000; 0: none).",
)
@click.option(
    "--missing",
    type=click.Choice(["refuse", "skip"]),
    default="refuse",
    show_default=True,
    help="Images of the benchmark a CSV does not list: refuse, or skip (they join no group; counted).",
)
def groups_cmd(results, by, out, bench, bootstrap, missing) -> None:
    """TPR@FPR, EDC and every other metric of a run on the comparisons of each group of images, with bootstrap
    intervals over identities, the largest gap between groups with its paired interval, and a figure.

    A comparison belongs to group g when the images the selection kept for both of its templates are all in g.
    Writes OUT/<results stem>__<grouping>.groups.json (the leaderboard's group filter reads it when it lies under
    a RESULTS_DIR) and one figure per grouping (PNG, SVG).
    """
    from fiqa_bench.analyses.groups import groups_of_run, groups_stem, write_groups
    from fiqa_bench.metrics.base import get_metric

    obj = groups_of_run(results, by, bench=bench, bootstrap=bootstrap, skip_missing=missing == "skip")
    written = write_groups(obj, Path(out), groups_stem(Path(results), obj["by"]))
    for grouping in obj["groupings"]:
        c = grouping["counts"]
        click.echo(
            f"{grouping['name']}: {len(grouping['groups'])} groups; {c['pairs_in_no_group']} comparisons in no group "
            f"({c['templates_mixed']} templates with kept images of several groups, {c['templates_unlabelled']} "
            f"unlabelled), {c['images_unlabelled']} images unlabelled"
        )
        for g in grouping["groups"]:
            click.echo(f"  {g['name']}: {g['pairs']} comparisons ({g['genuine']} genuine, {g['impostor']} impostor)")
        for gap in grouping["gaps"]:
            fmt, iv = get_metric(gap["metric"]).format, gap["interval"]
            where = f" [{fmt(iv[0])}, {fmt(iv[1])}]" if iv is not None else ""
            click.echo(f"  gap {gap['title']}: best {gap['high']}, worst {gap['low']}: {fmt(gap['value'])}{where}")
    click.echo(f"groups: {written[0]}")


COMMANDS = (groups_cmd,)
