"""Bundle an ablation row as the default tinyfq: its ONNX file, byte for byte, as methods/weights/tinyfq.onnx and
its card as tinyfq.json (the same card, naming the file it was trained as). The card's commands are those that made
the weights (`fiqa-bench label` ... then `fiqa-bench train ... --out reports/tinyfq/ablation/ROW.onnx`).
``--keep-previous NAME`` first keeps the bundled model it replaces as methods/weights/NAME.onnx (+ NAME.json, its
card naming the new file), so that ``--method-option weights=NAME.onnx`` still gives its scores.

    python reports/tinyfq/bundle.py m4-flip-adam-pnj1-os3-e24 --keep-previous tinyfq-m4-flip
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

WEIGHTS = Path("methods/weights")


def main() -> None:
    from fiqa_bench.data.download import file_sha256

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("row")
    ap.add_argument("--keep-previous", metavar="NAME", help="keep the model replaced as NAME.onnx / NAME.json")
    a = ap.parse_args()
    dst = WEIGHTS / "tinyfq.onnx"
    if a.keep_previous:
        old = WEIGHTS / f"{a.keep_previous}.onnx"
        if old.exists():
            raise SystemExit(f"{old} exists already")
        card = json.loads(dst.with_suffix(".json").read_text())
        shutil.copyfile(dst, old)
        card.update(
            {
                "onnx": old.name,
                "onnx_sha256": file_sha256(old),
                "onnx_bytes": old.stat().st_size,
                "note": f"bundled as tinyfq.onnx until row {a.row} replaced it",
            }
        )
        old.with_suffix(".json").write_text(json.dumps(card, indent=1) + "\n")
        print(f"{dst} -> {old}")
    src = Path("reports/tinyfq/ablation") / f"{a.row}.onnx"
    card = json.loads(src.with_suffix(".json").read_text())
    shutil.copyfile(src, dst)
    card.update(
        {
            "onnx": dst.name,
            "onnx_sha256": file_sha256(dst),
            "onnx_bytes": dst.stat().st_size,
            "trained_as": str(src),
            "ablation_row": a.row,
        }
    )
    dst.with_suffix(".json").write_text(json.dumps(card, indent=1) + "\n")
    print(f"{src} -> {dst} ({card['onnx_bytes']:,} bytes)")


if __name__ == "__main__":
    main()
