"""The FaceQnet baseline (Hernandez-Ortega et al. 2019, as ``methods/faceqnet.py`` scores it): labels from the
distance to each identity's reference photo, a small CNN trained on them (needs torch), exported to ONNX."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import numpy as np

from fiqa_bench.training.baselines.data import BaselineSet, card_base, validation_mask
from fiqa_bench.training.baselines.evaluate import validation_scores
from fiqa_bench.training.dataset import TrainingSet


def faceqnet_labels(
    embeddings: np.ndarray,
    identities: np.ndarray | Sequence,
    eq1_labels: np.ndarray,
    clean: np.ndarray,
    groups: np.ndarray | Sequence | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """FaceQnet targets and the reference row of each row.

    Reference of an identity: its clean row with the highest Eq. 1 label (first on ties); label
    ``1 - ||f/|f| - r/|r| || / 2``. NaN (not trained on) for the reference row itself, for the other rows of its
    ``groups`` entry (the reference photo's own degraded copies: comparing a photo with itself would label them
    near-perfect whatever the degradation), and for identities without a clean row with a finite Eq. 1 label.
    Returns (labels float32 (N,), reference row (N,) int64, -1 where none).
    """
    from fiqa_bench.training.labels import l2_normalise

    f = l2_normalise(embeddings)
    ids = np.asarray(identities).astype(str)
    eq1 = np.asarray(eq1_labels, np.float64)
    clean = np.asarray(clean, bool)
    ref_of = np.full(len(ids), -1, np.int64)
    for ident in np.unique(ids):
        rows = np.flatnonzero(ids == ident)
        cand = rows[clean[rows] & np.isfinite(eq1[rows])]
        if cand.size:
            ref_of[rows] = cand[int(np.argmax(eq1[cand]))]
    out = np.full(len(ids), np.nan)
    group = (
        np.arange(len(ids))
        if groups is None
        else np.unique(np.asarray(groups).astype(str), return_inverse=True)[1].reshape(-1)
    )
    ok = (ref_of >= 0) & np.isfinite(f).all(1)
    ok[ok] &= group[ok] != group[ref_of[ok]]
    ok[ok] &= np.isfinite(f[ref_of[ok]]).all(1)
    out[ok] = 1.0 - np.linalg.norm(f[ok] - f[ref_of[ok]], axis=1) / 2.0
    return out.astype(np.float32), ref_of


def train_baseline_faceqnet(
    data: BaselineSet,
    out: str | os.PathLike,
    *,
    net: str = "mbv2-t4-w0.35-112",
    epochs: int = 18,
    lr: float = 0.01,
    lr_step: int = 6,
    batch_size: int = 64,
    weight_decay: float = 1e-4,
    loss: str = "l1",
    hflip: bool = True,
    val_fraction: float = 0.2,
    seed: int = 0,
    threads: int = 1,
    checkpoint_dir: str | os.PathLike | None = None,
    progress: bool = True,
    command: str = "",
    data_desc: str = "",
) -> dict:
    """Train FaceQnet (our small-network version) on ``data`` and write ``out`` (.onnx) + card (.json); needs torch.

    Training is :func:`fiqa_bench.training.train.train` (SGD, momentum 0.9, step schedule, exact resume from
    ``checkpoint_dir``) on the FaceQnet labels, no balanced sampling (FaceQnet has none), same validation
    identities as the other baselines. Defaults, chosen on CPU trials (the network is trained from scratch, not
    fine-tuned as FaceQnet's pre-trained ResNet-50 was): L1 loss (Eq. 2 read literally, as tinyFQnet) and
    lr 0.01 divided by 10 every 6 epochs, 18 epochs, batch 64, mirror augmentation. With lr 0.05 (MSE or L1)
    or 0.02 (L1) the training loss stayed at or above a constant predictor's until the rate was lowered.
    Returns the card.
    """
    from fiqa_bench.training import require_torch
    from fiqa_bench.training.export import save_trained
    from fiqa_bench.training.train import predict, train, training_card

    torch = require_torch()
    torch.set_num_threads(int(threads))
    t0 = time.perf_counter()
    targets, ref = faceqnet_labels(
        data.embeddings, data.data.identities, data.data.labels, data.clean, groups=data.photo
    )
    ts = TrainingSet(
        data.data.images, targets, data.data.identities, data.data.sources, data.data.degradations, dict(data.meta)
    )
    result = train(
        ts,
        net=net,
        epochs=epochs,
        lr=lr,
        lr_step=lr_step,
        batch_size=batch_size,
        weight_decay=weight_decay,
        loss=loss,
        seed=seed,
        val_fraction=val_fraction,
        sampling=None,
        hflip=hflip,
        checkpoint_dir=checkpoint_dir,
        progress=progress,
    )
    val = validation_mask(data, val_fraction, seed)
    scores = np.full(len(data), np.nan)
    scores[val] = predict(result["model"], np.asarray(data.data.images)[val], batch_size=256)
    n_refs = int(np.unique(ref[ref >= 0]).size)
    card = {
        "method": "faceqnet",
        **training_card(result, command=command, data=data_desc, backbone=str(data.meta.get("backbone"))),
        **{
            k: v
            for k, v in card_base(data, command, data_desc, seed, val_fraction, val).items()
            if k not in ("command", "data", "seed", "backbone")
        },
        "reference_rule": "per identity, the undegraded photo with the highest Eq. 1 label (proxy for the "
        "original's ICAO-compliance software)",
        "target": "1 - ||f/|f| - r/|r|||_2 / 2, r the reference photo's embedding; the reference photo and "
        "its own degraded copies are not trained on",
        "references": n_refs,
        "validation_faceqnet_labels": result["val"],
        "validation": validation_scores(scores, data, val),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    card.pop("val_identities", None)
    save_trained(result, out, card)
    return card
