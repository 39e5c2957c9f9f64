"""Training the paper's three learned baselines (section 4.1): SVM, RQS and FaceQnet.

All three learn from one labelled set, :class:`.data.BaselineSet`, built by :func:`.data.build_baseline_set` from
identity folders of photos (the ``train`` part of :mod:`fiqa_bench.data.splits` only):

* every photo is decoded and its face found (YuNet), then kept as **four versions**: the photo itself and a
  *degradation ladder*, one kind of degradation drawn per photo (:data:`fiqa_bench.data.degradations.DEGRADATIONS`,
  uniformly) applied at the light, medium and strong level with the same free parameters (angle, position,
  seed, sign), on the whole loose photo, drawn from ``numpy.random.default_rng([seed, i])`` for photo ``i``;
* each version gives the 112x112 ArcFace-aligned RGB crop (what ``rqs`` and ``faceqnet`` see), the raw embedding
  of the labelling backbone, and its Eq. 1 label (centres from the undegraded photos, the photo and its copies
  left out of their own centre; :func:`fiqa_bench.training.labels.quality_labels`).

Then (each function writes its weights and a JSON card beside them: command, data, seed, settings, validation):

* :func:`train_baseline_svm`: SVR (RBF) from L2-normalised embeddings to Eq. 1 labels (``methods/svm.py``);
* :func:`train_baseline_rqs`: two-stage linear RankSVM on hand-crafted features from ordered pairs
  (``methods/rqs.py``);
* :func:`train_baseline_faceqnet`: a CNN regressing FaceQnet labels (``methods/faceqnet.py``), needs torch.

**Validation**: the same identities are held out for all three (:func:`fiqa_bench.training.train.identity_split`,
``val_fraction`` of the train-part identities, ``seed``); the shipped models are fitted on the remaining
identities only, so the card's validation numbers describe the shipped model. :func:`evaluate` scores a set
(e.g. the ``eval`` part) with any registered methods and reports Spearman correlations with Eq. 1 labels and how
often the degradation ladders are ranked in order: svm on the stored embeddings, methods taking 112x112 RGB
aligned crops (blur, rqs, faceqnet) on the stored crops, every other input (jpeg, pose and combination take the
decoded photo and its landmarks, tinyfq 64 px crops) on faces rebuilt from the source photos
(:class:`FaceRebuilder`).

One module per concept: :mod:`.data` (the set), :mod:`.svm`, :mod:`.rqs`, :mod:`.faceqnet` (the three trainers)
and :mod:`.evaluate` (scores against Eq. 1 labels and ladders, shared by the trainers' cards). The set's rows come
from :func:`fiqa_bench.training.dataset.label_photos`, the loop tinyFQnet's training set is built by too.

Command line: ``fiqa-bench train-baseline {data,svm,rqs,faceqnet,evaluate}`` (:mod:`fiqa_bench.cli.main`). Only
``faceqnet`` imports torch. Each training command records itself on its card in this form. The shipped weights
were made with these commands (their cards record the earlier ``python -m fiqa_bench.training.baselines``
spelling of the same options), ``S`` being the shared folder (``FIQA_SHARED``)::

    fiqa-bench train-baseline data /tmp/bl/train \
        --fr onnx:S/models/mobilefacenet/mobilefacenet.onnx --fr-option normalisation=mobilefacenet \
        --source S/data/celeba-wild/images:per_identity=15 --source S/data/lfw/lfw:max_images=3,pad=0.25 \
        --part train --seed 0
    fiqa-bench train-baseline svm /tmp/bl/train --out methods/weights/svm-mobilefacenet.npz --search
    fiqa-bench train-baseline rqs /tmp/bl/train --out methods/weights/rqs.npz \
        --features-cache /tmp/bl/train-rqs-features.npz
    fiqa-bench train-baseline faceqnet /tmp/bl/train --out /tmp/bl/run2/faceqnet.onnx \
        --checkpoints /tmp/bl/fq-ckpt2 --loss l1 --lr 0.01 --lr-step 6 --epochs 18
        # then copied with its card to methods/weights/faceqnet.onnx (sha256 7741c26d...), and its three
        # largest weight tensors stored as float16 to fit in 1 MiB (export.float16_weights; card key float16)
    fiqa-bench train-baseline evaluate DATA [--methods all|NAME,...] [--svm PATH] [--rqs PATH] [--faceqnet PATH]
        [--tinyfq PATH] [--out results.json]

An SVM for another backbone (e.g. ``dlib``): the same ``data`` command with ``--fr dlib`` (to another folder),
then ``svm ... --out methods/weights/svm-dlib.npz --search``; ``SVMQuality`` finds it by the backbone's key.
"""

from __future__ import annotations

from fiqa_bench.training.baselines.data import (
    CROP_SIZE,
    LADDER,
    LADDER_RANK,
    BaselineSet,
    Source,
    build_baseline_set,
    card_base,
    collect_photos,
    degradation_ladder,
    describe_set,
    make_baseline_set,
    validation_mask,
)
from fiqa_bench.training.baselines.evaluate import (
    CROP_SPEC_TEXT,
    REBUILD_TOLERANCE,
    FaceRebuilder,
    evaluate,
    evaluation_methods,
    input_route,
    ladder_accuracy,
    spearman,
    validation_scores,
)
from fiqa_bench.training.baselines.faceqnet import faceqnet_labels, train_baseline_faceqnet
from fiqa_bench.training.baselines.rqs import (
    RQS_GRID,
    fit_rqs,
    label_pairs,
    ladder_pairs,
    pair_accuracy,
    rank_svm,
    train_baseline_rqs,
)
from fiqa_bench.training.baselines.svm import SVM_GRID, save_svm, train_baseline_svm, train_svm

__all__ = [
    "CROP_SIZE",
    "CROP_SPEC_TEXT",
    "LADDER",
    "LADDER_RANK",
    "REBUILD_TOLERANCE",
    "RQS_GRID",
    "SVM_GRID",
    "BaselineSet",
    "FaceRebuilder",
    "Source",
    "build_baseline_set",
    "card_base",
    "collect_photos",
    "degradation_ladder",
    "describe_set",
    "evaluate",
    "evaluation_methods",
    "faceqnet_labels",
    "fit_rqs",
    "input_route",
    "label_pairs",
    "ladder_accuracy",
    "ladder_pairs",
    "make_baseline_set",
    "pair_accuracy",
    "rank_svm",
    "save_svm",
    "spearman",
    "train_baseline_faceqnet",
    "train_baseline_rqs",
    "train_baseline_svm",
    "train_svm",
    "validation_mask",
    "validation_scores",
]
