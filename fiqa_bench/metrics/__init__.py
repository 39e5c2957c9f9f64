"""Metrics: a functional API (plain numpy in, plain numbers out) and the declared metrics built on it.

* :mod:`.verification`: ROC, TPR@FPR (conservative and insightface's nearest reading), k-fold accuracy;
* :mod:`.edc`: the error-versus-discard characteristic (ISO/IEC 29794-1) and its pAUC;
* :mod:`.base`: :class:`Metric` declarations and :class:`PairData`, what they are computed from. Each declared
  metric lives in its own module of this package (``tpr_at_fpr``, ``accuracy``, ``edc_fnm``, ...), registered by its
  key in the entry-point group ``fiqa_bench.metrics`` (as another package registers its own); a protocol's card lists
  the keys it reports (``ProtocolCard.metrics``).
"""

# The declared metric ``tpr_at_fpr`` is a module of this package and the function ``tpr_at_fpr`` is re-exported
# below under the same name: the module is imported first, so that the package attribute stays the function
# whichever of the two is imported later (importing a loaded submodule never rebinds it).
from fiqa_bench.metrics import tpr_at_fpr as _tpr_at_fpr_metric  # noqa: F401
from fiqa_bench.metrics.verification import (
    DEFAULT_FPR_TARGETS,
    FPR_TARGETS,
    TPR_MODES,
    fpr_key,
    kfold_accuracy,
    reported_fpr_targets,
    roc,
    tpr_at_fpr,
    tpr_at_fpr_detailed,
    verification_accuracy_at,
)

__all__ = [
    "DEFAULT_FPR_TARGETS",
    "FPR_TARGETS",
    "TPR_MODES",
    "fpr_key",
    "kfold_accuracy",
    "reported_fpr_targets",
    "roc",
    "tpr_at_fpr",
    "tpr_at_fpr_detailed",
    "verification_accuracy_at",
]
