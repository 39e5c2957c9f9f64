"""tinyFQnet (Peng et al., Table 1) and the networks of the size ablation (Table 6), in plain PyTorch.

Every network maps a normalised (N, 3, S, S) float batch to a quality in (0, 1), shape (N, 1): features, global
average pool, ``fc -> 1``, sigmoid (section 3.2: "the output of Q will be normalized to (0,1) by a sigmoid layer").

Reading Table 1
---------------
Rows: ``conv 3x3x11 s2`` (32x32x11), then six block rows, each "1x1 expand, [3x3, e] x n, 1x1 project", then
``conv 1x1x256``, avgpool, ``fc 1x256``.

* **The 3x3 convolution is depthwise** (groups = channels), as in MobileNetV2 which the design follows. A full
  3x3 convolution cannot be meant: the two 44-channel rows alone would then hold 2 x 44 x 44 x 9 = 34,848 weights,
  more than the 21,806 parameters the text claims for the whole network.
* **"x n" repeats the block** (MobileNetV2's ``n``), so the ``[3x3, 44] x 2`` row is two blocks: 7 blocks in all,
  as the text says ("There are 7 blocks in Q").
* **Every convolution is followed by BN and ReLU**, the 1x1 projection included (the text and the caption say so;
  MobileNetV2 proper leaves its projection linear). Convolutions have no bias (a BN follows each); the fc has one.
* **Residual connections.** Figure 4: (a) non-residual, (b) residual, otherwise identical. The table labels the
  two stride-2 rows ``Block2`` and the rest ``Block1``; read as (b) and (a), that is exactly "5 non-residual and
  2 residual blocks" (counting the x2 row twice), but the two stride-2 blocks change both resolution and
  channels (2 -> 5 at 32 -> 16 px, 5 -> 11 at 16 -> 8 px), so an identity shortcut is impossible there, and the
  paper describes no projection shortcut. We therefore read ``Block1``/``Block2`` as the stride-1/stride-2 forms
  and use MobileNetV2's rule: a block adds its input to its output when the stride is 1 and the input and output
  widths match. That gives 3 residual blocks (the 5 -> 5 row and both 11 -> 11 blocks of the x2 row) and 4 plain
  ones. Shortcuts hold no parameters and their additions are not counted as FLOPs, so this choice changes neither
  count below. The shortcut is added after the block's last ReLU.

Parameter count (``sum(p.numel() for p in model.parameters())``, BN gamma and beta counted, BN running
statistics not, no conv biases, fc bias counted): **13,366**, of which 1,420 BN and 257 fc. The paper states
21,806 (section 3.2, "21.806k"). No reading of Table 1 gives 21,806: the closest natural variants are 11,804
(``x 2`` read as one block), 14,076 (with conv biases) and ~52-73k (full 3x3 convolutions); see
``tests/test_tinyfq_net.py``. The 13,366 matches Table 6's first row, ``mobilenet_t4_w0.35 64x64: 0.013M params,
1.43 Mflops``, whose FLOPs also match (see :mod:`.flops`: 1.331 M conv+fc multiply-adds plus 95,936 BN outputs
= 1.427 M), and section 4.7.1 calls that network the smallest one, "with 21.8k parameters". So Table 1 is
``mobilenet_t4_w0.35`` at 64x64, and the text's 21.8k / 2.356 MFLOPs most likely describe a different variant.
``t4`` and ``w0.35`` fit the table exactly: with base widths 32 (stem), 8, 16, 16, 32, 32, 64 (blocks) scaled
by 0.35 and truncated (11, 2, 5, 5, 11, 11, 22), each block expands its input 4x (the first block, whose input
is the stem, expands its output 4x: 2 x 4 = 8).

Ablation networks (Table 6, names in :data:`NETS`; our counts: parameters, conv+fc multiply-adds)
----------------------------------------------------------------------------------------------------
* ``mbv2-t4-w0.35-64``: Table 1 itself (see above), identical to ``tinyfqnet``: 13,366 / 1.331 M
  (paper: 0.013M / 1.43 Mflops).
* ``mbv2-t4-w0.5-64``, ``mbv2-t4-w0.7-64``: Table 1 at width 0.5 / 0.7 (blocks 4, 8, 8, 16, 16x2, 32 and
  5, 11, 11, 22, 22x2, 44; stem 16 / 22; expansion 4x; head 256): 22,329 / 2.468 M and 34,873 / 3.851 M. Not
  in the paper: wider first blocks for issue 15, where tinyFQnet's 2-channel first block did not learn to
  penalise JPEG-10 and noise next to blur; both stay under the bundled weights' 200 KB in fp32.
* ``tinyfqnet-112``, ``tinyfqnet-112-s2``: Table 1 itself on 112x112 crops (not in the paper, issue 15: JPEG's
  8-pixel blocks survive the alignment at 112 px, not at 64): 13,366 parameters either way, 4.08 M multiply-adds,
  or 1.92 M with a stride-2 first block (the later blocks then run at 28, 14 and 7 px).
* ``mbv2-t6-w1-64``: the same template with t = 6, w = 1 (stem 32; blocks 8, 16, 16, 32, 32x2, 64; expansion
  6x; head 256): 83,473 / 9.78 M. The paper gives 0.02M / 2.5 Mflops and does not say how its 64x64 ``w1``
  network differs from Table 1 (a 6x expansion of Table 1's own widths gives 16,622 parameters but only
  1.66 M multiply-adds). Use it as "a wider tinyFQnet", not as the paper's network.
* ``mbv2-t4-w0.35-112``, ``mbv2-t6-w1-112``: MobileNetV2 as in Sandler et al. (2018), Table 2 (stem 32 stride 2,
  bottlenecks (t,c,n,s) = (1,16,1,1), (t,24,2,2), (t,32,3,2), (t,64,4,2), (t,96,3,1), (t,160,3,2), (t,320,1,1),
  conv 1x1 to 1280, ReLU6, linear projections, widths ``make_divisible(c * w, 8)``, 1280 kept for w < 1),
  fc 1280 -> 1 + sigmoid, on 112x112 input: 314,625 / 11.9 M and 2,225,153 / 80.9 M (paper: 0.5M / 44.4 and
  2.1M / 206.9 Mflops; the t6/w1 parameter count equals torchvision's MobileNetV2 minus its 1000-class head).
* ``resnet50-112``: ResNet-50 (He et al., bottlenecks [3, 4, 6, 3], stride on the 3x3 convolution) with the
  face-recognition layout insightface uses at 112x112 (3x3 stride-1 stem, no max-pool, stride-2 first stage,
  so the stages run at 56/28/14/7 px as ImageNet's ResNet-50 at 224), fc 2048 -> 1 + sigmoid: 23,502,401 /
  4,029 M (paper: 22.4M / 3,907 Mflops). With the ImageNet stem (``resnet50(face_stem=False)``) the cost at
  112x112 would be a quarter of that (1,076 M).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fiqa_bench.training import require_torch

torch = require_torch()
from torch import nn  # noqa: E402  (after require_torch, which names the extra to install when torch is missing)


# ------------------------------------------------------------------------------------------------ building blocks
class ConvBN(nn.Sequential):
    """Conv (no bias) + BatchNorm + activation (``"relu"``, ``"relu6"`` or ``None``)."""

    def __init__(
        self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: str | None = "relu"
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if act == "relu":
            layers.append(nn.ReLU(inplace=True))
        elif act == "relu6":
            layers.append(nn.ReLU6(inplace=True))
        elif act is not None:
            raise ValueError(f"unknown activation {act!r}")
        super().__init__(*layers)


class InvertedBlock(nn.Module):
    """1x1 expand -> 3x3 depthwise (stride) -> 1x1 project, with a shortcut when stride 1 and cin == cout.

    ``act``: the activation after expand and depthwise; ``project_act``: after the projection (tinyFQnet: ReLU;
    MobileNetV2: none, the "linear bottleneck"). ``hidden == cin`` with ``skip_expand`` drops the expansion
    (MobileNetV2's t = 1 block).
    """

    def __init__(
        self,
        cin: int,
        hidden: int,
        cout: int,
        stride: int,
        act: str = "relu",
        project_act: str | None = "relu",
        skip_expand: bool = False,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if not skip_expand:
            layers.append(ConvBN(cin, hidden, 1, act=act))
        elif hidden != cin:
            raise ValueError("skip_expand needs hidden == cin")
        layers.append(ConvBN(hidden, hidden, 3, stride, groups=hidden, act=act))
        layers.append(ConvBN(hidden, cout, 1, act=project_act))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        out = self.body(x)
        return x + out if self.residual else out


class QualityHead(nn.Module):
    """Global average pool -> fc -> 1 -> sigmoid: a quality in (0, 1) per image, shape (N, 1)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, 1)

    def forward(self, x):
        return torch.sigmoid(self.fc(torch.flatten(self.pool(x), 1)))


