"""The results file: the contract that reports and leaderboards are built from (schema in README/design).

One JSON per (method with its options, backbone, protocol, selection) run, versioned by ``schema_version``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import subprocess
from pathlib import Path
from typing import Any, Mapping

from . import __version__
from .atomic import write_json

SCHEMA_VERSION = 1


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The suite's git commit when run from a checkout (None for an installed wheel)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = out.stdout.strip()
    if out.returncode != 0 or not re.fullmatch(r"[0-9a-f]{40}", commit):
        return None
    dirty = subprocess.run(
        ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
    ).stdout.strip()
    return commit + ("-dirty" if dirty else "")


def suite_info() -> dict[str, Any]:
    return {"name": "fiqa-bench", "version": __version__, "git_commit": git_commit()}


def options_digest(options: Mapping[str, Any] | None) -> str:
    """A short stable hash of constructor options as given (sorted ``key=value`` text): 8 hex digits."""
    text = json.dumps({str(k): str(v) for k, v in sorted(dict(options or {}).items())}, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def results_filename(protocol: str, method: str, backbone: str, selection: str,
                     method_options: Mapping[str, Any] | None = None) -> str:
    """``<protocol>__<method>__<backbone>__<selection>.json``; with method options (``--method-option``), the
    method part gains ``-opts-<8 hex>`` (:func:`options_digest` of the options as given), so variants of one
    method (e.g. different weights files) never overwrite each other. No options: the plain name."""

    def clean(s: str) -> str:
        s = Path(s).name if ("/" in s or "\\" in s) else s
        return re.sub(r"[^A-Za-z0-9._-]+", "-", s).strip("-") or "x"

    method_part = clean(method) + (f"-opts-{options_digest(method_options)}" if method_options else "")
    return f"{clean(protocol)}__{method_part}__{clean(backbone)}__{clean(selection)}.json"


def write_results(out_dir: Path, record: dict[str, Any]) -> Path:
    """Write one results record atomically; returns its path."""
    path = Path(out_dir) / results_filename(
        record["protocol"]["name"], record["method"]["name"], record["backbone"]["name"], record["config"]["selection"],
        record["method"].get("options"),
    )
    write_json(path, record)
    return path


def validate(record: dict[str, Any]) -> list[str]:
    """Problems with a results record (empty list when valid)."""
    problems = []
    for key in ("schema_version", "suite", "method", "backbone", "protocol", "config", "counts", "metrics"):
        if key not in record:
            problems.append(f"missing key {key!r}")
    if record.get("schema_version") != SCHEMA_VERSION:
        problems.append(f"schema_version {record.get('schema_version')!r} != {SCHEMA_VERSION}")
    metrics = record.get("metrics", {})
    if not ("tpr_at_fpr" in metrics or "accuracy" in metrics):
        problems.append("metrics has neither tpr_at_fpr nor accuracy")
    return problems
