"""Which orderings of the methods in a results folder are significant: every pair of methods, not only vs random/best.

`fiqa-bench compare` gives each method's paired difference to random and to the best. The README of this folder
also needs the orderings in between (is rqs above tinyfq, or a tie?), so this prints, per comparable group and
headline column, a method x method table of paired 95% bootstrap differences (row minus column, the same resamples
of subjects for both: `boot_<metric>` in each `.npz`), '*' where the interval excludes zero, and the ranking cut
into tiers: a method starts a new tier when it is significantly behind every method of the tier above.
Built on fiqa_bench.results.compare (grouping, replicates) and fiqa_bench.pipeline.uncertainty.percentile_interval.

    python reports/celeba-eval/orderings.py reports/celeba-eval/ijb [--columns "TPR@FPR=1e-3"] > orderings.md
"""

from __future__ import annotations

import argparse

from fiqa_bench.metrics.base import get_metric
from fiqa_bench.pipeline.uncertainty import percentile_interval
from fiqa_bench.results.compare import compare, load_runs


def _boot(run, metric_key: str, metric, short: str):
    boot = run.raw.get(f"boot_{metric_key}")
    value = run.record.metrics.get(metric_key) or {}
    shorts = [s for s, _ in metric.columns(value)] if "unavailable" not in value else []
    return None if boot is None or short not in shorts else boot[:, shorts.index(short)]


def tiers(order: list[str], significant) -> list[list[str]]:
    """Cut a ranking (best first) into tiers: a method opens a new tier when it is significantly worse than every
    member of the current tier; otherwise it ties with at least one of them and joins it."""
    out: list[list[str]] = []
    for m in order:
        if out and not all(significant(t, m) for t in out[-1]):
            out[-1].append(m)
        else:
            out.append([m])
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+")
    ap.add_argument(
        "--columns",
        default="TPR@FPR=1e-3,TPR@FPR=1e-4,FNM-EDC pAUC@0.20,ERC pAUC@0.20",
        help="comma-separated column titles as compare prints them (a YTF-layout folder adds its "
        "accuracy column whatever this says)",
    )
    args = ap.parse_args(argv)
    wanted = args.columns.split(",")
    for g in compare(load_runs(args.folders)):
        if len(g.runs) < 3:
            continue
        worth = 100.0 / g.genuine if g.genuine else float("nan")
        print(f"## {g.protocol} | {g.backbone} | {g.selection}\n")
        print(
            f"{g.genuine} genuine / {g.impostor} impostor pairs (one genuine pair = {worth:.2f} TPR points); "
            f"paired {100 * g.level:.0f}% percentile bootstrap over subjects, B = {g.B}.\n"
        )
        for col in g.columns:
            if col.title not in wanted and col.metric != "accuracy":
                continue
            metric = get_metric(col.metric)
            labels = [r.label for r in g.runs]
            reps = {r.label: _boot(r, col.metric, metric, col.short) for r in g.runs}
            vals = {k: v for k, v in col.values.items() if v is not None}
            order = sorted(vals, key=lambda k: vals[k], reverse=col.higher_is_better)
            if len(order) < 2:
                continue

            # B023: diff and significant are used only within this iteration (tiers() and the table below)
            def diff(a: str, b: str):
                if reps.get(a) is None or reps.get(b) is None:  # noqa: B023
                    return None
                return percentile_interval(reps[a] - reps[b], g.level)  # noqa: B023

            def significant(better: str, worse: str) -> bool:
                iv = diff(better, worse)
                return iv is not None and (iv[0] > 0 or iv[1] < 0)

            cut = tiers(order, significant)
            print(f"### {col.title} ({'higher' if col.higher_is_better else 'lower'} is better)\n")
            print(
                "Tiers (best first; within a tier no method is significantly ahead of all the others): "
                + " > ".join("{" + ", ".join(f"{m} {metric.format(vals[m])}" for m in t) + "}" for t in cut)
                + "\n"
            )
            print("| row - column | " + " | ".join(order) + " |")
            print("|---|" + "---|" * len(order))
            for a in order:
                cells = []
                for b in order:
                    if a == b:
                        cells.append("")
                        continue
                    iv = diff(a, b)
                    d = vals[a] - vals[b]
                    star = " *" if iv is not None and (iv[0] > 0 or iv[1] < 0) else ""
                    ivs = "" if iv is None else f" [{metric.format(iv[0])}, {metric.format(iv[1])}]"
                    cells.append(f"{'+' if d >= 0 else ''}{metric.format(d)}{ivs}{star}")
                print(f"| **{a}** | " + " | ".join(cells) + " |")
            print()
        _ = labels  # every run is a row; runs without a value for a column are left out of its table
    print("`*`: the paired interval of the difference excludes zero (significant at the stated level).")


if __name__ == "__main__":
    main()
