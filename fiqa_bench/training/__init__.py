"""Training tinyFQnet (Peng et al.): quality labels (Eq. 1, :mod:`.labels`), the labelled crop set built from
photos (:mod:`.dataset`), score-balanced sampling (section 3.4, :mod:`.sampling`), the network (Table 1) and its
ablation variants (Table 6, :mod:`.nets`, costs in :mod:`.flops`), training (Eq. 2, :mod:`.train`) and ONNX
export (:mod:`.export`).

Only :mod:`.nets`, :mod:`.flops` and :mod:`.train` need torch (the optional ``train`` extra:
``pip install 'fiqa-bench[train]'``); labels, sampling and the ONNX writer are numpy only, and inference
(:mod:`fiqa_bench.methods.tinyfq`) runs on onnxruntime without torch.
"""

from __future__ import annotations


def require_torch():
    """``import torch``, or a :class:`MissingDependencyError` that says which extra installs it."""
    try:
        import torch
    except ImportError as exc:
        from ..errors import MissingDependencyError

        raise MissingDependencyError(
            "training tinyFQnet needs PyTorch: pip install 'fiqa-bench[train]' (CPU build is enough)"
        ) from exc
    return torch
