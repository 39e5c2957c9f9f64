"""Plugin registry: every pluggable kind (methods, backbones, protocols, metrics, detectors, executors,
prepared-benchmark layouts, score formats) is found through one entry-point group per kind.

Built-ins are declared in ``pyproject.toml`` exactly as a third-party package declares its own, so there is one
source of truth. Looking names up reads package metadata only; an adapter's module is imported when its card
or class is asked for, and adapter modules keep heavy imports (onnxruntime, torch, dlib) inside functions.
A plugin that fails to import is reported by :func:`failures` and by ``fiqa-bench list``; it is never silently
dropped.

One cached registry per process: the entry points are read once and read again only when the import path changes
(a folder added to ``sys.path``, or a folder on it whose contents changed, e.g. a ``pip install`` beside the running
process); each class is imported once. :func:`lookups` counts the metadata scans and imports, so a caller can check
that nothing is looked up again after resolution.
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
import threading
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from fiqa_bench.errors import PluginLoadError, UnknownNameError

GROUPS = {
    "method": "fiqa_bench.methods",
    "backbone": "fiqa_bench.backbones",
    "protocol": "fiqa_bench.protocols",
    "detector": "fiqa_bench.detectors",
    "executor": "fiqa_bench.executors",
    "layout": "fiqa_bench.layouts",
    "metric": "fiqa_bench.metrics",
    "format": "fiqa_bench.formats",
}


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    target: str  # "module:attr"
    distribution: str

    def display_name(self, cls: Any | None = None) -> str:
        arg = getattr(cls, "argument", None) if cls is not None else None
        return f"{self.name}:{arg}" if arg else self.name


_load_failures: dict[tuple[str, str], str] = {}
_lock = threading.Lock()
_state: list = [None]  # the import-path state the caches below were filled under
_scans: dict[str, dict[str, Entry]] = {}  # kind -> its entries (every kind filled by one scan)
_classes: dict[tuple[str, str], Any] = {}  # (kind, "module:attr") -> the loaded object
_counts = {"scans": 0, "imports": 0}


def _path_state() -> tuple:
    """What the entry points depend on: ``sys.path``, and each folder's mtime and link count (installing or removing
    a distribution adds or removes a ``*.dist-info`` folder in one of them: its mtime and link count change, the
    latter even within one tick of the file system's clock)."""
    state: list[tuple[str, int | None, int | None]] = []
    for entry in sys.path:
        try:
            st = os.stat(entry or ".")
            state.append((entry, st.st_mtime_ns, st.st_nlink))
        except (OSError, TypeError, ValueError):
            state.append((entry, None, None))
    return tuple(state)


def _scan() -> dict[str, dict[str, Entry]]:
    """Every group's entries from one pass over the installed distributions' metadata (tens of ms)."""
    every = metadata.entry_points()
    tables: dict[str, dict[str, Entry]] = {}
    for kind, group in GROUPS.items():
        found: dict[str, Entry] = {}
        for ep in every.select(group=group):
            dist = getattr(getattr(ep, "dist", None), "name", "") or ""
            if ep.name in found and found[ep.name].target != ep.value:
                _load_failures[(kind, ep.name)] = (
                    f"registered twice: {found[ep.name].target} ({found[ep.name].distribution}) and {ep.value} ({dist})"
                )
                continue
            found[ep.name] = Entry(kind, ep.name, ep.value, dist)
        tables[kind] = dict(sorted(found.items()))
    return tables


def _current() -> None:
    """Drop every cached scan and class when the import path changed since they were filled (a distribution added
    or removed: the same "module:attr" may now be another module)."""
    state = _path_state()
    if _state[0] != state:
        with _lock:
            _scans.clear()
            _classes.clear()
            _state[0] = state


def entries(kind: str) -> dict[str, Entry]:
    """Registered names of one kind (no adapter module is imported; cached while the import path is unchanged)."""
    if kind not in GROUPS:
        raise ValueError(f"kind must be one of {sorted(GROUPS)}")
    _current()
    if not _scans:
        with _lock:
            _scans.update(_scan())
            _counts["scans"] += 1
    return dict(_scans[kind])


def names(kind: str) -> list[str]:
    """The registered names of one kind, sorted (e.g. the choices of a command-line option)."""
    return list(entries(kind))


def lookups() -> dict[str, int]:
    """How many entry-point scans and plugin imports this process has made (each is made once, then cached)."""
    return dict(_counts)


def clear_cache() -> None:
    """Forget every cached scan and class (tests that install and uninstall distributions in-process)."""
    with _lock:
        _scans.clear()
        _classes.clear()
        _state[0] = None


def split_spec(spec: str) -> tuple[str, str | None]:
    """``"onnx:/m/x.onnx"`` -> ``("onnx", "/m/x.onnx")``; ``"r50"`` -> ``("r50", None)``."""
    name, sep, arg = spec.partition(":")
    return name, (arg if sep else None)


def _unknown(kind: str, name: str) -> UnknownNameError:
    names = list(entries(kind))
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return UnknownNameError(
        f"unknown {kind} {name!r}.{hint} Registered {kind}s: {', '.join(names) or '(none)'}. "
        f"`fiqa-bench list` shows them with their cards."
    )


def load_class(kind: str, name: str) -> Any:
    """Import and return the class registered as ``name`` (an argument after ':' is ignored here); each target is
    imported once per process."""
    base, _ = split_spec(name)
    table = entries(kind)
    if base not in table:
        raise _unknown(kind, base)
    entry = table[base]
    hit = _classes.get((kind, entry.target))
    if hit is not None:
        return hit
    module_name, _, attr = entry.target.partition(":")
    try:
        obj = importlib.import_module(module_name)
        for part in attr.split(".") if attr else []:
            obj = getattr(obj, part)
    except Exception as exc:  # report, never drop
        msg = f"{type(exc).__name__}: {exc}"
        _load_failures[(kind, base)] = msg
        raise PluginLoadError(
            f"{kind} {base!r} is registered by {entry.distribution or 'a package'} as {entry.target} "
            f"but failed to load: {msg}"
        ) from exc
    with _lock:
        _counts["imports"] += 1
        _classes[(kind, entry.target)] = obj
    return obj


def create(kind: str, spec: str, **kwargs: Any) -> Any:
    """Instantiate ``spec`` (``name`` or ``name:ARG``); keyword arguments go to the constructor."""
    base, arg = split_spec(spec)
    cls = load_class(kind, base)
    wants = getattr(cls, "argument", None)
    if wants and arg is None:
        raise UnknownNameError(f"{kind} {base!r} needs an argument: use {base}:{wants}")
    if not wants and arg is not None:
        raise UnknownNameError(f"{kind} {base!r} takes no argument (got {spec!r})")
    return cls(arg, **kwargs) if wants else cls(**kwargs)


def failures() -> dict[tuple[str, str], str]:
    """Plugins that failed to load so far, with the reason."""
    return dict(_load_failures)
