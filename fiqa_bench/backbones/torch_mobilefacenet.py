"""``torch-mobilefacenet``: the shared MobileFaceNet in PyTorch, for quality methods that need more than ``embed``.

The ONNX export hides dropout, intermediate activations, batch-norm statistics and gradients; SER-FIQ, GraFIQs and
FaceQAN need them (:mod:`fiqa_bench.api.capabilities`). The architecture is written here in the module layout of
foamliu/MobileFaceNet (Chen et al., "MobileFaceNets", CCBR 2018), so the shared state dict
``mobilefacenet_state_dict.pt`` (307 entries: ``conv1``, ``dw_conv``, ``features.0-14``, ``conv2``, ``gdconv``,
``conv3``, ``bn``) loads with ``strict=True``:

* ``conv1``: 3x3 conv stride 2 (3 -> 64), BN, ReLU6; ``dw_conv``: depthwise 3x3, BN, ReLU, pointwise 1x1, BN, ReLU;
* ``features``: MobileNetV2 inverted residuals (expansion t, channels c, repeats n, stride s of the first):
  (2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1); 1x1 expand + BN + ReLU6, 3x3
  depthwise + BN + ReLU6, 1x1 project + BN, identity shortcut when stride 1 and widths agree;
* ``conv2``: 1x1 (128 -> 512), BN, ReLU6; ``gdconv``: global depthwise 7x7 + BN (linear);
* ``conv3``: 1x1 linear (512 -> 128, with bias), ``bn``: BatchNorm2d(128); the output is not L2-normalised.

The activations (ReLU6 in the ConvBNReLU blocks, plain ReLU in ``dw_conv``) are the ONNX file's (Clip 0..6 and
Relu nodes). The embeddings agree with the ONNX model's on the same crops (``tests/test_backbone_torch.py``:
cosine > 0.99999 and max |difference| < 1e-4 of the largest component).

Other torch backbones: subclass :class:`TorchBackbone` (a card with ``capabilities``, ``build_module()`` returning
an ``nn.Module`` with ``trunk(x)`` and ``head(features)``, ``block_names``), and register the class in your
package's ``[project.entry-points."fiqa_bench.backbones"]``. torch is imported only inside functions, so listing
adapters stays cheap, and without torch these names fail with an install hint.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fiqa_bench.api import Backbone
from fiqa_bench.api.cards import BackboneCard, InputSpec, Weights
from fiqa_bench.backbones.onnx_arcface import NORMALISATIONS, PerInstanceCard
from fiqa_bench.errors import AdapterError, MissingDependencyError

INSTALL_HINT = "pip install 'fiqa-bench[train]' (installs torch; or pip install torch)"


def require_torch():
    """``import torch``, or a :class:`MissingDependencyError` that says how to install it."""
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError(
            f"PyTorch is needed for torch backbones and the methods that use them: {INSTALL_HINT}"
        ) from exc
    return torch


# ------------------------------------------------------------------------------------------ architecture
@functools.cache
def _classes() -> dict[str, type]:
    """The MobileFaceNet module classes (defined on first use, so importing this module does not import torch)."""
    require_torch()  # the install hint when torch is missing
    from torch import nn

    class ConvBNReLU6(nn.Sequential):
        def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1):
            super().__init__(
                nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU6(inplace=False),
            )

    class DepthwiseSeparable(nn.Module):
        def __init__(self, cin: int, cout: int):
            super().__init__()
            self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
            self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cin)
            self.bn2 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU()

        def forward(self, x):
            x = self.relu(self.bn1(self.depthwise(x)))
            return self.relu(self.bn2(self.pointwise(x)))

    class GDConv(nn.Module):
        def __init__(self, channels: int, kernel: int):
            super().__init__()
            self.depthwise = nn.Conv2d(channels, channels, kernel, groups=channels, bias=False)
            self.bn = nn.BatchNorm2d(channels)

        def forward(self, x):
            return self.bn(self.depthwise(x))

    class InvertedResidual(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int, expand: int):
            super().__init__()
            hidden = cin * expand
            self.shortcut = stride == 1 and cin == cout
            self.conv = nn.Sequential(
                ConvBNReLU6(cin, hidden, 1),
                ConvBNReLU6(hidden, hidden, 3, stride, hidden),
                nn.Conv2d(hidden, cout, 1, bias=False),
                nn.BatchNorm2d(cout),
            )

        def forward(self, x):
            y = self.conv(x)
            return x + y if self.shortcut else y

    class MobileFaceNet(nn.Module):
        SETTING = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))

        def __init__(self, embedding_dim: int = 128):
            super().__init__()
            self.conv1 = ConvBNReLU6(3, 64, 3, stride=2)
            self.dw_conv = DepthwiseSeparable(64, 64)
            blocks, cin = [], 64
            for t, c, n, s in self.SETTING:
                for i in range(n):
                    blocks.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                    cin = c
            self.features = nn.Sequential(*blocks)
            self.conv2 = ConvBNReLU6(cin, 512, 1)
            self.gdconv = GDConv(512, 7)
            self.conv3 = nn.Conv2d(512, embedding_dim, 1)
            self.bn = nn.BatchNorm2d(embedding_dim)

        def trunk(self, x):
            """Everything before the final linear embedding layer: (N, 512, 1, 1)."""
            return self.gdconv(self.conv2(self.features(self.dw_conv(self.conv1(x)))))

        def head(self, f):
            """The final linear embedding layer and its BN: (N, 512, 1, 1) -> (N, D)."""
            return self.bn(self.conv3(f)).flatten(1)

        def forward(self, x):
            return self.head(self.trunk(x))

    return {"MobileFaceNet": MobileFaceNet}


# ------------------------------------------------------------------------------------------ generic torch backbone
class TorchBackbone(Backbone):
    """A PyTorch FR model on aligned crops, offering ``raw_features``, ``stochastic`` and ``layers``.

    Subclasses set ``card`` (a :class:`PerInstanceCard` around a :class:`BackboneCard` whose ``weights`` name the
    pinned state-dict file and whose ``capabilities`` say what is offered), ``build_module()`` (an ``nn.Module``
    with ``trunk(x)`` -> features before the final embedding layer(s) and ``head(features)`` -> (N, D)),
    ``block_names`` (dotted module names whose outputs methods may take gradients at; ``"input"`` is the
    normalised network input) and ``default_normalisation``. Weights are found like every model file
    (``$FIQA_BENCH_MODELS``, ``$FIQA_SHARED/models``, the user cache; sha256-verified) or given as ``weights=PATH``,
    and loaded with ``torch.load(weights_only=True)`` (no pickled code runs).
    """

    argument: ClassVar[str | None] = None
    block_names: ClassVar[tuple[str, ...]] = ("input",)
    default_normalisation: ClassVar[str] = "arcface"

    def __init__(
        self,
        weights: str | os.PathLike | None = None,
        normalisation: str | None = None,
        flip: bool = False,
        batch_size: int = 64,
    ):
        require_torch()
        if normalisation is not None and normalisation not in NORMALISATIONS:
            raise ValueError(f"normalisation must be one of {sorted(NORMALISATIONS)}, got {normalisation!r}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.weights = Path(weights).expanduser() if weights is not None else None
        self.normalisation = normalisation or self.default_normalisation
        self.flip = str(flip).lower() in ("1", "true", "yes") if isinstance(flip, str) else bool(flip)
        self.batch_size = int(batch_size)
        self._module = None
        self._path: Path | None = None
        self._card: BackboneCard | None = None

    # -- subclass hooks ----------------------------------------------------------------------------------------------
    def build_module(self):  # pragma: no cover - interface
        raise NotImplementedError

    # -- model -------------------------------------------------------------------------------------------------------
    def weights_path(self) -> Path:
        """The state-dict file: ``weights=PATH``, else the pinned file found (and verified) like other models."""
        if self._path is None:
            if self.weights is not None:
                if not self.weights.is_file():
                    raise AdapterError(f"{type(self).card.name}: weights file not found: {self.weights}")
                self._path = self.weights
            else:
                from fiqa_bench.data.download import resolve_weights

                pinned = type(self).card.weights
                if pinned is None:
                    raise AdapterError(f"{type(self).card.name}: no weights=PATH and the card pins no weights file")
                self._path = resolve_weights(pinned)
        return self._path

    def torch_model(self):
        """The ``nn.Module`` in eval mode, parameters frozen (``requires_grad=False``), on the CPU."""
        if self._module is None:
            torch = require_torch()
            from fiqa_bench.backbones import thread_count

            if torch.get_num_threads() != thread_count():
                torch.set_num_threads(thread_count())
            path = self.weights_path()
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:  # noqa: BLE001 - any failure: not a loadable state dict
                raise AdapterError(
                    f"{path}: cannot load as a torch state dict with weights_only=True ({type(exc).__name__}: {exc})"
                ) from exc
            if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
                state = state["state_dict"]
            module = self.build_module()
            try:
                module.load_state_dict(state, strict=True)
            except Exception as exc:  # noqa: BLE001 - missing/unexpected keys or shapes: name the file
                first = str(exc).strip().splitlines()
                raise AdapterError(
                    f"{path}: does not fit {type(self).card.name}'s architecture: "
                    f"{first[0] if first else type(exc).__name__}"
                ) from exc
            module.eval()
            module.requires_grad_(False)
            self._module = module
        return self._module

    def _instance_card(self) -> BackboneCard:
        if self._card is None:
            from fiqa_bench.data.download import file_sha256

            base = type(self).card
            path = self.weights_path()
            weights = dataclasses.replace(
                base.weights or Weights(path.name), filename=path.name, sha256=file_sha256(path)
            )
            self._card = dataclasses.replace(
                base, normalisation=f"{self.normalisation}: {NORMALISATIONS[self.normalisation][0]}", weights=weights
            )
        return self._card

    def identity(self) -> str:
        card = self.card
        assert card.weights is not None  # the instance card names the weights file (_instance_card)
        return (
            f"{card.name}-{card.version}-{self.normalisation}-flip{int(self.flip)}"
            f"-sha256-{card.weights.sha256}-{card.card_hash()}"
        )

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_module"] = None  # workers reload the weights lazily (the module classes are not picklable)
        return state

    # -- tensors -----------------------------------------------------------------------------------------------------
    def _crops(self, images: Any) -> np.ndarray:
        size = type(self).card.input.size
        arr = np.asarray(images)
        if arr.ndim == 3 and arr.shape[-1] == 3:
            arr = arr[None]
        if arr.ndim != 4 or arr.shape[1:] != (size, size, 3):
            raise AdapterError(
                f"{type(self).card.name}: expected aligned crops (N, {size}, {size}, 3), got shape {arr.shape}"
            )
        return arr

    def pixels(self, images: Any):
        """Aligned uint8 crops (N, H, W, 3) in the card's colour order -> float32 tensor (N, 3, H, W) in [0, 1]."""
        torch = require_torch()
        arr = self._crops(images).astype(np.float32) / 255.0
        return torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2)))

    def normalise(self, x01):
        """[0, 1] pixels -> network input (differentiable; FaceQAN perturbs pixels and backpropagates through it)."""
        torch = require_torch()
        _, mean, std = NORMALISATIONS[self.normalisation]
        mean = torch.tensor(mean, dtype=x01.dtype).view(1, 3, 1, 1) / 255.0
        std = torch.tensor(std, dtype=x01.dtype).view(1, 3, 1, 1) / 255.0
        return (x01 - mean) / std

    def to_tensor(self, images: Any):
        """Aligned uint8 crops -> the normalised network input (N, 3, H, W) float32."""
        return self.normalise(self.pixels(images))

    @staticmethod
    def mirror(x):
        """Horizontal mirror of an NCHW tensor."""
        return x.flip(-1)

    def block(self, name: str):
        """The submodule whose output is the activation ``name`` (one of ``block_names``; not ``"input"``)."""
        if name not in self.block_names or name == "input":
            raise ValueError(
                f"{type(self).card.name}: block must be one of {', '.join(self.block_names)}, got {name!r}"
            )
        return self.torch_model().get_submodule(name)

    # -- embeddings --------------------------------------------------------------------------------------------------
    def _forward(self, x) -> np.ndarray:
        torch = require_torch()
        model = self.torch_model()
        with torch.inference_mode():
            y = model(x)
            if self.flip:
                y = y + model(self.mirror(x))
        return y.float().numpy()

    def embed(self, images: Any) -> np.ndarray:
        """Raw (not L2-normalised) float32 embeddings (N, D) of aligned uint8 crops (N, size, size, 3)."""
        arr = self._crops(images)
        if len(arr) == 0:
            return np.zeros((0, self.card.embedding_dim), np.float32)
        out = [self._forward(self.to_tensor(arr[i : i + self.batch_size])) for i in range(0, len(arr), self.batch_size)]
        return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)

    def dropout_masks(self, passes: int, width: int, rate: float, seed: int):
        """``passes`` inverted-dropout masks (passes, width): 0 with probability ``rate``, else 1 / (1 - rate);
        drawn from a generator seeded with ``seed`` only, so every image sees the same random subnetworks."""
        torch = require_torch()
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
        gen = torch.Generator().manual_seed(int(seed))
        keep = torch.rand((int(passes), int(width)), generator=gen) >= float(rate)
        return keep.float() / (1.0 - float(rate))

    def stochastic_embed(self, images: Any, passes: int = 100, rate: float = 0.5, seed: int = 0) -> np.ndarray:
        """(N, passes, D) float32: the trunk runs once per image, the head ``passes`` times with dropout on its
        input (the 512-d features before the final linear embedding layer). The mirror is not added (``flip``)."""
        torch = require_torch()
        arr = self._crops(images)
        model = self.torch_model()
        d = int(self.card.embedding_dim)
        if len(arr) == 0:
            return np.zeros((0, int(passes), d), np.float32)
        out = []
        with torch.inference_mode():
            masks = None
            for i in range(0, len(arr), self.batch_size):
                f = model.trunk(self.to_tensor(arr[i : i + self.batch_size]))  # (B, C, 1, 1)
                b, c = f.shape[:2]
                if masks is None:
                    masks = self.dropout_masks(passes, c, rate, seed)
                dropped = (f.reshape(b, 1, c) * masks.reshape(1, -1, c)).reshape(b * int(passes), c, 1, 1)
                out.append(model.head(dropped).reshape(b, int(passes), -1).float().numpy())
        return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)


