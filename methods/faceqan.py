"""``faceqan``: FaceQAN (Babnik, Peer, Štruc, ICPR 2022), quality as robustness to adversarial noise, with symmetry.

A clear, frontal face sits deep inside its region of the embedding space: small adversarial perturbations of
the pixels barely move its embedding. FaceQAN measures that, per face ``I`` with embedding ``e``:

1. ``k`` copies of the image in [0, 1] pixels, each with its own uniform noise in [-eps, eps] (seeded);
2. ``l`` iterations of the basic iterative method (iterated FGSM): for each copy ``I_i``, the similarity
   ``s_i = cos(e, f(I_i))`` is recorded and the copy moves by ``eps * sign(grad (1 - s_i))`` (away from ``e``),
   clipped to the valid pixel range; ``S`` collects the ``l * k`` similarities;
3. the symmetry term ``s_f = cos(e, f(mirror(I)))`` models the effect of pose (a turned head is not mirror
   symmetric);
4. ``q = ( (1 + mean(S)) / 2 * clip(1 - std(S), 0, 1) * s_f ) ** p``; higher is better.

Written from the paper's description (no code of the authors' implementation was copied).

Settings (the paper's defaults, also on the card): ``eps = 0.001`` of the [0, 1] pixel range, ``l = 5``
iterations, ``k = 10`` adversarial copies, ``p = 5``. Choices left open and made here:

* noise and steps act on the [0, 1] RGB pixels before the backbone's normalisation (``normalise`` is part of the
  differentiated function), clipped to [0, 1];
* the similarities of step 2 are recorded at each of the ``l`` iterates before it is moved (iterate 0 = noise
  only), so ``S`` has ``l * k`` entries;
* the run's ``--flip`` is not applied inside (``e`` is the plain network output); the mirror enters only as
  ``s_f``;
* seeded: the ``k`` noise tensors are drawn once from ``seed`` and are the same for every image; each image is
  processed alone by default (``batch_size=1``), so its score does not depend on its batch.

Cost: ``k * l = 50`` forward passes with an input gradient per face, plus one clean and one mirrored pass (the
last iterate is only measured, so it needs no gradient). ``batch_size=B`` puts ``B`` images (``B * k`` copies)
through each autograd call; in eval mode they do not interact, but float32 rounding of the batched convolutions
flips the sign of near-zero gradient components, so scores move by up to about 3e-5 (8 LFW faces, B = 4 or 8),
and on a CPU it was not faster (1.5 s per face at B = 1, 1.8 at B = 4, 2.6 at B = 8, one thread). ``B`` other
than 1 therefore enters the method's identity (its own cache entry).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fiqa_bench.api.capabilities import BackboneQualityMethod
from fiqa_bench.api.cards import InputSpec, MethodCard


def _unit(v):
    """Rows scaled to unit length (cosine similarity as a dot product of unit rows)."""
    return v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)


def faceqan_aggregate(similarities: np.ndarray, symmetry: float, p: int) -> float:
    """The paper's aggregation: ``((1 + mean S) / 2 * clip(1 - std S, 0, 1) * s_f) ** p`` (float64)."""
    s = np.asarray(similarities, np.float64).reshape(-1)
    base = (1.0 + s.mean()) / 2.0 * float(np.clip(1.0 - s.std(), 0.0, 1.0)) * float(symmetry)
    return float(base ** int(p))


