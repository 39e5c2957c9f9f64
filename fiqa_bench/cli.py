"""The ``fiqa-bench`` command. A thin click layer: every command builds a config and calls library code."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from . import __version__
from .errors import FiqaBenchError


class _CleanErrors(click.Group):
    """Print fiqa-bench errors as one clear line (file/line/adapter named) instead of a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except FiqaBenchError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted: finished work is cached; run the same command again to resume", err=True)
            sys.exit(130)


@click.group(cls=_CleanErrors)
@click.version_option(__version__, prog_name="fiqa-bench")
@click.option("-v", "--verbose", is_flag=True, help="Log progress details.")
def main(verbose: bool) -> None:
    """Benchmark face image quality assessment methods by how much they help face recognition."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")


@main.command("list")
@click.option("--kind", type=click.Choice(["method", "backbone", "protocol"]), default=None,
              help="Only this kind of plugin.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_cmd(kind: str | None, as_json: bool) -> None:
    """Every registered method, FR backbone and protocol with its card (loads no weights)."""
    from . import registry

    kinds = [kind] if kind else ["method", "backbone", "protocol"]
    payload: dict = {}
    failed = []
    for k in kinds:
        payload[k] = {}
        for name, entry in registry.entries(k).items():
            try:
                cls = registry.load_class(k, name)
                card = cls.card
                payload[k][entry.display_name(cls)] = {"distribution": entry.distribution, "card": card.lines()}
            except FiqaBenchError as exc:
                failed.append((k, name, str(exc)))
    if as_json:
        click.echo(json.dumps({**payload, "failed": failed}, indent=2))
    else:
        for k in kinds:
            click.secho(f"{k}s", bold=True)
            for name, info in payload[k].items():
                click.echo(f"  {name}" + (f"  [{info['distribution']}]" if info["distribution"] else ""))
                for label, value in info["card"]:
                    click.echo(f"      {label:<9} {value}")
            click.echo()
        for k, name, msg in failed:
            click.secho(f"FAILED to load {k} {name!r}: {msg}", fg="red", err=True)
    if failed:
        sys.exit(1)


@main.command("run")
@click.option("--protocol", "-p", required=True,
              help="Protocol name (lfw, lfw-templates, ijbb, ijbc, ytf), NAME:ARG, or a folder written by `prepare`.")
@click.option("--fr", "backbone", required=True, help="FR backbone: dlib, r50, r100, mbf or onnx:PATH.")
@click.option("--fr-option", "fr_options", multiple=True, metavar="KEY=VALUE",
              help="Backbone constructor option, e.g. normalisation=mobilefacenet for onnx:PATH (repeatable).")
@click.option("--method", "-m", default=None, help="Quality method (see `fiqa-bench list`).")
@click.option("--data", "-d", default=None, type=click.Path(file_okay=False),
              help="Dataset root (default: downloaded/cached where the protocol allows).")
@click.option("--selection", type=click.Choice(["top1", "topk", "weighted", "all"]), default="top1",
              show_default=True, help="top1 = the paper: keep the best image per template/video.")
@click.option("--k", default=3, show_default=True, help="Images kept per template for --selection topk.")
@click.option("--seed", default=0, show_default=True, help="Seed for random methods.")
@click.option("--flip", is_flag=True, help="Flip test: add the features of the mirrored image.")
@click.option("--detector", type=click.Choice(["yunet", "scrfd"]), default="yunet", show_default=True,
              help="Face detector used where the protocol gives no landmarks.")
@click.option("--skip-bad-images", is_flag=True, help="Skip (and count) missing/corrupt images instead of stopping.")
@click.option("--on-no-face", type=click.Choice(["error", "skip", "center"]), default="error", show_default=True,
              help="An image with no detected face: stop, skip (counted) or align on a centred template (counted).")
@click.option("--fpr-reading", type=click.Choice(["conservative", "nearest"]), default="conservative",
              show_default=True, help="How TPR@FPR is read off the ROC (nearest = insightface).")
@click.option("--batch-size", default=32, show_default=True)
@click.option("--workers", default=2, show_default=True, help="Threads decoding/detecting images.")
@click.option("--out", "-o", default="results", show_default=True, type=click.Path(file_okay=False),
              help="Folder for results files and the report.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def run_cmd(protocol, backbone, fr_options, method, data, selection, k, seed, flip, detector, skip_bad_images, on_no_face,
            fpr_reading, batch_size, workers, out, no_progress) -> None:
    """Score, select, embed and evaluate; write a results file and refresh the report in OUT."""
    from .report import write_report
    from .runner import RunConfig, run

    options = {}
    for item in fr_options:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--fr-option")
        options[key] = value
    cfg = RunConfig(protocol=protocol, backbone=backbone, backbone_options=tuple(sorted(options.items())),
                    method=method, data=data, selection=selection, k=k,
                    seed=seed, flip=flip, detector=detector, on_bad_image="skip" if skip_bad_images else "error",
                    on_no_face=on_no_face, fpr_mode=fpr_reading, batch_size=batch_size, workers=workers, out=out,
                    progress=not no_progress)
    path, record = run(cfg)
    click.echo(_summary(record))
    click.echo(f"results: {path}")
    for p in write_report(Path(out)):
        click.echo(f"report:  {p}")


def _summary(record: dict) -> str:
    m = record["metrics"]
    c = record["counts"]
    head = (f"{record['protocol']['name']} | {record['backbone']['name']} | {record['method']['name']} | "
            f"{record['config']['selection']}")
    lines = [head]
    if "tpr_at_fpr" in m:
        lines.append("  TPR@FPR: " + "  ".join(
            f"{k}={'—' if v is None else f'{100 * v:.2f}%'}" for k, v in m["tpr_at_fpr"].items()))
    if "accuracy" in m:
        a = m["accuracy"]
        lines.append(f"  accuracy: {100 * a['mean']:.2f}% ± {100 * a['std']:.2f}% ({len(a['folds'])} folds)")
    lines.append(f"  images {c['images']}, templates {c['templates']}, pairs scored {c['pairs_scored']}, "
                 f"embedded {c['images_embedded']} ({c['images_embedded_new']} new), skipped {c['skipped']}")
    if c.get("skipped_reasons"):
        lines.append("  skipped: " + ", ".join(f"{r}: {n}" for r, n in c["skipped_reasons"].items()))
    return "\n".join(lines)


@main.command("report")
@click.argument("results_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "-o", default=None, type=click.Path(file_okay=False), help="Default: RESULTS_DIR.")
def report_cmd(results_dir, out) -> None:
    """Render Markdown and HTML tables (laid out like the paper's) from a folder of results files."""
    from .report import write_report

    for p in write_report(Path(results_dir), Path(out) if out else None):
        click.echo(str(p))


@main.command("prepare")
@click.argument("src", type=click.Path(exists=True, file_okay=False))
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--name", required=True, help="Benchmark name (file prefix in meta/, protocol name in results).")
@click.option("--seed", default=0, show_default=True)
@click.option("--layout", type=click.Choice(["ijb", "ytf", "both"]), default="ijb", show_default=True)
@click.option("--templates-per-identity", default=2, show_default=True)
@click.option("--min-images", default=4, show_default=True, help="Identities with fewer photos are excluded (listed).")
@click.option("--impostors", default="all", show_default=True, help="'all' or a number of sampled impostor pairs.")
@click.option("--degrade", "degrade_fraction", default=0.0, show_default=True,
              help="Fraction of each template's photos to degrade (blur, downscale, JPEG, noise, occlusion).")
@click.option("--detector", type=click.Choice(["yunet", "scrfd"]), default="yunet", show_default=True)
@click.option("--part", type=click.Choice(["all", "train", "eval"]), default="all", show_default=True,
              help="Keep only identities of this part of the train/eval identity split (fiqa_bench.splits).")
@click.option("--no-progress", is_flag=True)
def prepare_cmd(src, out, name, seed, layout, templates_per_identity, min_images, impostors, degrade_fraction,
                detector, part, no_progress) -> None:
    """Turn a folder of identity sub-folders of photos into an IJB- (and/or YTF-) layout benchmark."""
    from .protocols.prepare import prepare_benchmark

    summary = prepare_benchmark(Path(src), Path(out), name=name, seed=seed, layout=layout,
                                templates_per_identity=templates_per_identity, min_images=min_images,
                                impostor_pairs=int(impostors) if str(impostors).isdigit() else impostors,
                                degrade_fraction=degrade_fraction, detector=detector, part=part,
                                progress=not no_progress)
    click.echo(json.dumps(summary, indent=2, default=str))


@main.command("label")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--fr", "backbone", required=True, help="FR backbone whose embeddings define the labels (Eq. 1).")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Folder for the labelled set.")
@click.option("--size", default=64, show_default=True, help="Side of the aligned crops stored for training.")
@click.option("--min-images", default=2, show_default=True, help="Identities with fewer photos are left out.")
@click.option("--max-images", default=None, type=int, help="Identities with more photos are left out.")
@click.option("--part", type=click.Choice(["all", "train", "eval"]), default="train", show_default=True,
              help="Identities of this part of the train/eval split (fiqa_bench.splits).")