class QualityNet(nn.Module):
    """``features`` (a Sequential) + :class:`QualityHead`."""

    def __init__(self, features: nn.Sequential, channels: int) -> None:
        super().__init__()
        self.features = features
        self.head = QualityHead(channels)

    def forward(self, x):
        return self.head(self.features(x))


# ------------------------------------------------------------------------------------------------ tinyFQnet family
def _scaled(c: int, w: float) -> int:
    return max(1, int(c * w))


def tiny_mobilenet(t: int = 4, w: float = 0.35, head: int = 256, first_stride: int = 1) -> QualityNet:
    """The Table 1 template: ``t=4, w=0.35`` is tinyFQnet exactly (see the module docstring). ``first_stride=2``
    makes the first block a stride-2 one (same parameters): on 112x112 crops the later blocks then run at 28, 14
    and 7 px, close to Table 1's 32, 16 and 8 at 64x64, while the stem still sees the full 112 px."""
    stem = _scaled(32, w)
    # (output width before scaling, stride, repeats) of the six rows of Table 1
    rows = [(8, first_stride, 1), (16, 2, 1), (16, 1, 1), (32, 2, 1), (32, 1, 2), (64, 1, 1)]
    layers: list[nn.Module] = [ConvBN(3, stem, 3, 2)]
    cin = stem
    for i, (c, stride, n) in enumerate(rows):
        cout = _scaled(c, w)
        for j in range(n):
            hidden = t * (cout if i == 0 else cin)
            layers.append(InvertedBlock(cin, hidden, cout, stride if j == 0 else 1))
            cin = cout
    layers.append(ConvBN(cin, head, 1))
    return QualityNet(nn.Sequential(*layers), head)


