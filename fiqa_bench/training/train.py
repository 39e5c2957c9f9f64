"""Training tinyFQnet (Peng et al., section 3.2): regression of Eq. 1 labels, SGD, step schedule, exact resume.

Paper settings are the defaults: SGD (momentum 0.9), learning rate 0.01 divided by 10 every 5 epochs, batch 1024,
weight decay 1e-4, 17 epochs.

**Loss.** Eq. 2 is ``L = 1/N sum_i ||phi(x_i) - q_i||_2``: the mean of the L2 *norm* (not squared) of the error.
For a scalar quality the norm is the absolute value, so Eq. 2 read literally is the mean absolute error, which is
what ``loss="l1"`` (default) trains; the text calls it an "L2 regression loss", so ``loss="mse"`` (mean squared
error) is available as the other reading.

**Targets** (``label_scaling``). The network ends in a sigmoid, so targets must lie in [0, 1]. ``"clip"`` uses the
Eq. 1 cosines clipped to [0, 1] (:func:`.sampling.to_unit_interval`), the paper as written; its labels (cosine to
an ArcFace classifier's class weight) spread over most of [0, 1]. ``"minmax"`` (default) maps the training
identities' lowest and highest label to 0 and 1 (an increasing affine map, so rankings are unchanged; validation
rows use the same map, clipped). It matters for metric-learned backbones: dlib's cosines to an identity centre lie
in [0.81, 0.995] (median 0.965), where clipped targets sit on the flat top of the sigmoid (derivative ~0.04) and
fall into 19 of the sampler's 100 bins; measured on the dlib-labelled set (tinyfqnet, seed 0, batch 256, smooth
sampling): validation Spearman 0.19 with ``clip``, see the bundled card for ``minmax``. Balanced sampling bins the
scaled targets. The map (``label_range``) is recorded in the config.

**Validation.** Identities, not images, are split: ``val_fraction`` of the identities (drawn with ``seed``) are
held out, so validation measures generalisation to unseen people. The held-out identities are recorded in the
result and in every checkpoint. Metrics after each epoch, on the validation rows with a finite label: MAE,
Pearson and Spearman correlation between prediction and target.

**Sampling** (section 3.4) is applied to the training identities only (``sampling="smooth"`` or ``"random"``),
after the split, so the validation set keeps the natural label distribution and no identity crosses the split.

**Pair term** (``pair_weight``, not in the paper; off by default). Eq. 1 regression alone learns what varies the
label across photos (blur, resolution, occlusion, exposure), but a 13k-parameter network fed one row at a time
did not learn JPEG-10 or sigma-20 noise at all: measured on its own training rows, the bundled model scored 47% of
such copies below their photo while the labels did so for 98% / 97%; identity-level label variance swamps the
copies' smaller drops. With ``pair_weight > 0`` every batch row is joined by its *partner*, another version of
the same photo (a degraded row's partner is the photo itself; the photo's partner is one of its copies, drawn
from the epoch's generator), mirrored like the row, and the loss adds ``pair_weight`` times the mean absolute
error of the within-photo difference, ``|(p_row - p_partner) - (y_row - y_partner)|``: identity and framing
cancel, so the gradient points at exactly what the degradation changed. The L1 term stays on the batch rows
only (the sampling's distribution is unchanged). Needs the set's ``sources`` and ``degradations`` (a
:class:`.dataset.TrainingSet`); a row whose photo has no other training version adds no pair term.
``pair_kinds`` (e.g. ``("jpeg", "gaussian_noise")``) restricts the pairs to copies of those kinds (a photo's
partner is drawn among them; other copies have none): over all kinds the pairs are mostly blur-like, and
weighting them reinforced the "more high frequencies = better" feature that noise then fools (issue 15).
``pair_loss="hinge"`` makes the term one-sided: only a predicted gap that falls short of the label gap, in the
label gap's direction, costs (``relu(sign(dy) * (dy - dp))``); a copy scored further below its photo than its label
is free, so the term enforces the order (what "penalises JPEG-10" measures) without pulling the two scores back
together. ``"gap"`` (default) is the two-sided form above.

**Oversampling** (``oversample``, not in the paper; off by default): ``{"jpeg": 3, "gaussian_noise/strong": 2}``
repeats every training row (after the balanced sampling) whose degradation kind, or ``kind/level``, is named that
many times in all (the more specific key wins), so the kinds a model does not learn weigh more in each epoch
without a new labelled set. The label distribution the sampler drew shifts towards those copies' labels.

**Optimiser** (``optimizer``). ``"sgd"`` (default) is the paper's SGD with momentum. ``"adam"`` (not in the paper;
``lr`` is then Adam's step size, e.g. 3e-3, ``momentum`` unused): measured on this set, tinyFQnet told
undegraded photos from their JPEG-10 / noise-20 copies on held-out rows at 84.5% after 400 Adam steps
(3e-3, batch 64) and at chance (the majority rate, 65%) after 600 SGD steps (0.05, momentum 0.9): the network
can see the damage, plain SGD does not find the feature.

**Speed.** ``channels_last=True`` trains with the NHWC memory layout (the network and every batch), which the
CPU's depthwise convolutions run about 1.4x faster (measured on this 2-core machine: 3.8 against 5.4 ms per
image and step at batch 64, one thread, deterministic algorithms); the arithmetic order differs, so its weights
differ from the default layout's in the last bits. Recorded in the config.

**Reproducibility.** ``torch.manual_seed(seed)`` before building the network, deterministic algorithms, data
read in the main process (no workers), and the order of epoch ``e`` drawn from
``numpy.random.default_rng([seed, e])``: the same call gives bitwise the same weights. A checkpoint
(``checkpoint_dir/last.pt``, written atomically after every epoch, every ``checkpoint_every`` steps and when
``max_steps`` stops a run) holds the model, optimiser, scheduler and RNG states, the position (epoch, step) and
the history; with ``resume=True`` a run continues from it and ends with the same weights as an uninterrupted
run. A checkpoint whose settings or data fingerprint differ from the call's is refused, not silently mixed.
"""