@click.option("--degraded-copies", default=1, show_default=True,
              help="Seeded degraded copies per photo, labelled by the same Eq. 1, so labels cover low quality.")
@click.option("--seed", default=0, show_default=True)
@click.option("--pad", default=0.0, show_default=True, help="Padding before detection (0.25 for tight crops like LFW).")
@click.option("--detector", type=click.Choice(["yunet", "scrfd"]), default="yunet", show_default=True)
@click.option("--no-progress", is_flag=True)
def label_cmd(sources, backbone, out, size, min_images, max_images, part, degraded_copies, seed, pad, detector,
              no_progress) -> None:
    """Recognition-oriented quality labels (Eq. 1) for folders of identity sub-folders of photos.

    The label of a photo is the cosine between its embedding and the centre of its identity's other embeddings.
    Writes the aligned crops, labels, identities and the degradation record of each copy to OUT.
    """
    import numpy as np

    from collections import Counter

    from .splits import in_part
    from .training.dataset import build_training_set, images_by_identity_folder

    paths, identities = [], []
    for src in sources:
        p, ids = images_by_identity_folder(src, min_images=min_images)
        counts = Counter(ids)
        keep = [i for i, ident in enumerate(ids)
                if in_part(ident, part) and (max_images is None or counts[ident] <= max_images)]
        tag = "/".join(Path(src).resolve().parts[-2:])
        paths += [p[i] for i in keep]
        identities += [f"{tag}/{ids[i]}" for i in keep]  # identities from different sources never merge
    ts = build_training_set(paths, identities, backbone=backbone, detector=detector, size=size,
                            degraded_copies=degraded_copies, seed=seed, pad=pad, progress=not no_progress)
    folder = ts.save(out)
    labels = np.asarray(ts.labels)
    click.echo(f"{len(labels)} labelled crops of {len(set(map(str, ts.identities)))} identities -> {folder}")