# ------------------------------------------------------------------------------------------ the shared MobileFaceNet
STATE_DICT_SHA256 = "90a00ba1d8b0b688af3deb731ed53dca582e6106805d1bc3cfdef55f570493f4"


class TorchMobileFaceNet(TorchBackbone):
    """The shared MobileFaceNet (foamliu layout, 128-d) from its torch state dict."""

    block_names: ClassVar[tuple[str, ...]] = ("input", "conv1", "dw_conv", "features.4", "features.11", "features.14")
    default_normalisation: ClassVar[str] = "imagenet"
    card = PerInstanceCard(
        BackboneCard(
            name="torch-mobilefacenet",
            version="1",
            summary="MobileFaceNet (foamliu/MobileFaceNet layout, 128-d, the shared weights) in PyTorch: the same "
            "embeddings as mobilefacenet.onnx, plus dropout passes, layers, BN statistics and gradients",
            licence="code MIT; weights licence unknown (as mobilefacenet.onnx; see the shared models MANIFEST)",
            paper="S. Chen, Y. Liu, X. Gao, Z. Han, 'MobileFaceNets: Efficient CNNs for Accurate Real-Time Face "
            "Verification on Mobile Devices', CCBR 2018",
            input=InputSpec("aligned", 112, "RGB"),
            normalisation="imagenet (x / 255 - mean) / std (as the shared ONNX file's known default); or "
            "normalisation=mobilefacenet|arcface",
            embedding_dim=128,
            weights=Weights(
                "mobilefacenet_state_dict.pt",
                url="https://raw.githubusercontent.com/darzhz/pixamatch/42fc0793130499652b7696eb1aa56e9b6397e7c4/"
                "models/mobilefacenet.pt",
                sha256=STATE_DICT_SHA256,
                note="= models/mobilefacenet.pt of github darzhz/pixamatch@42fc0793 (the shared "
                "mobilefacenet/mobilefacenet_state_dict.pt); or weights=PATH",
            ),
            capabilities=("raw_features", "stochastic", "layers"),
        )
    )

    def build_module(self):
        return _classes()["MobileFaceNet"](embedding_dim=128)
