"""The per-group numbers file (``<results stem>__<grouping>.groups.json``) that ``fiqa-bench groups`` writes and the
leaderboard reads.

A groups file sits beside results files and may come from anyone, like a results file: it is validated field by
field where it is loaded (:func:`read_groups`), each metric value by its own declaration
(:meth:`fiqa_bench.metrics.base.Metric.check`), and a bad one is an error naming the file and the field. Results
readers (:mod:`fiqa_bench.results.store`) leave these files out by their name (:data:`GROUPS_SUFFIX`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fiqa_bench.errors import BadResultsFile
from fiqa_bench.results.fields import ANY, DEFERRED, Flag, Interval, List, Map, Num, Obj, Text, field_path
from fiqa_bench.results.record import read_results_json

__all__ = ["GROUPS_FORMAT", "GROUPS_SUFFIX", "GROUPS_VERSION", "read_groups", "validate_groups"]

GROUPS_SUFFIX = ".groups.json"
GROUPS_FORMAT = "fiqa-bench-groups"
GROUPS_VERSION = 1

_COUNT = Num(0, integer=True)

_GROUP = Obj(
    {
        "name": Text(nonempty=True),
        "images": _COUNT,
        "templates": _COUNT,
        "pairs": _COUNT,
        "genuine": _COUNT,
        "impostor": _COUNT,
        "subjects": _COUNT,
        "metrics": Map(DEFERRED),  # each value checked by its metric's declaration, below
    },
    required=("name", "images", "templates", "pairs", "genuine", "impostor", "subjects", "metrics"),
)

_GAP = Obj(
    {
        "metric": Text(nonempty=True),
        "short": Text(nonempty=True),
        "title": Text(nonempty=True),
        "high": Text(nonempty=True),
        "low": Text(nonempty=True),
        "value": Num(),
        "interval": Interval(Num(), null=True),
        "significant": Flag(null=True),
        "valid_replicates": _COUNT,
    },
    required=("metric", "short", "high", "low", "value", "interval"),
)

_GROUPING = Obj(
    {
        "name": Text(nonempty=True),
        "source": Text(nonempty=True),
        "baseline": Text(null=True),
        "counts": Map(_COUNT),
        "groups": List(_GROUP),
        "gaps": List(_GAP),
    },
    required=("name", "source", "counts", "groups", "gaps"),
)

_SPEC = Obj(
    {
        "format": Text(nonempty=True),
        "version": Num(integer=True),
        "results": Obj({"file": Text(nonempty=True), "sha256": Text(nonempty=True)}, required=("file", "sha256")),
        "method": Text(nonempty=True),
        "by": Text(nonempty=True),
        "membership": Text(),
        "bootstrap": ANY,
        "groupings": List(_GROUPING),
    },
    required=("format", "version", "results", "method", "by", "groupings"),
)


def validate_groups(obj: Any) -> list[str]:
    """Every problem of a parsed groups file, one line each naming the field ([] when every reader can use it)."""
    from fiqa_bench.metrics.base import get_metric

    if not isinstance(obj, dict):
        return ["the file must hold a JSON object"]
    if obj.get("format") != GROUPS_FORMAT:
        return [f"format must be {GROUPS_FORMAT!r}, not {obj.get('format')!r}"]
    if obj.get("version") != GROUPS_VERSION:
        return [f"version {obj.get('version')!r} is not one this fiqa-bench reads ({GROUPS_VERSION})"]
    out: list[str] = []
    _SPEC.check(obj, "", out)
    if out:
        return out
    for i, grouping in enumerate(obj["groupings"]):
        for j, group in enumerate(grouping["groups"]):
            for key, value in group["metrics"].items():
                path = field_path(field_path(field_path(f"groupings[{i}]", "groups") + f"[{j}]", "metrics"), key)
                try:
                    metric = get_metric(key)
                except KeyError:
                    out.append(f"{path}: no registered metric {key!r}")
                    continue
                out.extend(metric.check(value, path))
    return out


def read_groups(path: str | Path) -> dict:
    """A groups file, parsed and validated; :class:`~fiqa_bench.errors.BadResultsFile` names the file and the first
    bad field."""
    obj = read_results_json(path)  # the one JSON reader of untrusted files (not JSON: BadResultsFile)
    try:
        problems = validate_groups(obj)
    except RecursionError:
        raise BadResultsFile(path, "nested too deeply to be a groups file") from None
    if problems:
        raise BadResultsFile(path, problems[0])
    return obj