from __future__ import annotations

import contextlib
import os
import random
from pathlib import Path
from typing import Any

import numpy as np

from fiqa_bench.models.onnx_contract import preprocess
from fiqa_bench.training import require_torch
from fiqa_bench.training.sampling import STRATEGIES, sample_indices, to_unit_interval

CHECKPOINT_NAME = "last.pt"
LOSSES = ("l1", "mse")
PAIR_LOSSES = ("gap", "hinge")  # the pair term's two forms (module doc, "Pair term")
OPTIMIZERS = ("sgd", "adam")  # sgd (momentum): the paper's; adam: not in the paper (see "Optimiser" above)
LABEL_SCALINGS = ("minmax", "clip")


def identity_split(identities: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, list[str]]:
    """(validation mask over rows, sorted validation identities): ``round(val_fraction * #ids)`` identities,
    at least one when ``val_fraction > 0`` and there are two or more identities."""
    ids = np.asarray(identities).astype(str)
    unique = np.unique(ids)
    k = int(round(float(val_fraction) * unique.size))
    if val_fraction > 0 and unique.size >= 2:
        k = min(max(k, 1), unique.size - 1)
    else:
        k = 0
    rng = np.random.default_rng([int(seed), 7919])
    val_ids = sorted(rng.choice(unique, k, replace=False).tolist()) if k else []
    return np.isin(ids, val_ids), val_ids


