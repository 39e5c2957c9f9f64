"""Bundle an ablation row as the default tinyfq: its ONNX file, byte for byte, as methods/weights/tinyfq.onnx and
its card as tinyfq.json (the same card, naming the file it was trained as). The card's commands are those that made
the weights (`fiqa-bench label` ... then `fiqa-bench train ... --out reports/tinyfq/ablation/ROW.onnx`).

    python reports/tinyfq/bundle.py m4-flip
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path


def main() -> None:
    from fiqa_bench.download import file_sha256

    row = sys.argv[1]
    src = Path("reports/tinyfq/ablation") / f"{row}.onnx"
    dst = Path("methods/weights/tinyfq.onnx")
    card = json.loads(src.with_suffix(".json").read_text())
    shutil.copyfile(src, dst)
    card.update({"onnx": dst.name, "onnx_sha256": file_sha256(dst), "onnx_bytes": dst.stat().st_size,
                 "trained_as": str(src), "ablation_row": row})
    dst.with_suffix(".json").write_text(json.dumps(card, indent=1) + "\n")
    print(f"{src} -> {dst} ({card['onnx_bytes']:,} bytes)")


if __name__ == "__main__":
    main()
