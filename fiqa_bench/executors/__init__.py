"""Executors of the per-image stages: ``local`` (in this process, the default) and ``ray`` (Ray actors; the
optional extra ``fiqa-bench[ray]``). See :mod:`.base` for the seam."""

from __future__ import annotations

from .base import STAGES, Executor, SourceReport, StageContext, StageWorker
from .local import LocalExecutor

EXECUTORS = ("local", "ray")

__all__ = ["EXECUTORS", "STAGES", "Executor", "LocalExecutor", "SourceReport", "StageContext", "StageWorker"]
