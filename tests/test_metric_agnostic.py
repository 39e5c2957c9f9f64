"""No module outside the metrics and the protocols names a metric key or a protocol kind.

The writers (report, leaderboard, compare), the CLI, the results store, the bootstrap and everything else loop over
the declarations (:class:`fiqa_bench.metrics.base.Metric`, ``ProtocolCard.metrics``), so a metric or a protocol kind
from another package needs no edit in them. Checked by a scan of the package's source for the registered metric keys
and the registered protocols' kinds (``card.metric``) as quoted string literals: the list comes from the registry,
so a metric added later is covered as soon as it is registered.
"""

from __future__ import annotations

import re
from pathlib import Path

from fiqa_bench import registry

ROOT = Path(__file__).resolve().parents[1]
#: Where the names may appear: the declared metrics and the protocol plugins that report them.
ALLOWED = (ROOT / "fiqa_bench" / "metrics", ROOT / "protocols")
#: The package's source: its modules, the quality-method plugins installed into it, and the writers' assets.
SCANNED = (ROOT / "fiqa_bench", ROOT / "methods")
SUFFIXES = (".py", ".js", ".j2", ".html", ".css")


def registered_names() -> set[str]:
    """Every registered metric key and every registered protocol's kind."""
    keys = set(registry.names("metric"))
    kinds = {registry.load_class("protocol", name).card.metric for name in registry.names("protocol")}
    return keys | kinds


def literals(text: str, names: set[str]) -> list[tuple[int, str]]:
    """(line, name) of each name written as a quoted string literal (``"key"`` or ``'key'``) in ``text``."""
    pattern = re.compile(r"""(["'])(""" + "|".join(map(re.escape, sorted(names))) + r""")\1""")
    return [(text.count("\n", 0, m.start()) + 1, m.group(2)) for m in pattern.finditer(text)]


def source_files() -> list[Path]:
    return sorted(
        p
        for folder in SCANNED
        for p in folder.rglob("*")
        if p.suffix in SUFFIXES and p.is_file() and not any(a in p.parents for a in ALLOWED)
    )


def test_the_scan_finds_a_quoted_name_in_any_quoting():
    names = {"some_metric", "some-kind"}
    text = 'x = 1\nif key == "some_metric":\n    pass\nhas(\'some-kind\')\nno_quotes = some_metric\n"some_metric_2"\n'
    assert literals(text, names) == [(2, "some_metric"), (4, "some-kind")]


def test_the_names_come_from_the_registry():
    names = registered_names()
    assert set(registry.names("metric")) <= names and len(names) > len(registry.names("metric"))
    assert len(source_files()) > 50 and ROOT / "fiqa_bench" / "writers" / "report.py" in source_files()
    assert not any(ROOT / "fiqa_bench" / "metrics" in p.parents for p in source_files())


def test_no_module_outside_the_metrics_and_protocols_names_a_metric_key_or_protocol_kind():
    names = registered_names()
    found = [
        f"{p.relative_to(ROOT)}:{line}: {name!r}"
        for p in source_files()
        for line, name in literals(p.read_text(encoding="utf-8"), names)
    ]
    assert not found, (
        "a metric key or protocol kind named outside fiqa_bench/metrics/ and protocols/ (declare what "
        "the writer needs on the metric or the protocol's card instead):\n" + "\n".join(found)
    )


def test_the_run_summary_marks_a_tpr_below_one_over_impostors_as_before():
    """The CLI's line of TPR@FPR (now the metric's own ``summary``): a value read below 1/impostors is starred."""
    from fiqa_bench.cli.main import _summary

    counts = {
        "images": 4,
        "templates": 4,
        "pairs_scored": 3,
        "genuine": 1,
        "impostor": 2,
        "images_scored": 4,
        "images_embedded": 4,
        "images_embedded_new": 0,
        "skipped": 0,
    }
    record = {
        "protocol": {"name": "p"},
        "backbone": {"name": "b"},
        "method": {"name": "blur", "options": {}},
        "config": {"selection": "top1"},
        "counts": counts,
        "metrics": {
            "tpr_at_fpr": {
                "values": {"1e-1": 0.5, "1e-2": 0.25},
                "reading": "nearest",
                "detail": {"1e-1": {"measurable": True}, "1e-2": {"measurable": False}},
            }
        },
    }
    assert _summary(record).splitlines()[1] == (
        "  TPR@FPR: 1e-1=50.00%  1e-2=25.00%*  (*: below 1/impostors: insightface's reading, not a measurement)"
    )
