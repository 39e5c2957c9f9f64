"""Multiply-add counts of a network, with PyTorch's own counter (:class:`torch.utils.flop_counter.FlopCounterMode`).

Convention (the one of the MobileNetV2 and ResNet papers, whose "FLOPs" are multiply-adds): per image,

* ``Conv2d``: output elements x (input channels / groups) x kernel height x kernel width;
* ``Linear``: in_features x out_features;
* biases, BN, ReLU, pooling and residual additions are **not** multiply-adds and are not in ``macs``.

``FlopCounterMode`` counts a multiply-add as two FLOPs (convolution and matrix products only), so ``macs`` is
half its total. Because FLOP counters differ on the cheap layers, the report also gives ``norm_outputs``: the
number of elements BN layers produce per image, counted by the same mode through a mapping for the batch-norm
operators. Many counters (e.g. older ``thop``-style ones) add one operation per BN output;
``macs + norm_outputs`` is that convention.

tinyFQnet (64x64): ``macs`` = 1,331,456 (1.331 M) and ``norm_outputs`` = 95,936, so 1.427 M with BN counted.
Table 6 gives 1.43 Mflops for ``mobilenet_t4_w0.35`` 64x64, the network of Table 1 (see :mod:`.nets`); the text
of section 3.2 gives 2.356 Mflops for tinyFQnet, which no counting of Table 1 reaches (even 2 x macs = 2.66 M
overshoots while the conv-only count undershoots).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fiqa_bench.training import require_torch


@dataclass
class FlopReport:
    """Per-image costs of one forward pass at ``input_size``."""

    input_size: int
    macs: int  # multiply-adds of convolutions and matrix products
    norm_outputs: int  # elements produced by BatchNorm layers
    params: int

    @property
    def mflops(self) -> float:
        """Multiply-adds in millions (the paper's "Mflops")."""
        return self.macs / 1e6

    @property
    def mflops_with_norm(self) -> float:
        """Multiply-adds plus one operation per BN output, in millions."""
        return (self.macs + self.norm_outputs) / 1e6

    def describe(self) -> str:
        return (
            f"{self.params:,} parameters; {self.macs:,} multiply-adds ({self.mflops:.3f} M) at "
            f"{self.input_size}x{self.input_size}; +{self.norm_outputs:,} BN outputs = "
            f"{self.mflops_with_norm:.3f} M"
        )


def _norm_operators(torch) -> list:
    """The aten batch-norm operators an eval-mode ``BatchNorm2d`` may dispatch to (first output = normalised)."""
    aten = torch.ops.aten
    names = ("native_batch_norm", "_native_batch_norm_legit_no_training", "_native_batch_norm_legit")
    return [getattr(aten, n) for n in names if hasattr(aten, n)]


def _outputs(*args, out_shape=None, **kwargs) -> int:
    return int(math.prod(out_shape[0]))


def count_flops(model, input_size: int, channels: int = 3) -> FlopReport:
    """Run ``model`` once on a zero batch of one (N=1, eval mode, no grad) under ``FlopCounterMode``."""
    torch = require_torch()
    from torch.utils.flop_counter import FlopCounterMode

    norm_ops = _norm_operators(torch)
    counter = FlopCounterMode(display=False, custom_mapping=dict.fromkeys(norm_ops, _outputs))
    was_training = model.training
    model.eval()
    try:
        with counter, torch.no_grad():
            model(torch.zeros(1, channels, input_size, input_size))
    finally:
        model.train(was_training)
    counts = counter.get_flop_counts()["Global"]
    norm = sum(int(counts.get(op, 0)) for op in norm_ops)
    flops = sum(int(v) for op, v in counts.items() if op not in norm_ops)
    params = sum(p.numel() for p in model.parameters())
    return FlopReport(input_size, flops // 2, norm, params)


def count_flops_by_name(name: str) -> FlopReport:
    """:func:`count_flops` of a registered network (:data:`fiqa_bench.training.nets.NETS`) at its input size."""
    from fiqa_bench.training.nets import build_net, net_spec

    return count_flops(build_net(name), net_spec(name).input_size)
