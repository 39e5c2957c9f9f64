"""Small pieces every protocol reader shares: the ``benchmark.json`` of prepared layouts (which reader
recognises a folder is :func:`fiqa_bench.layouts.sniff_layout`, over the registered layouts), the message for
gated datasets, and strict option handling (a misspelt option must not be silently ignored)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fiqa_bench.data.layout_files import LAYOUT_FILE
from fiqa_bench.errors import FiqaBenchError, ProtocolFormatError


def read_layout_json(root: Path, layout: str) -> dict[str, Any]:
    """The ``benchmark.json`` that ``fiqa-bench prepare`` writes at a layout's root ({} when absent).

    Its ``name`` names the benchmark; a ``layout`` other than ``layout`` is an error (wrong reader).
    """
    path = root / LAYOUT_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        line = getattr(exc, "lineno", None)
        raise ProtocolFormatError(path, line, f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProtocolFormatError(path, 1, "expected a JSON object")
    found = data.get("layout")
    if found is not None and found != layout:
        raise FiqaBenchError(f"{path}: this folder is a {found!r} layout, not {layout!r}; use {found}-layout:{root}")
    name = data.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ProtocolFormatError(path, None, f"'name' must be a non-empty string, got {name!r}")
    pad = data.get("detect_pad")
    if pad is not None and (not isinstance(pad, (int, float)) or not 0.0 <= float(pad) <= 2.0):
        raise ProtocolFormatError(path, None, f"'detect_pad' must be a number in [0, 2], got {pad!r}")
    return data


def declared_layout(root: Path) -> str | None:
    """The ``layout`` a folder's ``benchmark.json`` declares (None when it has none, or it is unreadable: the
    layout's reader then reports what is wrong with it)."""
    try:
        data = json.loads((Path(root) / LAYOUT_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    found = data.get("layout") if isinstance(data, dict) else None
    return found if isinstance(found, str) else None


def gated_help(name: str) -> str:
    """How to obtain a dataset that cannot be downloaded automatically (text from ``fiqa_bench.data.datasets``)."""
    try:
        from fiqa_bench.data.datasets import gated_dataset_help
    except ModuleNotFoundError as exc:
        if exc.name != "fiqa_bench.data.datasets":
            raise
        return f"{name} must be requested from its owners; pass the folder that holds it as the protocol root."
    return gated_dataset_help(name)


def need_root(root: Path | None, name: str) -> Path:
    """A gated dataset has no default location: say how to get it instead of guessing."""
    if root is None:
        raise FiqaBenchError(f"protocol {name!r} needs the dataset folder (root). {gated_help(name)}")
    if not root.is_dir():
        raise FiqaBenchError(f"protocol {name!r}: data folder {root} does not exist. {gated_help(name)}")
    return root


def reject_unknown(who: str, options: dict[str, Any], known: Iterable[str]) -> None:
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise FiqaBenchError(
            f"protocol {who!r} does not take option(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(sorted(known)) or 'none'}"
        )
