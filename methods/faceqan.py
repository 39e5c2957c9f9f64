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
  processed alone, so its score does not depend on its batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fiqa_bench.capabilities import BackboneQualityMethod
from fiqa_bench.cards import InputSpec, MethodCard


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
        summary=("FaceQAN: k = 10 seeded noisy copies attacked by l = 5 FGSM steps of eps = 0.001 (pixels in [0, 1]) "
                 "away from the face's embedding; q = ((1 + mean S)/2 * clip(1 - std S, 0, 1) * cos(e, e_mirror))^5"),
        licence="code MIT (written from the paper; the authors' code was not used)",
        paper=("Ž. Babnik, P. Peer, V. Štruc, 'FaceQAN: Face Image Quality Assessment Through Adversarial Noise "
               "Exploration', ICPR 2022. Open choices here: perturbations on [0, 1] RGB pixels before the "
               "backbone's normalisation, clipped to [0, 1]; S = the l x k similarities at each iterate; noise "
               "drawn once from --seed for every image"),
        input=InputSpec("face"),
        higher_is_better=True,
        score_range="[-1, 1] (in practice (0, 1])",
        needs_backbone=True,
        needs_capabilities=("layers",),
    )

    def __init__(self, backbone: Any = None, eps: float = 0.001, iterations: int = 5, copies: int = 10,
                 exponent: int = 5, seed: int = 0, backbone_options: dict | None = None) -> None:
        eps, iterations, copies, exponent = float(eps), int(iterations), int(copies), int(exponent)
        if not 0.0 < eps < 1.0:
            raise ValueError(f"eps must be in (0, 1), got {eps}")
        if iterations < 1 or copies < 2 or exponent < 1:
            raise ValueError(f"need iterations >= 1, copies >= 2, exponent >= 1 (got {iterations}, {copies}, "
                             f"{exponent})")
        super().__init__(backbone, backbone_options)
        self.eps, self.iterations, self.copies, self.exponent = eps, iterations, copies, exponent
        self.seed = int(seed)

    def parameters(self) -> dict:
        return {"eps": self.eps, "iterations": self.iterations, "copies": self.copies, "exponent": self.exponent,
                "seed": self.seed}

    def similarities(self, crops: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """Per crop: the (l, k) adversarial similarities S, and the symmetry cosines s_f (N,)."""
        import torch
        import torch.nn.functional as F

        backbone = self._backbone()
        model = backbone.torch_model()
        pixels = backbone.pixels(crops)
        gen = torch.Generator().manual_seed(self.seed)
        noise = (torch.rand((self.copies, *pixels.shape[1:]), generator=gen) * 2.0 - 1.0) * self.eps
        out, sym = [], []
        for i in range(len(pixels)):
            x = pixels[i:i + 1]
            with torch.no_grad():
                pair = model(backbone.normalise(torch.cat([x, backbone.mirror(x)])))
                e = pair[:1]
                sym.append(float(F.cosine_similarity(pair[:1], pair[1:]).item()))
            xa = (x + noise).clamp(0.0, 1.0)
            sims = []
            for _ in range(self.iterations):
                xa = xa.detach().requires_grad_(True)
                with torch.enable_grad():
                    s = F.cosine_similarity(model(backbone.normalise(xa)), e.expand(self.copies, -1))
                    (grad,) = torch.autograd.grad((1.0 - s).mean(), xa)
                sims.append(s.detach().numpy().astype(np.float64))
                xa = (xa.detach() + self.eps * grad.sign()).clamp(0.0, 1.0)
            out.append(np.stack(sims))
        return out, np.asarray(sym, np.float64)

    def score_crops(self, crops: np.ndarray) -> np.ndarray:
        """Quality of crops already in the backbone's input format (what :meth:`score` makes of its faces)."""
        if len(crops) == 0:
            return np.zeros(0, np.float32)
        sims, sym = self.similarities(crops)
        return np.asarray([faceqan_aggregate(s, f, self.exponent) for s, f in zip(sims, sym)], np.float32)

    def score(self, images: Any) -> np.ndarray:
        faces = list(images)
        return self.score_crops(self.crops(faces)) if faces else np.zeros(0, np.float32)
