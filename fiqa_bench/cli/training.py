"""The training commands of ``fiqa-bench``: ``label`` (Eq. 1 quality labels), ``train`` (a quality network) and
``train-baseline`` (the learned baselines svm, rqs, faceqnet), apart from the evaluation commands of
:mod:`fiqa_bench.cli.main`, which adds them to its group (:data:`COMMANDS`). A thin click layer over
:mod:`fiqa_bench.training`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from fiqa_bench.cli.common import _DETECTORS, _CleanErrors, _command_path, _FloatRange, _IntRange


@click.command("label", short_help="Label photos with Eq. 1 quality labels for training.")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option(
    "--fr",
    "backbone",
    required=True,
    multiple=True,
    help="FR backbone whose embeddings define the labels (Eq. 1). Repeat it to average over several: "
    "each backbone's own Eq. 1 label, then their mean.",
)
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Folder for the labelled set.")
@click.option(
    "--size",
    default=64,
    show_default=True,
    type=_IntRange(min=1),
    help="Side of the aligned crops stored for training.",
)
@click.option(
    "--min-images",
    default=2,
    show_default=True,
    type=_IntRange(min=1),
    help="Identities with fewer photos are left out.",
)
@click.option("--max-images", default=None, type=_IntRange(min=1), help="Identities with more photos are left out.")
@click.option(
    "--part",
    type=click.Choice(["all", "train", "eval"]),
    default="train",
    show_default=True,
    help="Identities of this part of the train/eval split (fiqa_bench.data.splits).",
)
@click.option(
    "--degraded-copies",
    default=1,
    show_default=True,
    type=_IntRange(min=0),
    help="Seeded degraded copies per photo, labelled by the same Eq. 1, so labels cover low quality.",
)
@click.option("--seed", default=0, show_default=True, type=_IntRange(min=0))
@click.option(
    "--pad",
    default=0.0,
    show_default=True,
    type=_FloatRange(min=0),
    help="Padding before detection (0.25 for tight crops like LFW).",
)
@click.option("--detector", type=click.Choice(_DETECTORS), default="yunet", show_default=True)
@click.option("--no-progress", is_flag=True)
def label_cmd(
    sources, backbone, out, size, min_images, max_images, part, degraded_copies, seed, pad, detector, no_progress
) -> None:
    """Recognition-oriented quality labels (Eq. 1) for folders of identity sub-folders of photos.

    The label of a photo is the cosine between its embedding and the centre of its identity's other embeddings.
    Writes the aligned crops, labels, identities and the degradation record of each copy to OUT.
    """
    from collections import Counter

    import numpy as np

    from fiqa_bench.data.splits import in_part
    from fiqa_bench.training.dataset import build_training_set, images_by_identity_folder

    paths, identities = [], []
    for src in sources:
        p, ids = images_by_identity_folder(src, min_images=min_images)
        counts = Counter(ids)
        keep = [
            i
            for i, ident in enumerate(ids)
            if in_part(ident, part) and (max_images is None or counts[ident] <= max_images)
        ]
        tag = "/".join(Path(src).resolve().parts[-2:])
        paths += [p[i] for i in keep]
        identities += [f"{tag}/{ids[i]}" for i in keep]  # identities from different sources never merge
    backbone = list(backbone) if len(backbone) > 1 else backbone[0]
    ts = build_training_set(
        paths,
        identities,
        backbone=backbone,
        detector=detector,
        size=size,
        degraded_copies=degraded_copies,
        seed=seed,
        pad=pad,
        progress=not no_progress,
    )
    ts.meta["command"] = _baseline_command(click.get_current_context())  # the training card repeats it
    ts.meta["part"] = part
    folder = ts.save(out)
    labels = np.asarray(ts.labels)
    click.echo(f"{len(labels)} labelled crops of {len(set(map(str, ts.identities)))} identities -> {folder}")


@click.command("train", short_help="Train a quality network and export it to ONNX.")
@click.argument("dataset", type=click.Path(exists=True, file_okay=False))
@click.option("--net", default="tinyfqnet", show_default=True, help="tinyfqnet or a Table 6 network name.")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="Exported ONNX file.")
@click.option("--epochs", default=17, show_default=True, type=_IntRange(min=1))
@click.option("--lr", default=0.01, show_default=True, type=_FloatRange(min=0, min_open=True))
@click.option("--lr-step", default=5, show_default=True, type=_IntRange(min=1))
@click.option("--batch-size", default=1024, show_default=True, type=_IntRange(min=1))
@click.option("--weight-decay", default=1e-4, show_default=True, type=_FloatRange(min=0))
@click.option("--loss", type=click.Choice(["l1", "mse"]), default="l1", show_default=True)
@click.option(
    "--optimizer",
    type=click.Choice(["sgd", "adam"]),
    default="sgd",
    show_default=True,
    help="SGD with momentum (the paper's) or Adam (--lr is then its step size, e.g. 0.003).",
)
@click.option("--sampling", type=click.Choice(["none", "random", "smooth"]), default="smooth", show_default=True)
@click.option(
    "--label-scaling",
    type=click.Choice(["minmax", "clip"]),
    default="minmax",
    show_default=True,
    help="Targets: labels mapped from the training range to [0, 1] (minmax) or clipped to [0, 1] (clip, "
    "the paper as written).",
)
@click.option(
    "--min-images",
    default=2,
    show_default=True,
    type=_IntRange(min=1),
    help="Identity filter of the balanced sampling.",
)
@click.option(
    "--val-fraction",
    default=0.1,
    show_default=True,
    type=_FloatRange(0, 1, max_open=True),
    help="Fraction of identities held out.",
)
@click.option("--hflip", is_flag=True, help="Mirror each training image with probability 1/2 (seeded).")
@click.option(
    "--pair-weight",
    default=0.0,
    show_default=True,
    type=_FloatRange(min=0),
    help="Weight of the within-photo difference term: each row is paired with another version of its "
    "photo and the difference of their predictions regresses the difference of their labels "
    "(0: the paper's loss alone).",
)
@click.option(
    "--pair-kinds",
    default=None,
    metavar="KIND,KIND",
    help="Restrict the pair term to copies of these degradation kinds (e.g. jpeg,gaussian_noise).",
)
@click.option(
    "--pair-loss",
    type=click.Choice(["gap", "hinge"]),
    default="gap",
    show_default=True,
    help="The pair term: the predicted difference regresses the label difference (gap), or only falling "
    "short of it in its direction costs (hinge: the order is enforced, a wider gap is free).",
)
@click.option(
    "--oversample",
    multiple=True,
    metavar="KIND=N",
    help="Repeat the training rows of a degradation kind (or kind/level, e.g. jpeg/strong) N times in "
    "all after the sampling; repeatable.",
)
@click.option("--channels-last", is_flag=True, help="NHWC memory layout while training (faster on CPU).")
@click.option("--seed", default=0, show_default=True, type=_IntRange(min=0))
@click.option(
    "--checkpoints",
    default=None,
    type=click.Path(file_okay=False),
    help="Checkpoint folder (default: beside OUT); an interrupted training resumes from it.",
)
@click.option("--max-steps", default=None, type=_IntRange(min=1), help="Stop after this many steps (resumable).")
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    default="cpu",
    show_default=True,
    help="Train on the CPU or on a CUDA GPU (torch.cuda); checked before any work.",
)
@click.option("--no-progress", is_flag=True)
def train_cmd(
    dataset,
    net,
    out,
    epochs,
    lr,
    lr_step,
    batch_size,
    weight_decay,
    loss,
    optimizer,
    sampling,
    label_scaling,
    min_images,
    val_fraction,
    hflip,
    pair_weight,
    pair_kinds,
    pair_loss,
    oversample,
    channels_last,
    seed,
    checkpoints,
    max_steps,
    no_progress,
    device,
) -> None:
    """Train a quality network on a labelled set (from `fiqa-bench label`) and export it to ONNX (needs torch)."""
    from fiqa_bench.device import check_device
    from fiqa_bench.training.dataset import TrainingSet
    from fiqa_bench.training.export import save_trained
    from fiqa_bench.training.train import train, training_card

    check_device(device, torch=True)  # one line without a GPU, before the dataset is read
    times = {}
    for item in oversample:
        key, sep, n = item.partition("=")
        if not sep or not key or not n.isdigit() or int(n) < 1:
            raise click.BadParameter(f"{item!r}: expected KIND=N with N >= 1 (e.g. jpeg=3)", param_hint="--oversample")
        times[key] = int(n)
    ts = TrainingSet.load(dataset)
    from fiqa_bench.errors import OptionError
    from fiqa_bench.training.nets import net_spec

    side = net_spec(net).input_size  # an unknown name: its one-line error
    if ts.size != side:
        raise OptionError(
            f"{dataset}: its crops are {ts.size}x{ts.size}, network {net} takes {side}x{side} "
            f"(label the photos with `fiqa-bench label ... --size {side}`)"
        )
    ckpt = Path(checkpoints) if checkpoints else Path(out).with_suffix(".checkpoints")
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
        sampling=None if sampling == "none" else sampling,
        sampling_options={"min_images": min_images},
        label_scaling=label_scaling,
        hflip=hflip,
        channels_last=channels_last,
        checkpoint_dir=ckpt,
        progress=not no_progress,
        max_steps=max_steps,
        device=device,
        pair_weight=pair_weight,
        oversample=times,
        optimizer=optimizer,
        pair_kinds=tuple(k.strip() for k in pair_kinds.split(",") if k.strip()) if pair_kinds else None,
        pair_loss=pair_loss,
    )
    if not result["completed"]:
        click.echo(f"stopped at step {result['global_step']} (checkpoint {result['checkpoint']}); run again to resume")
        return
    card = training_card(
        result,
        command=_baseline_command(click.get_current_context()),
        data=str(dataset),
        backbone=str(ts.meta.get("backbone", "")) if hasattr(ts, "meta") else "",
    )
    if getattr(ts, "meta", {}).get("command"):
        card["data_command"] = ts.meta["command"]
    path = save_trained(result, out, card)
    if sampling != "none":  # Fig. 5: the label histogram before and after balanced sampling
        import numpy as np

        from fiqa_bench.training.sampling import plot_histograms, sample_indices

        low, high = result["config"]["label_range"]  # the targets the network was trained on
        labels = np.clip((np.asarray(ts.labels, dtype=np.float64) - low) / (high - low), 0.0, 1.0)
        keep = sample_indices(labels, np.asarray(ts.identities), strategy=sampling, min_images=min_images, seed=seed)
        plot_histograms(labels, labels[keep], Path(out).with_suffix(".sampling.png"))
    click.echo(json.dumps({"onnx": str(path), "validation": result["val"]}, indent=2, default=str))


# ------------------------------------------------------------------------------------------ train-baseline
def _baseline_command(ctx: click.Context) -> str:
    """The command as a card records it: ``fiqa-bench [GROUP] SUB`` + the arguments + the options given
    (not those left at their defaults), however it was invoked (the console script, a test runner)."""
    import shlex

    from click.core import ParameterSource

    args: list[str] = []
    opts: list[str] = []
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if isinstance(param, click.Argument):
            args += [str(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
            continue
        if ctx.get_parameter_source(param.name) in (None, ParameterSource.DEFAULT) or param.name == "no_progress":
            continue
        flag = max(param.opts, key=len)
        if getattr(param, "is_flag", False):
            opts += [flag] if value else []
        elif getattr(param, "multiple", False):
            assert value is not None  # click gives a multiple option given on the command line a tuple
            for v in value:
                opts += [flag, str(v)]
        else:
            opts += [flag, str(value)]
    return " ".join([_command_path(ctx)] + [shlex.quote(a) for a in args + opts])


def _key_values(items, hint: str) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=hint)
        out[key] = value
    return out


def _check_sources(ctx, param, value):
    from fiqa_bench.training.baselines import Source

    for text in value:
        try:
            Source.parse(text)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--source") from None
    return value


def _load_set(path: str):
    from fiqa_bench.training.baselines import BaselineSet, describe_set

    data = BaselineSet.load(path)
    return data, describe_set(path, data)


def _train_on_set(ctx: click.Context, data: str, out: str, trainer, **options) -> None:
    """Train one baseline on the set at ``data`` into ``out`` (the card records the command and the set) and print
    its validation numbers."""
    dataset, desc = _load_set(data)
    card = trainer(dataset, out, command=_baseline_command(ctx), data_desc=desc, **options)
    click.echo(json.dumps(card["validation"], indent=2, default=str))


@click.group("train-baseline", cls=_CleanErrors, short_help="Train and evaluate the svm, rqs and faceqnet baselines.")
def train_baseline() -> None:
    """Train and evaluate the learned baselines svm (Best-Rowden & Jain 2018), rqs (Chen et al. 2015) and faceqnet
    (Hernandez-Ortega et al. 2019) on one labelled set (fiqa_bench.training.baselines).

    `data` builds the set (each photo + a light/medium/strong degradation ladder: 112x112 crops, embeddings, Eq. 1
    labels); `svm`, `rqs`, `faceqnet` (needs torch) train on it and write weights + a JSON card recording the
    command; `evaluate` scores a set with registered methods.
    """


def _training_options(f):
    f = click.option(
        "--val-fraction",
        default=0.2,
        show_default=True,
        type=_FloatRange(0, 1, max_open=True),
        help="Fraction of the set's identities held out for the card's validation numbers.",
    )(f)
    f = click.option("--seed", default=0, show_default=True, type=_IntRange(min=0))(f)
    f = click.option(
        "--out",
        "-o",
        required=True,
        type=click.Path(dir_okay=False),
        help="Weights file to write (its card goes beside it, .json).",
    )(f)
    return click.argument("data", type=click.Path(exists=True, file_okay=False))(f)


@train_baseline.command("data", short_help="Build a labelled set from photos.")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--fr", required=True, help="Labelling FR backbone (registered name or onnx:PATH).")
@click.option("--fr-option", "fr_options", multiple=True, metavar="KEY=VALUE", help="Backbone option (repeatable).")
@click.option(
    "--source",
    "sources",
    multiple=True,
    required=True,
    callback=_check_sources,
    metavar="DIR[:min_images=N,max_images=N,per_identity=N,pad=F]",
    help="A folder of identity folders of photos, with which of them to use (repeatable).",
)
@click.option(
    "--part",
    type=click.Choice(["train", "eval", "all"]),
    default="train",
    show_default=True,
    help="Identities of this part of the train/eval split (fiqa_bench.data.splits).",
)
@click.option("--no-ladder", is_flag=True, help="Keep the undegraded photos only.")
@click.option("--detector", type=click.Choice(_DETECTORS), default="yunet", show_default=True)
@click.option("--seed", default=0, show_default=True, type=_IntRange(min=0))
@click.option("--no-progress", is_flag=True)
@click.pass_context
def baseline_data_cmd(ctx, out, fr, fr_options, sources, part, no_ladder, detector, seed, no_progress) -> None:
    """Build a labelled set (BaselineSet folder OUT) from photos."""
    import numpy as np

    from fiqa_bench.training.baselines import make_baseline_set

    data, folder = make_baseline_set(
        out,
        fr=fr,
        fr_options=_key_values(fr_options, "--fr-option"),
        sources=list(sources),
        part=part,
        ladder=not no_ladder,
        detector=detector,
        seed=seed,
        command=_baseline_command(ctx),
        progress=not no_progress,
    )
    click.echo(
        f"{len(data)} rows ({data.meta['photos']} photos, {len(data.meta['skipped'])} without a face) of "
        f"{np.unique(data.data.identities).size} identities -> {folder}"
    )


@train_baseline.command("svm", short_help="Fit an SVR from a set's embeddings to its Eq. 1 labels.")
@_training_options
@click.option("--C", "C", default=0.3, show_default=True, type=_FloatRange(min=0, min_open=True), help="SVR C.")
@click.option(
    "--gamma",
    default=1.0,
    show_default=True,
    type=_FloatRange(min=0, min_open=True),
    help="RBF gamma (on L2-normalised embeddings).",
)
@click.option("--epsilon", default=0.05, show_default=True, type=_FloatRange(min=0))
@click.option(
    "--max-rows",
    default=2500,
    show_default=True,
    type=_IntRange(min=1),
    help="Rows fitted at most (drawn with the seed).",
)
@click.option("--search", is_flag=True, help="Pick C and gamma on the held-out identities first.")
@click.pass_context
def baseline_svm_cmd(ctx, data, out, seed, val_fraction, C, gamma, epsilon, max_rows, search) -> None:
    """SVR (RBF) from the set's embeddings to its Eq. 1 labels (methods/svm.py; one model per backbone)."""
    from fiqa_bench.training.baselines import train_baseline_svm

    _train_on_set(
        ctx,
        data,
        out,
        train_baseline_svm,
        C=C,
        gamma=gamma,
        epsilon=epsilon,
        max_rows=max_rows,
        val_fraction=val_fraction,
        seed=seed,
        search=search,
    )


