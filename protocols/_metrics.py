"""The declared metrics (registered keys, entry-point group ``fiqa_bench.metrics``) the built-in protocols report,
in display order: each protocol's card lists its own, and the runner, ``rescore`` and the writers loop over that
list."""

from __future__ import annotations

#: Template 1:1 verification (IJB-B/C, LFW templates, any IJB-layout folder): TPR at FPR and the EDC family.
TEMPLATE_METRICS = ("tpr_at_fpr", "edc_fnm", "edc_fm", "edc_fnm_rethreshold")
#: k-fold pair verification (YTF, LFW View 2): accuracy and the EDC family.
KFOLD_METRICS = ("accuracy", "edc_fnm", "edc_fm", "edc_fnm_rethreshold")
