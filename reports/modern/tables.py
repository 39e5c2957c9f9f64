"""The summary tables of reports/modern/README.md, generated from the committed results (no number typed by hand).

python reports/modern/tables.py > reports/modern/tables.md
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ("random", "blur", "svm", "rqs", "faceqnet", "tinyfq", "norm", "serfiq", "grafiqs", "faceqan")


def _f(x, digits=3):
    return "—" if x is None else f"{x:.{digits}f}"


def _rank(name: str) -> int:
    return ORDER.index(name) if name in ORDER else len(ORDER)


def spearman() -> list[str]:
    out = []
    cli = HERE / "spearman-eval-cli.json"
    torch = HERE / "spearman-eval.json"
    rows = {}
    if cli.is_file():
        for name, r in json.loads(cli.read_text()).get("results", {}).items():
            if isinstance(r, dict) and "spearman_eq1_all" in r:
                rows[(name, "onnx (train-baseline evaluate)")] = (
                    r["spearman_eq1_all"],
                    r["spearman_eq1_clean"],
                    r["ladder"]["pairs"],
                )
    for path in (torch, HERE / "spearman-eval-grafiqs.json"):
        if not path.is_file():
            continue
        for name, r in json.loads(path.read_text())["methods"].items():
            rows[(name, "torch-mobilefacenet (spearman_eval.py)")] = (
                r["spearman_eq1_all"],
                r["spearman_eq1_clean"],
                r["ladder_pairs"],
            )
    if rows:
        out += [
            "### Spearman with Eq. 1 on the eval set (4,072 rows: 1,019 photos x 4 ladder levels, 111 identities)",
            "",
            "| method | backbone (how scored) | Spearman (all) | Spearman (clean) | ladder pairs |",
            "|---|---|---:|---:|---:|",
        ]
        for (name, how), (a, c, l) in sorted(rows.items(), key=lambda kv: (_rank(kv[0][0]), kv[0][1])):
            out.append(f"| `{name}` | {how} | {_f(a)} | {_f(c)} | {_f(l)} |")
        skipped = json.loads(cli.read_text()).get("skipped", {}) if cli.is_file() else {}
        for name, why in skipped.items():
            out.append(f"| `{name}` | onnx (train-baseline evaluate) | skipped: {why.split(' (')[0]} | | |")
        out.append("")
    for sub in sorted(HERE.glob("spearman-eval-*photos.json")):
        d = json.loads(sub.read_text())
        out += [
            f"### The same on a subset: {d['photos']} photos ({d['rows']} rows, {d['identities']} identities), "
            f"every method on the same rows",
            "",
            "| method | Spearman (all) | Spearman (clean) | ladder pairs | ms/row (this run) |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, r in sorted(d["methods"].items(), key=lambda kv: _rank(kv[0])):
            out.append(
                f"| `{name}` | {_f(r['spearman_eq1_all'])} | {_f(r['spearman_eq1_clean'])} | "
                f"{_f(r['ladder_pairs'])} | {r['ms_per_row']} |"
            )
        out.append("")
    return out


def _results(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


def _pauc(r, key, at="0.20"):
    m = r["metrics"].get(key) or {}
    return (m.get("pauc") or {}).get(at)


def lfw() -> list[str]:
    res = _results(HERE / "lfw")
    if not res:
        return []
    out = [
        "### LFW View 2 (7,701 images, 6,000 pairs, 10 folds): accuracy and EDC pAUC (lower is better)",
        "",
        "| method | FR model | accuracy (%) | FNM-EDC pAUC@0.20 | FNM-EDC pAUC@0.30 | FM-EDC pAUC@0.20 | "
        "ERC pAUC@0.20 |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(res, key=lambda r: (_rank(r["method"]["name"]), r["backbone"]["name"])):
        acc = r["metrics"]["accuracy"]["mean"] * 100
        out.append(
            f"| `{r['method']['name']}` | {r['backbone']['name']} | {acc:.2f} | "
            f"{_f(_pauc(r, 'edc_fnm'), 4)} | {_f(_pauc(r, 'edc_fnm', '0.30'), 4)} | "
            f"{_f(_pauc(r, 'edc_fm'), 6)} | {_f(_pauc(r, 'edc_fnm_rethreshold'), 4)} |"
        )
    return out + [""]


def ijb() -> list[str]:
    res = _results(HERE / "ijb")
    if not res:
        return []
    out = [
        "### IJB layout, eval-part identities (celeba-eval: 2,251 images, 711 degraded, 212 templates; 106 "
        "genuine / 22,260 impostor template pairs): TPR@FPR (%) with top-1 selection, and EDC pAUC",
        "",
        "| method | FR model | selection | TPR@1e-1 | TPR@1e-2 | TPR@1e-3 | TPR@1e-4 | FNM-EDC pAUC@0.20 | "
        "ERC pAUC@0.20 |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(res, key=lambda r: (_rank(r["method"]["name"]), r["backbone"]["name"])):
        t = r["metrics"].get("tpr_at_fpr") or {}
        t = t.get("values", t)  # schema 2: {"values": {...}, "detail": {...}}

        # B023: pct is called only within this iteration (the row appended below)
        def pct(k):
            v = t.get(k)  # noqa: B023
            return "—" if v is None else f"{100 * v:.2f}"

        out.append(
            f"| `{r['method']['name']}` | {r['backbone']['name']} | {r['config']['selection']} | "
            f"{pct('1e-1')} | {pct('1e-2')} | {pct('1e-3')} | {pct('1e-4')} | {_f(_pauc(r, 'edc_fnm'), 4)} | "
            f"{_f(_pauc(r, 'edc_fnm_rethreshold'), 4)} |"
        )
    return out + [""]


def blocks() -> list[str]:
    p = HERE / "grafiqs-blocks-train.json"
    if not p.is_file():
        return []
    d = json.loads(p.read_text())
    out = [
        f"### GraFIQs block choice, train-part identities ({d['rows']} rows of {d['photos']} photos)",
        "",
        "| block | Spearman (all) | Spearman (clean) | ladder pairs | mean sum abs(grad), clean | degraded |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in d["blocks"].items():
        mark = " (chosen)" if name == d["best_by_spearman_all"] else ""
        out.append(
            f"| `{name}`{mark} | {_f(r['spearman_eq1_all'])} | {_f(r['spearman_eq1_clean'])} | "
            f"{_f(r['ladder_pairs'])} | {r['mean_abs_grad_sum_clean']:.1f} | "
            f"{r['mean_abs_grad_sum_degraded']:.1f} |"
        )
    if d.get("note"):
        out += ["", f"Note: {d['note']}."]
    return out + [""]


def costs() -> list[str]:
    p = HERE / "costs" / "costs.md"
    return p.read_text().splitlines()[2:] + [""] if p.is_file() else []


if __name__ == "__main__":
    print(
        "\n".join(
            [
                "<!-- generated by reports/modern/tables.py from the results in this folder -->",
                "",
                *spearman(),
                *lfw(),
                *ijb(),
                *blocks(),
                *costs(),
            ]
        )
    )