@train_baseline.command("rqs", short_help="Train a two-stage RankSVM on hand-crafted features.")
@_training_options
@click.option(
    "--C",
    "C",
    default=None,
    type=_FloatRange(min=0, min_open=True),
    help="Stage-1 RankSVM C (default: chosen on the held-out identities from 0.001, 0.01, 0.1).",
)
@click.option(
    "--C2", "C2", default=1.0, show_default=True, type=_FloatRange(min=0, min_open=True), help="Stage-2 RankSVM C."
)
@click.option(
    "--margin",
    default=0.1,
    show_default=True,
    type=_FloatRange(min=0),
    help="Eq. 1 label gap making two photos an ordered pair.",
)
@click.option(
    "--per-identity", default=30, show_default=True, type=_IntRange(min=1), help="Eq. 1 pairs per identity at most."
)
@click.option(
    "--features-cache",
    default=None,
    type=click.Path(dir_okay=False),
    help=".npz keeping the set's hand-crafted features between runs.",
)
@click.pass_context
def baseline_rqs_cmd(ctx, data, out, seed, val_fraction, C, C2, margin, per_identity, features_cache) -> None:
    """Two-stage linear RankSVM on HoG, Gabor, Gist and LBP features (methods/rqs.py)."""
    from fiqa_bench.training.baselines import train_baseline_rqs

    _train_on_set(
        ctx,
        data,
        out,
        train_baseline_rqs,
        C=C,
        C2=C2,
        margin=margin,
        per_identity=per_identity,
        val_fraction=val_fraction,
        seed=seed,
        features_cache=features_cache,
    )


