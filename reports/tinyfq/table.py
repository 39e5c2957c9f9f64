"""reports/tinyfq/ablation.md: one row per trained tinyFQnet of the ablation, from the files make.sh wrote.

Columns: the recipe (labels, copies, identities, sampling, flips, schedule), training rows, validation Spearman on
the held-out train-part identities (all rows / undegraded rows, computed here from the labelled set and the card's
validation identities), then the eval part: Spearman with MobileFaceNet's Eq. 1 on the labelled eval set (all /
undegraded) and ladder-pair order (train-baseline evaluate), the share of photos whose JPEG-10 and noise-20 copies
score lower (penalties.py), and on the IJB-layout benchmark, per backbone, TPR@FPR=1e-3 and ERC pAUC@0.20 with the
paired 95% bootstrap interval of the difference to random and to the best method of reports/celeba-eval/ijb
(`fiqa-bench compare`; * = interval excluding zero). Each row is compared with the committed methods and itself
only (one `compare` per row), so the best method is never another ablation row.

    python reports/tinyfq/table.py --rows "v1 m1 m4 ..." --out reports/tinyfq/ablation.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np

A = Path("reports/tinyfq/ablation")
W = Path(".work/tinyfq")
SETS = {"m1": "c1", "m4-half": "c4-half"}
COLUMNS = ("TPR@FPR=1e-3", "ERC pAUC@0.20")
NET_NAMES = {
    "mbv2-t4-w0.5-64": "width 0.5 (22k params)",
    "mbv2-t4-w0.7-64": "width 0.7 (35k params)",
    "tinyfqnet-112": "112x112 crops",
}


def weights_of(row: str) -> Path:
    return Path("methods/weights/tinyfq-v1.onnx") if row == "v1" else A / f"{row}.onnx"


def card_of(row: str) -> dict:
    return json.loads(weights_of(row).with_suffix(".json").read_text())


def validation(row: str, card: dict) -> tuple[float | None, float | None]:
    """Spearman (all, undegraded) of the model on its card's validation identities, labels of its set."""
    from scipy import stats

    from fiqa_bench.methods.tinyfq import TinyFQ
    from fiqa_bench.training.dataset import TrainingSet

    folder = W / SETS.get(row, "c4-112" if row.endswith("-112") else "c4")
    if row == "v1" or not (folder / "meta.json").is_file():
        return card["validation"].get("spearman"), None  # v1's dlib-labelled set is not kept: the card's value
    ts = TrainingSet.load(folder)
    rows = np.flatnonzero(np.isin(ts.identities, card["val_identities"]) & np.isfinite(ts.labels))
    scores = TinyFQ(weights=weights_of(row)).score(np.asarray(ts.images[rows]))
    clean = np.array([ts.degradations[i] is None for i in rows])
    labels = ts.labels[rows]
    return (float(stats.spearmanr(scores, labels)[0]), float(stats.spearmanr(scores[clean], labels[clean])[0]))


def recipe(row: str, card: dict) -> str:
    cfg = card["config"]
    if row == "v1":
        return "dlib labels, 1 copy, all ids, smooth, L1 loss, batch 32, 17 epochs (the model bundled before)"
    sub = {"m1": "1 copy, all ids", "m4-half": "4 copies, half the ids"}.get(row, "4 copies, all ids")
    net = {"tinyfqnet": ""}.get(cfg["net"], f", {NET_NAMES.get(cfg['net'], cfg['net'])}")
    extra = f", Adam {cfg['lr']:g}" if cfg.get("optimizer") == "adam" else ""
    if cfg.get("pair_weight"):
        kinds = "/".join(cfg["pair_kinds"]) if cfg.get("pair_kinds") else ""
        form = "one-sided (hinge) pair term" if cfg.get("pair_loss") == "hinge" else "pair term"
        extra += f", {form} x{cfg['pair_weight']:g}" + (f" ({kinds} only)" if kinds else "")
    if cfg.get("oversample"):
        extra += ", oversampled " + " ".join(f"{k} x{v}" for k, v in cfg["oversample"].items())
    return (
        f"MobileFaceNet labels, {sub}, {cfg['sampling'] or 'no sampling'}{', flips' if cfg['hflip'] else ''}, "
        f"{cfg['loss'].upper()} loss{extra}, batch {cfg['batch_size']}, {cfg['epochs']} epochs{net}"
    )


