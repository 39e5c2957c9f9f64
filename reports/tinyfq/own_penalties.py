"""Per degradation kind and strength, how often a trained model scores a photo's degraded copy below the photo
itself, on the labelled set it was trained from, beside how often the labels (Eq. 1) do.

Why: the eval-part penalties (``penalties.py``) need the eval set and a decode per photo; this reads the
training set's stored crops only (about a minute), so a row that does not even penalise JPEG-10 or noise-20 on
its own training photos can be dropped before its evaluation is paid for. Rows are split by the weights' card:
its validation identities (never trained on) and the rest. A tie counts as not penalised (as in penalties.py).

    python reports/tinyfq/own_penalties.py MODEL.onnx [--set .work/tinyfq/c4] [--out J]
    python reports/tinyfq/own_penalties.py CHECKPOINT_DIR ...   # a stopped training's last.pt (its last epoch)
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np


def scores(onnx_path: str, images: np.ndarray, batch: int = 512) -> np.ndarray:
    """The model's output for uint8 (N, S, S, 3) crops, with the training normalisation (onnx_contract)."""
    import onnxruntime as ort

    from fiqa_bench.models.onnx_contract import preprocess

    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    out = [
        sess.run(None, {name: preprocess(np.asarray(images[s : s + batch]))})[0].reshape(-1)
        for s in range(0, len(images), batch)
    ]
    return np.concatenate(out)


def checkpoint_scores(folder: str, images: np.ndarray) -> tuple[np.ndarray, dict]:
    """Outputs of the model saved in a training checkpoint folder (``last.pt``), and the checkpoint's split."""
    import torch

    from fiqa_bench.training.nets import build_net
    from fiqa_bench.training.train import CHECKPOINT_NAME, predict

    state = torch.load(Path(folder) / CHECKPOINT_NAME, map_location="cpu", weights_only=True)
    model = build_net(state["config"]["net"])
    model.load_state_dict(state["model"])
    print(f"checkpoint after epoch {state['epoch']} of {state['config']['epochs']}")
    return predict(model, images), state["split"]


def penalties(
    pred: np.ndarray, labels: np.ndarray, identities: np.ndarray, sources: np.ndarray, degradations: list, held_out: set
) -> dict:
    """{part: {"kind/level": {n, net, label, net_drop, label_drop}}}: part ``train`` or ``val`` (held-out
    identities); net / label = fraction of copies scored strictly below their photo; drops are means."""
    photo = {}
    for i, d in enumerate(degradations):
        if not d:
            photo[(identities[i], sources[i])] = i
    rows: dict = defaultdict(lambda: defaultdict(list))
    for i, d in enumerate(degradations):
        c = photo.get((identities[i], sources[i]))
        if not d or c is None or not (np.isfinite(labels[i]) and np.isfinite(labels[c])):
            continue
        part = "val" if identities[i] in held_out else "train"
        rows[part][f"{d['name']}/{d['level']}"].append(
            (pred[i] < pred[c], labels[i] < labels[c], pred[c] - pred[i], labels[c] - labels[i])
        )
    out = {}
    for part, kinds in sorted(rows.items()):
        out[part] = {}
        for k in sorted(kinds):
            a = np.asarray(kinds[k], dtype=np.float64)
            out[part][k] = {
                "n": len(a),
                "net": round(float(a[:, 0].mean()), 4),
                "label": round(float(a[:, 1].mean()), 4),
                "net_drop": round(float(a[:, 2].mean()), 4),
                "label_drop": round(float(a[:, 3].mean()), 4),
            }
    return out


def main() -> None:
    from fiqa_bench.training.dataset import TrainingSet

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights")
    ap.add_argument("--set", default=".work/tinyfq/c4")
    ap.add_argument("--out", default=None, help="JSON file (default: print only)")
    a = ap.parse_args()
    ts = TrainingSet.load(a.set)
    if Path(a.weights).is_dir():
        pred, split = checkpoint_scores(a.weights, ts.images)
        held_out = set(split["val_identities"])
    else:
        card = json.loads(Path(a.weights).with_suffix(".json").read_text())
        held_out = set(card.get("val_identities", []))
        pred = scores(a.weights, ts.images)
    res = penalties(pred, np.asarray(ts.labels), ts.identities, ts.sources, ts.degradations, held_out)
    for part, kinds in res.items():
        for k, v in kinds.items():
            print(
                f"{part:5} {k:30} n={v['n']:4} net {v['net']:.3f} label {v['label']:.3f} "
                f"net drop {v['net_drop']:+.4f} label drop {v['label_drop']:+.4f}"
            )
    if a.out:
        Path(a.out).write_text(json.dumps({"weights": a.weights, "set": a.set, "penalised": res}, indent=2) + "\n")


if __name__ == "__main__":
    main()