@main.command("train")
@click.argument("dataset", type=click.Path(exists=True, file_okay=False))
@click.option("--net", default="tinyfqnet", show_default=True, help="tinyfqnet or a Table 6 network name.")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="Exported ONNX file.")
@click.option("--epochs", default=17, show_default=True)
@click.option("--lr", default=0.01, show_default=True)
@click.option("--lr-step", default=5, show_default=True)
@click.option("--batch-size", default=1024, show_default=True)
@click.option("--weight-decay", default=1e-4, show_default=True)
@click.option("--loss", type=click.Choice(["l1", "mse"]), default="l1", show_default=True)
@click.option("--sampling", type=click.Choice(["none", "random", "smooth"]), default="smooth", show_default=True)
@click.option("--min-images", default=2, show_default=True, help="Identity filter of the balanced sampling.")
@click.option("--val-fraction", default=0.1, show_default=True, help="Fraction of identities held out.")
@click.option("--seed", default=0, show_default=True)
@click.option("--checkpoints", default=None, type=click.Path(file_okay=False),
              help="Checkpoint folder (default: beside OUT); an interrupted training resumes from it.")
@click.option("--max-steps", default=None, type=int, help="Stop after this many steps (resumable).")
@click.option("--no-progress", is_flag=True)
def train_cmd(dataset, net, out, epochs, lr, lr_step, batch_size, weight_decay, loss, sampling, min_images,
              val_fraction, seed, checkpoints, max_steps, no_progress) -> None:
    """Train a quality network on a labelled set (from `fiqa-bench label`) and export it to ONNX (needs torch)."""
    from .training.dataset import TrainingSet
    from .training.export import save_trained
    from .training.train import train, training_card

    ts = TrainingSet.load(dataset)
    ckpt = Path(checkpoints) if checkpoints else Path(out).with_suffix(".checkpoints")
    result = train(ts, net=net, epochs=epochs, lr=lr, lr_step=lr_step, batch_size=batch_size,
                   weight_decay=weight_decay, loss=loss, seed=seed, val_fraction=val_fraction,
                   sampling=None if sampling == "none" else sampling, sampling_options={"min_images": min_images},
                   checkpoint_dir=ckpt, progress=not no_progress, max_steps=max_steps)
    if not result["completed"]:
        click.echo(f"stopped at step {result['global_step']} (checkpoint {result['checkpoint']}); run again to resume")
        return
    card = training_card(result, command="fiqa-bench " + " ".join(sys.argv[1:]), data=str(dataset),
                         backbone=str(ts.meta.get("backbone", "")) if hasattr(ts, "meta") else "")
    path = save_trained(result, out, card)
    if sampling != "none":  # Fig. 5: the label histogram before and after balanced sampling
        import numpy as np

        from .training.sampling import plot_histograms, sample_indices

        labels = np.asarray(ts.labels)
        keep = sample_indices(labels, np.asarray(ts.identities), strategy=sampling, min_images=min_images, seed=seed)
        plot_histograms(labels, labels[keep], Path(out).with_suffix(".sampling.png"))
    click.echo(json.dumps({"onnx": str(path), "validation": result["val"]}, indent=2, default=str))


if __name__ == "__main__":  # pragma: no cover
    main()