def tinyfqnet() -> QualityNet:
    """tinyFQnet, Table 1 of Peng et al.: 64x64x3 in, 13,366 parameters, 1.331 M multiply-adds."""
    return tiny_mobilenet(4, 0.35)


# ------------------------------------------------------------------------------------------------ MobileNetV2
def _make_divisible(v: float, divisor: int = 8) -> int:
    """MobileNetV2's channel rounding: nearest multiple of ``divisor``, never below 90% of ``v``."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def mobilenet_v2(t: int = 6, w: float = 1.0) -> QualityNet:
    """MobileNetV2 (Sandler et al. 2018, Table 2) with expansion ``t`` and width ``w``, regression head."""
    settings = [
        (1, 16, 1, 1),
        (t, 24, 2, 2),
        (t, 32, 3, 2),
        (t, 64, 4, 2),
        (t, 96, 3, 1),
        (t, 160, 3, 2),
        (t, 320, 1, 1),
    ]
    cin = _make_divisible(32 * w)
    last = _make_divisible(1280 * max(1.0, w))
    layers: list[nn.Module] = [ConvBN(3, cin, 3, 2, act="relu6")]
    for te, c, n, s in settings:
        cout = _make_divisible(c * w)
        for j in range(n):
            layers.append(
                InvertedBlock(
                    cin, cin * te, cout, s if j == 0 else 1, act="relu6", project_act=None, skip_expand=te == 1
                )
            )
            cin = cout
    layers.append(ConvBN(cin, last, 1, act="relu6"))
    return QualityNet(nn.Sequential(*layers), last)


# ------------------------------------------------------------------------------------------------ ResNet-50
class Bottleneck(nn.Module):
    """ResNet bottleneck: 1x1 -> 3x3 (stride) -> 1x1 (4x width), projection shortcut when the shape changes."""

    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = width * 4
        self.body = nn.Sequential(
            ConvBN(cin, width, 1), ConvBN(width, width, 3, stride), ConvBN(width, cout, 1, act=None)
        )
        self.shortcut = ConvBN(cin, cout, 1, stride, act=None) if stride != 1 or cin != cout else None
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        identity = x if self.shortcut is None else self.shortcut(x)
        return self.relu(self.body(x) + identity)


def resnet50(face_stem: bool = True) -> QualityNet:
    """ResNet-50 regressor.

    ``face_stem``: insightface's layout for 112x112 faces, a 3x3 stride-1 stem without max-pool and a stride-2
    first stage, so the stages run at 56, 28, 14 and 7 px as an ImageNet ResNet-50 does at 224x224. Otherwise
    the ImageNet stem (7x7 stride 2 + max-pool, stride-1 first stage).
    """
    if face_stem:
        layers: list[nn.Module] = [ConvBN(3, 64, 3, 1)]
    else:
        layers = [ConvBN(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    first_stride = 2 if face_stem else 1
    for width, n, stride in [(64, 3, first_stride), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
        for j in range(n):
            layers.append(Bottleneck(cin, width, stride if j == 0 else 1))
            cin = width * 4
    return QualityNet(nn.Sequential(*layers), cin)


# ------------------------------------------------------------------------------------------------ registry
@dataclass(frozen=True)
class NetSpec:
    """A trainable quality network: how to build it and the aligned crop size it takes."""

    name: str
    input_size: int
    build: Callable[[], QualityNet]
    summary: str


NETS: dict[str, NetSpec] = {
    s.name: s
    for s in (
        NetSpec("tinyfqnet", 64, tinyfqnet, "tinyFQnet, Table 1 (= Table 6 mobilenet_t4_w0.35 64x64)"),
        NetSpec(
            "tinyfqnet-112",
            112,
            tinyfqnet,
            "tinyFQnet, Table 1, on 112x112 crops (not in the paper: the same 13,366 parameters, 3.1x the "
            "multiply-adds; JPEG blocks survive the alignment at 112 px)",
        ),
        NetSpec(
            "tinyfqnet-112-s2",
            112,
            lambda: tiny_mobilenet(4, 0.35, first_stride=2),
            "tinyFQnet, Table 1, on 112x112 crops with a stride-2 first block (not in the paper: the same "
            "13,366 parameters, 1.4x Table 1's multiply-adds)",
        ),
        NetSpec("mbv2-t4-w0.35-64", 64, tinyfqnet, "Table 6 mobilenet_t4_w0.35 64x64: the same network as tinyfqnet"),
        NetSpec(
            "mbv2-t4-w0.5-64", 64, lambda: tiny_mobilenet(4, 0.5), "Table 1 template at width 0.5 (22,329 parameters)"
        ),
        NetSpec(
            "mbv2-t4-w0.7-64", 64, lambda: tiny_mobilenet(4, 0.7), "Table 1 template at width 0.7 (34,873 parameters)"
        ),
        NetSpec("mbv2-t6-w1-64", 64, lambda: tiny_mobilenet(6, 1.0), "Table 1 template with t=6, w=1 (wider)"),
        NetSpec("mbv2-t4-w0.35-112", 112, lambda: mobilenet_v2(4, 0.35), "MobileNetV2 t=4 w=0.35, 112x112"),
        NetSpec("mbv2-t6-w1-112", 112, lambda: mobilenet_v2(6, 1.0), "MobileNetV2 t=6 w=1, 112x112"),
        NetSpec("resnet50-112", 112, resnet50, "ResNet-50 regressor, stride-1 face stem, 112x112"),
    )
}


def net_spec(name: str) -> NetSpec:
    try:
        return NETS[name]
    except KeyError:
        from fiqa_bench.errors import UnknownNameError

        raise UnknownNameError(f"unknown network {name!r}; choose one of {', '.join(NETS)}") from None


def build_net(name: str = "tinyfqnet") -> QualityNet:
    """A freshly initialised network by registry name (weights drawn from torch's global RNG)."""
    return net_spec(name).build()


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters (BN gamma/beta included, BN running statistics excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
