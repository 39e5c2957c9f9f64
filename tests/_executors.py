"""What the executor tests share: a run's config on a small benchmark, an evaluation on the adapters built from
it, the "same results" assertion, and a method that kills its own worker process once (a real SIGKILL)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np

from fiqa_bench.config import RunConfig
from fiqa_bench.pipeline.evaluation import evaluate
from fiqa_bench.resolve import ConfigBuild


def run_config(bench: Path, backbone: str, method: str, tmp_path: Path, **kw) -> RunConfig:
    return RunConfig(
        protocol=str(bench),
        backbone=backbone,
        method=method,
        out=str(tmp_path / "out"),
        progress=False,
        bootstrap=20,
        batch_size=8,
        **kw,
    )


def evaluate_with(cfg: RunConfig, executor, build=None):
    """evaluate() on the adapters of ``cfg`` built in the driver (as the runner builds them)."""
    bench, backbone, method = (build or ConfigBuild(cfg))()
    return evaluate(
        bench,
        backbone,
        method,
        cfg.eval_options(),
        backbone_name=cfg.backbone,
        method_name=cfg.method,
        executor=executor,
    )


def assert_same(a, b) -> None:
    """Same metrics (exactly, intervals included), same counts, and every raw array equal bit for bit."""
    assert a.metrics == b.metrics
    differ = {
        k: (a.counts.get(k), b.counts.get(k))
        for k in a.counts.keys() | b.counts.keys()
        if a.counts.get(k) != b.counts.get(k)
    }
    assert not differ, differ
    assert sorted(a.raw) == sorted(b.raw)
    for key in a.raw:
        x, y = np.asarray(a.raw[key]), np.asarray(b.raw[key])
        assert x.dtype == y.dtype and x.shape == y.shape, key
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), key


class KillOnce:
    """The inner method, except that the first call (in a process other than the one whose id the marker file
    holds) that removes the marker file SIGKILLs its own process (exactly one: the removal is the claim)."""

    def __init__(self, inner, marker: str):
        self.inner, self.marker = inner, marker
        self.card = inner.card

    def identity(self) -> str:
        return self.inner.identity()

    def score(self, images):
        try:
            owner = int(open(self.marker).read() or 0)
        except FileNotFoundError:  # gone (removed by the worker that killed itself)
            owner = os.getpid()
        if owner != os.getpid():
            try:
                os.unlink(self.marker)  # the claim: of two workers that read the file at once, one removes it
            except FileNotFoundError:
                return self.inner.score(images)
            os.kill(os.getpid(), signal.SIGKILL)
        return self.inner.score(images)


class KillingBuild:
    """Picklable recipe: the run's adapters with the method wrapped in :class:`KillOnce`."""

    def __init__(self, cfg: RunConfig, marker: str):
        self.cfg, self.marker = cfg, marker

    def __call__(self):
        bench, backbone, method = ConfigBuild(self.cfg)()
        return bench, backbone, KillOnce(method, self.marker)
