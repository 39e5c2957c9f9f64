"""Executors of the per-image stages: ``local`` (in this process, the default) and ``ray`` (Ray actors; the
optional extra ``fiqa-bench[ray]``), registered in the entry-point group ``fiqa_bench.executors`` as another
package registers its own. See :mod:`.base` for the seam."""

from __future__ import annotations

from fiqa_bench.executors.base import STAGES, Executor, SourceReport, StageContext, StageWorker
from fiqa_bench.executors.local import LocalExecutor

__all__ = ["STAGES", "Executor", "LocalExecutor", "SourceReport", "StageContext", "StageWorker"]
