"""``rescore``: every metric of a results file recomputed from its ``.npz`` alone, and compared with the file."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from fiqa_bench.metrics.base import MetricOptions, declared_options
from fiqa_bench.pipeline.evaluation import measure, pairdata_from_raw
from fiqa_bench.results.record import load_record, read_raw


def metric_options(config: dict) -> MetricOptions:
    """The metric settings a results file's config records: every option the registered metrics declare, read back
    by its name (the default where a file predates it)."""
    return MetricOptions(**{name: config[name] for name in declared_options() if name in config})


def _diff(path: str, a: Any, b: Any, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append(f"{path}.{k}: only in {'the file' if k in a else 'the recomputation'}")
            else:
                _diff(f"{path}.{k}", a[k], b[k], out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            _diff(f"{path}[{i}]", x, y, out)
    elif isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return
    elif a != b:
        out.append(f"{path}: file {a!r}, recomputed {b!r}")


def rescore(results_path: str | Path, *, progress: bool = False) -> list[str]:
    """Differences between the metrics a results file records and those recomputed from its raw data (empty
    when every value agrees exactly, after the same JSON round trip). ``progress``: the bootstrap's progress bar
    on stderr.

    Everything is recomputed, the bootstrap replicates included: rescore never reads the replicate store
    (:mod:`fiqa_bench.pipeline.replicate_store`) that ``run`` reuses. A store entry is a file in a user-writable folder
    (another build's, a copied cache, a hand edit), not proof of a computation, and rescore is the independent
    check that the file's numbers follow from its ``.npz`` with this code and these libraries; a check that read
    its answer from a cache could only agree with whatever wrote it. Nor does it write to the store."""
    record = load_record(results_path)
    raw = read_raw(results_path, record)
    data = pairdata_from_raw(raw)
    keys = record.protocol.get("metrics") or list(record.metrics)
    out_reps: list[str] = []
    options = metric_options(record.config)
    metrics = measure(data, keys, options)
    B = int(record.config.get("bootstrap", 0) or 0)
    if B > 0:
        from fiqa_bench.pipeline.uncertainty import BootstrapOptions, bootstrap

        boot = BootstrapOptions(
            B=B,
            level=float(record.config.get("bootstrap_level", 0.95)),
            seed=int(record.config.get("bootstrap_seed", 0)),
        )
        metrics, reps = bootstrap(data, metrics, options, boot, progress=progress)
        for key, matrix in reps.items():
            stored = raw.get(f"boot_{key}")
            if stored is None or stored.shape != matrix.shape or not np.array_equal(stored, matrix, equal_nan=True):
                out_reps.append(f"raw boot_{key}: the stored bootstrap replicates differ from the recomputed ones")
    again = json.loads(json.dumps(metrics, allow_nan=False))
    out: list[str] = []
    _diff("metrics", {k: record.metrics.get(k) for k in keys}, again, out)
    return out + out_reps
