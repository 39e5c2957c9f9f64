"""The ``local`` executor: every stage in this process, all rows at once, through one :class:`StageWorker`
(the face source's threads decode; the adapters run in the calling thread). The default; what runs always did."""

from __future__ import annotations

import numpy as np

from ..stages import Skipped
from .base import Executor, SourceReport, StageContext, StageWorker


class LocalExecutor(Executor):
    name = "local"

    def __init__(self) -> None:
        self.worker: StageWorker | None = None

    def open(self, bench, backbone, method, ctx: StageContext) -> None:
        self.worker = StageWorker(bench, backbone, method, ctx)

    def stage(self, stage: str, rows: np.ndarray, skipped: dict[int, Skipped]) -> tuple[np.ndarray, int]:
        assert self.worker is not None, "open() first"
        return self.worker.run(stage, rows, skipped)

    def report(self) -> SourceReport:
        assert self.worker is not None, "open() first"
        return self.worker.report()

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()
