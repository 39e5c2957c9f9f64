"""``faceqnet``: FaceQnet (Hernandez-Ortega et al. 2019), a CNN regressing a face's distance to its best photo.

Hernandez-Ortega, Galbally, Fierrez, Haraksim and Beslay, "FaceQnet: Quality Assessment for Face Recognition
based on Deep Learning" (ICB 2019), label each training face with how close its FR embedding lies to the
embedding of its identity's best image, chosen as the most ICAO-compliant photo by commercial software, and train
a CNN to predict that label from the raw face. Our re-training
(:func:`fiqa_bench.training.baselines.train_baseline_faceqnet`):

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
``weights/faceqnet.json``) or ``FaceQnet(weights=PATH)``, any file of :func:`fiqa_bench.training.export.export_onnx`
for 112x112 input. The released FaceQnet Keras models (224x224, TensorFlow) are not loaded here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from fiqa_bench.api import QualityMethod
from fiqa_bench.cards import InputSpec, MethodCard, Weights
from fiqa_bench.errors import AdapterError
from fiqa_bench.training.export import INPUT_NAME, NORMALISATION, OUTPUT_NAME, preprocess

SIZE = 112
BUNDLED = "faceqnet.onnx"


def bundled_weights() -> Path:
    from importlib.resources import files

    return Path(str(files("fiqa_bench.methods").joinpath("weights", BUNDLED)))


class FaceQnet(QualityMethod):
    """A CNN on 112x112 aligned RGB crops predicting closeness to the identity's best photo; (0, 1), higher = better."""

    card = MethodCard(
        name="faceqnet",
        version="1",
        summary=(
            "FaceQnet re-trained: CNN regressing 1 - |f - f_ref| / 2 (L2-normalised embeddings) to the identity's "
            "best photo (highest Eq. 1 label, proxy for ICAO); MobileNetV2 t4 w0.35 on 112x112 aligned RGB "
            "instead of ResNet-50; (x - 127.5) / 128; sigmoid output"
        ),
        licence=("code MIT; the bundled weights also carry the terms of their training data and labelling "
                 "backbone, named in weights/faceqnet.json"),
        paper=("J. Hernandez-Ortega, J. Galbally, J. Fierrez, R. Haraksim, L. Beslay, 'FaceQnet: Quality "
               "Assessment for Face Recognition based on Deep Learning', ICB 2019"),
        input=InputSpec("aligned", SIZE, "RGB"),
        higher_is_better=True,
        score_range="(0, 1)",
        weights=Weights(filename=BUNDLED, bundled=True,
                        note="bundled in fiqa_bench/methods/weights/ with its training card faceqnet.json; or "
                             "weights=PATH (an ONNX file from fiqa_bench.training.export, 112x112 input)"),
    )

    def __init__(self, weights: str | os.PathLike | None = None, batch_size: int = 64) -> None:
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.weights = Path(weights).expanduser() if weights is not None else None
        self.batch_size = int(batch_size)
        self._session = None
        self._sha256: str | None = None

    def weights_path(self) -> Path:
        path = self.weights if self.weights is not None else bundled_weights()
        if not path.is_file():
            raise AdapterError(f"faceqnet: weights file not found: {path}"
                               + (" (not trained yet: `fiqa-bench train-baseline faceqnet`)" if self.weights is None
                                  else ""))
        return path

    def _load(self):
        if self._session is not None:
            return self._session
        from fiqa_bench.backbones.onnx_arcface import make_session
        from fiqa_bench.download import file_sha256
        from fiqa_bench.training.export import META_PREFIX

        path = self.weights_path()
        session = make_session(path)
        props = session.get_modelmeta().custom_metadata_map
        meta = {k[len(META_PREFIX):]: v for k, v in props.items() if k.startswith(META_PREFIX)}
        expected = {"input_size": str(SIZE), "normalisation": NORMALISATION, "colour": "RGB", "layout": "NCHW"}
        wrong = {k: meta.get(k) for k, v in expected.items() if meta.get(k) != v}
        if wrong:
            raise AdapterError(f"faceqnet: {path} was not exported for this method's input (metadata {wrong}, "
                               f"expected {expected})")
        names = [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()]
        if names != ([INPUT_NAME], [OUTPUT_NAME]):
            raise AdapterError(f"faceqnet: {path} has inputs/outputs {names}, expected ([{INPUT_NAME!r}], "
                               f"[{OUTPUT_NAME!r}])")
        self._sha256 = file_sha256(path)
        self._session = session
        return session

    def identity(self) -> str:
        self._load()
        return f"{super().identity()}-sha256-{self._sha256[:16]}"

    def score(self, images: Any) -> np.ndarray:
        if len(images) == 0:
            return np.zeros(0, dtype=np.float32)
        batch = np.asarray(images)
        if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[1:] != (SIZE, SIZE, 3):
            raise AdapterError(f"faceqnet: expected uint8 aligned crops (N, {SIZE}, {SIZE}, 3), "
                               f"got {batch.dtype} {batch.shape}")
        session = self._load()
        out = []
        for start in range(0, len(batch), self.batch_size):
            x = preprocess(batch[start:start + self.batch_size])
            out.append(np.asarray(session.run([OUTPUT_NAME], {INPUT_NAME: x})[0], dtype=np.float32).reshape(-1))
        return np.concatenate(out).astype(np.float32)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_session"] = None
        return state
