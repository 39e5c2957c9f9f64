"""``faceqnet``: FaceQnet (Hernandez-Ortega et al. 2019), a CNN regressing a face's distance to its best photo.

Hernandez-Ortega, Galbally, Fierrez, Haraksim and Beslay, "FaceQnet: Quality Assessment for Face Recognition
based on Deep Learning" (ICB 2019), label each training face with how close its FR embedding lies to the
embedding of its identity's best image, chosen as the most ICAO-compliant photo by commercial software, and train
a CNN to predict that label from the raw face. Our re-training
(:func:`fiqa_bench.training.baselines.faceqnet.train_baseline_faceqnet`):

* **reference photo** (ICAO software is not available): the identity's undegraded photo with the highest Eq. 1
  label, i.e. the photo closest to the centre of the identity's other photos under the labelling backbone;
* **label** ``q = 1 - ||f/|f| - r/|r| || / 2`` in [0, 1]: one minus half the Euclidean distance between the
  L2-normalised embeddings of the face and of the reference (the reference photo itself is not a training row);
* **network**: FaceQnet fine-tuned a ResNet-50 (the Peng et al. paper lists 23M parameters and 3.9 GFLOPs,
  Table 2). Training ResNet-50 is out of reach on a CPU, so we train ``mbv2-t4-w0.35-112`` (MobileNetV2 t=4,
  w=0.35, 315k parameters, :mod:`fiqa_bench.training.nets`) from scratch on the 112x112 aligned crop; this is a
  stated deviation in size, not in what is learned.

Inference: 112x112 RGB ArcFace-aligned crop, ``(x - 127.5) / 128``, NCHW float32, the network's sigmoid output in
(0, 1) on onnxruntime (no torch); higher = better. Weights: the bundled ``weights/faceqnet.onnx`` (training card
``weights/faceqnet.json``; its three largest weight tensors are stored as float16, see the card's ``float16``) or
``FaceQnet(weights=PATH)``, any file honouring :mod:`fiqa_bench.models.onnx_contract` for 112x112 input. The released
FaceQnet Keras models (224x224, TensorFlow) are not loaded here.
"""

from __future__ import annotations

from pathlib import Path

from fiqa_bench.api.cards import InputSpec, MethodCard, Weights
from fiqa_bench.models.quality_net import ExportedQualityNet, bundled_weights_path

SIZE = 112
BUNDLED = "faceqnet.onnx"


def bundled_weights() -> Path:
    """Where the bundled weights live inside the installed package (the file may not exist yet)."""
    return bundled_weights_path(BUNDLED)


class FaceQnet(ExportedQualityNet):
    """A CNN on 112x112 aligned RGB crops predicting closeness to the identity's best photo; (0, 1), higher = better."""

    card = MethodCard(
        name="faceqnet",
        version="1",
        summary=(
            "FaceQnet re-trained: CNN regressing 1 - |f - f_ref| / 2 (L2-normalised embeddings) to the identity's "
            "best photo (highest Eq. 1 label, proxy for ICAO); MobileNetV2 t4 w0.35 on 112x112 aligned RGB "
            "instead of ResNet-50; (x - 127.5) / 128; sigmoid output"
        ),
        licence=(
            "code MIT; the bundled weights also carry the terms of their training data and labelling "
            "backbone, named in weights/faceqnet.json"
        ),
        paper=(
            "J. Hernandez-Ortega, J. Galbally, J. Fierrez, R. Haraksim, L. Beslay, 'FaceQnet: Quality "
            "Assessment for Face Recognition based on Deep Learning', ICB 2019"
        ),
        input=InputSpec("aligned", SIZE, "RGB"),
        higher_is_better=True,
        score_range="(0, 1)",
        weights=Weights(
            filename=BUNDLED,
            bundled=True,
            note="bundled in fiqa_bench/methods/weights/ with its training card faceqnet.json; or "
            "weights=PATH (an ONNX file from fiqa_bench.training.export, 112x112 input)",
        ),
    )

    BUNDLED = BUNDLED
    MISSING_HINT = "not trained yet: `fiqa-bench train-baseline faceqnet`"
    DEFAULT_BATCH = 64