@train_baseline.command("faceqnet", short_help="Train a FaceQnet CNN and export it to ONNX (needs torch).")
@_training_options
@click.option("--net", default="mbv2-t4-w0.35-112", show_default=True)
@click.option("--epochs", default=18, show_default=True, type=_IntRange(min=1))
@click.option("--lr", default=0.01, show_default=True, type=_FloatRange(min=0, min_open=True))
@click.option("--lr-step", default=6, show_default=True, type=_IntRange(min=1))
@click.option("--batch-size", default=64, show_default=True, type=_IntRange(min=1))
@click.option("--loss", type=click.Choice(["l1", "mse"]), default="l1", show_default=True)
@click.option("--no-hflip", is_flag=True, help="No mirror augmentation.")
@click.option("--threads", default=1, show_default=True, type=_IntRange(min=1), help="torch threads.")
@click.option(
    "--checkpoints",
    default=None,
    type=click.Path(file_okay=False),
    help="Checkpoint folder; an interrupted training resumes from it.",
)
@click.option("--no-progress", is_flag=True)
@click.pass_context
def baseline_faceqnet_cmd(
    ctx,
    data,
    out,
    seed,
    val_fraction,
    net,
    epochs,
    lr,
    lr_step,
    batch_size,
    loss,
    no_hflip,
    threads,
    checkpoints,
    no_progress,
) -> None:
    """CNN regressing FaceQnet labels, exported to ONNX (methods/faceqnet.py); needs torch."""
    from fiqa_bench.training.baselines import train_baseline_faceqnet

    _train_on_set(
        ctx,
        data,
        out,
        train_baseline_faceqnet,
        net=net,
        epochs=epochs,
        lr=lr,
        lr_step=lr_step,
        batch_size=batch_size,
        loss=loss,
        hflip=not no_hflip,
        val_fraction=val_fraction,
        seed=seed,
        threads=threads,
        checkpoint_dir=checkpoints,
        progress=not no_progress,
    )