class FaceQAN(BackboneQualityMethod):
    """FaceQAN on the run's backbone (needs ``layers``): iterated-FGSM robustness times flip symmetry."""

    card = MethodCard(
        name="faceqan",
        version="1",
        summary=(
            "FaceQAN: k = 10 seeded noisy copies attacked by l = 5 FGSM steps of eps = 0.001 (pixels in [0, 1]) "
            "away from the face's embedding; q = ((1 + mean S)/2 * clip(1 - std S, 0, 1) * cos(e, e_mirror))^5"
        ),
        licence="code MIT (written from the paper; the authors' code was not used)",
        paper=(
            "Ž. Babnik, P. Peer, V. Štruc, 'FaceQAN: Face Image Quality Assessment Through Adversarial Noise "
            "Exploration', ICPR 2022. Open choices here: perturbations on [0, 1] RGB pixels before the "
            "backbone's normalisation, clipped to [0, 1]; S = the l x k similarities at each iterate; noise "
            "drawn once from --seed for every image"
        ),
        input=InputSpec("face"),
        higher_is_better=True,
        score_range="[-1, 1] (in practice (0, 1])",
        needs_backbone=True,
        needs_capabilities=("layers",),
    )

    def __init__(
        self,
        backbone: Any = None,
        eps: float = 0.001,
        iterations: int = 5,
        copies: int = 10,
        exponent: int = 5,
        seed: int = 0,
        batch_size: int = 1,
        backbone_options: dict | None = None,
    ) -> None:
        eps, iterations, copies, exponent = float(eps), int(iterations), int(copies), int(exponent)
        if not 0.0 < eps < 1.0:
            raise ValueError(f"eps must be in (0, 1), got {eps}")
        if iterations < 1 or copies < 2 or exponent < 1:
            raise ValueError(
                f"need iterations >= 1, copies >= 2, exponent >= 1 (got {iterations}, {copies}, {exponent})"
            )
        super().__init__(backbone, backbone_options)
        self.eps, self.iterations, self.copies, self.exponent = eps, iterations, copies, exponent
        self.seed = int(seed)
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)  # images per autograd call (1: each image alone)

    def parameters(self) -> dict:
        params = {
            "eps": self.eps,
            "iterations": self.iterations,
            "copies": self.copies,
            "exponent": self.exponent,
            "seed": self.seed,
        }
        if self.batch_size != 1:  # batched scores differ from the per-image ones by float32 rounding (see above)
            params["batch_size"] = self.batch_size
        return params

    def similarities(self, crops: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """Per crop: the (l, k) adversarial similarities S, and the symmetry cosines s_f (N,).

        ``batch_size`` images (``batch_size * k`` adversarial copies) go through each autograd call: the backbone
        is in eval mode (BatchNorm uses its running statistics), so the copies never interact and each image's
        gradient is its own; the loss is the sum over images of each image's mean over its k copies, so every
        copy's gradient is the one a lone image would get. Only the input needs a gradient (the backbone's
        parameters are frozen); the clean/mirror embeddings and the last iterate (measured, never moved) are
        computed without autograd.
        """
        import torch

        backbone = self._backbone()
        model = backbone.torch_model()
        pixels = backbone.pixels(crops)
        gen = torch.Generator().manual_seed(self.seed)
        noise = (torch.rand((self.copies, *pixels.shape[1:]), generator=gen) * 2.0 - 1.0) * self.eps
        k = self.copies
        out: list[np.ndarray] = []
        sym: list[np.ndarray] = []
        for i in range(0, len(pixels), self.batch_size):
            x = pixels[i : i + self.batch_size]
            b = len(x)
            with torch.inference_mode():
                pair = model(backbone.normalise(torch.cat([x, backbone.mirror(x)])))
                e = _unit(pair[:b])
                sym.append((e * _unit(pair[b:])).sum(dim=1).double().numpy())
            target = e.clone().repeat_interleave(k, dim=0)  # (b * k, D): each copy's own face
            xa = (x[:, None] + noise[None]).clamp(0.0, 1.0).reshape(b * k, *x.shape[1:])
            sims = []
            for step in range(self.iterations):
                if step == self.iterations - 1:  # the last iterate is only measured: no step, so no gradient
                    with torch.inference_mode():
                        s = (_unit(model(backbone.normalise(xa))) * target).sum(dim=1)
                    sims.append(s.double().numpy().reshape(b, k))
                    break
                xa = xa.detach().requires_grad_(True)
                with torch.enable_grad():
                    s = (_unit(model(backbone.normalise(xa))) * target).sum(dim=1)
                    (grad,) = torch.autograd.grad((1.0 - s).sum() / k, xa)
                sims.append(s.detach().double().numpy().reshape(b, k))
                xa = (xa.detach() + self.eps * grad.sign()).clamp(0.0, 1.0)
            out.extend(np.stack(sims, axis=1))  # (b, l, k) -> b arrays (l, k)
        return out, np.concatenate(sym)

    def score_crops(self, crops: np.ndarray) -> np.ndarray:
        """Quality of crops already in the backbone's input format (what :meth:`score` makes of its faces)."""
        if len(crops) == 0:
            return np.zeros(0, np.float32)
        sims, sym = self.similarities(crops)
        return np.asarray([faceqan_aggregate(s, f, self.exponent) for s, f in zip(sims, sym)], np.float32)

    def score(self, images: Any) -> np.ndarray:
        faces = list(images)
        return self.score_crops(self.crops(faces)) if faces else np.zeros(0, np.float32)
