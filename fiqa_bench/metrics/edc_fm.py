"""FM-EDC pAUC (ISO/IEC 29794-1): non-mated comparisons, threshold fixed at a starting FMR (default 1e-3)."""

from __future__ import annotations

from fiqa_bench.metrics.edc import fixed_threshold_metric

METRIC = fixed_threshold_metric(
    "edc_fm",
    "fm",
    "FM-EDC pAUC",
    6,
    "area under the FMR-vs-discard curve up to 20% / 30% discarded (lower is better); threshold fixed once at FMR "
    "1e-3 on the non-mated scores",
)