@train_baseline.command("evaluate", short_help="Measure methods on a set: Spearman and ladder order.")
@click.argument("data", type=click.Path(exists=True, file_okay=False))
@click.option("--methods", default="all", show_default=True, help="Comma-separated registered method names, or 'all'.")
@click.option(
    "--svm",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="SVM model (default: the bundled one for the set's backbone).",
)
@click.option("--rqs", default=None, type=click.Path(exists=True, dir_okay=False), help="RQS weights.")
@click.option("--faceqnet", default=None, type=click.Path(exists=True, dir_okay=False), help="FaceQnet ONNX.")
@click.option(
    "--tinyfq",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="tinyFQnet ONNX (default: the bundled weights/tinyfq.onnx; skipped while it is absent).",
)
@click.option("--out", "-o", default=None, type=click.Path(dir_okay=False), help="Write the results as JSON.")
@click.option("--no-progress", is_flag=True)
@click.pass_context
def baseline_evaluate_cmd(ctx, data, methods, svm, rqs, faceqnet, tinyfq, out, no_progress) -> None:
    """Spearman with the Eq. 1 labels and ladder order (clean > light > medium > strong) of methods on a set.

    Inputs: svm scores the set's stored embeddings (its model must be for the set's backbone); methods taking
    112x112 RGB aligned crops (blur, rqs, faceqnet) the stored crops; every other method (jpeg, pose, combination
    take the decoded photo with its landmarks; tinyfq 64x64 crops) scores faces rebuilt from the set's source photos
    (decoded, the row's degradation replayed, landmarks stored in the set or, for older sets, detected again),
    checked against the stored crops, so each method sees what `fiqa-bench run` would give it. jpeg needs the
    photo's own 8x8 JPEG grid and pose the landmarks, which the aligned crops do not keep. Methods whose weights are
    absent (tinyfq before weights/tinyfq.onnx is trained) or whose source photos are missing are skipped, with
    the reason.
    """
    from fiqa_bench.data.atomic import write_json
    from fiqa_bench.training.baselines import evaluate, evaluation_methods
    from fiqa_bench.training.export import json_safe

    dataset, desc = _load_set(data)
    weights = {k: v for k, v in (("svm", svm), ("rqs", rqs), ("faceqnet", faceqnet), ("tinyfq", tinyfq)) if v}
    chosen, skipped = evaluation_methods(dataset, methods, weights)
    for name, why in skipped.items():
        hint = (
            f" (evaluate: --{name} PATH)"
            if name in ("svm", "rqs", "faceqnet", "tinyfq") and "weights" in why or name == "svm" and "model" in why
            else ""
        )
        click.echo(f"skipped {name}: {why}{hint}", err=True)
    results = evaluate(dataset, chosen, progress=not no_progress)
    click.echo(f"{'method':<12} {'spearman':>8} {'clean':>7} {'ladder':>7} {'photos':>7}  input")
    for name, r in results.items():
        click.echo(
            f"{name:<12} {r['spearman_eq1_all']:>8.3f} {r['spearman_eq1_clean']:>7.3f} "
            f"{r['ladder']['pairs']:>7.3f} {r['ladder']['photos']:>7.3f}  {r['input']}"
        )
    if out:
        write_json(
            out,
            json_safe(
                {
                    "command": _baseline_command(ctx),
                    "data": desc,
                    "rows": len(dataset),
                    "results": results,
                    "skipped": skipped,
                }
            ),
        )
        click.echo(f"results: {out}")


#: The commands this module adds to ``fiqa-bench``.
COMMANDS = (label_cmd, train_cmd, train_baseline)
