"""FNM-EDC pAUC (ISO/IEC 29794-1): mated comparisons, threshold fixed at a starting FNMR (default 0.05)."""

from __future__ import annotations

from fiqa_bench.metrics.edc import fixed_threshold_metric

METRIC = fixed_threshold_metric(
    "edc_fnm",
    "fnm",
    "FNM-EDC pAUC",
    4,
    "area under the FNMR-vs-discard curve up to 20% / 30% discarded (lower is better); threshold fixed once at "
    "FNMR 0.05 on the mated scores",
)
