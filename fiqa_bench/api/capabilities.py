"""Backbone capabilities: what a quality method may ask of the run's FR backbone beyond ``embed``.

Recent training-free FIQA methods need what an exported model hides: the unnormalised embedding (its norm),
dropout at inference (SER-FIQ), gradients and batch-norm statistics (GraFIQs, FaceQAN). A backbone declares what
it offers on its card (``BackboneCard.capabilities``); a method declares what it needs (``MethodCard.
needs_capabilities``, with ``needs_backbone=True``). :func:`check_capabilities` compares the two before any
image is read, so a mismatch is one error naming the method, the backbone and the missing capability.

Each capability is a small API contract (:data:`CAPABILITIES`); the conformance kit
(:func:`fiqa_bench.testing.backbone_checks`) checks that a backbone declaring one honours it.
"""

from __future__ import annotations

from typing import Any

from fiqa_bench.api import QualityMethod
from fiqa_bench.errors import AdapterError, CapabilityError

#: name -> the contract a backbone declaring it fulfils (shown in errors and in the README for adapter authors)
CAPABILITIES: dict[str, str] = {
    "raw_features": "embed(images) returns the unnormalised embedding, so its L2 norm carries information",
    "stochastic": "stochastic_embed(images, passes, rate, seed) -> float32 (N, passes, D): 'passes' forward passes "
    "with dropout of probability 'rate' on the input of the final embedding layer(s), the same "
    "seeded dropout masks for every image",
    "layers": "PyTorch access for gradients and batch-norm statistics: torch_model() (nn.Module in eval mode), "
    "to_tensor(images) (normalised NCHW float32 tensor), pixels(images) (RGB in [0, 1]), normalise(x01) "
    "(differentiable), block_names and block(name) (modules whose outputs are intermediate activations), "
    "mirror(images)",
}


def backbone_capabilities(backbone: Any) -> tuple[str, ...]:
    """What the backbone's card declares (an adapter without the field declares nothing)."""
    card = getattr(backbone, "card", None)
    return tuple(getattr(card, "capabilities", ()) or ())


def missing_capabilities(method_cls: Any, backbone: Any) -> list[str]:
    """The capabilities ``method_cls`` needs that ``backbone`` does not declare, in the method's order."""
    needs = tuple(getattr(getattr(method_cls, "card", None), "needs_capabilities", ()) or ())
    offered = set(backbone_capabilities(backbone))
    return [c for c in needs if c not in offered]


def check_capabilities(method_cls: Any, backbone: Any) -> None:
    """Raise :class:`CapabilityError` naming both adapters when the backbone lacks a capability the method needs.

    ``method_cls``: the method's class (or an instance); ``backbone``: the run's backbone instance (its card, which
    may be a per-instance card, is read; no weights are loaded). Call it where the method is given the backbone.
    """
    missing = missing_capabilities(method_cls, backbone)
    if not missing:
        return
    card = getattr(method_cls, "card", None)
    method = getattr(card, "name", None) or getattr(method_cls, "__name__", type(method_cls).__name__)
    bcard = getattr(backbone, "card", None)
    bname = getattr(bcard, "name", None) or type(backbone).__name__
    offered = backbone_capabilities(backbone)
    raise CapabilityError(
        f"quality method {method!r} needs backbone capability {', '.join(repr(m) for m in missing)} "
        f"({'; '.join(CAPABILITIES.get(m, 'unknown capability') for m in missing)}), but backbone {bname!r} offers "
        f"{', '.join(offered) if offered else 'none beyond embed()'}; use a backbone that declares it, e.g. "
        f"--fr torch-mobilefacenet"
    )


class BackboneQualityMethod(QualityMethod):
    """Base of a quality method computed with the run's FR backbone (``needs_backbone=True`` on its card).

    ``backbone`` is the backbone instance the runner passes (or a registered spec string, created on first use with
    ``backbone_options``); its capabilities are checked in the constructor, so a mismatch fails before any work.
    ``identity()`` includes the backbone's identity and :meth:`parameters`, so scores made with another backbone or
    other settings never share a cache entry.
    """

    def __init__(self, backbone: Any = None, backbone_options: dict | None = None) -> None:
        self.backbone = backbone
        self.backbone_options = dict(backbone_options or {})
        if backbone is not None and not isinstance(backbone, str):
            check_capabilities(type(self), backbone)

    def _backbone(self) -> Any:
        if self.backbone is None:
            raise AdapterError(
                f"{self.card.name} needs the run's FR backbone: {type(self).__name__}(backbone=...) "
                f"(fiqa-bench run passes the --fr backbone)"
            )
        if isinstance(self.backbone, str):
            from fiqa_bench.registry import create

            backbone = create("backbone", self.backbone, **self.backbone_options)
            check_capabilities(type(self), backbone)
            self.backbone = backbone
        return self.backbone

    def parameters(self) -> dict:
        """The settings that change the scores (recorded in the identity)."""
        return {}

    def identity(self) -> str:
        params = ",".join(f"{k}={v}" for k, v in sorted(self.parameters().items()))
        return f"{super().identity()}-[{params}]-on-{self._backbone().identity()}"

    def crops(self, faces: Any) -> Any:
        """What the backbone's ``embed`` takes (its own input spec) from the runner's ``Face`` list."""
        from fiqa_bench.faces.pipeline import to_input

        return to_input(list(faces), self._backbone().card.input)
