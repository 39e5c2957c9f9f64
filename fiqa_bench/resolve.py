"""From names to objects: the protocol, backbone and quality method a run configuration names, each through the
registry, with its options typed and checked once; and :class:`ConfigBuild`, the picklable recipe worker processes
and Ray actors rebuild the same objects from.

The executors receive the recipe and never import the runner; this module imports neither.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fiqa_bench import registry
from fiqa_bench.api.capabilities import check_capabilities
from fiqa_bench.errors import FiqaBenchError, OptionError


# ----------------------------------------------------------------------------------------------- protocol
def open_protocol(spec: str, data: str | None = None):
    """A protocol instance from a registered name (``lfw``, ``ijbc``, ``ijb-layout:PATH``) or a folder in a
    registered layout, e.g. written by ``fiqa-bench prepare`` (:func:`fiqa_bench.layouts.sniff_layout`)."""
    path = Path(spec).expanduser()
    if path.is_dir():
        from fiqa_bench.layouts import layout_protocol, sniff_layout

        layout = sniff_layout(path)
        if layout is None:
            raise FiqaBenchError(f"{path}: not a benchmark folder (no benchmark.json, IJB meta/ or YTF splits.txt)")
        return registry.create("protocol", f"{layout_protocol(layout)}:{path}")
    name, arg = registry.split_spec(spec)
    cls = registry.load_class("protocol", name)
    if getattr(cls, "argument", None):
        return registry.create("protocol", spec)
    return registry.create("protocol", spec, root=data)


def _accepts(cls_or_fn: Callable, name: str) -> bool:
    try:
        params = inspect.signature(cls_or_fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _keyword_names(cls_or_fn: Callable) -> list[str]:
    """The keyword parameters a constructor takes (``**kwargs`` not listed)."""
    try:
        params = inspect.signature(cls_or_fn).parameters
    except (TypeError, ValueError):
        return []
    return [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def check_method_options(name: str, options: dict[str, str], reserved: dict[str, str] | None = None) -> None:
    """Raise :class:`OptionError` naming the method and the option when its constructor does not take it.

    ``reserved``: options the runner sets itself (``seed`` from ``--seed``, the run's ``backbone``), with the
    reason; they cannot be given as method options.
    """
    import difflib

    cls = registry.load_class("method", name)
    takes = [n for n in _keyword_names(cls) if n not in (reserved or {})]
    for key in options:
        if reserved and key in reserved:
            raise OptionError(f"method {name!r}: option {key!r} cannot be given with --method-option ({reserved[key]})")
        if not _accepts(cls, key):
            close = difflib.get_close_matches(key, takes, n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            listed = ", ".join(takes) if takes else "none"
            raise OptionError(f"method {name!r} has no option {key!r}.{hint} Its options: {listed}")


def option_files_sha256(options: dict[str, str]) -> dict[str, str]:
    """sha256 of every option value that names an existing file (weights, models), keyed by option."""
    from fiqa_bench.data.download import file_sha256

    out = {}
    for key, value in sorted(options.items()):
        path = Path(value).expanduser()
        try:
            is_file = path.is_file()
        except (OSError, ValueError):
            is_file = False
        if is_file:
            out[key] = file_sha256(path)
    return out


def _reserved_options(mcls) -> dict[str, str]:
    reserved = {}
    if _accepts(mcls, "seed"):
        reserved["seed"] = "set it with --seed"
    if getattr(mcls.card, "needs_backbone", False):
        reserved["backbone"] = "the run's FR backbone (--fr) is passed"
    return reserved


def build_method(cfg: Any, backbone: Any):
    """The quality method of ``cfg`` (None without one), constructed with the run's seed/backbone and its options."""
    if cfg.method is None:
        return None
    mcls = registry.load_class("method", cfg.method)
    kwargs: dict[str, Any] = {}
    if _accepts(mcls, "seed"):
        kwargs["seed"] = cfg.seed
    if getattr(mcls.card, "needs_backbone", False):
        kwargs["backbone"] = backbone
        check_capabilities(mcls, backbone)  # the method's needs_capabilities vs the backbone's card (issue 13)
    method_options = typed_method_options(cfg.method, dict(cfg.method_options), mcls)
    if not method_options:
        return registry.create("method", cfg.method, **kwargs)
    try:
        return registry.create("method", cfg.method, **kwargs, **method_options)
    except FiqaBenchError:
        raise
    except (TypeError, ValueError) as exc:
        given = ", ".join(f"{k}={v}" for k, v in method_options.items())
        raise OptionError(f"method {cfg.method!r} rejected its options ({given}): {type(exc).__name__}: {exc}") from exc


def typed_method_options(name: str, given: dict[str, str], mcls=None) -> dict[str, Any]:
    """The method's options as typed values (fiqa_bench.api.options), checked before any work."""
    from fiqa_bench.api.options import parse_options

    mcls = mcls or registry.load_class("method", name)
    return parse_options(mcls, f"method {name!r}", given, _reserved_options(mcls))


def typed_backbone_options(cfg: Any) -> dict[str, Any]:
    from fiqa_bench.api.options import parse_options

    bname, _ = registry.split_spec(cfg.backbone)
    bcls = registry.load_class("backbone", cfg.backbone)
    reserved = {"flip": "use --flip"} if cfg.flip else {}
    return parse_options(bcls, f"backbone {cfg.backbone!r}", dict(cfg.backbone_options), reserved)


def build_backbone(cfg: Any):
    kwargs: dict[str, Any] = typed_backbone_options(cfg)
    if cfg.flip:
        kwargs["flip"] = True
    try:
        return registry.create("backbone", cfg.backbone, **kwargs)
    except FiqaBenchError:
        raise
    except (TypeError, ValueError) as exc:
        if not cfg.backbone_options:
            raise
        given = ", ".join(f"{k}={v}" for k, v in cfg.backbone_options)
        raise OptionError(
            f"backbone {cfg.backbone!r} rejected its options ({given}): {type(exc).__name__}: {exc}"
        ) from exc


@dataclasses.dataclass(frozen=True)
class ConfigBuild:
    """Picklable recipe of a run's adapters: rebuilds (benchmark, backbone, method) from a run configuration
    (registry names and options, the protocol folder) as the runner does (the method is built on the worker's own
    backbone)."""

    config: Any  # fiqa_bench.config.RunConfig

    def __call__(self):
        bench = open_protocol(self.config.protocol, self.config.data).load()
        backbone = build_backbone(self.config)
        return bench, backbone, build_method(self.config, backbone)