def ijb_cells(groups: list, row: str) -> dict:
    """{(backbone, column): cell text} of the variant with this row's weights."""
    name = weights_of(row).name
    cells = {}
    for g in groups:
        if g["selection"] != "top1":
            continue
        for col in g["columns"]:
            if col["column"] not in COLUMNS:
                continue
            label = next((m for m in col["values"] if m.startswith("tinyfq") and name in m), None)
            if label is None:
                continue
            scale = 100 if col["metric"] == "tpr_at_fpr" else 1
            fmt = "{:.2f}" if scale == 100 else "{:.4f}"

            # B023: diff is called only within this iteration (the cell text below)
            def diff(d):
                if not d:
                    return "-"
                lo, hi = d["interval"]
                return (
                    fmt.replace("{:", "{:+").format(scale * d["difference"])  # noqa: B023
                    + f" [{fmt.format(scale * lo)}, {fmt.format(scale * hi)}]"  # noqa: B023
                    + (" *" if d["significant"] else "")
                )

            vs_best = col["vs_best"].get(label) if label != col["best"] else None
            text = (
                fmt.format(scale * col["values"][label])
                + "; vs random "
                + diff(col["vs_random"].get(label))
                + "; vs best ("
                + col["best"]
                + ") "
                + ("is best" if label == col["best"] else diff(vs_best))
            )
            cells[(g["backbone"], col["column"])] = text
    return cells


def committed_methods() -> list[str]:
    """The results files of reports/celeba-eval/ijb but its default tinyfq's: the bundled model is itself an
    ablation row, so a row is compared with the other methods, never with another row."""
    out = []
    for f in sorted(Path("reports/celeba-eval/ijb").glob("*.json")):
        record = json.loads(f.read_text())
        if record.get("method", {}).get("name") == "tinyfq" and not record.get("config", {}).get("method_options"):
            continue
        out.append(str(f))
    return out


def row_comparison(row: str) -> list:
    """`fiqa-bench compare --json` of the committed methods (:func:`committed_methods`) and this row's runs."""
    weights = str(weights_of(row))
    runs = [
        str(f)
        for f in sorted(Path("reports/tinyfq").glob("ijb*/*.json"))  # ijb/ and ijb-reprepared/
        if json.loads(f.read_text()).get("config", {}).get("method_options", {}).get("weights") == weights
    ]
    if not runs:
        return []
    out = subprocess.run(
        ["fiqa-bench", "compare", "--json", *committed_methods(), *runs], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--title", default="tinyFQnet ablation (issue 15)")
    a = ap.parse_args()
    rows = a.rows.split()
    lines = [
        f"# {a.title}",
        "",
        "Generated by `reports/tinyfq/table.py` (see README.md in this folder for the commands). Eval part = "
        "identities never trained on (fiqa_bench.data.splits).",
        "",
        "| row | recipe | train rows | val Spearman all / clean | eval Spearman all / clean | ladder pairs "
        "| JPEG-10 / noise-20 penalised |",
        "|---|---|---|---|---|---|---|",
    ]
    ijb = []
    for row in rows:
        card = card_of(row)
        va, vc = validation(row, card)
        ev = json.loads((A / f"eval-{row}.json").read_text())["results"]["tinyfq"]
        pen = next(iter(json.loads((A / f"penalties-{row}.json").read_text())["weights"].values()))

        def f(v):
            return "-" if v is None else f"{v:.3f}"

        lines.append(
            f"| {row} | {recipe(row, card)} | {card['config']['train_rows']:,} | {f(va)} / {f(vc)} | "
            f"{ev['spearman_eq1_all']:.3f} / {ev['spearman_eq1_clean']:.3f} | {ev['ladder']['pairs']:.3f} | "
            f"{pen['jpeg-10']['penalised']:.1%} / {pen['noise-20']['penalised']:.1%} |"
        )
        ijb.append((row, ijb_cells(row_comparison(row), row)))
    backbones = sorted({b for _, c in ijb for b, _ in c})
    for b in backbones:
        lines += [
            "",
            f"IJB layout (celeba-lfw-eval), {b}, top-1 selection: value; difference to random and to the "
            "best method [paired 95% bootstrap interval], * = excludes zero",
            "",
            "| row | " + " | ".join(COLUMNS) + " |",
            "|---|" + "---|" * len(COLUMNS),
        ]
        for row, cells in ijb:
            if any(k[0] == b for k in cells):
                lines.append(f"| {row} | " + " | ".join(cells.get((b, c), "-") for c in COLUMNS) + " |")
    Path(a.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
