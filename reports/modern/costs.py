"""Costs of the training-free methods in the Table 2 layout: ms per image on real faces, on torch-mobilefacenet.

Faces: the first ``--n`` LFW images (decoded, YuNet landmarks, 112x112 aligned beforehand, as in
``benchmarks/bench_costs.py``); each method scores the crops (``score_crops``), one image per call ("single") and
``--batch`` per call ("batch"), median of ``--repeats`` runs. Multiply-adds are counted from the architecture
(conv and linear layers of MobileFaceNet; a backward pass to the input is counted as one more forward, the
activation-gradient work; frozen weights get no weight gradients). Writes JSON and a Markdown table::

    python reports/modern/costs.py --out reports/modern/costs   # --n 32 --repeats 3 --methods norm,serfiq,...
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path


def conv_macs(model, size: int = 112) -> dict[str, int]:
    """Multiply-adds per image of each Conv2d of ``model`` at ``size`` x ``size`` (forward hooks)."""
    import torch

    macs: dict[str, int] = {}

    def hook(name):
        def fn(module, args, out):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            macs[name] = int(out.shape[1] * out.shape[2] * out.shape[3] * k)

        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size))
    finally:
        for h in handles:
            h.remove()
    return macs


def main() -> None:
    import torch

    from fiqa_bench.backbones.torch_mobilefacenet import TorchMobileFaceNet
    from fiqa_bench.registry import create

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--methods", default="norm,serfiq,grafiqs,faceqan")
    ap.add_argument("--faceqan-n", type=int, default=8, help="faceqan is ~100x slower: fewer images")
    args = ap.parse_args()

    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
    from _real_faces import lfw_faces, rgb_crops  # the tests' LFW faces helper

    shared = Path(os.environ.get("FIQA_SHARED", "../shared"))
    names = sorted(
        p.relative_to(shared / "data/lfw/lfw").as_posix() for p in (shared / "data/lfw/lfw").glob("*/*.jpg")
    )[: args.n]
    crops = rgb_crops(lfw_faces(shared, names))
    backbone = TorchMobileFaceNet()
    model = backbone.torch_model()
    macs = conv_macs(model)
    total = sum(macs.values())
    head = macs["conv3"]
    params = sum(p.numel() for p in model.parameters())
    load = os.getloadavg()
    rows, notes = [], []
    cost_macs = {
        "norm": (total, "one forward pass (the FR embedding itself: free when the run embeds every image anyway)"),
        "serfiq": (total + 99 * head, "trunk once + the 512->128 head 100 times (dropout on its input)"),
        "grafiqs": (
            2 * total,
            "forward + backward of the activation gradients to the block (at most one more "
            "forward's worth; no weight gradients)",
        ),
        "faceqan": (
            (2 + 4 * 10 * 2 + 10) * total,
            "forward of the face and its mirror + 5 iterations x 10 "
            "copies: forward + backward to the pixels, but forward only at "
            "the last iterate (measured, never moved)",
        ),
    }
    for name in [m.strip() for m in args.methods.split(",") if m.strip()]:
        method = create("method", name, backbone=backbone)
        n = args.faceqan_n if name == "faceqan" else len(crops)
        x = crops[:n]
        method.score_crops(x[:2])  # warm-up
        single, batch, cpu_single, cpu_batch = [], [], [], []
        for _ in range(args.repeats):
            t, c = time.perf_counter(), time.process_time()
            for i in range(n):
                method.score_crops(x[i : i + 1])
            single.append(1000 * (time.perf_counter() - t) / n)
            cpu_single.append(1000 * (time.process_time() - c) / n)
            t, c = time.perf_counter(), time.process_time()
            for i in range(0, n, args.batch):
                method.score_crops(x[i : i + args.batch])
            batch.append(1000 * (time.perf_counter() - t) / n)
            cpu_batch.append(1000 * (time.process_time() - c) / n)
        m, why = cost_macs[name]
        rows.append(
            {
                "method": name,
                "need_aligning": "yes (the FR model's 112x112 crop)",
                "parameters": params,
                "parameters_note": "the FR model's own (MobileFaceNet); no learned weights",
                "multiply_adds_M": round(m / 1e6, 1),
                "ms_single": round(statistics.median(single), 2),
                "ms_batch": round(statistics.median(batch), 2),
                # CPU time of this process: less sensitive to the other jobs on a shared machine than wall time
                "cpu_ms_single": round(statistics.median(cpu_single), 2),
                "cpu_ms_batch": round(statistics.median(cpu_batch), 2),
                "images": n,
            }
        )
        notes.append(f"{name}: {why}")
        print(rows[-1], flush=True)
    info = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": [round(v, 2) for v in load],
        "date": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "faces": f"first {len(crops)} LFW images (sorted paths), yunet, aligned beforehand",
        "repeats": args.repeats,
        "batch": args.batch,
        "backbone": backbone.identity(),
        "forward_multiply_adds": total,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "costs.json").write_text(json.dumps({"machine": info, "rows": rows, "notes": notes}, indent=2) + "\n")
    lines = [
        "# Costs of the training-free methods (Table 2 layout)",
        "",
        f"{info['cpu']}, {info['cores']} cores; torch {info['torch']} ({info['torch_threads']} threads); load "
        f"average at start {', '.join(map(str, info['load_average_at_start']))} (the machine was shared: "
        f"times are upper bounds); {info['date']}. {info['faces']}; ms per image, median of {args.repeats} "
        f"repeats; 'single' = one image per call, 'batch' = {args.batch} per call; wall time, and this "
        f"process's CPU time (less affected by other jobs).",
        "",
        "| method | need aligning? | parameters | computation (M multiply-adds) | ms/image single | "
        "ms/image batch | CPU ms/image single | CPU ms/image batch |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['need_aligning']} | {r['parameters']:,} (FR model) | "
            f"{r['multiply_adds_M']:,} | {r['ms_single']} | {r['ms_batch']} | {r['cpu_ms_single']} | "
            f"{r['cpu_ms_batch']} |"
        )
    lines += [
        "",
        *[f"- {n}" for n in notes],
        f"- MobileFaceNet forward: {total:,} multiply-adds (Conv2d layers at 112x112), {params:,} parameters "
        f"(incl. BatchNorm; the ONNX export folds BN: 989,952)",
        "",
    ]
    (out / "costs.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