def regression_metrics(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """MAE, Pearson and Spearman correlation (NaN when undefined, e.g. constant predictions)."""
    from scipy import stats

    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    out = {"n": int(pred.size), "mae": float(np.abs(pred - target).mean()) if pred.size else float("nan")}
    if pred.size >= 2 and pred.std() > 0 and target.std() > 0:
        out["pearson"] = float(stats.pearsonr(pred, target)[0])
        out["spearman"] = float(stats.spearmanr(pred, target)[0])
    else:
        out["pearson"] = out["spearman"] = float("nan")
    return out


def predict(model, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Model outputs (N,) float32 for uint8 RGB crops, in eval mode, without gradients."""
    torch = require_torch()
    model.eval()
    dev = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(preprocess(np.asarray(images[start : start + batch_size]))).to(dev)
            out.append(model(x).reshape(-1).cpu().numpy())
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


@contextlib.contextmanager
def _deterministic(torch):
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


def _save_checkpoint(path: Path, state: dict) -> None:
    torch = require_torch()
    from fiqa_bench.data.atomic import atomic_path

    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(state, tmp)


def scale_labels(labels: np.ndarray, train_rows: np.ndarray, scaling: str) -> tuple[np.ndarray, list[float]]:
    """Targets in [0, 1] for every row, and the ``[low, high]`` label range mapped to [0, 1] (see module doc).

    ``clip``: the labels clipped to [0, 1] (range [0, 1]). ``minmax``: ``(label - low) / (high - low)`` with the
    lowest and highest finite label of ``train_rows``, clipped to [0, 1]; NaN stays NaN."""
    labels = np.asarray(labels, dtype=np.float64)
    if scaling == "clip":
        return to_unit_interval(labels), [0.0, 1.0]
    train = labels[train_rows]
    train = train[np.isfinite(train)]
    low, high = float(train.min()), float(train.max())
    if not high > low:
        raise ValueError(f"label_scaling='minmax' needs at least two different training labels, all are {low}")
    return np.clip((labels - low) / (high - low), 0.0, 1.0), [low, high]


def _rng_states(torch) -> dict:
    return {
        "torch": torch.get_rng_state(),
        "python": list(random.getstate()[1]),
        "python_version": random.getstate()[0],
        "python_gauss": random.getstate()[2],
    }


def _restore_rng(torch, states: dict) -> None:
    torch.set_rng_state(states["torch"])
    random.setstate((states["python_version"], tuple(states["python"]), states["python_gauss"]))


def train(
    dataset,
    *,
    net: str = "tinyfqnet",
    epochs: int = 17,
    lr: float = 0.01,
    lr_step: int = 5,
    gamma: float = 0.1,
    weight_decay: float = 1e-4,
    momentum: float = 0.9,
    batch_size: int = 1024,
    loss: str = "l1",
    seed: int = 0,
    val_fraction: float = 0.1,
    sampling: str | None = None,
    sampling_options: dict | None = None,
    hflip: bool = False,
    label_scaling: str = "minmax",
    channels_last: bool = False,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: bool = True,
    progress: bool = True,
    max_steps: int | None = None,
    device: str = "cpu",
    pair_weight: float = 0.0,
    oversample: dict[str, int] | None = None,
    optimizer: str = "sgd",
    pair_kinds: tuple[str, ...] | None = None,
    pair_loss: str = "gap",
) -> dict[str, Any]:
    """Train a quality network on ``dataset`` (anything with ``images`` uint8 (N, S, S, 3) RGB, ``labels`` (N,)
    and ``identities`` (N,), e.g. a :class:`.dataset.TrainingSet`) and return a result dict.

    ``net``: a name in :data:`.nets.NETS` whose input size must equal S. ``hflip``: mirror each training image
    with probability 1/2 (drawn from the epoch's generator; not in the paper, off by default). ``channels_last``:
    NHWC memory layout while training (faster on CPU; see the module doc). ``pair_weight``: weight of the
    within-photo difference term (module doc; 0 = the paper's loss alone). ``oversample``: ``{kind or kind/level:
    times}`` (module doc). ``pair_kinds``: the degradation kinds the pair term
    uses (None: all); ``pair_loss``: ``gap`` (two-sided) or ``hinge`` (one-sided; module doc). ``max_steps``:
    stop after this many optimiser steps in total (a checkpoint is written; calling again resumes).
    ``device``: ``cpu`` or ``cuda`` (checked first: one line when no GPU is visible); on CUDA the returned
    model is moved back to the CPU, and the weights are reproducible on that GPU only up to the last bits
    (the pooling's backward pass has no deterministic CUDA kernel).

    Result: ``model`` (the torch module, eval mode), ``net``, ``input_size``, ``completed`` (all epochs run),
    ``epoch``, ``global_step``, ``history`` (per epoch: lr, train_loss, val metrics), ``val`` (last validation
    metrics), ``split`` (validation identities, row counts), ``config`` (every setting), ``checkpoint``
    (path or None).
    """
    torch = require_torch()
    from tqdm.auto import tqdm

    from fiqa_bench.errors import FiqaBenchError
    from fiqa_bench.training.nets import net_spec

    if pair_loss not in PAIR_LOSSES:
        raise ValueError(f"pair_loss must be one of {PAIR_LOSSES}, got {pair_loss!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if label_scaling not in LABEL_SCALINGS:
        raise ValueError(f"label_scaling must be one of {LABEL_SCALINGS}, got {label_scaling!r}")
    if sampling is not None and sampling not in STRATEGIES:
        raise ValueError(f"sampling must be None or one of {STRATEGIES}, got {sampling!r}")
    from fiqa_bench.device import check_device

    check_device(device, torch=True)  # before any work
    if device == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
    dev = torch.device(device)
    spec = net_spec(net)
    images = dataset.images
    if images.ndim != 4 or images.shape[1:] != (spec.input_size, spec.input_size, 3) or images.dtype != np.uint8:
        raise ValueError(
            f"{net} takes uint8 crops (N, {spec.input_size}, {spec.input_size}, 3), "
            f"got {images.dtype} {tuple(images.shape)}"
        )
    labels = np.asarray(dataset.labels, dtype=np.float64).reshape(-1)
    identities = np.asarray(dataset.identities).astype(str).reshape(-1)
    if not (len(labels) == len(identities) == len(images)):
        raise ValueError("images, labels and identities must have the same number of rows")

    finite = np.isfinite(labels)
    val_mask, val_ids = identity_split(identities, val_fraction, seed)
    train_rows = np.flatnonzero(finite & ~val_mask)
    val_rows = np.flatnonzero(finite & val_mask)
    if train_rows.size == 0:
        raise FiqaBenchError("no training rows with a finite label after the split")
    targets, label_range = scale_labels(labels, train_rows, label_scaling)
    if sampling is not None:
        picked = sample_indices(
            targets[train_rows], identities[train_rows], strategy=sampling, seed=seed, **(sampling_options or {})
        )
        train_rows = train_rows[picked]
    if train_rows.size == 0:
        raise FiqaBenchError("no training rows with a finite label after the split and sampling")
    oversample = {str(k): int(v) for k, v in sorted((oversample or {}).items())}
    if oversample:
        train_rows = oversampled(train_rows, getattr(dataset, "degradations", None), oversample)
    targets = targets.astype(np.float32)
    pair_weight = float(pair_weight)
    if not np.isfinite(pair_weight) or pair_weight < 0:
        raise ValueError(f"pair_weight must be >= 0, got {pair_weight!r}")
    pair_kinds = tuple(sorted(set(pair_kinds))) if pair_kinds else None
    partners = photo_versions(dataset, np.unique(train_rows), pair_kinds) if pair_weight > 0 else None
    steps_per_epoch = -(-train_rows.size // int(batch_size))

    fingerprint = getattr(dataset, "fingerprint", None)
    config = {
        "net": net,
        "input_size": spec.input_size,
        "epochs": int(epochs),
        "lr": float(lr),
        "lr_step": int(lr_step),
        "gamma": float(gamma),
        "weight_decay": float(weight_decay),
        "momentum": float(momentum),
        "batch_size": int(batch_size),
        "loss": loss,
        "seed": int(seed),
        "val_fraction": float(val_fraction),
        "sampling": sampling,
        "sampling_options": dict(sampling_options or {}),
        "hflip": bool(hflip),
        "label_scaling": label_scaling,
        "label_range": label_range,
        **({"memory_format": "channels_last"} if channels_last else {}),
        **({"pair_weight": pair_weight} if pair_weight > 0 else {}),
        **({"oversample": oversample} if oversample else {}),
        **({"optimizer": optimizer} if optimizer != "sgd" else {}),
        **({"pair_kinds": list(pair_kinds)} if pair_kinds and pair_weight > 0 else {}),
        **({"pair_loss": pair_loss} if pair_loss != "gap" and pair_weight > 0 else {}),
        "rows": int(len(labels)),
        "train_rows": int(train_rows.size),
        "val_rows": int(val_rows.size),
        "data_fingerprint": fingerprint() if callable(fingerprint) else None,
        "normalisation": "(x - 127.5) / 128, RGB, NCHW",
    }
    split = {
        "val_identities": val_ids,
        "n_val_identities": len(val_ids),
        "n_train_identities": int(np.unique(identities[train_rows]).size),
        "train_rows": int(train_rows.size),
        "val_rows": int(val_rows.size),
    }

    ckpt_path = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir is not None else None
    with _deterministic(torch):
        torch.manual_seed(int(seed))
        random.seed(int(seed))
        model = spec.build().to(dev)
        if dev.type == "cuda":
            torch.use_deterministic_algorithms(True, warn_only=True)
        layout = torch.channels_last if channels_last else torch.contiguous_format
        # documented form to(memory_format=...), which torch's own overloads of Module.to leave out
        model = model.to(memory_format=layout)  # type: ignore[call-overload]
        if optimizer == "adam":
            optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        else:
            optimiser = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
        scheduler = torch.optim.lr_scheduler.StepLR(optimiser, step_size=int(lr_step), gamma=gamma)
        epoch, step_in_epoch, global_step, history = 0, 0, 0, []
        running = {"loss_sum": 0.0, "count": 0}
        if ckpt_path is not None and resume and ckpt_path.is_file():
            state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
            if state["config"] != config:
                changed = sorted(
                    k for k in set(config) | set(state["config"]) if config.get(k) != state["config"].get(k)
                )
                raise FiqaBenchError(
                    f"{ckpt_path}: checkpoint is from a run with different settings or data "
                    f"({', '.join(changed)}); use another checkpoint_dir or resume=False"
                )
            model.load_state_dict(state["model"])
            optimiser.load_state_dict(state["optimiser"])
            scheduler.load_state_dict(state["scheduler"])
            _restore_rng(torch, state["rng"])
            epoch, step_in_epoch, global_step = state["epoch"], state["step_in_epoch"], state["global_step"]
            history, running = state["history"], state["running"]

        def checkpoint() -> None:
            if ckpt_path is None:
                return
            _save_checkpoint(
                ckpt_path,
                {
                    "config": config,
                    "split": split,
                    "model": model.state_dict(),
                    "optimiser": optimiser.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rng": _rng_states(torch),
                    "epoch": epoch,
                    "step_in_epoch": step_in_epoch,
                    "global_step": global_step,
                    "history": history,
                    "running": running,
                },
            )

        criterion = torch.nn.L1Loss() if loss == "l1" else torch.nn.MSELoss()
        stopped = False
        while epoch < epochs and not stopped:
            rng = np.random.default_rng([int(seed), epoch])
            order = train_rows[rng.permutation(train_rows.size)]
            flips = rng.random(order.size) < 0.5 if hflip else None
            mates = draw_partners(partners, order, rng) if partners is not None else None
            model.train()
            bar = tqdm(
                total=steps_per_epoch,
                initial=step_in_epoch,
                desc=f"epoch {epoch + 1}/{epochs}",
                disable=not progress,
                leave=False,
            )
            while step_in_epoch < steps_per_epoch:
                if max_steps is not None and global_step >= max_steps:
                    stopped = True
                    break
                sl = slice(step_in_epoch * batch_size, (step_in_epoch + 1) * batch_size)
                rows = order[sl]
                read = rows if mates is None else np.concatenate([rows, np.maximum(mates[sl], 0)])
                batch = np.asarray(images[np.sort(read)])[np.argsort(np.argsort(read))]  # sorted reads (mmap)
                if flips is not None:
                    flip = flips[sl] if mates is None else np.tile(flips[sl], 2)  # a partner mirrored like its row
                    batch = np.where(flip[:, None, None, None], batch[:, :, ::-1], batch)
                x = torch.from_numpy(preprocess(batch)).contiguous(memory_format=layout)
                y = torch.from_numpy(targets[read]).reshape(-1, 1)
                x, y = x.to(dev), y.to(dev)
                optimiser.zero_grad(set_to_none=True)
                valid = None if mates is None else torch.from_numpy(mates[sl] >= 0).to(dev)
                value = batch_loss(criterion, model(x), y, len(rows), valid, pair_weight, pair_loss)
                value.backward()
                optimiser.step()
                running["loss_sum"] += value.item() * len(rows)
                running["count"] += len(rows)
                step_in_epoch += 1
                global_step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{running['loss_sum'] / running['count']:.4f}")
                if checkpoint_every and global_step % int(checkpoint_every) == 0 and step_in_epoch < steps_per_epoch:
                    checkpoint()
            bar.close()
            if stopped:
                break
            val = regression_metrics(predict(model, images[val_rows]), targets[val_rows]) if val_rows.size else {}
            history.append(
                {
                    "epoch": epoch + 1,
                    "lr": optimiser.param_groups[0]["lr"],
                    "train_loss": running["loss_sum"] / max(running["count"], 1),
                    "val": val,
                }
            )
            scheduler.step()
            epoch += 1
            step_in_epoch = 0
            running = {"loss_sum": 0.0, "count": 0}
            checkpoint()
        if stopped:
            checkpoint()
    model = model.to(memory_format=torch.contiguous_format).eval()  # exported and used like any module
    model = model.cpu()  # exported and scored on the CPU whatever it trained on
    return {
        "model": model,
        "net": net,
        "input_size": spec.input_size,
        "completed": epoch >= epochs,
        "epoch": epoch,
        "global_step": global_step,
        "history": history,
        "val": history[-1]["val"] if history else {},
        "split": split,
        "config": config,
        "checkpoint": str(ckpt_path) if ckpt_path is not None else None,
    }


def oversampled(rows: np.ndarray, degradations, times: dict[str, int]) -> np.ndarray:
    """``rows`` with each row whose degradation matches a key of ``times`` (``kind/level`` before ``kind``)
    repeated that many times in all, in place (order kept: the epoch's permutation shuffles anyway)."""
    from fiqa_bench.errors import FiqaBenchError

    if degradations is None:
        raise FiqaBenchError("oversample needs a labelled set with degradations (fiqa-bench label)")
    from fiqa_bench.data.degradations import DEGRADATIONS, LEVELS

    for key, n in times.items():
        kind, _, level = key.partition("/")
        if kind not in DEGRADATIONS or (level and level not in LEVELS):
            raise FiqaBenchError(
                f"oversample: unknown degradation {key!r}; kinds {', '.join(DEGRADATIONS)}, levels {', '.join(LEVELS)}"
            )
        if n < 1:
            raise ValueError(f"oversample times must be >= 1, got {key}={n}")
    counts = np.ones(rows.size, dtype=np.int64)
    for k, r in enumerate(np.asarray(rows).tolist()):
        d = degraded_record(degradations[r])
        if d is not None:
            counts[k] = times.get(f"{d['name']}/{d['level']}", times.get(d["name"], 1))
    return np.repeat(rows, counts)


def batch_loss(criterion, out, y, n: int, valid, pair_weight: float, pair_loss: str = "gap"):
    """The step's loss: ``criterion`` on the first ``n`` rows (the batch), plus, when ``valid`` (bool (n,): the
    row has a partner) is given, ``pair_weight`` x the mean over the valid rows of ``|dy - dp|`` (``gap``) or
    ``relu(sign(dy) * (dy - dp))`` (``hinge``), with ``dp = out[i] - out[n + i]`` and ``dy = y[i] - y[n + i]``
    (rows ``n + i`` are the partners; module doc, "Pair term")."""
    value = criterion(out[:n], y[:n])
    if valid is not None and bool(valid.any()):
        dy = y[:n] - y[n:]
        short = dy - (out[:n] - out[n:])
        term = short.abs() if pair_loss == "gap" else (dy.sign() * short).clamp(min=0)
        value = value + pair_weight * term[valid].mean()
    return value


def photo_versions(
    dataset, rows: np.ndarray, kinds: tuple[str, ...] | None = None
) -> dict[int, tuple[int | None, np.ndarray]]:
    """Per training row: (its photo's undegraded row or None, the photo's degraded rows), among ``rows`` only, by
    ``dataset.sources`` (a photo's versions share its source path) and ``dataset.degradations`` (None = the photo).
    With ``kinds``, only copies of those degradation kinds count as versions; other copies get (None, no rows)."""
    from fiqa_bench.data.degradations import DEGRADATIONS
    from fiqa_bench.errors import FiqaBenchError

    unknown = sorted(set(kinds or ()) - set(DEGRADATIONS))
    if unknown:
        raise FiqaBenchError(f"pair kinds: unknown degradation {', '.join(unknown)}; kinds {', '.join(DEGRADATIONS)}")

    sources = getattr(dataset, "sources", None)
    degradations = getattr(dataset, "degradations", None)
    if sources is None or degradations is None:
        raise FiqaBenchError("pair_weight needs a labelled set with sources and degradations (fiqa-bench label)")
    sources = np.asarray(sources).astype(str)
    by_photo: dict[tuple[str, str], tuple[list[int], list[int]]] = {}
    identities = np.asarray(dataset.identities).astype(str)
    out: dict[int, tuple[int | None, np.ndarray]] = {}
    for r in np.asarray(rows, dtype=np.int64).tolist():
        record = degraded_record(degradations[r])
        if record is not None and kinds is not None and record["name"] not in kinds:
            out[r] = (None, np.zeros(0, dtype=np.int64))  # a copy of another kind: no partner
            continue
        clean, degraded = by_photo.setdefault((identities[r], sources[r]), ([], []))
        (clean if record is None else degraded).append(r)
    for clean, degraded in by_photo.values():
        photo = clean[0] if clean else None
        copies = np.array(degraded, dtype=np.int64)
        for r in clean + degraded:
            out[r] = (photo, copies)
    return out


def degraded_record(record):
    """A row's degradation record, None for the photo itself (JSON round trips may give an empty dict)."""
    return record if record else None


def draw_partners(partners: dict, order: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The partner row of each row of ``order`` (-1: none): a copy's photo, or one of the photo's copies drawn
    with ``rng`` (drawn after the epoch's order and flips, so those are the same with and without pairs)."""
    draws = rng.random(order.size)
    mates = np.full(order.size, -1, dtype=np.int64)
    for k, r in enumerate(order.tolist()):
        photo, copies = partners[r]
        if r != photo:  # a copy: its photo, if the photo is a training row
            mates[k] = -1 if photo is None else photo
        elif copies.size:
            mates[k] = copies[min(int(draws[k] * copies.size), copies.size - 1)]
    return mates


def training_card(result: dict, *, command: str = "", data: str = "", backbone: str = "") -> dict:
    """The JSON card stored beside exported weights (and in the ONNX metadata): how the weights were made."""
    return {
        "command": command,
        "data": data,
        "backbone": backbone,
        "net": result["net"],
        "input_size": result["input_size"],
        "seed": result["config"]["seed"],
        "config": result["config"],
        "split": {k: v for k, v in result["split"].items() if k != "val_identities"},
        "val_identities": result["split"]["val_identities"],
        "validation": result["val"],
        "history": result["history"],
        "completed": result["completed"],
    }
