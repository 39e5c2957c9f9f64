"""Training tinyFQnet (Peng et al.): quality labels (Eq. 1, :mod:`.labels`), the labelled crop set built from
photos (:mod:`.dataset`, whose loop the learned baselines of :mod:`.baselines` share), score-balanced sampling
(section 3.4, :mod:`.sampling`), the network (Table 1) and its ablation variants (Table 6, :mod:`.nets`, costs in
:mod:`.flops`), training (Eq. 2, :mod:`.train`) and ONNX export (:mod:`.export`, ``torch.onnx.export``).

Only :mod:`.nets`, :mod:`.flops`, :mod:`.train` and :mod:`.export` need torch (the optional ``train`` extra:
``pip install 'fiqa-bench[train]'``, which also brings ``onnx`` and ``onnxscript`` for the export); labels and
sampling are numpy only. Nothing in inference imports this package: scoring runs on onnxruntime with the contract
of :mod:`fiqa_bench.models.onnx_contract`.
"""

from __future__ import annotations


def require_torch():
    """``import torch``, or a :class:`MissingDependencyError` that says which extra installs it."""
    try:
        import torch
    except ImportError as exc:
        from fiqa_bench.errors import MissingDependencyError

        raise MissingDependencyError(
            "training tinyFQnet needs PyTorch: pip install 'fiqa-bench[train]' (CPU build is enough)"
        ) from exc
    return torch
