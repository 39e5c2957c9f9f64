"""``grafiqs``: GraFIQs (Kolf, Damer, Boutros, CVPRW 2024), quality from gradient magnitudes of the BN statistics loss.

Every batch-norm layer of a trained FR model remembers the mean and variance its input had over the training
data. A face is pushed through the model; at each BN layer ``l`` the per-channel mean ``mu_l`` and (biased)
variance ``var_l`` of its input over that one image's spatial positions are compared with the running
statistics::

    L_BNS = (1 / L) * sum_l [ MSE(mu_l, running_mean_l) + MSE(var_l, running_var_l) ]

(MSE = mean over channels), ``L_BNS`` is backpropagated to a chosen intermediate activation ``phi`` (a block), and
the gradient magnitude ``sum |dL_BNS / d phi|`` says how much that block would have to change to make the face look
like the training distribution to every later BN layer. The quality is its negative, ``-sum |dL_BNS / d phi|``.
Written from the paper (the authors' code, CC BY-NC 4.0, was not used).

Choices the paper leaves open, and those made here (also on the card):

* **Sign**: the authors' extraction script writes the unsigned sum. On this model the unsigned sum *rises* as faces
  are blurred, down-scaled or otherwise degraded (8 of 8 LFW faces for Gaussian blur sigma 4 and for 8x
  down-scaling, at each early block measured, ``tests/test_method_grafiqs.py``; degraded train-part rows have
  about 1.5x the clean rows' sum, ``reports/modern/grafiqs-blocks-train.json``), so the score is ``-sum``: a face
  that needs large changes to match the training statistics is far from the training data, i.e. of low quality
  (higher = better).
* **Block** (``block=``): the paper reports one score per block of its ResNets (image, block1 .. block4). For
  MobileFaceNet the choices are the backbone's ``block_names`` (``input``, ``conv1``, ``dw_conv``, ``features.4``
  (end of the 28x28 stage), ``features.11`` (end of the 14x14 stage), ``features.14`` (7x7); after ``conv2`` no
  BN layer with spatial extent is left). The default ``dw_conv`` (the end of the 56x56 stem) was chosen on
  train-part identities only (``reports/modern/README.md``; the early blocks differ little).
* **Which BN layers**: every ``BatchNorm2d`` whose input has more than one spatial position (a variance over one
  position is always 0; that excludes MobileFaceNet's ``gdconv.bn`` and final ``bn``). Layers before the block add
  nothing to its gradient.
* Deterministic: no randomness. Statistics are per image; images are processed ``batch_size`` at a time
  (in eval mode they do not interact, so a batch gives each image's own gradient, up to float32 rounding: the
  scores of 16 LFW faces, clean and blurred, differ by at most 8.8e-6 relative between ``batch_size`` 1 and 16,
  which is why ``batch_size`` is not part of the identity; on a CPU both cost the same, about 0.1 s per face).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fiqa_bench.api.capabilities import BackboneQualityMethod
from fiqa_bench.api.cards import InputSpec, MethodCard
from fiqa_bench.errors import AdapterError

DEFAULT_BLOCK = "dw_conv"


class GraFIQs(BackboneQualityMethod):
    """GraFIQs on the run's backbone (needs ``layers``): -sum |grad| of the BN-statistics loss at one block."""

    card = MethodCard(
        name="grafiqs",
        version="1",
        summary=(
            "GraFIQs: minus the sum of |gradient| at one block (default dw_conv) of the BN-statistics loss "
            "(MSE of the face's per-channel mean and variance against each BatchNorm2d layer's running "
            "statistics, averaged over layers)"
        ),
        licence="code MIT (written from the paper; the authors' CC BY-NC code was not used)",
        paper=(
            "J. N. Kolf, N. Damer, F. Boutros, 'GraFIQs: Face Image Quality Assessment Using Gradient "
            "Magnitudes', CVPR Workshops 2024. Open choices here: block dw_conv (chosen on train-part "
            "identities), BatchNorm2d layers with more than one spatial position, quality = minus the absolute "
            "gradient sum (the authors' script writes the unsigned sum; on this model it rises with degradation)"
        ),
        input=InputSpec("face"),
        higher_is_better=True,
        score_range="(-inf, 0]",
        needs_backbone=True,
        needs_capabilities=("layers",),
    )

    def __init__(
        self,
        backbone: Any = None,
        block: str = DEFAULT_BLOCK,
        batch_size: int = 16,
        backbone_options: dict | None = None,
    ) -> None:
        super().__init__(backbone, backbone_options)
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)  # images per forward/backward pass (scores: float32 rounding)
        names = getattr(backbone, "block_names", None)
        if names is not None and block not in names:
            raise ValueError(f"grafiqs: block must be one of {', '.join(names)}, got {block!r}")
        self.block = str(block)

    def parameters(self) -> dict:
        return {"block": self.block}

    def gradients(self, crops: np.ndarray) -> list[np.ndarray]:
        """dL_BNS / d phi for each aligned crop (one float32 array per image, the block's activation shape)."""
        import torch

        backbone = self._backbone()
        model = backbone.torch_model()
        stats: list[tuple[Any, Any, Any]] = []
        captured: list[Any] = []

        def bn_input(module, args):
            x = args[0]
            if x.shape[2] * x.shape[3] > 1:
                stats.append((x, module.running_mean, module.running_var))

        def take(module, args, output):
            leaf = output.detach().requires_grad_(True)  # gradients stop here: d L / d phi
            captured.append(leaf)
            return leaf

        handles = [
            m.register_forward_pre_hook(bn_input) for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)
        ]
        if self.block != "input":
            handles.append(backbone.block(self.block).register_forward_hook(take))
        out: list[np.ndarray] = []
        try:
            with torch.enable_grad():
                for i in range(0, len(crops), self.batch_size):
                    stats.clear()
                    captured.clear()
                    x = backbone.to_tensor(crops[i : i + self.batch_size])
                    if self.block == "input":
                        x.requires_grad_(True)
                        captured.append(x)
                    model(x)
                    # per image: its own spatial statistics; in eval mode the images of a batch never interact,
                    # so the gradient of the sum of the per-image losses is each image's own gradient
                    terms = [
                        ((x_l.mean(dim=(2, 3)) - rm) ** 2).mean(dim=1)
                        + ((x_l.var(dim=(2, 3), unbiased=False) - rv) ** 2).mean(dim=1)
                        for x_l, rm, rv in stats
                    ]
                    if not terms:
                        raise AdapterError(
                            f"grafiqs: no BatchNorm2d layer with more than one spatial position "
                            f"follows block {self.block!r}: nothing to take gradients of"
                        )
                    loss = torch.stack(terms).sum(dim=0) / len(terms)  # (B,)
                    (grad,) = torch.autograd.grad(loss.sum(), captured[0])
                    out.extend(g.numpy().astype(np.float32) for g in grad.detach())
        finally:
            for h in handles:
                h.remove()
        return out

    def score_crops(self, crops: np.ndarray) -> np.ndarray:
        """Quality of crops already in the backbone's input format (what :meth:`score` makes of its faces)."""
        grads = self.gradients(crops) if len(crops) else []
        return np.asarray([-np.abs(g.astype(np.float64)).sum() for g in grads], np.float32)

    def score(self, images: Any) -> np.ndarray:
        faces = list(images)
        return self.score_crops(self.crops(faces)) if faces else np.zeros(0, np.float32)
