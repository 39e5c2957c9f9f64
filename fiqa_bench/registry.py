"""Plugin registry: methods, backbones and protocols are found through entry-point groups.

Built-ins are declared in ``pyproject.toml`` exactly as a third-party package declares its own, so there is one
source of truth. Looking names up reads package metadata only; an adapter's module is imported when its card
or class is asked for, and adapter modules keep heavy imports (onnxruntime, torch, dlib) inside functions.
A plugin that fails to import is reported by :func:`failures` and by ``fiqa-bench list``; it is never silently
dropped.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from .errors import PluginLoadError, UnknownNameError

GROUPS = {
    "method": "fiqa_bench.methods",
    "backbone": "fiqa_bench.backbones",
    "protocol": "fiqa_bench.protocols",
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


_scanned: tuple[tuple, dict[str, list[tuple[str, str, str]]]] | None = None


def _path_state() -> tuple:
    """``sys.path`` with each entry's mtime and link count: installing or removing a distribution adds or removes
    a ``*.dist-info`` folder in one of them (its mtime and, for a sub-folder, its link count change, the latter
    even within one tick of the file system's clock), and adding a folder to ``sys.path`` changes the tuple."""
    import os
    import sys

    state = []
    for p in sys.path:
        try:
            st = os.stat(p or ".")
            state.append((p, st.st_mtime_ns, st.st_nlink))
        except (OSError, TypeError, ValueError):
            state.append((p, None))
    return tuple(state)


def _entry_points() -> dict[str, list[tuple[str, str, str]]]:
    """(name, target, distribution) of every entry point of our groups, read once for all groups (a scan of every
    installed distribution's metadata: tens of ms) and again only when :func:`_path_state` changed."""
    global _scanned
    state = _path_state()
    if _scanned is not None and _scanned[0] == state:
        return _scanned[1]
    every = metadata.entry_points()
    table = {group: [(ep.name, ep.value, getattr(getattr(ep, "dist", None), "name", "") or "")
                     for ep in every.select(group=group)] for group in GROUPS.values()}
    _scanned = (state, table)
    return table


def entries(kind: str) -> dict[str, Entry]:
    """Registered names of one kind (no adapter module is imported)."""
    if kind not in GROUPS:
        raise ValueError(f"kind must be one of {sorted(GROUPS)}")
    found: dict[str, Entry] = {}
    for name, value, dist in _entry_points()[GROUPS[kind]]:
        ep = Entry(kind, name, value, dist)  # (name, value) as the loop below reads them
        if ep.name in found and found[ep.name].target != ep.target:
            _load_failures[(kind, ep.name)] = (
                f"registered twice: {found[ep.name].target} ({found[ep.name].distribution}) and {ep.target} ({dist})"
            )
            continue
        found[ep.name] = ep
    return dict(sorted(found.items()))


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
    """Import and return the class registered as ``name`` (an argument after ':' is ignored here)."""
    base, _ = split_spec(name)
    table = entries(kind)
    if base not in table:
        raise _unknown(kind, base)
    entry = table[base]
    module_name, _, attr = entry.target.partition(":")
    try:
        import importlib

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
