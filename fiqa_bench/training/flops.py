"""Multiply-add counts of a network, by forward hooks on its layers (our own counter, no third-party tool).

Convention (the one of the MobileNetV2 and ResNet papers, whose "FLOPs" are multiply-adds): per image,

* ``Conv2d``: output elements x (input channels / groups) x kernel height x kernel width;
* ``Linear``: in_features x out_features;
* biases, BN, ReLU, pooling and residual additions are **not** multiply-adds and are not in ``macs``.

Because FLOP counters differ on the cheap layers, the report also gives ``norm_outputs``: the number of elements
BN layers produce per image. Many counters (e.g. older ``thop``-style ones) add one operation per BN output;
``macs + norm_outputs`` is that convention.

tinyFQnet (64x64): ``macs`` = 1,331,456 (1.331 M) and ``norm_outputs`` = 95,936, so 1.427 M with BN counted.
Table 6 gives 1.43 Mflops for ``mobilenet_t4_w0.35`` 64x64, the network of Table 1 (see :mod:`.nets`); the text
of section 3.2 gives 2.356 Mflops for tinyFQnet, which no counting of Table 1 reaches (even 2 x macs = 2.66 M
overshoots while the conv-only count undershoots).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import require_torch


@dataclass
class LayerCost:
    name: str
    kind: str
    macs: int
    params: int
    output_shape: tuple[int, ...]


@dataclass
class FlopReport:
    """Per-image costs of one forward pass at ``input_size``."""

    input_size: int
    macs: int  # multiply-adds of Conv2d and Linear layers
    norm_outputs: int  # elements produced by BatchNorm layers
    params: int
    layers: list[LayerCost] = field(default_factory=list)

    @property
    def mflops(self) -> float:
        """Multiply-adds in millions (the paper's "Mflops")."""
        return self.macs / 1e6

    @property
    def mflops_with_norm(self) -> float:
        """Multiply-adds plus one operation per BN output, in millions."""
        return (self.macs + self.norm_outputs) / 1e6

    def describe(self) -> str:
        return (f"{self.params:,} parameters; {self.macs:,} multiply-adds ({self.mflops:.3f} M) at "
                f"{self.input_size}x{self.input_size}; +{self.norm_outputs:,} BN outputs = "
                f"{self.mflops_with_norm:.3f} M")


def count_flops(model, input_size: int, channels: int = 3) -> FlopReport:
    """Run ``model`` once on a zero batch of one (N=1, eval mode, no grad) and sum the costs of its layers."""
    torch = require_torch()
    nn = torch.nn
    layers: list[LayerCost] = []
    norm_outputs = 0
    hooks = []

    def conv_hook(name):
        def hook(module, inputs, output):
            k = module.kernel_size[0] * module.kernel_size[1]
            per_out = module.in_channels // module.groups * k
            n_out = output[0].numel()
            layers.append(LayerCost(name, "conv", n_out * per_out, sum(p.numel() for p in module.parameters()),
                                    tuple(output.shape[1:])))
        return hook

    def linear_hook(name):
        def hook(module, inputs, output):
            layers.append(LayerCost(name, "linear", module.in_features * module.out_features,
                                    sum(p.numel() for p in module.parameters()), tuple(output.shape[1:])))
        return hook

    def norm_hook(module, inputs, output):
        nonlocal norm_outputs
        norm_outputs += output[0].numel()

    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            hooks.append(module.register_forward_hook(conv_hook(name)))
        elif isinstance(module, nn.Linear):
            hooks.append(module.register_forward_hook(linear_hook(name)))
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            hooks.append(module.register_forward_hook(norm_hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, channels, input_size, input_size))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    params = sum(p.numel() for p in model.parameters())
    return FlopReport(input_size, sum(c.macs for c in layers), norm_outputs, params, layers)


def count_flops_by_name(name: str) -> FlopReport:
    """:func:`count_flops` of a registered network (:data:`fiqa_bench.training.nets.NETS`) at its input size."""
    from .nets import build_net, net_spec

    return count_flops(build_net(name), net_spec(name).input_size)
