"""Any ArcFace-style ONNX embedder on 112x112 aligned crops (``onnx:PATH``), run with onnxruntime.

Models differ in three ways that silently change accuracy if guessed wrong, so each is explicit: the pixel
normalisation, the channel order, and whether the batch dimension is fixed (the shared MobileFaceNet export
takes exactly one image). Flip test adds the embeddings of the image and its horizontal mirror, as insightface
does in its evaluations.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fiqa_bench.api import Backbone
from fiqa_bench.api.cards import BackboneCard, InputSpec, Weights
from fiqa_bench.errors import AdapterError

_IMAGENET_MEAN = (0.485, 0.456, 0.406)  # RGB
_IMAGENET_STD = (0.229, 0.224, 0.225)

#: name -> (human-readable formula, per-channel mean and std in 0..255 units, RGB order)
NORMALISATIONS: dict[str, tuple[str, tuple[float, ...], tuple[float, ...]]] = {
    "arcface": ("(x - 127.5) / 127.5", (127.5,) * 3, (127.5,) * 3),
    "mobilefacenet": ("(x - 127.5) / 128", (127.5,) * 3, (128.0,) * 3),
    "imagenet": (
        "(x / 255 - mean) / std, ImageNet mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)",
        tuple(255.0 * m for m in _IMAGENET_MEAN),
        tuple(255.0 * s for s in _IMAGENET_STD),
    ),
}


#: Normalisation of known model files (by sha256), used when none is given. The shared MobileFaceNet
#: (foamliu architecture, 128-d, batch fixed at 1) was trained with torchvision's ImageNet normalisation; on LFW
#: View-2 (YuNet landmarks, 10-fold) "imagenet" beats "mobilefacenet" (x - 127.5) / 128 for every detector setup
#: measured (e.g. 99.28% vs 99.05%), so it is the default for that file.
KNOWN_NORMALISATION = {
    "f055d9c9a4d826d198c42666590fdefa0fdc1374a75ccb6306c3d1b1bf8f74c5": "imagenet",
}
DEFAULT_NORMALISATION = "arcface"


class PerInstanceCard:
    """``cls.card`` is the static card (cheap, for listing); ``instance.card`` describes the actual model file
    (its sha256, input size, embedding width), so results record exactly which weights made them."""

    def __init__(self, card: BackboneCard):
        self.card = card

    def __get__(self, obj: Any, objtype: Any = None) -> BackboneCard:
        return self.card if obj is None else obj._instance_card()


def make_session(path: Path):
    """An onnxruntime session on the run's device (:func:`fiqa_bench.device.onnx_providers`: CPU, or CUDA with
    ``--device cuda``) with ``thread_count()`` intra-op threads; errors name the file."""
    from fiqa_bench.backbones import thread_count
    from fiqa_bench.device import onnx_providers

    try:
        import onnxruntime as ort
    except ImportError as exc:  # a core dependency, but say what to do
        from fiqa_bench.errors import MissingDependencyError

        raise MissingDependencyError("onnxruntime is needed for ONNX backbones: pip install onnxruntime") from exc
    if not path.is_file():
        raise AdapterError(f"ONNX model not found: {path}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = thread_count()
    opts.inter_op_num_threads = 1
    # idle intra-op threads sleep instead of spinning: a spinning pool took the cores the image decoders
    # share with it (issue 12: twice the quality-stage throughput on 2 cores); results are unchanged
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=onnx_providers())
    except Exception as exc:
        raise AdapterError(f"{path}: cannot load as an ONNX model ({type(exc).__name__}: {exc})") from exc


class OnnxArcFace(Backbone):
    """An ArcFace-style ONNX model: aligned 112x112 crops in, one embedding per crop out."""

    OPTION_HELP = {
        "normalisation": "arcface | mobilefacenet | imagenet (default: known per file sha256, else arcface)",
        "flip": "add the mirrored image's features (or --flip)",
        "batch_size": "images per onnxruntime call",
        "colour": "RGB or BGR: the colour order the model expects",
    }

    argument: ClassVar[str | None] = "PATH"
    card = PerInstanceCard(
        BackboneCard(
            name="onnx",
            version="1",
            summary="any ArcFace-style ONNX face embedder on 5-point aligned crops (onnxruntime, CPU)",
            licence="that of the model file",
            input=InputSpec("aligned", 112, "RGB"),
            normalisation="arcface (x - 127.5) / 127.5 unless the file is known (the shared MobileFaceNet: imagenet) "
            "or another is chosen: mobilefacenet (x - 127.5) / 128, imagenet (x / 255 - mean) / std",
            embedding_dim=512,
            weights=Weights("PATH", note="the ONNX file given as onnx:PATH"),
            capabilities=("raw_features",),  # the model's output as it is: ArcFace-style exports do not L2-normalise
        )
    )

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        normalisation: str | None = None,
        flip: bool = False,
        batch_size: int = 32,
        colour: str = "RGB",
    ):
        if normalisation is not None and normalisation not in NORMALISATIONS:
            raise ValueError(f"normalisation must be one of {sorted(NORMALISATIONS)}, got {normalisation!r}")
        if colour not in ("RGB", "BGR"):
            raise ValueError(f"colour must be 'RGB' or 'BGR', got {colour!r}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.path = Path(path).expanduser() if path is not None else None
        self._normalisation = normalisation
        self.flip = bool(flip)
        self.batch_size = int(batch_size)
        self.colour = colour
        self._session: Any = None  # an onnxruntime InferenceSession, made on first use
        self._card: BackboneCard | None = None

    @property
    def normalisation(self) -> str:
        """The one given, else the known one for this file (by sha256), else ``arcface``."""
        if self._normalisation is None:
            from fiqa_bench.data.download import file_sha256

            self._normalisation = KNOWN_NORMALISATION.get(file_sha256(self.model_path()), DEFAULT_NORMALISATION)
        return self._normalisation

    # -- model ---------------------------------------------------------------------------------------------------

    def model_path(self) -> Path:
        """The ONNX file (subclasses resolve pinned downloads here)."""
        if self.path is None:
            raise AdapterError("onnx backbone needs a model file: use onnx:PATH")
        return self.path

    def _load(self) -> None:
        if self._session is not None:
            return
        session = make_session(self.model_path())
        inp = session.get_inputs()[0]
        shape = list(inp.shape)
        if len(shape) != 4:
            raise AdapterError(f"{self.model_path()}: expected a 4-d image input, got shape {shape}")
        self._nhwc = shape[3] == 3 and shape[1] != 3
        h, w = (shape[1], shape[2]) if self._nhwc else (shape[2], shape[3])
        self._size = h if isinstance(h, int) and h == w else 112
        self._fixed_batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
        self._input_name = inp.name
        out = session.get_outputs()[0].shape
        dims = [d for d in out[1:] if isinstance(d, int)]
        self._dim = int(np.prod(dims)) if dims and len(dims) == len(out) - 1 else None
        self._session = session

    def _instance_card(self) -> BackboneCard:
        if self._card is None:
            from fiqa_bench.data.download import file_sha256

            self._load()
            base = type(self).card
            path = self.model_path()
            weights = base.weights or Weights(path.name)
            weights = dataclasses.replace(weights, filename=path.name, sha256=file_sha256(path))
            dim = self._dim if self._dim is not None else self._probe_dim()
            self._card = dataclasses.replace(
                base,
                input=InputSpec("aligned", self._size, self.colour),
                normalisation=f"{self.normalisation}: {NORMALISATIONS[self.normalisation][0]}",
                embedding_dim=dim,
                weights=weights,
            )
        return self._card

    def _probe_dim(self) -> int:
        blank = np.zeros((1, self._size, self._size, 3), np.uint8)
        return int(self._run(self._preprocess(blank)).shape[1])

    def identity(self) -> str:
        card = self.card
        assert card.weights is not None  # the instance card names the model file (_instance_card)
        return (
            f"{card.name}-{card.version}-{self.normalisation}-{self.colour}-flip{int(self.flip)}"
            f"-sha256-{card.weights.sha256}-{card.card_hash()}"
        )

    # -- inference -----------------------------------------------------------------------------------------------

    def _preprocess(self, images: np.ndarray) -> np.ndarray:
        _, mean_values, std_values = NORMALISATIONS[self.normalisation]
        mean, std = np.asarray(mean_values, np.float32), np.asarray(std_values, np.float32)
        if self.colour == "BGR":
            mean, std = mean[::-1], std[::-1]
        x = (images.astype(np.float32) - mean) / std
        return np.ascontiguousarray(x if self._nhwc else x.transpose(0, 3, 1, 2))

    def _run(self, x: np.ndarray, step: int | None = None) -> np.ndarray:
        n = x.shape[0]
        step = self._fixed_batch or step or self.batch_size
        outs = []
        for start in range(0, n, step):
            chunk = x[start : start + step]
            m = chunk.shape[0]
            if self._fixed_batch and m < self._fixed_batch:  # pad a short last chunk to the fixed batch
                pad = np.zeros((self._fixed_batch - m, *chunk.shape[1:]), chunk.dtype)
                chunk = np.concatenate([chunk, pad])
            y = self._session.run(None, {self._input_name: chunk})[0]
            outs.append(np.asarray(y, np.float32).reshape(chunk.shape[0], -1)[:m])
        return np.concatenate(outs) if outs else np.zeros((0, self._dim or 0), np.float32)

    def embed(self, images: Any) -> np.ndarray:
        """Raw (not L2-normalised) float32 embeddings (N, D) of aligned uint8 crops (N, size, size, 3)."""
        self._load()
        arr = np.asarray(images)
        if arr.ndim == 3 and arr.shape[-1] == 3:
            arr = arr[None]
        if arr.ndim != 4 or arr.shape[1:] != (self._size, self._size, 3):
            raise AdapterError(
                f"{self.card.name}: expected aligned crops (N, {self._size}, {self._size}, 3), got shape {arr.shape}"
            )
        n = arr.shape[0]
        if n == 0:
            return np.zeros((0, self.card.embedding_dim), np.float32)
        x = self._preprocess(arr)
        if not self.flip:
            return self._run(x)
        mirrored = x[..., ::-1] if not self._nhwc else x[:, :, ::-1, :]
        if self._fixed_batch:
            return self._run(x) + self._run(np.ascontiguousarray(mirrored))
        # dynamic batch: each image and its mirror go through the network in the same batch
        out = []
        for start in range(0, n, self.batch_size):
            a, b = x[start : start + self.batch_size], mirrored[start : start + self.batch_size]
            y = self._run(np.concatenate([a, b]), step=2 * len(a))
            out.append(y[: len(a)] + y[len(a) :])
        return np.concatenate(out)
