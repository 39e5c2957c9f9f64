"""reports/celeba-eval/orderings.py: the tier rule on a hand-made relation, and its paired differences equal
`fiqa-bench compare`'s on the committed results (same replicates, same percentile interval)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "reports" / "celeba-eval" / "orderings.py"


def _load():
    spec = importlib.util.spec_from_file_location("orderings", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_tiers_open_only_when_behind_every_member():
    tiers = _load().tiers
    behind = {("a", "c"), ("b", "c"), ("a", "d"), ("b", "d"), ("c", "d")}  # (better, worse) pairs that are significant
    assert tiers(list("abcd"), lambda x, y: (x, y) in behind) == [["a", "b"], ["c"], ["d"]]
    # d ties with c (not significantly behind it): d joins c's tier even though a and b are ahead of it
    behind.discard(("c", "d"))
    assert tiers(list("abcd"), lambda x, y: (x, y) in behind) == [["a", "b"], ["c", "d"]]
    assert tiers(list("abc"), lambda x, y: False) == [["a", "b", "c"]]
    # c is behind a but ties with b, a member of the current tier: no new tier
    assert tiers(list("abc"), lambda x, y: (x, y) == ("a", "c")) == [["a", "b", "c"]]


def test_differences_match_compare_on_committed_results(capsys):
    folder = ROOT / "reports" / "celeba-eval" / "ijb"
    if not any(folder.glob("*.npz")):
        pytest.skip("no committed results in reports/celeba-eval/ijb")
    from fiqa_bench.results.compare import compare, load_runs

    _load().main([str(folder), "--columns", "TPR@FPR=1e-3"])
    text = capsys.readouterr().out
    checked = 0
    for g in compare(load_runs([folder])):
        if g.selection != "top1":
            continue
        block = text.split(f"## {g.protocol} | {g.backbone} | {g.selection}")[1].split("\n## ")[0]
        col = next(c for c in g.columns if c.title == "TPR@FPR=1e-3")
        for label, d in col.vs_random.items():
            row = next(line for line in block.splitlines() if line.startswith(f"| **{label}** |"))
            header = next(line for line in block.splitlines() if line.startswith("| row - column |"))
            cells = [c.strip() for c in row.split("|")[2:-1]]
            names = [c.strip() for c in header.split("|")[2:-1]]
            cell = cells[names.index("random")]
            value, lo, hi = map(float, re.match(r"([+-][\d.]+) \[([-\d.]+), ([-\d.]+)\]", cell).groups())
            assert value == pytest.approx(100 * d.value, abs=0.006)
            assert (lo, hi) == pytest.approx([100 * x for x in d.interval], abs=0.006)
            assert cell.endswith("*") == d.significant
            checked += 1
    assert checked >= 8
